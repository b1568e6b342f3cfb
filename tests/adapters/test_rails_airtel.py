"""AirtelMoneyRail against the Airtel Money simulator, served on a free 127.0.0.1 port.

The real client speaks to the simulator over HTTP: token, disbursement, enquiry, KYC,
callbacks, faults. The server's socket is bound first so the simulator's callback URL
(``MIZANI_AIRTEL_CALLBACK_URL``) can name a receiver in the same app. Airtel's callback is
only a hint: every final state here is reached by polling ``status`` (bounded loops, no
timing thresholds).
"""
from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import threading
import time
from types import SimpleNamespace

import flask
import pytest
import urllib3
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from werkzeug.serving import make_server

from chalicelib.errors import ValidationError
from chalicelib.http import HttpClient, RailNotSent
from chalicelib.money import Money
from chalicelib.payouts.rails import NOT_FOUND
from chalicelib.payouts.rails import airtel as airtel_rail
from chalicelib.payouts.rails.airtel import AirtelMoneyRail, from_settings
from chalicelib.payouts.rails.port import PayoutRail
from sandbox.simulators import SimulatorContext
from sandbox.simulators import airtel as airtel_sim
from sandbox.simulators.airtel_keys import LOCAL_AIRTEL_PIN_PRIVATE_KEY

UGX = Money(150_000, "UGX")  # 150,000 UGX: no minor unit
RWF = Money(20_000, "RWF")
PAID = "256701234567"  # Uganda, not a test number: paid at once


class Receiver:
    """Our side of Airtel's callbacks: records what the simulator POSTs."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.blueprint = flask.Blueprint("receiver", __name__)

        @self.blueprint.post("/callbacks/airtel")
        def airtel_callback():
            self.bodies.append(flask.request.get_json(force=True))
            return flask.jsonify({"received": True})


@contextlib.contextmanager
def serving(receiver: Receiver):
    """Bind a free 127.0.0.1 port, build the simulator calling back to it, serve both in a thread.

    Yields ``(simulator, base_url)``.
    """
    app = flask.Flask("mizani-test-airtel")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base_url = f"http://127.0.0.1:{server.server_port}"
    simulator = airtel_sim.make(SimulatorContext(
        api_base_url="http://127.0.0.1:9",
        sandbox_base_url=base_url,
        env={"MIZANI_AIRTEL_CALLBACK_URL": f"{base_url}/callbacks/airtel"},
    ))
    app.register_blueprint(simulator.blueprint)
    app.register_blueprint(receiver.blueprint)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield simulator, base_url
    finally:
        simulator.reset()  # joins the callback threads still running
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def receiver():
    return Receiver()


@pytest.fixture
def sandbox(receiver):
    with serving(receiver) as served:
        yield served


@pytest.fixture
def sim(sandbox):
    return sandbox[0]


@pytest.fixture
def base_url(sandbox):
    return sandbox[1]


class RecordingHttp(HttpClient):
    """The adapter's own HTTP client, keeping what it put on the wire."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[str, str, dict | None]] = []

    def request(self, method, url, **kwargs):
        self.sent.append((method, url, kwargs.get("json_body")))
        return super().request(method, url, **kwargs)


def make_rail(base_url, timeout=5.0, **overrides):
    options = dict(
        client_id=airtel_rail.LOCAL_AIRTEL_CLIENT_ID,
        client_secret=airtel_rail.LOCAL_AIRTEL_CLIENT_SECRET,
        pin=airtel_rail.LOCAL_AIRTEL_PIN,
        pin_public_key=airtel_rail.LOCAL_AIRTEL_PIN_PUBLIC_KEY,
        timeout_seconds=timeout,
    )
    options.update(overrides)
    return AirtelMoneyRail(base_url, **options)


def currency_of(msisdn):
    return "RWF" if msisdn.startswith("250") else "UGX"


