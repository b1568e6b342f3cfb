"""MtnMomoRail against the MTN MoMo simulator, served on a free 127.0.0.1 port.

The real client speaks to the simulator over HTTP: token, transfer, status,
callbacks, faults. No timing thresholds: slow paths poll with a bounded loop.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import threading
import time

import flask
import pytest
import urllib3
from werkzeug.serving import make_server

from chalicelib.money import Money
from chalicelib.payouts.rails import NOT_FOUND, RailNotSent
from chalicelib.payouts.rails import config as rail_config
from chalicelib.payouts.rails.momo import MtnMomoRail, momo_reference_id, parse_callback
from sandbox.simulators import SimulatorContext
from sandbox.simulators import momo as momo_sim

EUR = Money(1250, "EUR")
PAID = "46733000001"  # not a test number: succeeds


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
    """Our side of the callbacks: records what the provider PUTs/POSTs."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.blueprint = flask.Blueprint("receiver", __name__)

        @self.blueprint.route("/callbacks/momo", methods=["PUT", "POST"])
        def momo_callback():
            self.bodies.append(flask.request.get_json(force=True))
            return "", 200


@pytest.fixture
def sim():
    simulator = momo_sim.make(SimulatorContext(api_base_url="http://127.0.0.1:9", sandbox_base_url="", env={}))
    yield simulator
    simulator.reset()


@pytest.fixture
def receiver():
    return Receiver()


@pytest.fixture
def base_url(sim, receiver):
    with serving(sim.blueprint, receiver.blueprint) as url:
        yield url


def make_rail(base_url, timeout=5.0, callback=True, **kwargs):
    return MtnMomoRail(
        base_url,
        rail_config.LOCAL_MOMO_API_USER,
        rail_config.LOCAL_MOMO_API_KEY,
        rail_config.LOCAL_MOMO_SUBSCRIPTION_KEY,
        "sandbox",
        callback_url=f"{base_url}/callbacks/momo" if callback else None,
        timeout_seconds=timeout,
        **kwargs,
    )


def poll(rail, reference, until=lambda s: s.is_final, attempts=250, pause=0.02):
    status = rail.status(reference)
    for _ in range(attempts):
        if until(status):
            return status
        time.sleep(pause)
        status = rail.status(reference)
    return status


def faults(base_url, **document):
    response = urllib3.request("POST", f"{base_url}/sandbox/faults/momo", json=document)
    assert response.status == 200, response.data
    return response.json()


def wallet(base_url, msisdn):
    return urllib3.request("GET", f"{base_url}/sandbox/wallets/{msisdn}").json()


# -- MTN's sandbox numbers ----------------------------------------------------------------

@pytest.mark.parametrize(
    "msisdn, final_state, reason",
    [
        (PAID, "succeeded", None),
        (momo_sim.FAILS, "failed", "INTERNAL_PROCESSING_ERROR"),
        (momo_sim.REJECTED, "failed", "APPROVAL_REJECTED"),
    ],
)
def test_each_final_test_number_ends_as_mtn_says(base_url, msisdn, final_state, reason):
    rail = make_rail(base_url)
    assert rail.send("p-1", EUR, msisdn, "coffee").state == "pending"
    status = poll(rail, "p-1")
    assert (status.state, status.reason) == (final_state, reason)
    credited = wallet(base_url, msisdn)["balances"]
    assert credited == ([{"amount": 1250, "currency": "EUR"}] if final_state == "succeeded" else [])


@pytest.mark.parametrize("msisdn", [momo_sim.ONGOING, momo_sim.PENDING])
def test_the_ongoing_and_pending_numbers_stay_pending_and_credit_nothing(base_url, msisdn):
    rail = make_rail(base_url)
    assert rail.send("p-1", EUR, msisdn, "coffee").state == "pending"
    assert [rail.status("p-1").state for _ in range(3)] == ["pending"] * 3
    assert wallet(base_url, msisdn)["balances"] == []


def test_a_stuck_transfer_settled_in_the_sandbox_becomes_final(base_url):
    rail = make_rail(base_url)
    rail.send("p-1", EUR, momo_sim.ONGOING, "coffee")
    settle = urllib3.request(
        "POST", f"{base_url}/sandbox/momo/transfers/{momo_reference_id('p-1')}/settle", json={"status": "SUCCESSFUL"}
    )
    assert settle.status == 200
    assert rail.status("p-1").state == "succeeded"


def test_the_timeout_number_makes_send_unknown_and_polling_finds_the_final_failure(base_url, sim):
    faults(base_url, timeout_delay_ms=600)
    rail = make_rail(base_url, timeout=0.2)
    sent = rail.send("p-1", EUR, momo_sim.TIMES_OUT, "coffee")
    assert (sent.state, sent.reason) == ("unknown", "timeout")
    final = poll(rail, "p-1")
    assert (final.state, final.reason) == ("failed", "EXPIRED")


