"""Airtel Money (Airtel Africa Open API) simulator: OAuth2 token, disbursement, enquiry, KYC, callbacks.

Speaks the Airtel Africa Open API wire format on its paths (``/auth/oauth2/token``,
``/standard/v1/disbursements/``, ``/standard/v1/disbursements/{id}``,
``/standard/v1/users/{msisdn}``). Credentials are ``MIZANI_AIRTEL_CLIENT_ID`` /
``MIZANI_AIRTEL_CLIENT_SECRET`` and the disbursement PIN ``MIZANI_AIRTEL_PIN`` of the
stage's environment (``ctx.env``), defaulting to the local-sandbox constants of
``chalicelib.payouts.rails.config``. Tokens live 180 s (``expires_in: "180"``, as Airtel).

Every ``/standard`` call needs ``Authorization: Bearer <token>`` (else 401 with a
``ROUTER001`` status), ``X-Country`` and ``X-Currency``. Served: UG/UGX, KE/KES, TZ/TZS,
RW/RWF, ZM/ZMW, MW/MWK, CD/CDF (and CD/USD). A missing header answers 400 ``ROUTER003``,
an unserved country 400 ``ROUTER006``, a currency not paid in that country 400
``ROUTER112``. Wallet numbers on the wire are NATIONAL numbers, without the country code
and without a leading 0 (Uganda ``256700000010`` is sent as ``700000010`` with
``X-Country: UG``); the simulator prefixes the country calling code (UG 256, KE 254,
TZ 255, RW 250, ZM 260, MW 265, CD 243) and keys its wallets by those E.164 digits.
A national number that is not 9 digits (or starts with 0) is an invalid mobile number.

``POST /standard/v1/disbursements/`` body ``{"payee": {"msisdn", "wallet_type": "NORMAL"},
"reference": "<4-64 alphanumeric>", "pin": "<Base64 RSA PKCS#1 v1.5 ciphertext>",
"transaction": {"amount": <number, major units>, "id": "<ours>", "type": "B2C"}}``.
The PIN is decrypted with the simulator's private key (``airtel_keys.py``) and compared
with ``MIZANI_AIRTEL_PIN``. Gateway (ROUTER) errors are HTTP 400 and record nothing:
an undecryptable PIN ``ROUTER116``, a wrong PIN ``ROUTER115``, a missing PIN ``ROUTER003``
(``{"status": {"code": "400", "message", "result_code": "ROUTER115", "response_code":
"ROUTER115", "success": false}}``). A malformed body (no ``transaction.id``, a bad
``reference``, an unknown ``wallet_type``/``type``) is 400 ``ESB000008``, recording nothing.
Everything else is HTTP 200 ``{"data": {"transaction": {"reference_id", "airtel_money_id",
"id", "status": "TS" | "TF" | "TIP" | "TA"}}, "status": {"code": "200", "message",
"response_code", "result_code", "success"}}`` where ``success`` is true for TS and TIP,
false otherwise, and ``response_code`` is one of:

==============  ===================================================================
DP00900001001   success (TS)
DP00900001000   ambiguous (TA): enquire
DP00900001006   in progress (TIP)
DP00900001005   transaction failed (TF)
DP00900001007   insufficient funds (TF; fault ``insufficient_funds``)
DP00900001010   payee not allowed to receive: barred wallet (TF)
DP00900001012   invalid mobile number (TF): malformed national number (not recorded),
                or a number that is not an Airtel Money user (recorded, final)
DP00900001004   invalid amount (TF, not recorded): not a positive number, or more
                decimals than the currency has (UGX, RWF: whole units)
DP00900001017   duplicate transaction id: ``{"data": {}, "status": {..., "result_code":
                "ESB000041", "success": false}}``. No transaction object (so no TF to
                misread): the earlier transaction is untouched, nothing more is paid;
                enquire it by id
==============  ===================================================================

``airtel_money_id`` (e.g. ``MP261201.1234.A00001``) is given only when a transfer
succeeds; ``reference_id`` (Airtel's internal id) is a counter. Both are deterministic
after ``reset()`` up to the clock.

Test numbers (E.164 digits; send them as national numbers with their country):

==============  ==========================================================
256700000010    fails: TF, DP00900001005
256700000011    times out: the POST answers only after ``timeout_delay_ms``
                (default 1000 ms); the transfer then succeeds (TS): paid
                although a client with a shorter read timeout gave up, so
                "timeout is unknown, enquire". A GET meanwhile says TIP.
256700000012    stays pending: TIP until settled by hand
256700000013    ambiguous: the POST answers TA / DP00900001000, the transfer is
                in fact paid and the GET says TS
250730000001    inactive (barred, API.md): KYC ``is_barred: true``,
                ``reg_status: "BARRED"``; a disbursement fails TF DP00900001010
256700000099    not registered: KYC answers DP02200000002 "Invalid MSISDN provided
                as input"; a disbursement fails TF DP00900001012
anything else   TS at once; the wallet is credited
==============  ==========================================================

``GET /standard/v1/disbursements/{id}`` (query string, e.g. ``transactionType``,
ignored) -> 200 ``{"data": {"transaction": {"id", "airtel_money_id", "message",
"status"}}, "status": {..., "response_code": "DP00900001001", "success": true}}`` for a
known id (whatever its status), else 200 ``{"data": {}, "status": {"code": "200",
"message": "Transaction not found", "response_code": "DP00900001015", "result_code":
"ESB000045", "success": false}}``. Ids are global (not scoped by ``X-Country``).

``GET /standard/v1/users/{msisdn}`` (KYC) -> ``{"data": {"first_name", "last_name",
"msisdn", "grade": "SUBS", "is_barred", "is_pin_set": true, "reg_status",
"registration": {"status"}}, "status": {..., "response_code": "DP02200000001"}}``.
A wallet reports empty names ("") unless ``POST /sandbox/wallets/airtel_money/<msisdn>``
``{"name": "Given Family"}`` set one (first word ``first_name``, the rest ``last_name``;
answers ``{"msisdn", "name"}``; an empty name clears it).

Callbacks: when a transaction becomes final (TS/TF), ``{"transaction": {"id", "message",
"status_code": "TS" | "TF", "airtel_money_id"}}`` is POSTed once, never retried, to
``MIZANI_AIRTEL_CALLBACK_URL`` (``ctx.env``), default ``<api_base_url>/v1/webhooks/rails/airtel_money`` (the rail registry's generic callback route)
(Airtel configures one callback URL per application, not per request).

A stuck transaction can be settled by hand: ``POST /sandbox/airtel/transactions/<id>/settle``
``{"status": "TS" | "TF"}``.

Faults, ``POST /sandbox/faults/airtel`` with JSON (``GET`` shows, ``DELETE`` clears): the
MoMo simulator's document (``latency_ms``, ``timeout_delay_ms``, ``error_after_success``,
``error_before_processing``, ``lose_callback``, ``duplicate_callback``, ``status_error``
(next enquiry answers 500), ``token_error``, ``"expire_tokens": true``) plus the one-shot
``insufficient_funds`` (the next disbursement fails TF DP00900001007).

Sandbox views: ``GET /sandbox/wallets/airtel_money/<msisdn>`` (E.164 digits) -> ``{"msisdn",
"balances": [Money...], "transactions": [...]}``; ``GET /sandbox/statements/airtel_money``
-> CSV ``transaction_id,reference,airtel_money_id,msisdn,amount,currency,status,message,
completed_at``: final transactions only, one a line, msisdn in E.164 digits, amount in major
units as sent on the wire, status TS/TF, completed_at RFC 3339 UTC. Airtel publishes no
statement file format, so this CSV uses the API's own field names.
"""
from __future__ import annotations

