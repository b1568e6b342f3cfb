"""The Airtel Money simulator over real HTTP on a free 127.0.0.1 port, and the MTN/M-Pesa
account-holder and name routes.

A tiny receiver blueprint in the same app takes Airtel's callbacks
(``MIZANI_AIRTEL_CALLBACK_URL`` points at it through ``ctx.env``). The PIN is encrypted
as a client would: RSA PKCS#1 v1.5 with ``chalicelib.payouts.rails.airtel.LOCAL_AIRTEL_PIN_PUBLIC_KEY``, Base64.
"""
from __future__ import annotations

import base64
import contextlib
import csv
import io
import os
import threading
import time
import uuid

import flask
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from werkzeug.serving import make_server

from chalicelib.payouts.rails import config as rail_config
from chalicelib.payouts.rails import airtel as airtel_rail
from sandbox.simulators import SimulatorContext
from sandbox.simulators import airtel as airtel_sim
from sandbox.simulators import momo as momo_sim
from sandbox.simulators import mpesa as mpesa_sim

UG = {"X-Country": "UG", "X-Currency": "UGX"}
RW = {"X-Country": "RW", "X-Currency": "RWF"}
PAID_NATIONAL = "701234567"  # Uganda 256701234567: not a test number, succeeds


class World:
    """One Flask app: the three simulators plus our callback receiver."""

    def __init__(self):
        self.callbacks: list[dict] = []
        receiver = flask.Blueprint("receiver", __name__)

        @receiver.post("/hooks/airtel")
        def airtel_hook():
            self.callbacks.append(flask.request.get_json(force=True))
            return flask.jsonify({"received": True})

        self.receiver = receiver
        self.base = ""
        self.session = requests.Session()

    def start(self, stack: contextlib.ExitStack):
        # Bind first (the callback URL names the port), then build the simulators with it.
        app = flask.Flask("mizani-test-airtel")
        holder = {}

        def wsgi(environ, start_response):
            return holder["app"](environ, start_response)

        server = make_server("127.0.0.1", 0, wsgi, threaded=True)
        self.base = f"http://127.0.0.1:{server.server_port}"
        ctx = SimulatorContext(
            api_base_url="http://127.0.0.1:9",
            sandbox_base_url=self.base,
            env={"MIZANI_AIRTEL_CALLBACK_URL": f"{self.base}/hooks/airtel"},
        )
        self.airtel = airtel_sim.make(ctx)
        self.momo = momo_sim.make(ctx)
        self.mpesa = mpesa_sim.make(ctx)
        for bp in (self.airtel.blueprint, self.momo.blueprint, self.mpesa.blueprint, self.receiver):
            app.register_blueprint(bp)
        holder["app"] = app
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        thread.start()

        def stop():
            server.shutdown()
            server.server_close()
            thread.join(5)
            self.session.close()
            for sim in (self.airtel, self.momo, self.mpesa):
                sim.reset()

        stack.callback(stop)
        return self

    # -- Airtel client helpers -------------------------------------------------------
    def token(self, client_id=airtel_rail.LOCAL_AIRTEL_CLIENT_ID, client_secret=airtel_rail.LOCAL_AIRTEL_CLIENT_SECRET):
        return self.session.post(
            f"{self.base}/auth/oauth2/token",
            json={"client_id": client_id, "client_secret": client_secret, "grant_type": "client_credentials"},
            timeout=5,
        )

    def headers(self, route=UG, token=None):
        token = token or self.token().json()["access_token"]
        return {"Authorization": f"Bearer {token}", "Accept": "*/*", **route}

    def disburse(self, national=PAID_NATIONAL, amount=5000, tx_id=None, route=UG, pin=None, headers=None, timeout=5, **extra):
        body = {
            "payee": {"msisdn": national, "wallet_type": "NORMAL"},
            "reference": "MizaniPayout1",
            "pin": pin if pin is not None else encrypt_pin(airtel_rail.LOCAL_AIRTEL_PIN),
            "transaction": {"amount": amount, "id": tx_id or f"po_{uuid.uuid4().hex[:12]}", "type": "B2C"},
        }
        body.update(extra)
        return self.session.post(
            f"{self.base}/standard/v1/disbursements/", json=body, headers=headers or self.headers(route), timeout=timeout
        )

    def enquire(self, tx_id, route=UG):
        return self.session.get(f"{self.base}/standard/v1/disbursements/{tx_id}", headers=self.headers(route), timeout=5)

    def kyc(self, national, route=UG):
        return self.session.get(f"{self.base}/standard/v1/users/{national}", headers=self.headers(route), timeout=5)

    def wait_callbacks(self, count, timeout=5.0):
        deadline = time.monotonic() + timeout
        while len(self.callbacks) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.callbacks


