"""MpesaB2CRail against the M-Pesa B2C simulator, served on a free 127.0.0.1 port.

Our side of the callbacks is a small receiver app handing Daraja's bodies, posted to
each payout's own tokened URL, to ``MpesaB2CRail.accept_callback`` (an in-memory
``MpesaResultStore`` behind it), the way the payouts webhook does. Finality is
reached the honest way: result callbacks, and Transaction Status queries whose
answers arrive at the same receiver. Slow paths poll with a bounded loop.
"""
from __future__ import annotations

import contextlib
import csv
import io
import threading
import time

import flask
import pytest
import urllib3
from werkzeug.serving import make_server

from chalicelib.errors import ValidationError
from chalicelib.money import Money
from chalicelib.payouts.rails import NOT_FOUND, RailNotSent
from chalicelib.payouts.rails import config as rail_config
from chalicelib.documents import MemoryDocuments
from chalicelib.payouts.rails.mpesa import MpesaB2CRail
from chalicelib.payouts.rails.mpesa_store import MpesaResultStore
from sandbox.simulators import SimulatorContext
from sandbox.simulators import mpesa as mpesa_sim

KES = Money(150_000, "KES")  # 1,500 KES
PAID = "254712345678"  # not a test number: succeeds


@contextlib.contextmanager
def serving(*blueprints):
    """Serve blueprints on a free 127.0.0.1 port in a thread; yields the base URL."""
    app = flask.Flask("mizani-test-sandbox")
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class Receiver:
    """Our webhooks: /result (payment results and status answers) and /timeout (queue timeouts)."""

    def __init__(self):
        self.store = MpesaResultStore(MemoryDocuments())
        self.rail: MpesaB2CRail | None = None  # set by make_rail
        self.raw: list[dict] = []
        self.kept: list[bool] = []
        self.blueprint = flask.Blueprint("receiver", __name__)

        @self.blueprint.post("/webhooks/mpesa/result/<reference>/<token>")
        def result(reference, token):
            body = flask.request.get_json(force=True)
            self.raw.append(body)
            self.kept.append(self.rail.accept_callback(reference, token, body))
            return flask.jsonify({"ResultCode": 0, "ResultDesc": "Accepted"})

        @self.blueprint.post("/webhooks/mpesa/timeout/<reference>/<token>")
        def timeout(reference, token):
            body = flask.request.get_json(force=True)
            self.raw.append(body)
            self.kept.append(self.rail.accept_callback(reference, token, body, queue_timeout=True))
            return flask.jsonify({"ResultCode": 0, "ResultDesc": "Accepted"})


@pytest.fixture
def sim():
    simulator = mpesa_sim.make(SimulatorContext(api_base_url="http://127.0.0.1:9", sandbox_base_url="", env={}))
    yield simulator
    simulator.reset()


@pytest.fixture
def receiver():
    return Receiver()


@pytest.fixture
def base_url(sim, receiver):
    with serving(sim.blueprint, receiver.blueprint) as url:
        yield url


def make_rail(base_url, receiver, timeout=5.0, **overrides):
    options = dict(
        base_url=base_url,
        consumer_key=rail_config.LOCAL_MPESA_CONSUMER_KEY,
        consumer_secret=rail_config.LOCAL_MPESA_CONSUMER_SECRET,
        initiator_name=rail_config.LOCAL_MPESA_INITIATOR_NAME,
        security_credential=rail_config.LOCAL_MPESA_SECURITY_CREDENTIAL,
        shortcode=rail_config.LOCAL_MPESA_SHORTCODE,
        result_url=f"{base_url}/webhooks/mpesa/result",
        queue_timeout_url=f"{base_url}/webhooks/mpesa/timeout",
        results=receiver.store,
        timeout_seconds=timeout,
    )
    options.update(overrides)
    receiver.rail = MpesaB2CRail(**options)
    return receiver.rail


def poll(rail, reference, until=lambda s: s.is_final, attempts=250, pause=0.02):
    status = rail.status(reference)
    for _ in range(attempts):
        if until(status):
            return status
        time.sleep(pause)
        status = rail.status(reference)
    return status


def faults(base_url, **document):
    response = urllib3.request("POST", f"{base_url}/sandbox/faults/mpesa", json=document)
    assert response.status == 200, response.data
    return response.json()


def wallet(base_url, msisdn):
    return urllib3.request("GET", f"{base_url}/sandbox/wallets/mpesa/{msisdn}").json()


# -- the sandbox numbers -------------------------------------------------------------------

