"""The real stripe client (StripeCardGateway) against the sandbox's Stripe simulator over HTTP,
and the simulator's own wire format: webhooks, idempotency, errors, the balance statement."""
import csv
import io
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from chalicelib.errors import InvalidSignature, ProviderUnavailable
from chalicelib.money import Money
from chalicelib.payments import (
    IdempotencyKeyReused,
    PaymentFailed,
    PaymentNotFound,
    PaymentNotRefundable,
    PaymentProviderMisconfigured,
    PaymentProviderUnavailable,
    PaymentRejected,
    PaymentSucceeded,
    RefundExceedsPayment,
    StripeCardGateway,
    parse_event,
    verify_webhook,
)
from sandbox.simulators import SimulatorContext
from sandbox.simulators import stripe as stripe_simulator

SECRET = "whsec_adapter_test"
API_KEY = "sk_test_adapter"


# -- fixtures: a webhook receiver standing in for the API, and the simulator on a free port ----------


@dataclass
class Receiver:
    """A tiny HTTP server that records what it is sent and answers ``status`` with ``body``."""

    url: str = ""
    received: list = field(default_factory=list)
    status: int = 200
    body: dict = field(default_factory=lambda: {"received": True})


@pytest.fixture
def receiver():
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            state.received.append(
                {"method": self.command, "path": self.path, "headers": dict(self.headers),
                 "body": self.rfile.read(length)}
            )
            payload = json.dumps(state.body).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_POST = do_GET = _answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


@pytest.fixture
def sandbox(receiver):
    ctx = SimulatorContext(api_base_url=receiver.url, sandbox_base_url="",
                           env={"MIZANI_STRIPE_WEBHOOK_SECRET": SECRET})
    simulator = stripe_simulator.make(ctx)
    app = Flask("stripe-simulator-under-test")
    app.register_blueprint(simulator.blueprint)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    ctx.sandbox_base_url = simulator.url = f"http://127.0.0.1:{server.server_port}"
    yield simulator
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def gateway(sandbox):
    return StripeCardGateway(API_KEY, api_base=sandbox.url)


def pay(sandbox, payment_intent_id, outcome="succeeded"):
    reply = requests.post(f"{sandbox.url}/sandbox/payments/{payment_intent_id}/pay", json={"outcome": outcome})
    assert reply.status_code == 200, reply.text
    return reply.json()


def paid(gateway, sandbox, amount=Money(123456, "CNY"), order_id="ord_1"):
    intent = gateway.create_payment_intent(amount, f"pi:{order_id}", {"order_id": order_id})
    pay(sandbox, intent.payment_intent_id)
    return intent


def stripe_api(sandbox, method, path, key=API_KEY, **kwargs):
    headers = kwargs.pop("headers", {})
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return requests.request(method, sandbox.url + path, headers=headers, **kwargs)


# -- PaymentIntents ---------------------------------------------------------------------------


def test_a_payment_intent_is_created_with_its_amount_currency_and_metadata(gateway, sandbox):
    intent = gateway.create_payment_intent(Money(123456, "CNY"), "pi:ord_1", {"order_id": "ord_1"})
    assert intent.status == "requires_payment_method"
    assert intent.amount == Money(123456, "CNY") and intent.metadata == {"order_id": "ord_1"}
    assert intent.payment_intent_id.startswith("pi_")
    assert intent.client_secret.startswith(intent.payment_intent_id + "_secret_")
    stored = sandbox.payment_intents[intent.payment_intent_id]
    assert (stored["amount"], stored["currency"], stored["livemode"]) == (123456, "cny", False)
    assert stored["automatic_payment_methods"]["enabled"] is True


def test_the_same_idempotency_key_returns_the_same_payment_intent(gateway, sandbox):
    first = gateway.create_payment_intent(Money(123456, "CNY"), "pi:ord_1", {"order_id": "ord_1"})
    again = gateway.create_payment_intent(Money(123456, "CNY"), "pi:ord_1", {"order_id": "ord_1"})
    assert again.payment_intent_id == first.payment_intent_id and again.client_secret == first.client_secret
    assert len(sandbox.payment_intents) == 1