def encrypt_pin(pin: str) -> str:
    key = serialization.load_pem_public_key(airtel_rail.LOCAL_AIRTEL_PIN_PUBLIC_KEY.encode())
    return base64.b64encode(key.encrypt(pin.encode(), padding.PKCS1v15())).decode()


@pytest.fixture
def world():
    with contextlib.ExitStack() as stack:
        yield World().start(stack)


def tx_of(response):
    assert response.status_code == 200, response.text
    return response.json()["data"]["transaction"], response.json()["status"]


# -- token ------------------------------------------------------------------------------

def test_the_token_is_airtels_shape_and_wrong_credentials_are_401(world):
    good = world.token()
    assert good.status_code == 200
    body = good.json()
    assert set(body) == {"access_token", "expires_in", "token_type"}
    assert body["expires_in"] == "180" and body["token_type"] == "bearer"
    bad = world.token(client_secret="nope")
    assert bad.status_code == 401
    assert bad.json() == {"error": "invalid_client", "error_description": "Invalid client authentication"}


def test_a_missing_unknown_or_expired_bearer_is_401(world):
    url = f"{world.base}/standard/v1/disbursements/anything"
    for headers in ({**UG}, {**UG, "Authorization": "Bearer not-a-token"}):
        response = world.session.get(url, headers=headers, timeout=5)
        assert response.status_code == 401
        assert response.json()["status"]["result_code"] == "ROUTER001"
        assert response.json()["status"]["success"] is False
    token = world.token().json()["access_token"]
    with world.airtel._lock:
        world.airtel.tokens[token] = time.monotonic() - 1  # 180 s have passed
    assert world.session.get(url, headers=world.headers(token=token), timeout=5).status_code == 401
    fresh = world.token().json()["access_token"]
    assert world.session.post(f"{world.base}/sandbox/faults/airtel", json={"expire_tokens": True}, timeout=5).ok
    assert world.session.get(url, headers=world.headers(token=fresh), timeout=5).status_code == 401


def test_country_and_currency_headers_are_checked(world):
    token = world.token().json()["access_token"]
    url = f"{world.base}/standard/v1/users/{PAID_NATIONAL}"
    auth = {"Authorization": f"Bearer {token}"}
    assert world.session.get(url, headers={**auth, "X-Country": "UG"}, timeout=5).json()["status"]["result_code"] == "ROUTER003"
    wrong_pair = world.session.get(url, headers={**auth, "X-Country": "UG", "X-Currency": "KES"}, timeout=5)
    assert wrong_pair.status_code == 400
    assert wrong_pair.json()["status"]["result_code"] == "ROUTER112"
    assert wrong_pair.json()["status"]["message"] == "Invalid currency provided."
    unknown = world.session.get(url, headers={**auth, "X-Country": "GH", "X-Currency": "GHS"}, timeout=5)
    assert unknown.json()["status"]["result_code"] == "ROUTER006"
    for country, currency in (("CD", "USD"), ("CD", "CDF"), ("ZM", "ZMW"), ("MW", "MWK"), ("TZ", "TZS"), ("KE", "KES")):
        ok = world.session.get(url, headers={**auth, "X-Country": country, "X-Currency": currency}, timeout=5)
        assert ok.json()["status"]["success"] is True, (country, currency)