import base64
import binascii
import itertools
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from flask import Blueprint, jsonify, request

from chalicelib.errors import ValidationError
from chalicelib.money import Money
from chalicelib.payouts.rails import airtel as airtel_rail
from sandbox.simulators.airtel_keys import LOCAL_AIRTEL_PIN_PRIVATE_KEY
from sandbox.simulators.momo import (
    CallbackSender,
    Faults,
    csv_response,
    env_or_local,
    money_json,
    add_wallet_routes,
    rfc3339,
    split_name,
    utc_now,
    wallet_view,
)

FAILS = "256700000010"
TIMES_OUT = "256700000011"
PENDING = "256700000012"
AMBIGUOUS = "256700000013"
INACTIVE = "250730000001"
UNREGISTERED = "256700000099"

DEFAULT_TIMEOUT_DELAY_MS = 1000
TOKEN_TTL_SECONDS = 180
NATIONAL_DIGITS = 9

#: X-Country -> (calling code, currencies paid there).
COUNTRIES = {
    "UG": ("256", ("UGX",)),
    "KE": ("254", ("KES",)),
    "TZ": ("255", ("TZS",)),
    "RW": ("250", ("RWF",)),
    "ZM": ("260", ("ZMW",)),
    "MW": ("265", ("MWK",)),
    "CD": ("243", ("CDF", "USD")),
}