def test_the_same_key_with_another_amount_is_refused_by_stripe(gateway, sandbox):
    gateway.create_payment_intent(Money(123456, "CNY"), "pi:ord_1", {"order_id": "ord_1"})
    with pytest.raises(IdempotencyKeyReused):
        gateway.create_payment_intent(Money(999, "CNY"), "pi:ord_1", {"order_id": "ord_1"})
    assert len(sandbox.payment_intents) == 1


def test_a_zero_decimal_currency_is_sent_unscaled(gateway, sandbox):
    intent = gateway.create_payment_intent(Money(1500000, "RWF"), "pi:rwf", {})
    assert sandbox.payment_intents[intent.payment_intent_id]["amount"] == 1500000
    assert intent.amount == Money(1500000, "RWF")


def test_retrieve_follows_the_buyers_payment(gateway, sandbox):
    intent = gateway.create_payment_intent(Money(5000, "USD"), "pi:ord_1", {"order_id": "ord_1"})
    pay(sandbox, intent.payment_intent_id)
    now = gateway.retrieve_payment_intent(intent.payment_intent_id)
    assert now.succeeded and now.amount_received == Money(5000, "USD")


def test_an_unknown_payment_intent_is_not_found(gateway):
    with pytest.raises(PaymentNotFound) as e:
        gateway.retrieve_payment_intent("pi_does_not_exist")
    assert e.value.detail["provider_code"] == "resource_missing"


def test_an_amount_above_stripes_ceiling_is_rejected_cleanly(gateway, sandbox):
    with pytest.raises(PaymentRejected) as e:
        gateway.create_payment_intent(Money(100_000_000, "USD"), "pi:huge", {})
    assert e.value.detail["provider_code"] == "amount_too_large"
    assert sandbox.payment_intents == {}


# -- refunds -------------------------------------------------------------------------------------


def test_a_refund_with_the_same_key_refunds_once(gateway, sandbox):
    intent = paid(gateway, sandbox)
    first = gateway.refund(intent.payment_intent_id, Money(23456, "CNY"), "refund:ord_1")
    again = gateway.refund(intent.payment_intent_id, Money(23456, "CNY"), "refund:ord_1")
    assert again == first and first.status == "succeeded" and first.refund_id.startswith("re_")
    assert first.amount == Money(23456, "CNY") and first.payment_intent_id == intent.payment_intent_id
    assert len(sandbox.refunds) == 1
    assert sandbox.charges[sandbox.payment_intents[intent.payment_intent_id]["latest_charge"]]["amount_refunded"] == 23456


def test_a_refund_larger_than_what_is_left_errors_cleanly_and_refunds_nothing(gateway, sandbox):
    intent = paid(gateway, sandbox)
    gateway.refund(intent.payment_intent_id, Money(100000, "CNY"), "refund:1")
    with pytest.raises(RefundExceedsPayment) as e:
        gateway.refund(intent.payment_intent_id, Money(23457, "CNY"), "refund:2")
    assert e.value.code == "refund_exceeds_payment" and e.value.detail["param"] == "amount"
    assert len(sandbox.refunds) == 1
    gateway.refund(intent.payment_intent_id, Money(23456, "CNY"), "refund:3")
    with pytest.raises(RefundExceedsPayment):  # fully refunded: charge_already_refunded
        gateway.refund(intent.payment_intent_id, Money(1, "CNY"), "refund:4")


def test_an_unpaid_intent_cannot_be_refunded(gateway):
    intent = gateway.create_payment_intent(Money(5000, "USD"), "pi:ord_1", {})
    with pytest.raises(PaymentNotRefundable):
        gateway.refund(intent.payment_intent_id, Money(5000, "USD"), "refund:ord_1")


def test_a_refund_in_the_wrong_currency_never_reaches_stripe(gateway, sandbox):
    intent = paid(gateway, sandbox)
    with pytest.raises(PaymentRejected) as e:
        gateway.refund(intent.payment_intent_id, Money(1000, "RWF"), "refund:ord_1")
    assert e.value.code == "currency_mismatch" and sandbox.refunds == {}


# -- credentials and outages ------------------------------------------------------------------------