# -- disbursements --------------------------------------------------------------------

def test_an_ordinary_number_is_paid_at_once_and_credited_by_e164_number(world):
    tx, status = tx_of(world.disburse(tx_id="po_paid_1", amount=5000))
    assert tx["id"] == "po_paid_1" and tx["status"] == "TS"
    assert tx["airtel_money_id"].startswith("MP") and tx["reference_id"]
    assert status == {
        "code": "200",
        "message": status["message"],
        "response_code": "DP00900001001",
        "result_code": "ESB000010",
        "success": True,
    }
    wallet = world.session.get(f"{world.base}/sandbox/wallets/airtel_money/256{PAID_NATIONAL}", timeout=5).json()
    assert wallet["msisdn"] == f"256{PAID_NATIONAL}"
    assert wallet["balances"] == [{"amount": 5000, "currency": "UGX"}]
    assert [t["status"] for t in wallet["transactions"]] == ["TS"]


@pytest.mark.parametrize(
    "e164,route,status,code",
    [
        (airtel_sim.FAILS, UG, "TF", "DP00900001005"),
        (airtel_sim.INACTIVE, RW, "TF", "DP00900001010"),
        (airtel_sim.UNREGISTERED, UG, "TF", "DP00900001012"),
        (airtel_sim.PENDING, UG, "TIP", "DP00900001006"),
    ],
)
def test_each_test_number_answers_as_documented(world, e164, route, status, code):
    national = e164[3:]
    tx, answer = tx_of(world.disburse(national=national, route=route, tx_id=f"po_{national}"))
    assert (tx["status"], answer["response_code"]) == (status, code)
    assert answer["success"] is (status == "TIP")
    assert tx["airtel_money_id"] == ""
    enquiry, enquiry_status = tx_of(world.enquire(f"po_{national}", route=route))
    assert enquiry["status"] == status and enquiry_status["response_code"] == "DP00900001001"
    wallet = world.session.get(f"{world.base}/sandbox/wallets/airtel_money/{e164}", timeout=5).json()
    assert wallet["balances"] == []


def test_the_pending_number_stays_tip_until_settled_by_hand(world):
    national = airtel_sim.PENDING[3:]
    tx_of(world.disburse(national=national, tx_id="po_stuck"))
    assert tx_of(world.enquire("po_stuck"))[0]["status"] == "TIP"
    settled = world.session.post(f"{world.base}/sandbox/airtel/transactions/po_stuck/settle", json={"status": "TS"}, timeout=5)
    assert settled.status_code == 200
    tx, _ = tx_of(world.enquire("po_stuck"))
    assert tx["status"] == "TS" and tx["airtel_money_id"].startswith("MP")
    missing = world.session.post(f"{world.base}/sandbox/airtel/transactions/nope/settle", json={"status": "TF"}, timeout=5)
    assert missing.status_code == 404


def test_the_timeout_number_answers_late_and_is_paid_although_the_client_gave_up(world):
    assert world.session.post(f"{world.base}/sandbox/faults/airtel", json={"timeout_delay_ms": 600}, timeout=5).ok
    headers = world.headers()
    with pytest.raises(requests.exceptions.ReadTimeout):
        world.disburse(national=airtel_sim.TIMES_OUT[3:], tx_id="po_slow", headers=headers, timeout=0.2)
    deadline = time.monotonic() + 5
    tx = tx_of(world.enquire("po_slow"))[0]
    while tx["status"] != "TS" and time.monotonic() < deadline:
        time.sleep(0.05)
        tx = tx_of(world.enquire("po_slow"))[0]
    assert tx["status"] == "TS"
    wallet = world.session.get(f"{world.base}/sandbox/wallets/airtel_money/{airtel_sim.TIMES_OUT}", timeout=5).json()
    assert wallet["balances"] == [{"amount": 5000, "currency": "UGX"}]