@pytest.mark.parametrize(
    "msisdn, final_state, reason_prefix",
    [(PAID, "succeeded", None), (mpesa_sim.FAILS, "failed", "1: "), (mpesa_sim.REJECTED, "failed", "2040: ")],
)
def test_each_final_test_number_ends_as_its_result_says(base_url, receiver, msisdn, final_state, reason_prefix):
    rail = make_rail(base_url, receiver)
    assert rail.send("p-1", KES, msisdn, "coffee").state == "pending"
    status = poll(rail, "p-1")
    assert status.state == final_state
    if reason_prefix:
        assert status.reason.startswith(reason_prefix)
    else:
        assert status.provider_reference and status.provider_reference.startswith("S")
    expected = [{"amount": 150_000, "currency": "KES"}] if final_state == "succeeded" else []
    assert wallet(base_url, msisdn)["balances"] == expected


@pytest.mark.parametrize("msisdn", [mpesa_sim.ONGOING, mpesa_sim.PENDING])
def test_the_ongoing_and_pending_numbers_stay_pending(base_url, receiver, msisdn):
    rail = make_rail(base_url, receiver)
    rail.send("p-1", KES, msisdn, "coffee")
    assert poll(rail, "p-1", until=lambda s: s.state == "pending").state == "pending"
    assert poll(rail, "p-1", attempts=3).state == "pending"
    assert wallet(base_url, msisdn)["balances"] == []


def test_a_stuck_payment_settled_in_the_sandbox_becomes_final(base_url, receiver):
    rail = make_rail(base_url, receiver)
    rail.send("p-1", KES, mpesa_sim.ONGOING, "coffee")
    settle = urllib3.request("POST", f"{base_url}/sandbox/mpesa/payments/p-1/settle", json={"result_code": 0})
    assert settle.status == 200
    assert poll(rail, "p-1").state == "succeeded"


def test_the_timeout_number_is_unknown_then_a_queue_timeout_then_status_says_expired(base_url, receiver, sim):
    faults(base_url, timeout_delay_ms=600)
    rail = make_rail(base_url, receiver, timeout=0.2)
    sent = rail.send("p-1", KES, mpesa_sim.TIMES_OUT, "coffee")
    assert (sent.state, sent.reason) == ("unknown", "timeout")
    final = poll(rail, "p-1")
    assert (final.state, final.reason) == ("failed", "transaction_status:expired")
    sim.callbacks.wait()
    assert receiver.store.hint("p-1").reason == "queue_timeout"  # the notice arrived; it decided nothing


# -- faults -----------------------------------------------------------------------------------

def test_a_500_after_the_payment_was_made_is_unknown_then_status_finds_it_paid_once(base_url, receiver):
    faults(base_url, error_after_success=1)
    rail = make_rail(base_url, receiver)
    sent = rail.send("p-1", KES, PAID, "coffee")
    assert (sent.state, sent.reason) == ("unknown", "http_500")
    assert poll(rail, "p-1").state == "succeeded"
    assert wallet(base_url, PAID)["balances"] == [{"amount": 150_000, "currency": "KES"}]


def test_a_lost_result_callback_is_recovered_by_a_transaction_status_query(base_url, receiver, sim):
    faults(base_url, lose_callback=1)
    rail = make_rail(base_url, receiver)
    rail.send("p-1", KES, PAID, "coffee")
    sim.callbacks.wait()
    assert receiver.store.get("p-1") is None
    final = poll(rail, "p-1")
    assert final.state == "succeeded" and final.provider_reference
    assert sim.status_queries >= 1
    assert receiver.store.hint("p-1") is None  # the payment result never came; status answers did


def test_a_duplicated_result_callback_is_recorded_once(base_url, receiver, sim):
    faults(base_url, duplicate_callback=1)
    make_rail(base_url, receiver).send("p-1", KES, PAID, "coffee")
    sim.callbacks.wait()
    assert len(receiver.raw) == 2
    assert receiver.kept == [True, False]


def test_a_repeated_originator_conversation_id_pays_nothing_more(base_url, receiver, sim):
    rail = make_rail(base_url, receiver)
    rail.send("p-1", KES, PAID, "coffee")
    sim.callbacks.wait()
    again = rail.send("p-1", KES, PAID, "coffee")
    assert again.state in ("unknown", "succeeded")  # Daraja's 409 became a status query
    assert poll(rail, "p-1").state == "succeeded"
    assert len(wallet(base_url, PAID)["transactions"]) == 1