def test_a_key_stripe_refuses_is_a_configuration_error(sandbox):
    gateway = StripeCardGateway("sk_live_not_in_a_sandbox", api_base=sandbox.url)
    with pytest.raises(PaymentProviderMisconfigured) as e:
        gateway.create_payment_intent(Money(5000, "USD"), "pi:1", {})
    assert e.value.detail["http_status"] == 401


def test_an_unreachable_stripe_is_a_retryable_provider_outage():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    gateway = StripeCardGateway(API_KEY, api_base=f"http://127.0.0.1:{closed_port}", max_network_retries=0)
    with pytest.raises(ProviderUnavailable) as e:
        gateway.create_payment_intent(Money(5000, "USD"), "pi:1", {})
    assert e.value.code == "provider_unavailable"


@pytest.mark.parametrize("status", [500, 503, 429])
def test_stripe_server_errors_and_rate_limits_are_retryable_outages(receiver, status):
    receiver.status = status
    receiver.body = {"error": {"type": "api_error", "message": "Stripe is having a moment", "code": None}}
    gateway = StripeCardGateway(API_KEY, api_base=receiver.url, max_network_retries=0)
    with pytest.raises(PaymentProviderUnavailable):
        gateway.create_payment_intent(Money(5000, "USD"), "pi:1", {})
    assert receiver.received[-1]["headers"]["Idempotency-Key"] == "pi:1"


# -- webhooks ---------------------------------------------------------------------------------------


def test_paying_sends_a_signed_webhook_that_verify_webhook_accepts(gateway, sandbox, receiver):
    intent = gateway.create_payment_intent(Money(123456, "CNY"), "pi:ord_1", {"order_id": "ord_1"})
    reply = pay(sandbox, intent.payment_intent_id)
    assert reply["payment_intent"]["status"] == "succeeded"
    assert reply["webhook"]["status"] == 200 and reply["webhook"]["delivered"] is True
    [delivery] = receiver.received
    assert delivery["path"] == "/v1/webhooks/stripe"
    event = verify_webhook(delivery["body"], delivery["headers"]["Stripe-Signature"], SECRET)
    assert event["id"] == reply["webhook"]["event_id"] and event["api_version"]
    parsed = parse_event(event)
    assert isinstance(parsed, PaymentSucceeded)
    assert (parsed.payment_intent_id, parsed.order_id, parsed.amount) == (
        intent.payment_intent_id, "ord_1", Money(123456, "CNY"))
    with pytest.raises(InvalidSignature):
        verify_webhook(delivery["body"], delivery["headers"]["Stripe-Signature"], "whsec_local")


def test_a_declined_card_sends_payment_failed_and_the_intent_can_be_paid_later(gateway, sandbox, receiver):
    intent = gateway.create_payment_intent(Money(5000, "USD"), "pi:ord_1", {"order_id": "ord_1"})
    reply = pay(sandbox, intent.payment_intent_id, "failed")
    assert reply["payment_intent"]["status"] == "requires_payment_method"
    assert reply["payment_intent"]["last_payment_error"]["code"] == "card_declined"
    parsed = parse_event(verify_webhook(receiver.received[0]["body"],
                                        receiver.received[0]["headers"]["Stripe-Signature"], SECRET))
    assert isinstance(parsed, PaymentFailed) and parsed.failure_code == "generic_decline"
    pay(sandbox, intent.payment_intent_id, "succeeded")
    assert gateway.retrieve_payment_intent(intent.payment_intent_id).succeeded
    with pytest.raises(AssertionError):  # a succeeded intent cannot be paid twice
        pay(sandbox, intent.payment_intent_id)


def test_a_resent_event_has_the_same_body_and_stale_or_future_signatures_are_rejected(gateway, sandbox, receiver):
    intent = gateway.create_payment_intent(Money(5000, "USD"), "pi:ord_1", {"order_id": "ord_1"})
    event_id = pay(sandbox, intent.payment_intent_id)["webhook"]["event_id"]
    for offset in (0, -600, 600):
        reply = requests.post(f"{sandbox.url}/sandbox/stripe/events/{event_id}/resend", json={"timestamp_offset": offset})
        assert reply.status_code == 200 and reply.json()["status"] == 200
    original, again, stale, future = receiver.received
    assert again["body"] == original["body"] == stale["body"] == future["body"]
    assert verify_webhook(again["body"], again["headers"]["Stripe-Signature"], SECRET)["id"] == event_id
    for replayed in (stale, future):
        with pytest.raises(InvalidSignature):
            verify_webhook(replayed["body"], replayed["headers"]["Stripe-Signature"], SECRET)