def test_the_ambiguous_number_answers_ta_and_the_enquiry_says_ts(world):
    tx, status = tx_of(world.disburse(national=airtel_sim.AMBIGUOUS[3:], tx_id="po_ambiguous"))
    assert (tx["status"], status["response_code"], status["success"]) == ("TA", "DP00900001000", False)
    enquiry, _ = tx_of(world.enquire("po_ambiguous"))
    assert enquiry["status"] == "TS" and enquiry["airtel_money_id"].startswith("MP")


def test_a_repeated_transaction_id_pays_nothing_more(world):
    tx_of(world.disburse(tx_id="po_twice", amount=5000))
    again = world.disburse(tx_id="po_twice", amount=5000)
    assert again.status_code == 200
    assert again.json()["data"] == {}
    assert again.json()["status"]["response_code"] == "DP00900001017"
    assert again.json()["status"]["success"] is False
    wallet = world.session.get(f"{world.base}/sandbox/wallets/airtel_money/256{PAID_NATIONAL}", timeout=5).json()
    assert wallet["balances"] == [{"amount": 5000, "currency": "UGX"}]
    assert tx_of(world.enquire("po_twice"))[0]["status"] == "TS"


def test_an_unknown_transaction_is_not_found(world):
    response = world.enquire("po_never_sent")
    assert response.status_code == 200
    assert response.json() == {
        "data": {},
        "status": {
            "code": "200",
            "message": "Transaction not found",
            "response_code": "DP00900001015",
            "result_code": "ESB000045",
            "success": False,
        },
    }


def test_amounts_and_numbers_are_validated(world):
    cases = [
        (dict(amount=100.5), "DP00900001004"),  # UGX has no decimals
        (dict(amount=-5), "DP00900001004"),
        (dict(amount=0), "DP00900001004"),
        (dict(amount="abc"), "DP00900001004"),
        (dict(national="0701234567"), "DP00900001012"),  # leading 0
        (dict(national="256701234567"), "DP00900001012"),  # country code left in
    ]
    for i, (kwargs, code) in enumerate(cases):
        tx, status = tx_of(world.disburse(tx_id=f"po_bad_{i}", **kwargs))
        assert (tx["status"], status["response_code"], status["success"]) == ("TF", code, False), kwargs
    kes = world.disburse(national="712345678", amount=150.25, route={"X-Country": "KE", "X-Currency": "KES"})
    assert tx_of(kes)[0]["status"] == "TS"
    wallet = world.session.get(f"{world.base}/sandbox/wallets/airtel_money/254712345678", timeout=5).json()
    assert wallet["balances"] == [{"amount": 15025, "currency": "KES"}]
    bad_reference = world.disburse(reference="no spaces allowed")
    assert bad_reference.status_code == 400 and bad_reference.json()["status"]["result_code"] == "ESB000008"


def test_a_wrong_pin_is_router115_and_an_undecryptable_one_router116_and_nothing_is_made(world):
    wrong = world.disburse(tx_id="po_pin", pin=encrypt_pin("0000"))
    assert wrong.status_code == 400
    assert wrong.json()["status"]["result_code"] == "ROUTER115" and wrong.json()["status"]["success"] is False
    for garbage in ("not base64!", base64.b64encode(b"short").decode(), base64.b64encode(os.urandom(256)).decode()):
        response = world.disburse(tx_id="po_pin", pin=garbage)
        assert response.status_code == 400
        assert response.json()["status"]["result_code"] == "ROUTER116", garbage
    assert world.enquire("po_pin").json()["status"]["response_code"] == "DP00900001015"
    assert tx_of(world.disburse(tx_id="po_pin"))[0]["status"] == "TS"  # the right PIN: the id is still free