def poll(rail, reference, msisdn, currency=None, until=lambda s: s.is_final, attempts=250, pause=0.02):
    currency = currency or currency_of(msisdn)
    status = rail.status(reference, msisdn=msisdn, currency=currency)
    for _ in range(attempts):
        if until(status):
            return status
        time.sleep(pause)
        status = rail.status(reference, msisdn=msisdn, currency=currency)
    return status


def faults(base_url, **document):
    response = urllib3.request("POST", f"{base_url}/sandbox/faults/airtel", json=document)
    assert response.status == 200, response.data
    return response.json()


def wallet(base_url, msisdn):
    return urllib3.request("GET", f"{base_url}/sandbox/wallets/airtel_money/{msisdn}").json()


def paid_once(base_url, msisdn, money=UGX):
    view = wallet(base_url, msisdn)
    return view["balances"] == [{"amount": money.minor, "currency": money.currency}] and len(view["transactions"]) == 1


def statement_rows(base_url):
    response = urllib3.request("GET", f"{base_url}/sandbox/statements/airtel_money")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/csv")
    return response.data.decode()


# -- the rail as the registry builds it -------------------------------------------------------

def test_the_rail_is_a_payout_rail_whose_resend_is_idempotent(base_url):
    rail = make_rail(base_url)
    assert isinstance(rail, PayoutRail)
    assert (rail.name, rail.resend_is_idempotent) == ("airtel_money", True)


def test_from_settings_in_the_local_stage_uses_the_sandbox_and_its_local_constants(base_url, monkeypatch):
    for name in ("BASE_URL", "CLIENT_ID", "CLIENT_SECRET", "PIN", "PIN_PUBLIC_KEY"):
        monkeypatch.delenv(f"MIZANI_AIRTEL_{name}", raising=False)
    settings = SimpleNamespace(is_local=True, stage="local", sandbox_base_url=base_url, http_timeout_seconds=5.0)
    rail = from_settings(settings)
    assert rail.send("p-1", UGX, PAID, "coffee").state == "succeeded"
    assert paid_once(base_url, PAID)


# -- the simulator's test numbers -------------------------------------------------------------

@pytest.mark.parametrize(
    "msisdn, sent_state, sent_reason, final_state",
    [
        (PAID, "succeeded", None, "succeeded"),
        (airtel_sim.FAILS, "failed", "DP00900001005:transaction_failed", "failed"),
        (airtel_sim.AMBIGUOUS, "unknown", "ambiguous:DP00900001000", "succeeded"),
        (airtel_sim.INACTIVE, "failed", "DP00900001010:payee_not_allowed", "failed"),
        (airtel_sim.UNREGISTERED, "failed", "DP00900001012:invalid_mobile_number", "failed"),
    ],
    ids=["ordinary-paid", "fails", "ambiguous-is-paid", "inactive-barred", "not-registered"],
)
def test_each_test_number_ends_as_the_simulator_documents(base_url, msisdn, sent_state, sent_reason, final_state):
    rail = make_rail(base_url)
    money = RWF if msisdn.startswith("250") else UGX
    sent = rail.send("p-1", money, msisdn, "coffee")
    assert (sent.state, sent.reason) == (sent_state, sent_reason)
    final = poll(rail, "p-1", msisdn)
    assert final.state == final_state
    view = wallet(base_url, msisdn)
    if final_state == "succeeded":
        assert final.provider_reference and final.provider_reference.startswith("MP")
        assert view["balances"] == [{"amount": money.minor, "currency": money.currency}]
    else:
        assert final.reason.startswith("TF")
        assert view["balances"] == []
    assert len(view["transactions"]) == 1


def test_an_ordinary_number_is_paid_150000_ugx_as_150000_on_the_wire(base_url):
    http = RecordingHttp(5.0)
    rail = make_rail(base_url, http=http)
    rail.send("p-1", UGX, PAID, "coffee")
    (body,) = [b for m, u, b in http.sent if m == "POST" and u.endswith("/standard/v1/disbursements/")]
    assert body["transaction"] == {"amount": 150_000, "id": "p-1", "type": "B2C"}
    assert body["payee"] == {"msisdn": "701234567", "wallet_type": "NORMAL"}
    assert wallet(base_url, PAID)["balances"] == [{"amount": 150_000, "currency": "UGX"}]