def test_the_delivery_result_reports_the_apis_answer(gateway, sandbox, receiver):
    receiver.status = 400
    receiver.body = {"error": {"code": "invalid_signature"}}
    intent = gateway.create_payment_intent(Money(5000, "USD"), "pi:ord_1", {})
    webhook = pay(sandbox, intent.payment_intent_id)["webhook"]
    assert webhook["status"] == 400 and webhook["delivered"] is False
    assert "invalid_signature" in webhook["response"]
    events = requests.get(f"{sandbox.url}/sandbox/stripe/events").json()["events"]
    assert [(e["type"], len(e["deliveries"])) for e in events if e["type"].startswith("payment_intent")] == [
        ("payment_intent.succeeded", 1)]


def test_refund_events_are_recorded_but_only_subscribed_types_are_delivered(gateway, sandbox, receiver):
    intent = paid(gateway, sandbox)
    refund = gateway.refund(intent.payment_intent_id, Money(1000, "CNY"), "refund:1")
    assert len(receiver.received) == 1  # the payment_intent.succeeded only
    events = requests.get(f"{sandbox.url}/sandbox/stripe/events").json()["events"]
    refund_event = next(e for e in events if e["type"] == "refund.created")
    body = stripe_api(sandbox, "GET", f"/v1/events/{refund_event['id']}").json()
    assert body["data"]["object"]["id"] == refund.refund_id
    sandbox.ctx.env["MIZANI_STRIPE_WEBHOOK_EVENTS"] = "*"
    gateway.refund(intent.payment_intent_id, Money(1000, "CNY"), "refund:2")
    assert {json.loads(r["body"])["type"] for r in receiver.received[1:]} == {"refund.created", "charge.refunded"}


# -- the simulator's wire format ------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "sk_live_abc", "pk_test_abc", "sk_test_"])
def test_requests_without_a_secret_test_key_get_stripes_401(sandbox, key):
    reply = stripe_api(sandbox, "POST", "/v1/payment_intents", key=key, data={"amount": "100", "currency": "usd"})
    assert reply.status_code == 401
    assert reply.json()["error"]["type"] == "invalid_request_error" and reply.headers["Request-Id"].startswith("req_")
    assert sandbox.payment_intents == {}


def test_basic_auth_with_the_key_as_user_is_accepted(sandbox):
    reply = requests.post(f"{sandbox.url}/v1/payment_intents", auth=(API_KEY, ""), data={"amount": "100", "currency": "usd"})
    assert reply.status_code == 200 and reply.json()["object"] == "payment_intent"


def test_bracket_parameters_are_decoded_and_replays_are_marked(sandbox):
    form = {"amount": "2500", "currency": "KES", "metadata[order_id]": "ord_9", "metadata[buyer]": "b1",
            "payment_method_types[0]": "card"}
    first = stripe_api(sandbox, "POST", "/v1/payment_intents", data=form, headers={"Idempotency-Key": "k1"})
    again = stripe_api(sandbox, "POST", "/v1/payment_intents", data=form, headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() and again.headers["Idempotent-Replayed"] == "true"
    body = first.json()
    assert body["metadata"] == {"order_id": "ord_9", "buyer": "b1"} and body["currency"] == "kes"
    assert body["payment_method_types"] == ["card"]


def test_an_idempotency_key_reused_with_other_parameters_is_a_400_idempotency_error(sandbox):
    stripe_api(sandbox, "POST", "/v1/payment_intents", data={"amount": "100", "currency": "usd"},
               headers={"Idempotency-Key": "k1"})
    reply = stripe_api(sandbox, "POST", "/v1/payment_intents", data={"amount": "200", "currency": "usd"},
                       headers={"Idempotency-Key": "k1"})
    assert reply.status_code == 400
    assert reply.json()["error"]["type"] == "idempotency_error"
    assert set(reply.json()["error"]) >= {"type", "code", "message", "param"}


@pytest.mark.parametrize(
    "form, code, param",
    [
        ({"currency": "usd"}, "parameter_missing", "amount"),
        ({"amount": "12.5", "currency": "usd"}, "parameter_invalid_integer", "amount"),
        ({"amount": "100", "currency": "zzz"}, "parameter_invalid_string", "currency"),
        ({"amount": "100", "currency": "usd", "colour": "blue"}, "parameter_unknown", "colour"),
    ],
)
def test_invalid_parameters_get_stripe_shaped_errors(sandbox, form, code, param):
    reply = stripe_api(sandbox, "POST", "/v1/payment_intents", data=form)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param)