def test_faults_before_and_after_processing(world):
    faults = f"{world.base}/sandbox/faults/airtel"
    world.session.post(faults, json={"error_before_processing": 1, "error_after_success": 1}, timeout=5)
    assert world.disburse(tx_id="po_f1").status_code == 500
    assert world.enquire("po_f1").json()["status"]["response_code"] == "DP00900001015"
    assert world.disburse(tx_id="po_f1").status_code == 500  # made, then a 500
    assert tx_of(world.enquire("po_f1"))[0]["status"] == "TS"
    world.session.post(faults, json={"insufficient_funds": 1, "status_error": 1}, timeout=5)
    tx, status = tx_of(world.disburse(tx_id="po_f2"))
    assert (tx["status"], status["response_code"]) == ("TF", "DP00900001007")
    assert world.enquire("po_f2").status_code == 500
    assert world.session.get(faults, timeout=5).json()["status_error"] == 0
    assert world.session.post(faults, json={"nonsense": 3}, timeout=5).status_code == 400


# -- KYC ------------------------------------------------------------------------------------

def test_kyc_named_unnamed_barred_and_unknown(world):
    unnamed = world.kyc(PAID_NATIONAL)
    assert unnamed.status_code == 200
    assert unnamed.json() == {
        "data": {
            "first_name": "",
            "last_name": "",
            "msisdn": PAID_NATIONAL,
            "grade": "SUBS",
            "is_barred": False,
            "is_pin_set": True,
            "reg_status": "SUBS",
            "registration": {"status": "SUBS"},
        },
        "status": {
            "code": "200",
            "message": "CALL_SUCCESS",
            "result_code": "ESB000010",
            "response_code": "DP02200000001",
            "success": True,
        },
    }
    named = world.session.post(
        f"{world.base}/sandbox/wallets/airtel_money/256{PAID_NATIONAL}", json={"name": "Aline  Uwase Mukamana"}, timeout=5
    )
    assert named.json() == {"msisdn": f"256{PAID_NATIONAL}", "name": "Aline Uwase Mukamana"}
    data = world.kyc(PAID_NATIONAL).json()["data"]
    assert (data["first_name"], data["last_name"]) == ("Aline", "Uwase Mukamana")
    assert world.kyc(PAID_NATIONAL, route={"X-Country": "KE", "X-Currency": "KES"}).json()["data"]["first_name"] == ""

    barred = world.kyc(airtel_sim.INACTIVE[3:], route=RW).json()["data"]
    assert barred["is_barred"] is True and barred["reg_status"] == "BARRED"

    unknown = world.kyc(airtel_sim.UNREGISTERED[3:])
    assert unknown.status_code == 200
    assert unknown.json() == {
        "data": {},
        "status": {
            "code": "200",
            "message": "Invalid MSISDN provided as input",
            "response_code": "DP02200000002",
            "result_code": "ESB000010",
            "success": False,
        },
    }


# -- callbacks, statement, reset ---------------------------------------------------------

def test_final_transactions_are_called_back_once_to_the_configured_url(world):
    tx, _ = tx_of(world.disburse(tx_id="po_cb_ok"))
    tx_of(world.disburse(national=airtel_sim.FAILS[3:], tx_id="po_cb_fail"))
    tx_of(world.disburse(national=airtel_sim.PENDING[3:], tx_id="po_cb_pending"))
    bodies = world.wait_callbacks(2)
    world.airtel.callbacks.wait()
    by_id = {b["transaction"]["id"]: b["transaction"] for b in bodies}
    assert set(by_id) == {"po_cb_ok", "po_cb_fail"}
    assert by_id["po_cb_ok"]["status_code"] == "TS"
    assert by_id["po_cb_ok"]["airtel_money_id"] == tx["airtel_money_id"]
    assert by_id["po_cb_fail"]["status_code"] == "TF"
    assert set(by_id["po_cb_ok"]) == {"id", "message", "status_code", "airtel_money_id"}
    assert all(d.status == 200 for d in world.airtel.callbacks.deliveries)