def test_the_pending_number_stays_pending_until_settled_by_hand(base_url):
    rail = make_rail(base_url)
    assert rail.send("p-1", UGX, airtel_sim.PENDING, "coffee").state == "pending"
    assert [poll(rail, "p-1", airtel_sim.PENDING, attempts=0).state for _ in range(3)] == ["pending"] * 3
    assert wallet(base_url, airtel_sim.PENDING)["balances"] == []
    settle = urllib3.request("POST", f"{base_url}/sandbox/airtel/transactions/p-1/settle", json={"status": "TS"})
    assert settle.status == 200
    assert poll(rail, "p-1", airtel_sim.PENDING).state == "succeeded"
    assert paid_once(base_url, airtel_sim.PENDING)


def test_the_timeout_number_is_unknown_on_send_then_found_paid_once_by_status(base_url):
    faults(base_url, timeout_delay_ms=600)
    rail = make_rail(base_url, timeout=0.2)
    sent = rail.send("p-1", UGX, airtel_sim.TIMES_OUT, "coffee")
    assert (sent.state, sent.reason) == ("unknown", "timeout")
    final = poll(rail, "p-1", airtel_sim.TIMES_OUT)
    assert final.state == "succeeded" and final.provider_reference
    assert paid_once(base_url, airtel_sim.TIMES_OUT)


# -- faults: unknown, never failed ------------------------------------------------------------

def test_a_500_after_success_is_unknown_then_status_says_succeeded_and_it_is_paid_once(base_url):
    faults(base_url, error_after_success=1)
    rail = make_rail(base_url)
    sent = rail.send("p-1", UGX, PAID, "coffee")
    assert (sent.state, sent.reason) == ("unknown", "http_500")
    assert poll(rail, "p-1", PAID).state == "succeeded"
    assert paid_once(base_url, PAID)


def test_a_500_before_processing_is_unknown_then_not_found_and_a_resend_pays_once(base_url):
    faults(base_url, error_before_processing=1)
    rail = make_rail(base_url)
    sent = rail.send("p-1", UGX, PAID, "coffee")
    assert (sent.state, sent.reason) == ("unknown", "http_500")
    status = rail.status("p-1", msisdn=PAID, currency="UGX")
    assert (status.state, status.reason) == ("unknown", NOT_FOUND)
    assert wallet(base_url, PAID)["transactions"] == []
    assert rail.send("p-1", UGX, PAID, "coffee").state == "succeeded"
    assert poll(rail, "p-1", PAID).state == "succeeded"
    assert paid_once(base_url, PAID)


def test_sending_the_same_reference_twice_pays_once(base_url):
    rail = make_rail(base_url)
    assert rail.send("p-1", UGX, PAID, "coffee").state == "succeeded"
    again = rail.send("p-1", UGX, PAID, "coffee")  # DP00900001017 became a status read
    assert again.state == "succeeded" and again.provider_reference
    assert paid_once(base_url, PAID)


def test_resending_a_failed_reference_reads_the_failure_and_pays_nothing(base_url):
    rail = make_rail(base_url)
    assert rail.send("p-1", UGX, airtel_sim.FAILS, "coffee").state == "failed"
    assert rail.send("p-1", UGX, airtel_sim.FAILS, "coffee").state == "failed"
    assert len(wallet(base_url, airtel_sim.FAILS)["transactions"]) == 1


def test_insufficient_funds_in_the_disbursement_wallet_is_a_failure_airtel_reports(base_url):
    faults(base_url, insufficient_funds=1)
    rail = make_rail(base_url)
    sent = rail.send("p-1", UGX, PAID, "coffee")
    assert (sent.state, sent.reason) == ("failed", "DP00900001007:insufficient_funds")
    assert poll(rail, "p-1", PAID).state == "failed"
    assert wallet(base_url, PAID)["balances"] == []


