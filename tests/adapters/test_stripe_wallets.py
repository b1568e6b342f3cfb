"""Alipay and WeChat Pay through the real stripe client (StripeCardGateway) against the Stripe simulator:
confirmed at creation in Stripe's shapes (payment_method_types, next_action), paid, declined, refunded."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from chalicelib.money import Money
from chalicelib.payments import PaymentFailed, PaymentRejected, PaymentSucceeded, StripeCardGateway, parse_event
from chalicelib.payments.stripe_adapter import verify_webhook
from sandbox.simulators import SimulatorContext
from sandbox.simulators import stripe as stripe_simulator

SECRET = "whsec_wallet_test"
API_KEY = "sk_test_wallets"
RETURN_URL = "https://shop.example/after-alipay"


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


@pytest.fixture
def received():
    events = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            events.append(verify_webhook(body, self.headers.get("Stripe-Signature"), SECRET))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    yield events, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def sandbox(received):
    events, api_url = received
    ctx = SimulatorContext(api_base_url=api_url, sandbox_base_url="",
                           env={"MIZANI_STRIPE_WEBHOOK_SECRET": SECRET, "MIZANI_STRIPE_WEBHOOK_EVENTS": "*"})
    simulator = stripe_simulator.make(ctx)
    app = Flask("stripe-wallets-under-test")
    app.register_blueprint(simulator.blueprint)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    ctx.sandbox_base_url = simulator.url = f"http://127.0.0.1:{server.server_port}"
    simulator.received = events
    yield simulator
    server.shutdown()
    server.server_close()


@pytest.fixture
def gateway(sandbox):
    return StripeCardGateway(API_KEY, api_base=sandbox.url)


def pay(sandbox, pi, outcome="succeeded"):
    reply = requests.post(f"{sandbox.url}/sandbox/payments/{pi}/pay", json={"outcome": outcome}, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()


def events_of(sandbox, event_type):
    return [parse_event(e) for e in sandbox.received if e["type"] == event_type]


def test_alipay_is_confirmed_at_creation_and_answers_stripes_redirect(gateway, sandbox):
    intent = gateway.create_payment_intent(Money(862_500, "CNY"), "mizani:o1:payment_intent", {"order_id": "o1"},
                                           payment_method_type="alipay", return_url=RETURN_URL)
    assert intent.status == "requires_action"
    assert intent.next_action["type"] == "alipay_handle_redirect"
    redirect = intent.next_action["alipay_handle_redirect"]
    assert redirect["return_url"] == RETURN_URL and redirect["url"].startswith(sandbox.url)
    assert set(redirect) == {"native_data", "native_url", "return_url", "url"}
    stored = sandbox.payment_intents[intent.payment_intent_id]
    assert stored["payment_method_types"] == ["alipay"] and stored["automatic_payment_methods"] is None
    assert requests.get(redirect["url"], timeout=10).status_code == 200  # the page the buyer's browser opens


def test_wechat_pay_is_confirmed_at_creation_and_answers_a_qr_code(gateway, sandbox):
    intent = gateway.create_payment_intent(Money(862_500, "CNY"), "k-wechat", {"order_id": "o2"},
                                           payment_method_type="wechat_pay")
    assert intent.status == "requires_action" and intent.next_action["type"] == "wechat_pay_display_qr_code"
    qr = intent.next_action["wechat_pay_display_qr_code"]
    assert set(qr) == {"data", "hosted_instructions_url", "image_data_url", "image_url_png", "image_url_svg"}
    assert qr["data"].startswith("weixin://wxpay/bizpayurl?pr=") and qr["image_data_url"].startswith("data:image/png;base64,")


@pytest.mark.parametrize("kind", ["alipay", "wechat_pay"])
def test_a_wallet_payment_succeeds_with_stripes_webhook_and_the_charge_names_the_wallet(gateway, sandbox, kind):
    intent = gateway.create_payment_intent(Money(862_500, "CNY"), f"k-{kind}", {"order_id": "o3"},
                                           payment_method_type=kind, return_url=RETURN_URL)
    paid = pay(sandbox, intent.payment_intent_id)
    assert paid["webhook"]["status"] == 200 and paid["payment_intent"]["status"] == "succeeded"
    assert paid["payment_intent"]["next_action"] is None
    [succeeded] = events_of(sandbox, "payment_intent.succeeded")
    assert isinstance(succeeded, PaymentSucceeded)
    assert succeeded.amount == Money(862_500, "CNY") and succeeded.order_id == "o3"
    charge = sandbox.charges[succeeded.charge_id]
    assert charge["payment_method_details"]["type"] == kind and charge["payment_method_details"][kind]["transaction_id"]
    assert gateway.retrieve_payment_intent(intent.payment_intent_id).succeeded


def test_a_declined_wallet_payment_leaves_the_intent_payable_again(gateway, sandbox):
    intent = gateway.create_payment_intent(Money(10_000, "CNY"), "k-decline", {"order_id": "o4"},
                                           payment_method_type="alipay", return_url=RETURN_URL)
    declined = pay(sandbox, intent.payment_intent_id, "failed")["payment_intent"]
    assert declined["status"] == "requires_payment_method"
    assert declined["last_payment_error"]["code"] == "payment_method_provider_decline"
    [failed] = events_of(sandbox, "payment_intent.payment_failed")
    assert isinstance(failed, PaymentFailed) and failed.failure_code == "payment_method_provider_decline"
    assert pay(sandbox, intent.payment_intent_id)["payment_intent"]["status"] == "succeeded"


@pytest.mark.parametrize("kind", ["alipay", "wechat_pay"])
def test_a_wallet_payment_is_refunded_like_a_card_once_under_its_key(gateway, sandbox, kind):
    intent = gateway.create_payment_intent(Money(10_000, "USD"), f"k-r-{kind}", {"order_id": "o5"},
                                           payment_method_type=kind, return_url=RETURN_URL)
    pay(sandbox, intent.payment_intent_id)
    first = gateway.refund(intent.payment_intent_id, Money(10_000, "USD"), "mizani:o5:refund")
    again = gateway.refund(intent.payment_intent_id, Money(10_000, "USD"), "mizani:o5:refund")
    assert first.status == "succeeded" and again.refund_id == first.refund_id and len(sandbox.refunds) == 1
    assert [e.event_type for e in events_of(sandbox, "refund.created")] == ["refund.created"]


def test_a_wallet_takes_only_its_presentment_currencies(gateway):
    with pytest.raises(PaymentRejected) as refused:
        gateway.create_payment_intent(Money(150_000, "RWF"), "k-rwf", {}, payment_method_type="wechat_pay")
    assert refused.value.detail["provider_code"] == "payment_intent_invalid_currency"


def test_the_same_key_gives_the_same_confirmed_intent(gateway, sandbox):
    first = gateway.create_payment_intent(Money(10_000, "CNY"), "k-same", {}, payment_method_type="wechat_pay")
    again = gateway.create_payment_intent(Money(10_000, "CNY"), "k-same", {}, payment_method_type="wechat_pay")
    assert again.payment_intent_id == first.payment_intent_id and again.next_action == first.next_action
    assert len(sandbox.payment_intents) == 1


def test_the_simulator_refuses_an_alipay_confirmation_without_a_return_url(sandbox):
    reply = requests.post(f"{sandbox.url}/v1/payment_intents", timeout=10, headers={"Authorization": f"Bearer {API_KEY}"},
                          data={"amount": "100", "currency": "cny", "payment_method_types[0]": "alipay",
                                "payment_method_data[type]": "alipay", "confirm": "true"})
    assert reply.status_code == 400 and json.loads(reply.text)["error"]["param"] == "return_url"