def test_lost_and_duplicated_callbacks(world):
    faults = f"{world.base}/sandbox/faults/airtel"
    world.session.post(faults, json={"lose_callback": 1}, timeout=5)
    tx_of(world.disburse(tx_id="po_lost"))
    world.airtel.callbacks.wait()
    assert world.callbacks == [] and len(world.airtel.callbacks.lost) == 1
    world.session.post(faults, json={"duplicate_callback": 1}, timeout=5)
    tx_of(world.disburse(tx_id="po_dup"))
    bodies = world.wait_callbacks(2)
    assert [b["transaction"]["id"] for b in bodies] == ["po_dup", "po_dup"]


def test_the_callback_url_defaults_to_the_api_webhook():
    sim = airtel_sim.make(SimulatorContext(api_base_url="http://127.0.0.1:8000", sandbox_base_url="", env={}))
    assert sim.callback_url == "http://127.0.0.1:8000/v1/webhooks/rails/airtel_money"


def test_the_statement_lists_final_transactions_one_a_line(world):
    tx_of(world.disburse(tx_id="po_s1", amount=5000))
    tx_of(world.disburse(national=airtel_sim.FAILS[3:], tx_id="po_s2", amount=700))
    tx_of(world.disburse(national=airtel_sim.PENDING[3:], tx_id="po_s3"))
    response = world.session.get(f"{world.base}/sandbox/statements/airtel_money", timeout=5)
    assert response.headers["Content-Type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == "transaction_id,reference,airtel_money_id,msisdn,amount,currency,status,message,completed_at"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["transaction_id"], r["msisdn"], r["amount"], r["currency"], r["status"]) for r in rows] == [
        ("po_s1", f"256{PAID_NATIONAL}", "5000", "UGX", "TS"),
        ("po_s2", airtel_sim.FAILS, "700", "UGX", "TF"),
    ]
    assert rows[0]["airtel_money_id"].startswith("MP") and rows[1]["airtel_money_id"] == ""
    assert all(r["completed_at"].endswith("Z") and r["reference"] == "MizaniPayout1" for r in rows)


def test_reset_forgets_transactions_names_and_tokens(world):
    tx_of(world.disburse(tx_id="po_r"))
    world.session.post(f"{world.base}/sandbox/wallets/airtel_money/256{PAID_NATIONAL}", json={"name": "A B"}, timeout=5)
    headers = world.headers()
    world.airtel.reset()
    assert world.session.get(f"{world.base}/standard/v1/disbursements/po_r", headers=headers, timeout=5).status_code == 401
    assert world.enquire("po_r").json()["status"]["response_code"] == "DP00900001015"
    assert world.kyc(PAID_NATIONAL).json()["data"]["first_name"] == ""


# -- MTN account holders and names; M-Pesa names ---------------------------------------------

def momo_headers(world):
    auth = base64.b64encode(f"{rail_config.LOCAL_MOMO_API_USER}:{rail_config.LOCAL_MOMO_API_KEY}".encode()).decode()
    key = {"Ocp-Apim-Subscription-Key": rail_config.LOCAL_MOMO_SUBSCRIPTION_KEY}
    token = world.session.post(
        f"{world.base}/disbursement/token/", headers={**key, "Authorization": f"Basic {auth}"}, timeout=5
    ).json()["access_token"]
    return {**key, "Authorization": f"Bearer {token}", "X-Target-Environment": rail_config.LOCAL_MOMO_TARGET_ENVIRONMENT}


def test_mtn_account_holder_active(world):
    headers = momo_headers(world)
    url = f"{world.base}/disbursement/v1_0/accountholder"
    assert world.session.get(f"{url}/msisdn/46733123455/active", headers=headers, timeout=5).json() == {"result": False}
    assert world.session.get(f"{url}/msisdn/46733000001/active", headers=headers, timeout=5).json() == {"result": True}
    assert world.session.get(f"{url}/msisdn/46733123450/active", headers=headers, timeout=5).json() == {"result": True}
    assert world.session.get(f"{url}/MSISDN/46733000001/active", headers=headers, timeout=5).status_code == 400
    assert world.session.get(f"{url}/msisdn/46733000001/active", timeout=5).status_code == 401