SUCCESS = "DP00900001001"
AMBIGUOUS_CODE = "DP00900001000"
IN_PROGRESS = "DP00900001006"
FAILED = "DP00900001005"
INSUFFICIENT_FUNDS = "DP00900001007"
NOT_ALLOWED = "DP00900001010"
INVALID_MSISDN = "DP00900001012"
INVALID_AMOUNT = "DP00900001004"
DUPLICATE = "DP00900001017"
NOT_FOUND = "DP00900001015"

MESSAGES = {
    SUCCESS: "Transaction is successful.",
    AMBIGUOUS_CODE: "The transaction is still processing and is in ambiguous state. "
    "Please do the transaction enquiry to fetch the transaction status.",
    IN_PROGRESS: "Transaction is in progress.",
    FAILED: "Transaction failed.",
    INSUFFICIENT_FUNDS: "Insufficient funds in the disbursement wallet.",
    NOT_ALLOWED: "Payee is not allowed to receive money.",
    INVALID_MSISDN: "Invalid mobile number.",
    INVALID_AMOUNT: "Invalid amount.",
    DUPLICATE: "Duplicate transaction id.",
}

ROUTER_MESSAGES = {
    "ROUTER003": "Mandatory parameters are missing either in the header or body.",
    "ROUTER006": "Invalid country code provided.",
    "ROUTER112": "Invalid currency provided.",
    "ROUTER115": "Pin you have entered is incorrect.",
    "ROUTER116": "The encrypted value of the pin is incorrect. Kindly re-check the encryption mechanism.",
}

_REFERENCE_RE = re.compile(r"^[A-Za-z0-9]{4,64}$")
_PIN_RE = re.compile(r"^\d{4,8}$")


class AirtelFaults(Faults):
    """The MoMo faults document plus ``insufficient_funds`` (one-shot)."""

    COUNTERS = Faults.COUNTERS + ("insufficient_funds",)


@dataclass
class AirtelTransaction:
    transaction_id: str
    reference: str
    reference_id: str
    msisdn: str  # E.164 digits
    national: str
    country: str
    money: Money
    amount: str  # as sent, major units
    status: str = "TIP"  # TIP | TS | TF
    response_code: str = IN_PROGRESS
    message: str = MESSAGES[IN_PROGRESS]
    airtel_money_id: str = ""
    created_at: datetime = field(default_factory=utc_now)
    completed_at: datetime | None = None

    @property
    def is_final(self) -> bool:
        return self.status in ("TS", "TF")


def _status(code: int, message: str, response_code: str, result_code: str, success: bool) -> dict:
    return {
        "code": str(code),
        "message": message,
        "response_code": response_code,
        "result_code": result_code,
        "success": success,
    }


def _router_error(result_code: str, http_status: int = 400):
    status = _status(http_status, ROUTER_MESSAGES[result_code], result_code, result_code, False)
    return jsonify({"status": status}), http_status