def test_fractions_of_a_unit_are_refused_before_anything_is_sent(base_url, sim):
    with pytest.raises(ValidationError) as refused:
        make_rail(base_url).send("p-1", Money(150_050, "KES"), "254733123456", "coffee")  # 1,500.50 KES
    assert refused.value.code == "amount_not_whole_units"
    assert sim.tokens_issued == 0 and sim.transactions == {}


@pytest.mark.parametrize("reference", ["p-1?retry", "p-1#2"])
def test_status_asks_about_exactly_the_reference_it_is_given(base_url, reference):
    rail = make_rail(base_url)
    assert rail.send("p-1", UGX, airtel_sim.FAILS, "coffee").state == "failed"
    assert rail.send(reference, UGX, PAID, "coffee").state == "succeeded"
    status = rail.status(reference, msisdn=PAID, currency="UGX")
    assert status.state == "succeeded"  # not the state of payout "p-1" (the reference is quoted in the path)


def test_a_reference_airtel_never_saw_is_unknown_not_found(base_url):
    status = make_rail(base_url).status("never-sent", msisdn=PAID, currency="UGX")
    assert (status.state, status.reason) == ("unknown", NOT_FOUND)


def test_status_without_the_wallet_and_currency_is_unknown_not_an_error(base_url):
    status = make_rail(base_url).status("p-1")
    assert (status.state, status.reason) == ("unknown", "status_needs_wallet")


def test_one_failing_enquiry_is_retried_invisibly(base_url):
    rail = make_rail(base_url)
    rail.send("p-1", UGX, PAID, "coffee")
    faults(base_url, status_error=1)
    assert rail.status("p-1", msisdn=PAID, currency="UGX").state == "succeeded"


def test_an_enquiry_that_keeps_failing_is_unknown_never_failed(base_url):
    rail = make_rail(base_url)
    rail.send("p-1", UGX, PAID, "coffee")
    faults(base_url, status_error=10)
    status = rail.status("p-1", msisdn=PAID, currency="UGX")
    assert (status.state, status.reason) == ("unknown", "http_500")


def test_status_never_raises_when_airtel_is_unreachable():
    rail = make_rail("http://127.0.0.1:9", timeout=0.5)
    status = rail.status("p-1", msisdn=PAID, currency="UGX")
    assert (status.state, status.reason) == ("unknown", "status_unavailable")


def test_an_unreachable_airtel_means_not_sent():
    with pytest.raises(RailNotSent):
        make_rail("http://127.0.0.1:9", timeout=0.5).send("p-1", UGX, PAID, "coffee")


# -- callbacks: hints only, poll-first ---------------------------------------------------------

def test_airtel_calls_back_once_and_the_callback_names_the_payout_to_ask_about(base_url, sim, receiver):
    rail = make_rail(base_url)
    rail.send("p-1", UGX, PAID, "coffee")
    sim.callbacks.wait()
    assert len(receiver.bodies) == 1
    payout_id = rail.callback_payout(json.dumps(receiver.bodies[0]).encode())
    assert payout_id == "p-1"
    assert rail.status(payout_id, msisdn=PAID, currency="UGX").state == "succeeded"


def test_a_lost_callback_changes_nothing_because_status_reaches_the_final_state(base_url, sim, receiver):
    faults(base_url, lose_callback=1)
    rail = make_rail(base_url)
    rail.send("p-1", UGX, airtel_sim.FAILS, "coffee")
    sim.callbacks.wait()
    assert receiver.bodies == [] and len(sim.callbacks.lost) == 1
    final = poll(rail, "p-1", airtel_sim.FAILS)
    assert final.state == "failed"