def test_a_slow_provider_makes_send_unknown_not_failed(base_url, receiver):
    rail = make_rail(base_url, receiver, timeout=0.2)
    rail._access_token()
    faults(base_url, latency_ms=500)
    sent = rail.send("p-1", KES, PAID, "coffee")
    assert (sent.state, sent.reason) == ("unknown", "timeout")
    urllib3.request("DELETE", f"{base_url}/sandbox/faults/mpesa")
    assert poll(rail, "p-1").state == "succeeded"


def test_a_wrong_initiator_credential_fails_in_the_result_as_on_daraja(base_url, receiver):
    rail = make_rail(base_url, receiver, security_credential="not-the-credential")
    assert rail.send("p-1", KES, PAID, "coffee").state == "pending"
    final = poll(rail, "p-1")
    assert final.state == "failed" and final.reason.startswith("2001: ")


def test_a_payout_daraja_never_saw_is_unknown_not_found(base_url, receiver):
    rail = make_rail(base_url, receiver)
    receiver.store.sending("lost-on-the-way", 1500)  # we sent it; the request never reached Daraja
    status = poll(rail, "lost-on-the-way", until=lambda s: s.reason == NOT_FOUND)
    assert (status.state, status.reason) == ("unknown", NOT_FOUND)


def test_answers_about_a_payout_we_never_sent_change_nothing(base_url, receiver, sim):
    rail = make_rail(base_url, receiver)
    rail.status("never-sent")
    sim.callbacks.wait()
    assert receiver.kept == [False]
    assert receiver.store.get("never-sent") is None


def test_a_failing_status_query_is_unknown(base_url, receiver):
    faults(base_url, status_error=1)
    status = make_rail(base_url, receiver).status("p-1")
    assert (status.state, status.reason) == ("unknown", "status_query_http_500")


# -- tokens and input -----------------------------------------------------------------------

def test_one_token_serves_many_calls(base_url, receiver, sim):
    rail = make_rail(base_url, receiver)
    for n in range(3):
        rail.send(f"p-{n}", KES, PAID, "coffee")
        rail.status(f"p-{n}")
    assert sim.tokens_issued == 1


def test_a_revoked_token_is_replaced_without_the_caller_noticing(base_url, receiver, sim):
    rail = make_rail(base_url, receiver)
    rail.send("p-1", KES, PAID, "coffee")
    faults(base_url, expire_tokens=True)
    assert rail.send("p-2", KES, PAID, "coffee").state == "pending"
    assert sim.tokens_issued == 2


def test_wrong_consumer_credentials_mean_not_sent(base_url, receiver):
    rail = make_rail(base_url, receiver, consumer_secret="wrong")
    with pytest.raises(RailNotSent):
        rail.send("p-1", KES, PAID, "coffee")
    assert wallet(base_url, PAID)["transactions"] == []


def test_cents_are_refused_before_anything_is_sent(base_url, receiver, sim):
    with pytest.raises(ValidationError):
        make_rail(base_url, receiver).send("p-1", Money(150_050, "KES"), PAID, "coffee")
    assert sim.tokens_issued == 0


def test_the_simulator_refuses_calls_without_a_valid_token(base_url):
    response = urllib3.request("POST", f"{base_url}/mpesa/b2c/v3/paymentrequest", json={},
                               headers={"Authorization": "Bearer nope"})
    assert response.status == 401 and response.json()["errorCode"] == "404.001.03"


# -- sandbox views -----------------------------------------------------------------------

def test_the_statement_is_a_csv_of_results_one_a_line(base_url, receiver, sim):
    rail = make_rail(base_url, receiver)
    rail.send("p-1", KES, PAID, "coffee")
    rail.send("p-2", Money(20_000, "KES"), mpesa_sim.FAILS, "coffee")
    rail.send("p-3", KES, mpesa_sim.PENDING, "coffee")
    response = urllib3.request("GET", f"{base_url}/sandbox/statements/mpesa_b2c")
    assert response.headers["Content-Type"].startswith("text/csv")
    text = response.data.decode()
    assert text.splitlines()[0] == (
        "ConversationID,OriginatorConversationID,TransactionID,Amount,Currency,ResultCode,ResultDesc,PartyB,CompletedAt"
    )
    assert len(text.splitlines()) == 3
    rows = {r["OriginatorConversationID"]: r for r in csv.DictReader(io.StringIO(text))}
    assert (rows["p-1"]["Amount"], rows["p-1"]["Currency"], rows["p-1"]["ResultCode"]) == ("1500", "KES", "0")
    assert rows["p-1"]["ConversationID"].startswith("AG_") and rows["p-1"]["CompletedAt"].endswith("Z")
    assert (rows["p-2"]["Amount"], rows["p-2"]["ResultCode"]) == ("200", "1")