def _field_error(message: str):
    return jsonify({"status": _status(400, message, "ESB000008", "ESB000008", False)}), 400


def _server_error():
    return jsonify({"status": _status(500, "Something went wrong", "ESB000001", "ESB000001", False)}), 500


def _unauthorized():
    status = _status(401, "Unauthorized", "DP00900001013", "ROUTER001", False)
    return jsonify({"status": status}), 401


class AirtelSimulator:
    """State and routes of the Airtel Money simulator (see module doc)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.client_id = env_or_local(ctx, "MIZANI_AIRTEL_CLIENT_ID", airtel_rail.LOCAL_AIRTEL_CLIENT_ID)
        self.client_secret = env_or_local(ctx, "MIZANI_AIRTEL_CLIENT_SECRET", airtel_rail.LOCAL_AIRTEL_CLIENT_SECRET)
        self.pin = env_or_local(ctx, "MIZANI_AIRTEL_PIN", airtel_rail.LOCAL_AIRTEL_PIN)
        self.callback_url = env_or_local(
            ctx, "MIZANI_AIRTEL_CALLBACK_URL", f"{(ctx.api_base_url or '').rstrip('/')}/v1/webhooks/rails/airtel_money"
        )
        self.token_ttl_seconds = TOKEN_TTL_SECONDS
        self._private_key = serialization.load_pem_private_key(LOCAL_AIRTEL_PIN_PRIVATE_KEY.encode(), password=None)
        self.faults = AirtelFaults({"timeout_delay_ms": DEFAULT_TIMEOUT_DELAY_MS})
        self.callbacks = CallbackSender(self.faults, method="POST")
        self._lock = threading.RLock()
        self.blueprint = self._build_blueprint()
        self.reset()

    def reset(self) -> None:
        self.callbacks.reset()
        with self._lock:
            self.transactions: dict[str, AirtelTransaction] = {}
            self.names: dict[str, str] = {}
            self.tokens: dict[str, float] = {}
            self.tokens_issued = 0
            self._reference_ids = itertools.count(1)
            self._money_ids = itertools.count(1)
        self.faults.reset()

    # -- auth and headers ---------------------------------------------------------------
    def _check_bearer(self):
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        with self._lock:
            expires = self.tokens.get(token)
        if not token or expires is None or expires < time.monotonic():
            return _unauthorized()
        return None

    def _check_route(self):
        """``(error, (country, calling_code, currency))`` from X-Country / X-Currency."""
        country = (request.headers.get("X-Country") or "").strip().upper()
        currency = (request.headers.get("X-Currency") or "").strip().upper()
        if not country or not currency:
            return _router_error("ROUTER003"), None
        if country not in COUNTRIES:
            return _router_error("ROUTER006"), None
        calling_code, currencies = COUNTRIES[country]
        if currency not in currencies:
            return _router_error("ROUTER112"), None
        return None, (country, calling_code, currency)

    def _authorize(self):
        denied = self._check_bearer()
        if denied:
            return denied, None
        return self._check_route()

    def _check_pin(self, pin) -> str | None:
        """``None`` if the encrypted PIN is right, else the ROUTER code to answer."""
        if not isinstance(pin, str) or not pin.strip():
            return "ROUTER003"
        try:
            ciphertext = base64.b64decode(pin.strip(), validate=True)
            # OpenSSL may answer garbage with random bytes (implicit rejection) instead of
            # an error: a plaintext that is not a PIN of digits is undecryptable too.
            clear = self._private_key.decrypt(ciphertext, padding.PKCS1v15()).decode("ascii")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return "ROUTER116"
        if not _PIN_RE.fullmatch(clear):
            return "ROUTER116"
        return None if clear == self.pin else "ROUTER115"

    # -- helpers --------------------------------------------------------------------------
    def _money_id(self, moment: datetime) -> str:
        return f"MP{moment:%y%m%d}.{moment:%H%M}.A{next(self._money_ids):05d}"

    def _finish(self, tx: AirtelTransaction, status: str, response_code: str) -> None:
        """Make a transaction final (once): credit the wallet on TS, then fire its one callback."""
        with self._lock:
            if tx.is_final:
                return
            tx.completed_at = utc_now()
            tx.status = status
            tx.response_code = response_code
            if status == "TS":
                tx.airtel_money_id = self._money_id(tx.completed_at)
                tx.message = (
                    f"Paid {tx.money.currency} {tx.amount} to {tx.national}. Trans ID {tx.airtel_money_id}."
                )
            else:
                tx.message = MESSAGES.get(response_code, MESSAGES[FAILED])
            body = {
                "transaction": {
                    "id": tx.transaction_id,
                    "message": tx.message,
                    "status_code": tx.status,
                    "airtel_money_id": tx.airtel_money_id,
                }
            }
        self.callbacks.send(self.callback_url, body)

    def settle(self, transaction_id: str, status: str) -> AirtelTransaction | None:
        with self._lock:
            tx = self.transactions.get(transaction_id)
        if tx is not None:
            self._finish(tx, status, SUCCESS if status == "TS" else FAILED)
        return tx

    def wallet(self, msisdn: str) -> dict:
        with self._lock:
            rows = [
                (
                    t.money,
                    t.status == "TS",
                    {
                        "id": t.transaction_id,
                        "reference": t.reference,
                        "reference_id": t.reference_id,
                        "airtel_money_id": t.airtel_money_id,
                        "amount": money_json(t.money),
                        "status": t.status,
                        "date": rfc3339(t.completed_at or t.created_at),
                    },
                )
                for t in self.transactions.values()
                if t.msisdn == msisdn
            ]
        return wallet_view(msisdn, rows)

    @staticmethod
    def _national_ok(national: str) -> bool:
        return national.isdigit() and len(national) == NATIONAL_DIGITS and not national.startswith("0")

    @staticmethod
    def _disbursement_answer(tx_id: str, reference_id: str, airtel_money_id: str, status: str, response_code: str):
        success = status in ("TS", "TIP")
        message = MESSAGES[response_code]
        return jsonify({
            "data": {
                "transaction": {
                    "reference_id": reference_id,
                    "airtel_money_id": airtel_money_id,
                    "id": tx_id,
                    "status": status,
                }
            },
            "status": _status(200, message, response_code, "ESB000010", success),
        })

    @staticmethod
    def _duplicate_answer():
        """A repeated ``transaction.id``: no new transaction, so no transaction object (enquire the first)."""
        return jsonify({"data": {}, "status": _status(200, MESSAGES[DUPLICATE], DUPLICATE, "ESB000041", False)})

    # -- routes -----------------------------------------------------------------------------
    def _build_blueprint(self) -> Blueprint:
        bp = Blueprint("airtel", __name__)

        @bp.post("/auth/oauth2/token")
        def token():
            try:
                if self.faults.take("token_error"):
                    return _server_error()
                body = request.get_json(silent=True)
                if not isinstance(body, dict):
                    body = {}
                if body.get("grant_type") != "client_credentials":
                    return jsonify({
                        "error": "unsupported_grant_type",
                        "error_description": "The authorization grant type is not supported by the authorization server.",
                    }), 400
                if body.get("client_id") != self.client_id or body.get("client_secret") != self.client_secret:
                    return jsonify({"error": "invalid_client", "error_description": "Invalid client authentication"}), 401
                access_token = uuid.uuid4().hex
                with self._lock:
                    self.tokens[access_token] = time.monotonic() + self.token_ttl_seconds
                    self.tokens_issued += 1
                return jsonify({"access_token": access_token, "expires_in": str(self.token_ttl_seconds), "token_type": "bearer"})
            finally:
                self.faults.delay()

        @bp.post("/standard/v1/disbursements/", strict_slashes=False)
        def disburse():
            try:
                return self._disburse()
            finally:
                self.faults.delay()

        @bp.get("/standard/v1/disbursements/<transaction_id>")
        def enquiry(transaction_id):
            try:
                denied, _ = self._authorize()
                if denied:
                    return denied
                if self.faults.take("status_error"):
                    return _server_error()
                with self._lock:
                    tx = self.transactions.get(transaction_id)
                    if tx is None:
                        return jsonify({
                            "data": {},
                            "status": _status(200, "Transaction not found", NOT_FOUND, "ESB000045", False),
                        })
                    return jsonify({
                        "data": {
                            "transaction": {
                                "id": tx.transaction_id,
                                "airtel_money_id": tx.airtel_money_id,
                                "message": tx.message,
                                "status": tx.status,
                            }
                        },
                        "status": _status(200, "SUCCESS", SUCCESS, "ESB000010", True),
                    })
            finally:
                self.faults.delay()

        @bp.get("/standard/v1/users/<msisdn>")
        def kyc(msisdn):
            try:
                denied, route = self._authorize()
                if denied:
                    return denied
                _, calling_code, _ = route
                number = calling_code + msisdn
                if not self._national_ok(msisdn) or number == UNREGISTERED:
                    return jsonify({
                        "data": {},
                        "status": _status(200, "Invalid MSISDN provided as input", "DP02200000002", "ESB000010", False),
                    })
                with self._lock:
                    first, last = split_name(self.names.get(number, ""))
                barred = number == INACTIVE
                reg_status = "BARRED" if barred else "SUBS"
                return jsonify({
                    "data": {
                        "first_name": first,
                        "last_name": last,
                        "msisdn": msisdn,
                        "grade": "SUBS",
                        "is_barred": barred,
                        "is_pin_set": True,
                        "reg_status": reg_status,
                        "registration": {"status": reg_status},
                    },
                    "status": _status(200, "CALL_SUCCESS", "DP02200000001", "ESB000010", True),
                })
            finally:
                self.faults.delay()

        @bp.post("/sandbox/airtel/transactions/<transaction_id>/settle")
        def settle(transaction_id):
            body = request.get_json(silent=True) or {}
            status = str(body.get("status", "TS")).upper() if isinstance(body, dict) else ""
            if status not in ("TS", "TF"):
                return _field_error("status is TS or TF")
            tx = self.settle(transaction_id, status)
            if tx is None:
                return jsonify({"data": {}, "status": _status(404, "Transaction not found", NOT_FOUND, "ESB000045", False)}), 404
            with self._lock:
                return jsonify({
                    "data": {
                        "transaction": {
                            "id": tx.transaction_id,
                            "airtel_money_id": tx.airtel_money_id,
                            "message": tx.message,
                            "status": tx.status,
                        }
                    },
                    "status": _status(200, "SUCCESS", tx.response_code, "ESB000010", tx.status == "TS"),
                })

        @bp.route("/sandbox/faults/airtel", methods=["GET", "POST", "DELETE"])
        def faults():
            if request.method == "DELETE":
                self.faults.reset()
            elif request.method == "POST":
                try:
                    actions = self.faults.update(request.get_json(silent=True))
                except ValueError as err:
                    return _field_error(str(err))
                for action in actions:
                    if action != "expire_tokens":
                        return _field_error(f"unknown action {action!r}")
                    with self._lock:
                        self.tokens.clear()
            return jsonify(self.faults.snapshot())

        add_wallet_routes(bp, "airtel_money", self, _field_error)

        @bp.get("/sandbox/statements/airtel_money")
        def statement():
            with self._lock:
                final = sorted((t for t in self.transactions.values() if t.is_final), key=lambda t: t.completed_at)
                rows = [
                    [
                        t.transaction_id,
                        t.reference,
                        t.airtel_money_id,
                        t.msisdn,
                        t.amount,
                        t.money.currency,
                        t.status,
                        t.message,
                        rfc3339(t.completed_at),
                    ]
                    for t in final
                ]
            return csv_response(
                [
                    "transaction_id",
                    "reference",
                    "airtel_money_id",
                    "msisdn",
                    "amount",
                    "currency",
                    "status",
                    "message",
                    "completed_at",
                ],
                rows,
            )

        return bp

    def _disburse(self):
        denied, route = self._authorize()
        if denied:
            return denied
        country, calling_code, currency = route
        if self.faults.take("error_before_processing"):
            return _server_error()
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _field_error("the body must be a JSON object")
        payee = body.get("payee")
        transaction = body.get("transaction")
        if not isinstance(payee, dict) or not isinstance(transaction, dict):
            return _field_error("payee and transaction are mandatory objects")
        problem = self._check_pin(body.get("pin"))
        if problem:
            return _router_error(problem)
        tx_id = transaction.get("id")
        if isinstance(tx_id, bool) or not isinstance(tx_id, (str, int)) or not 1 <= len(str(tx_id).strip()) <= 100:
            return _field_error("transaction.id is mandatory (1 to 100 characters)")
        tx_id = str(tx_id).strip()
        reference = body.get("reference")
        if not isinstance(reference, str) or not _REFERENCE_RE.fullmatch(reference):
            return _field_error("reference must be 4 to 64 alphanumeric characters")
        if payee.get("wallet_type", "NORMAL") != "NORMAL":
            return _field_error("payee.wallet_type must be NORMAL")
        if transaction.get("type", "B2C") != "B2C":
            return _field_error("transaction.type must be B2C")

        with self._lock:
            if tx_id in self.transactions:
                return self._duplicate_answer()
            reference_id = str(10_000_000_000 + next(self._reference_ids))

        national = str(payee.get("msisdn") or "").strip()
        if not self._national_ok(national):
            return self._disbursement_answer(tx_id, reference_id, "", "TF", INVALID_MSISDN)
        amount = transaction.get("amount")
        try:
            if isinstance(amount, bool) or not isinstance(amount, (int, float, str)):
                raise ValidationError("invalid_amount", "amount must be a number")
            amount_text = str(amount).strip()
            money = Money.parse(amount_text, currency).require_positive()
        except ValidationError:
            return self._disbursement_answer(tx_id, reference_id, "", "TF", INVALID_AMOUNT)

        tx = AirtelTransaction(
            transaction_id=tx_id,
            reference=reference,
            reference_id=reference_id,
            msisdn=calling_code + national,
            national=national,
            country=country,
            money=money,
            amount=amount_text,
        )
        with self._lock:
            if tx_id in self.transactions:  # a concurrent twin got there first
                return self._duplicate_answer()
            self.transactions[tx_id] = tx

        answer_status, answer_code = None, None  # default: the transaction's own state
        number = tx.msisdn
        if self.faults.take("insufficient_funds"):
            self._finish(tx, "TF", INSUFFICIENT_FUNDS)
        elif number == FAILS:
            self._finish(tx, "TF", FAILED)
        elif number == INACTIVE:
            self._finish(tx, "TF", NOT_ALLOWED)
        elif number == UNREGISTERED:
            self._finish(tx, "TF", INVALID_MSISDN)
        elif number == TIMES_OUT:
            # Hold the answer: the client's read timeout fires first; the transfer then succeeds.
            time.sleep(self.faults.setting("timeout_delay_ms") / 1000.0)
            self._finish(tx, "TS", SUCCESS)
        elif number == PENDING:
            pass  # TIP until settled by hand
        elif number == AMBIGUOUS:
            self._finish(tx, "TS", SUCCESS)
            answer_status, answer_code = "TA", AMBIGUOUS_CODE
        else:
            self._finish(tx, "TS", SUCCESS)

        if self.faults.take("error_after_success"):
            return _server_error()
        with self._lock:
            if answer_status is None:
                answer_status, answer_code = tx.status, tx.response_code
            money_id = tx.airtel_money_id if answer_status == "TS" else ""
        return self._disbursement_answer(tx_id, reference_id, money_id, answer_status, answer_code)


def make(ctx) -> AirtelSimulator:
    """The simulator contract: an object with ``.blueprint`` and ``.reset()``."""
    return AirtelSimulator(ctx)