# -- faults: the rule "unknown, never failed" ---------------------------------------------

def test_a_500_after_the_transfer_was_made_is_unknown_then_status_finds_it_paid_once(base_url):
    faults(base_url, error_after_success=1)
    rail = make_rail(base_url)
    sent = rail.send("p-1", EUR, PAID, "coffee")
    assert (sent.state, sent.reason) == ("unknown", "http_500")
    assert poll(rail, "p-1").state == "succeeded"
    assert wallet(base_url, PAID)["balances"] == [{"amount": 1250, "currency": "EUR"}]


def test_send_retries_with_the_same_reference_id_turn_a_500_into_success_without_paying_twice(base_url):
    faults(base_url, error_after_success=1)
    rail = make_rail(base_url, send_retries=1)
    sent = rail.send("p-1", EUR, PAID, "coffee")
    assert sent.state == "succeeded"  # retry -> 409 RESOURCE_ALREADY_EXIST -> GET status
    assert len(wallet(base_url, PAID)["transactions"]) == 1


def test_sending_the_same_reference_again_pays_nothing_more(base_url):
    rail = make_rail(base_url)
    rail.send("p-1", EUR, PAID, "coffee")
    again = rail.send("p-1", EUR, PAID, "coffee")
    assert again.state == "succeeded"
    assert wallet(base_url, PAID)["balances"] == [{"amount": 1250, "currency": "EUR"}]


def test_mtn_answers_409_to_a_reused_reference_id(base_url):
    rail = make_rail(base_url)
    rail.send("p-1", EUR, PAID, "coffee")
    token = rail._access_token()
    response = urllib3.request(
        "POST",
        f"{base_url}/disbursement/v1_0/transfer",
        json={"amount": "1.00", "currency": "EUR", "externalId": "other", "payee": {"partyIdType": "MSISDN", "partyId": PAID},
              "payerMessage": "x", "payeeNote": "x"},
        headers={"Authorization": f"Bearer {token}", "X-Reference-Id": momo_reference_id("p-1"),
                 "X-Target-Environment": "sandbox", "Ocp-Apim-Subscription-Key": rail_config.LOCAL_MOMO_SUBSCRIPTION_KEY},
    )
    assert (response.status, response.json()["code"]) == (409, "RESOURCE_ALREADY_EXIST")


def test_a_slow_provider_makes_send_unknown_not_failed(base_url):
    rail = make_rail(base_url, timeout=0.2)
    rail._access_token()  # fetched before the provider slows down
    faults(base_url, latency_ms=500)
    sent = rail.send("p-1", EUR, PAID, "coffee")
    assert (sent.state, sent.reason) == ("unknown", "timeout")
    urllib3.request("DELETE", f"{base_url}/sandbox/faults/momo")
    assert poll(rail, "p-1").state == "succeeded"
    assert len(wallet(base_url, PAID)["transactions"]) == 1


def test_status_gets_are_retried_so_one_500_is_invisible(base_url):
    rail = make_rail(base_url)
    rail.send("p-1", EUR, PAID, "coffee")
    faults(base_url, status_error=1)
    assert rail.status("p-1").state == "succeeded"


def test_status_answers_unknown_when_mtn_keeps_failing(base_url):
    rail = make_rail(base_url)
    rail.send("p-1", EUR, PAID, "coffee")
    faults(base_url, status_error=10)
    status = rail.status("p-1")
    assert (status.state, status.reason) == ("unknown", "http_500")


def test_a_reference_mtn_never_saw_is_unknown_not_found(base_url):
    status = make_rail(base_url).status("never-sent")
    assert (status.state, status.reason) == ("unknown", NOT_FOUND)


def test_a_500_before_processing_leaves_nothing_at_mtn_and_a_resend_pays_once(base_url):
    faults(base_url, error_before_processing=1)
    rail = make_rail(base_url)
    assert rail.send("p-1", EUR, PAID, "coffee").state == "unknown"
    assert rail.status("p-1").reason == NOT_FOUND
    assert rail.send("p-1", EUR, PAID, "coffee").state == "pending"
    assert poll(rail, "p-1").state == "succeeded"
    assert len(wallet(base_url, PAID)["transactions"]) == 1


# -- tokens ----------------------------------------------------------------------------

def test_one_token_serves_many_calls(base_url, sim):
    rail = make_rail(base_url)
    for n in range(3):
        rail.send(f"p-{n}", EUR, PAID, "coffee")
        rail.status(f"p-{n}")
    assert sim.tokens_issued == 1


def test_a_revoked_token_is_replaced_without_the_caller_noticing(base_url, sim):
    rail = make_rail(base_url)
    rail.send("p-1", EUR, PAID, "coffee")
    faults(base_url, expire_tokens=True)
    assert rail.send("p-2", EUR, PAID, "coffee").state == "pending"
    assert sim.tokens_issued == 2