def test_a_lost_callback_on_a_paid_transfer_is_still_found_paid(base_url, sim, receiver):
    faults(base_url, lose_callback=1)
    rail = make_rail(base_url)
    assert rail.send("p-1", UGX, PAID, "coffee").state == "succeeded"
    sim.callbacks.wait()
    assert receiver.bodies == []
    assert poll(rail, "p-1", PAID).state == "succeeded"
    assert paid_once(base_url, PAID)


def test_callback_payout_returns_the_payout_id_the_body_names(base_url):
    rail = make_rail(base_url)
    body = {"transaction": {"id": "p-7", "status_code": "TS", "airtel_money_id": "MP1", "message": "paid"}}
    assert rail.callback_payout(body) == "p-7"
    assert rail.callback_payout(json.dumps(body)) == "p-7"
    assert rail.callback_payout(json.dumps(body).encode(), payout_id="p-7") == "p-7"


def test_callback_payout_is_none_when_the_given_payout_id_differs_from_the_body(base_url):
    rail = make_rail(base_url)
    body = json.dumps({"transaction": {"id": "p-7", "status_code": "TS"}})
    assert rail.callback_payout(body, payout_id="p-8") is None


def test_callback_payout_is_none_for_a_body_that_names_no_payout(base_url):
    rail = make_rail(base_url)
    assert rail.callback_payout({"transaction": {}}) is None
    assert rail.callback_payout(b"{}") is None


def test_a_callback_body_that_is_not_json_is_a_validation_error(base_url):
    with pytest.raises(ValidationError):
        make_rail(base_url).callback_payout(b"<html>not json</html>")


# -- tokens and credentials ---------------------------------------------------------------------

def test_one_token_serves_many_calls(base_url, sim):
    rail = make_rail(base_url)
    for n in range(3):
        rail.send(f"p-{n}", UGX, PAID, "coffee")
        rail.status(f"p-{n}", msisdn=PAID, currency="UGX")
    rail.check_payee(PAID, "UGX")
    assert sim.tokens_issued == 1


def test_an_expired_token_is_replaced_without_the_caller_noticing(base_url, sim):
    rail = make_rail(base_url)
    rail.send("p-1", UGX, PAID, "coffee")
    faults(base_url, expire_tokens=True)
    assert rail.send("p-2", UGX, PAID, "coffee").state == "succeeded"
    assert sim.tokens_issued == 2
    faults(base_url, expire_tokens=True)
    assert rail.status("p-1", msisdn=PAID, currency="UGX").state == "succeeded"
    faults(base_url, expire_tokens=True)
    assert rail.check_payee(PAID, "UGX").active is True
    assert sim.tokens_issued == 4
    assert len(wallet(base_url, PAID)["transactions"]) == 2


def test_a_token_endpoint_that_fails_once_is_retried(base_url):
    faults(base_url, token_error=1)
    assert make_rail(base_url).send("p-1", UGX, PAID, "coffee").state == "succeeded"


def test_wrong_client_credentials_mean_not_sent_and_nothing_happens_at_airtel(base_url):
    rail = make_rail(base_url, client_secret="wrong")
    with pytest.raises(RailNotSent):
        rail.send("p-1", UGX, PAID, "coffee")
    assert wallet(base_url, PAID)["transactions"] == []


# -- the disbursement PIN -----------------------------------------------------------------------

def test_a_wrong_pin_fails_naming_router115_and_nothing_is_paid(base_url):
    rail = make_rail(base_url, pin="2468")
    sent = rail.send("p-1", UGX, PAID, "coffee")
    assert sent.state == "failed" and "ROUTER115" in sent.reason
    assert wallet(base_url, PAID)["transactions"] == []
    status = rail.status("p-1", msisdn=PAID, currency="UGX")
    assert (status.state, status.reason) == ("unknown", NOT_FOUND)  # Airtel made nothing