def test_balance_transactions_list_paginates_like_stripe(gateway, sandbox):
    import stripe

    for n in range(3):
        paid(gateway, sandbox, Money(1000 + n, "USD"), order_id=f"ord_{n}")
    client = stripe.StripeClient(API_KEY, base_addresses={"api": sandbox.url})
    page = client.v1.balance_transactions.list(params={"limit": 2})
    assert page.has_more is True and [t.amount for t in page.data] == [1002, 1001]  # newest first
    rest = client.v1.balance_transactions.list(params={"limit": 2, "starting_after": page.data[-1].id})
    assert rest.has_more is False and [t.amount for t in rest.data] == [1000]
    assert {t.reporting_category for t in page.data} == {"charge"}
    assert [t.id for t in page.auto_paging_iter()] == [t.id for t in page.data] + [rest.data[0].id]
    expanded = client.v1.balance_transactions.list(params={"limit": 1, "expand": ["data.source"]}).data[0]
    assert expanded.source.object == "charge" and expanded.source.payment_intent.startswith("pi_")


def test_the_balance_statement_lists_charges_with_fee_and_net_and_refunds_as_negatives(gateway, sandbox):
    intent = paid(gateway, sandbox, Money(123456, "CNY"))
    gateway.refund(intent.payment_intent_id, Money(1000, "CNY"), "refund:1")
    rwf = paid(gateway, sandbox, Money(1500000, "RWF"), order_id="ord_rwf")
    reply = requests.get(f"{sandbox.url}/sandbox/statements/stripe_balance")
    assert reply.status_code == 200 and reply.headers["Content-Type"].startswith("text/csv")
    lines = reply.text.splitlines()
    assert lines[0] == "balance_transaction_id,created_utc,reporting_category,currency,gross,fee,net,payment_intent_id"
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert len(rows) == len(lines) - 1 == 3
    charge, refund, rwf_charge = rows
    # 2.9 % of 1234.56 = 35.80 (half up) + 0.30 fixed = 36.10
    assert (charge["reporting_category"], charge["currency"], charge["gross"], charge["fee"], charge["net"]) == (
        "charge", "cny", "1234.56", "36.10", "1198.46")
    assert charge["payment_intent_id"] == intent.payment_intent_id and charge["balance_transaction_id"].startswith("txn_")
    assert (refund["reporting_category"], refund["gross"], refund["fee"], refund["net"]) == (
        "refund", "-10.00", "0.00", "-10.00")
    assert refund["payment_intent_id"] == intent.payment_intent_id
    # 2.9 % of 1,500,000 RWF = 43,500 + 30 fixed
    assert (rwf_charge["gross"], rwf_charge["fee"], rwf_charge["net"], rwf_charge["payment_intent_id"]) == (
        "1500000", "43530", "1456470", rwf.payment_intent_id)
    assert len(charge["created_utc"]) == len("2026-01-01 00:00:00")


def test_reset_forgets_everything(gateway, sandbox):
    paid(gateway, sandbox)
    sandbox.reset()
    assert sandbox.payment_intents == {} and sandbox.balance_transactions == []
    assert requests.get(f"{sandbox.url}/sandbox/statements/stripe_balance").text.count("\n") == 1


def test_concurrent_creates_with_one_key_make_one_payment_intent(sandbox):
    gateways = [StripeCardGateway(API_KEY, api_base=sandbox.url) for _ in range(8)]
    results = []

    def create(g):
        results.append(g.create_payment_intent(Money(5000, "USD"), "pi:race", {"order_id": "race"}).payment_intent_id)

    threads = [threading.Thread(target=create, args=(g,)) for g in gateways]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and len(results) == 8 and len(sandbox.payment_intents) == 1