def test_a_token_endpoint_that_fails_once_is_retried(base_url, sim):
    faults(base_url, token_error=1)
    assert make_rail(base_url).send("p-1", EUR, PAID, "coffee").state == "pending"


def test_wrong_credentials_mean_not_sent_and_nothing_happens_at_mtn(base_url):
    rail = MtnMomoRail(base_url, "someone", "wrong", rail_config.LOCAL_MOMO_SUBSCRIPTION_KEY, "sandbox")
    with pytest.raises(RailNotSent):
        rail.send("p-1", EUR, PAID, "coffee")
    assert wallet(base_url, PAID)["transactions"] == []


def test_the_simulator_requires_the_subscription_key_and_a_valid_bearer(base_url):
    no_key = urllib3.request("POST", f"{base_url}/disbursement/token/")
    assert no_key.status == 401 and "missing subscription key" in no_key.json()["message"]
    no_token = urllib3.request(
        "GET", f"{base_url}/disbursement/v1_0/transfer/{momo_reference_id('p-1')}",
        headers={"Ocp-Apim-Subscription-Key": rail_config.LOCAL_MOMO_SUBSCRIPTION_KEY, "X-Target-Environment": "sandbox"},
    )
    assert no_token.status == 401


# -- callbacks ---------------------------------------------------------------------------

def test_mtn_calls_back_once_with_the_final_status_and_the_parser_names_the_payout(base_url, sim, receiver):
    rail = make_rail(base_url)
    rail.send("p-1", EUR, PAID, "coffee")
    sim.callbacks.wait()
    assert len(receiver.bodies) == 1
    callback = parse_callback(json.dumps(receiver.bodies[0]))
    assert (callback.reference, callback.claimed.state) == ("p-1", "succeeded")
    assert rail.status(callback.reference).state == "succeeded"


def test_a_lost_callback_changes_nothing_because_status_is_the_truth(base_url, sim, receiver):
    faults(base_url, lose_callback=1)
    rail = make_rail(base_url)
    rail.send("p-1", EUR, PAID, "coffee")
    sim.callbacks.wait()
    assert receiver.bodies == []
    assert rail.status("p-1").state == "succeeded"


def test_a_duplicated_callback_arrives_twice_with_the_same_body(base_url, sim, receiver):
    faults(base_url, duplicate_callback=1)
    make_rail(base_url).send("p-1", EUR, momo_sim.FAILS, "coffee")
    sim.callbacks.wait()
    assert len(receiver.bodies) == 2 and receiver.bodies[0] == receiver.bodies[1]
    assert receiver.bodies[0]["status"] == "FAILED"


# -- sandbox views -------------------------------------------------------------------------

def test_the_wallet_lists_its_transactions_and_credits_only_successes(base_url):
    rail = make_rail(base_url)
    rail.send("p-1", EUR, PAID, "coffee")
    rail.send("p-2", Money(500, "EUR"), PAID, "coffee")
    view = wallet(base_url, f"+{PAID}")
    assert view["balances"] == [{"amount": 1750, "currency": "EUR"}]
    assert sorted(t["externalId"] for t in view["transactions"]) == ["p-1", "p-2"]


def test_the_statement_is_mtns_csv_of_final_transfers_one_a_line(base_url):
    rail = make_rail(base_url)
    rail.send("p-1", EUR, PAID, "coffee")
    rail.send("p-2", Money(1_500_000, "RWF"), momo_sim.FAILS, "coffee")
    rail.send("p-3", EUR, momo_sim.PENDING, "coffee")
    response = urllib3.request("GET", f"{base_url}/sandbox/statements/mtn_momo")
    assert response.headers["Content-Type"].startswith("text/csv")
    lines = response.data.decode().splitlines()
    rows = list(csv.DictReader(io.StringIO(response.data.decode())))
    assert lines[0] == "financialTransactionId,externalId,amount,currency,status,date"
    assert len(lines) == 3
    by_ref = {r["externalId"]: r for r in rows}
    assert (by_ref["p-1"]["amount"], by_ref["p-1"]["currency"], by_ref["p-1"]["status"]) == ("12.50", "EUR", "SUCCESSFUL")
    assert by_ref["p-1"]["financialTransactionId"] and by_ref["p-1"]["date"].endswith("Z")
    assert (by_ref["p-2"]["amount"], by_ref["p-2"]["status"]) == ("1500000", "FAILED")


def test_reset_forgets_everything(base_url, sim):
    make_rail(base_url).send("p-1", EUR, PAID, "coffee")
    sim.reset()
    assert wallet(base_url, PAID)["transactions"] == []
    assert sim.tokens_issued == 0