def test_the_pin_on_the_wire_is_encrypted_and_the_simulator_decrypts_it(base_url):
    http = RecordingHttp(5.0)
    rail = make_rail(base_url, http=http)
    assert rail.send("p-1", UGX, PAID, "coffee").state == "succeeded"
    (body,) = [b for m, u, b in http.sent if m == "POST" and u.endswith("/standard/v1/disbursements/")]
    wire_pin = body["pin"]
    assert wire_pin != airtel_rail.LOCAL_AIRTEL_PIN and airtel_rail.LOCAL_AIRTEL_PIN not in wire_pin
    private_key = serialization.load_pem_private_key(LOCAL_AIRTEL_PIN_PRIVATE_KEY.encode(), password=None)
    clear = private_key.decrypt(base64.b64decode(wire_pin, validate=True), padding.PKCS1v15())
    assert clear.decode() == airtel_rail.LOCAL_AIRTEL_PIN


def test_a_pin_key_given_as_bare_base64_works_as_airtels_portal_shows_it(base_url):
    bare = "".join(line for line in airtel_rail.LOCAL_AIRTEL_PIN_PUBLIC_KEY.strip().splitlines() if "-----" not in line)
    rail = make_rail(base_url, pin_public_key=bare)
    assert rail.send("p-1", UGX, PAID, "coffee").state == "succeeded"


# -- check_payee (KYC) ----------------------------------------------------------------------------

def test_an_ordinary_number_is_an_active_payee_without_a_holder_name(base_url):
    check = make_rail(base_url).check_payee(PAID, "UGX")
    assert (check.checked, check.active, check.holder_name) == (True, True, None)


def test_a_named_wallet_reports_its_holder_name(base_url):
    named = urllib3.request("POST", f"{base_url}/sandbox/wallets/airtel_money/{PAID}", json={"name": "Amina Nakato"})
    assert named.status == 200
    check = make_rail(base_url).check_payee(PAID, "UGX")
    assert (check.checked, check.active, check.holder_name) == (True, True, "Amina Nakato")


def test_the_barred_number_is_an_inactive_payee(base_url):
    check = make_rail(base_url).check_payee(airtel_sim.INACTIVE, "RWF")
    assert (check.checked, check.active) == (True, False)


def test_a_number_that_is_not_registered_is_an_inactive_payee(base_url):
    check = make_rail(base_url).check_payee(airtel_sim.UNREGISTERED, "UGX")
    assert (check.checked, check.active, check.holder_name) == (True, False, None)


# -- the statement --------------------------------------------------------------------------------

def test_the_statement_lists_each_final_transaction_once_under_our_reference(base_url):
    rail = make_rail(base_url)
    rail.send("p-1", UGX, PAID, "coffee")
    rail.send("p-1", UGX, PAID, "coffee")  # a repeat: no second line
    rail.send("p-2", Money(5_000, "UGX"), airtel_sim.FAILS, "coffee")
    rail.send("p-3", UGX, airtel_sim.PENDING, "coffee")  # not final: not listed
    rail.send("p-4", UGX, airtel_sim.AMBIGUOUS, "coffee")
    assert poll(rail, "p-4", airtel_sim.AMBIGUOUS).state == "succeeded"
    text = statement_rows(base_url)
    lines = text.splitlines()
    assert lines[0] == "transaction_id,reference,airtel_money_id,msisdn,amount,currency,status,message,completed_at"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted(r["transaction_id"] for r in rows) == ["p-1", "p-2", "p-4"]
    by_id = {r["transaction_id"]: r for r in rows}
    assert (by_id["p-1"]["msisdn"], by_id["p-1"]["amount"], by_id["p-1"]["currency"], by_id["p-1"]["status"]) == (
        PAID, "150000", "UGX", "TS")
    assert by_id["p-1"]["airtel_money_id"].startswith("MP") and by_id["p-1"]["completed_at"].endswith("Z")
    assert (by_id["p-2"]["amount"], by_id["p-2"]["status"], by_id["p-2"]["airtel_money_id"]) == ("5000", "TF", "")
    assert by_id["p-4"]["status"] == "TS"