def test_mtn_basic_user_info_names_come_from_the_sandbox(world):
    headers = momo_headers(world)
    url = f"{world.base}/disbursement/v1_0/accountholder/msisdn/46733000001/basicuserinfo"
    unnamed = world.session.get(url, headers=headers, timeout=5)
    assert unnamed.status_code == 200
    assert set(unnamed.json()) == {"given_name", "family_name", "birthdate", "locale", "gender", "status"}
    assert (unnamed.json()["given_name"], unnamed.json()["family_name"]) == ("", "")
    named = world.session.post(f"{world.base}/sandbox/wallets/mtn_momo/46733000001", json={"name": "Jean Paul Habimana"}, timeout=5)
    assert named.json() == {"msisdn": "46733000001", "name": "Jean Paul Habimana"}
    info = world.session.get(url, headers=headers, timeout=5).json()
    assert (info["given_name"], info["family_name"], info["status"]) == ("Jean", "Paul Habimana", "ACTIVE")
    inactive = f"{world.base}/disbursement/v1_0/accountholder/msisdn/46733123455/basicuserinfo"
    assert world.session.get(inactive, headers=headers, timeout=5).json()["status"] == "INACTIVE"
    assert world.session.post(f"{world.base}/sandbox/wallets/mtn_momo/46733000001", json={}, timeout=5).status_code == 400
    world.momo.reset()
    headers = momo_headers(world)
    assert world.session.get(url, headers=headers, timeout=5).json()["given_name"] == ""


def test_mpesa_name_appears_in_the_b2c_result(world):
    named = world.session.post(f"{world.base}/sandbox/wallets/mpesa/254712345678", json={"name": "Wanjiku Kamau"}, timeout=5)
    assert named.json() == {"msisdn": "254712345678", "name": "Wanjiku Kamau"}
    token_auth = base64.b64encode(
        f"{rail_config.LOCAL_MPESA_CONSUMER_KEY}:{rail_config.LOCAL_MPESA_CONSUMER_SECRET}".encode()
    ).decode()
    token = world.session.get(
        f"{world.base}/oauth/v1/generate?grant_type=client_credentials", headers={"Authorization": f"Basic {token_auth}"}, timeout=5
    ).json()["access_token"]

    def pay(party_b, originator):
        body = {
            "OriginatorConversationID": originator,
            "InitiatorName": rail_config.LOCAL_MPESA_INITIATOR_NAME,
            "SecurityCredential": rail_config.LOCAL_MPESA_SECURITY_CREDENTIAL,
            "CommandID": "BusinessPayment",
            "Amount": 100,
            "PartyA": rail_config.LOCAL_MPESA_SHORTCODE,
            "PartyB": party_b,
            "Remarks": "payout",
            "QueueTimeOutURL": "http://127.0.0.1:9/timeout",
            "ResultURL": "http://127.0.0.1:9/result",
        }
        response = world.session.post(
            f"{world.base}/mpesa/b2c/v3/paymentrequest", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert response.json()["ResponseCode"] == "0"
        with world.mpesa._lock:
            params = world.mpesa.payments[originator].result_body["Result"]["ResultParameters"]["ResultParameter"]
        return {p["Key"]: p["Value"] for p in params}

    assert pay("254712345678", "oc-named")["ReceiverPartyPublicName"] == "254712345678 - Wanjiku Kamau"
    assert pay("254712345679", "oc-default")["ReceiverPartyPublicName"] == "254712345679"  # no holder name set
    world.mpesa.reset()
    assert world.mpesa.names == {}


def test_the_rail_knows_every_number_the_simulator_scripts():
    """Several test sellers may register the simulator's scripted numbers (local stage): the rail's list is the simulator's."""
    from chalicelib import rails
    from sandbox.simulators import airtel as simulator

    scripted = {simulator.FAILS, simulator.TIMES_OUT, simulator.PENDING, simulator.AMBIGUOUS, simulator.INACTIVE}
    assert rails.rail("airtel_money").test_numbers == scripted
