"""MTN MoMo Disbursement API simulator (token, transfer, transfer status, one-shot callback).

Speaks MTN's wire format on MTN's paths, so ``MtnMomoRail`` runs unchanged
against it. Credentials are the ``MIZANI_MOMO_*`` values of the stage's
environment (``ctx.env``), defaulting to the local-sandbox constants.

MTN's sandbox test numbers (API.md), as this simulator plays them:

==============  ==========================================================
46733123450     fails: ``FAILED``, reason ``INTERNAL_PROCESSING_ERROR``
46733123451     rejected: ``FAILED``, reason ``APPROVAL_REJECTED``
46733123452     times out: the transfer is created ``PENDING`` and the POST
                answers only after ``timeout_delay_ms`` (default 1000 ms), by
                which time a client with a shorter read timeout has given up
                (its ``send`` says ``unknown``); the transfer then ends
                ``FAILED``/``EXPIRED``. A poll of ``status`` meanwhile says
                ``pending``, afterwards ``failed``: "timeout is unknown, poll".
                Tests set a short client timeout and a short delay, so they
                stay fast; the local sandbox (10 s client timeout) just sees a
                slow 202.
46733123453     stays ongoing: ``PENDING`` forever
46733123454     stays pending: ``PENDING`` forever
anything else   ``SUCCESSFUL`` at once; the wallet is credited
==============  ==========================================================

A stuck transfer can be settled by hand: ``POST /sandbox/momo/transfers/<referenceId>/settle``
``{"status": "SUCCESSFUL" | "FAILED", "reason"?}``.

Account holders (Disbursement product, same auth as the transfer endpoints):
``GET /disbursement/v1_0/accountholder/{accountHolderIdType}/{accountHolderId}/active``
-> 200 ``{"result": true | false}`` (MTN's ValidateAccountHolderStatus): ``false`` for
``46733123455`` (the inactive sandbox number, API.md) and for an ``email`` id (no
wallet here is keyed by e-mail), ``true`` for every other number; an id type other than
``msisdn``/``email`` (lower case, as MTN requires) or a number that is not 8-15 digits
answers 400 ``INVALID_PARAMETER``. ``GET /disbursement/v1_0/accountholder/msisdn/{msisdn}/basicuserinfo``
-> 200 with the fields MTN documents for GetBasicUserinfo: ``{"given_name", "family_name",
"birthdate", "locale", "gender", "status"}``. The names are those set with
``POST /sandbox/wallets/mtn_momo/<msisdn>`` ``{"name": "Given Family"}`` (first word
``given_name``, the rest ``family_name``; answers ``{"msisdn", "name"}``, an empty name
clears it); a wallet with no name set answers 200 with empty ``given_name`` and
``family_name``, meaning "no holder name" (a sandbox convention). ``birthdate``,
``locale`` and ``gender`` are fixed sandbox values; ``status`` is ``"ACTIVE"``, or
``"INACTIVE"`` for ``46733123455``. Transfers to ``46733123455`` still succeed (only the
account-holder endpoints play it).

A reused ``X-Reference-Id`` answers ``409 RESOURCE_ALREADY_EXIST`` (MTN's
documented behaviour) and pays nothing. If the transfer request carried
``X-Callback-Url``, the final status is PUT there once, never retried (as MTN).

``POST /sandbox/wallets/mtn_momo/<msisdn>/refuse`` ``{"transfers": n}``: the wallet's next ``n``
transfers end ``FAILED`` with MTN's reason ``PAYEE_NOT_ALLOWED_TO_RECEIVE`` (a wallet at its balance
limit), then it receives again; ``0`` clears it.

Faults, ``POST /sandbox/faults/momo`` with JSON (``GET`` shows, ``DELETE`` clears):
``latency_ms`` (every answer is delayed after the work is done, until cleared),
``timeout_delay_ms``, and one-shot counters: ``error_after_success`` (the next
transfer is made, the POST answers 500), ``error_before_processing`` (500, nothing
made), ``lose_callback``, ``duplicate_callback``, ``status_error`` (next GET
status answers 500), ``token_error`` (next token request answers 500); and
``"expire_tokens": true`` revokes every issued token now.

Sandbox views: ``GET /sandbox/wallets/<msisdn>`` (also ``/sandbox/wallets/mtn_momo/<msisdn>``)
-> ``{"msisdn", "balances": [Money...], "transactions": [...]}``;
``GET /sandbox/statements/mtn_momo`` -> CSV ``financialTransactionId,externalId,amount,
currency,status,date`` (final transfers only, amount in major units as on the
wire, date RFC 3339 UTC of completion), one record a line.
"""
from __future__ import annotations

import base64
import csv
import io
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from flask import Blueprint, Response, jsonify, request

from chalicelib.errors import ValidationError
from chalicelib.money import Money, check_currency
from chalicelib.payouts.rails import config as rail_config

FAILS = "46733123450"
REJECTED = "46733123451"
TIMES_OUT = "46733123452"
ONGOING = "46733123453"
PENDING = "46733123454"
INACTIVE = "46733123455"

DEFAULT_TIMEOUT_DELAY_MS = 1000
TOKEN_TTL_SECONDS = 3600


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# -- shared by the rail simulators ---------------------------------------------------------

class Faults:
    """Injectable faults: persistent settings (``latency_ms``...) and one-shot counters."""

    COUNTERS = (
        "error_after_success",
        "error_before_processing",
        "lose_callback",
        "duplicate_callback",
        "status_error",
        "token_error",
    )

    def __init__(self, settings: dict | None = None):
        self._defaults = {"latency_ms": 0, **(settings or {})}
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._settings = dict(self._defaults)
            self._counters = {name: 0 for name in self.COUNTERS}

    def update(self, body: dict) -> list[str]:
        """Apply a faults document; returns the names of one-shot actions requested (e.g. ``expire_tokens``)."""
        if not isinstance(body, dict):
            raise ValueError("the faults document must be a JSON object")
        actions = []
        with self._lock:
            for key, value in body.items():
                if key in self._counters or key in self._settings:
                    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                        raise ValueError(f"{key} must be a non-negative integer")
                    (self._counters if key in self._counters else self._settings)[key] = value
                elif isinstance(value, bool):
                    if value:
                        actions.append(key)
                else:
                    raise ValueError(f"unknown fault {key!r}")
        return actions

    def take(self, name: str) -> bool:
        """Consume one unit of a one-shot fault; True if it fired."""
        with self._lock:
            if self._counters.get(name, 0) > 0:
                self._counters[name] -= 1
                return True
            return False

    def setting(self, name: str) -> int:
        with self._lock:
            return int(self._settings.get(name, 0))

    def snapshot(self) -> dict:
        with self._lock:
            return {**self._settings, **self._counters}

    def delay(self) -> None:
        latency = self.setting("latency_ms")
        if latency:
            time.sleep(latency / 1000.0)


@dataclass
class Delivery:
    url: str
    body: dict
    status: int | None = None
    error: str | None = None


class CallbackSender:
    """Sends provider callbacks from background threads, once each (no retries), and logs them."""

    def __init__(self, faults: Faults, method: str = "POST", timeout_seconds: float = 5.0):
        self.faults = faults
        self.method = method
        self.timeout_seconds = timeout_seconds
        self.deliveries: list[Delivery] = []
        self.lost: list[Delivery] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def send(self, url: str | None, body: dict) -> None:
        if not url:
            return
        if self.faults.take("lose_callback"):
            with self._lock:
                self.lost.append(Delivery(url, body))
            return
        copies = 2 if self.faults.take("duplicate_callback") else 1
        thread = threading.Thread(target=self._deliver, args=(url, body, copies), daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _deliver(self, url: str, body: dict, copies: int) -> None:
        for _ in range(copies):
            delivery = Delivery(url, body)
            data = json.dumps(body).encode()
            req = urllib.request.Request(url, data=data, method=self.method, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_seconds) as response:
                    delivery.status = response.status
            except urllib.error.HTTPError as err:
                delivery.status = err.code
            except Exception as err:  # the provider does not care whether we listened
                delivery.error = str(err)
            with self._lock:
                self.deliveries.append(delivery)

    def wait(self, timeout: float = 5.0) -> None:
        """Join the callback threads started so far (tests)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def reset(self) -> None:
        self.wait(1.0)
        with self._lock:
            self.deliveries.clear()
            self.lost.clear()
            self._threads.clear()


def env_or_local(ctx, name: str, default: str) -> str:
    value = (getattr(ctx, "env", None) or {}).get(name) or ""
    return value if value and not value.startswith("arn:") else default


def money_json(money: Money) -> dict:
    return {"amount": money.minor, "currency": money.currency}


def wallet_view(msisdn: str, rows: list) -> dict:
    """``rows``: (Money, credited: bool, transaction dict)."""
    balances: dict[str, int] = {}
    for money, credited, _ in rows:
        if credited:
            balances[money.currency] = balances.get(money.currency, 0) + money.minor
    return {
        "msisdn": msisdn,
        "balances": [{"amount": v, "currency": k} for k, v in sorted(balances.items())],
        "transactions": [tx for _, _, tx in rows],
    }


def csv_response(header: list[str], rows: list[list]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([str(v).replace("\n", " ").replace("\r", " ") for v in row])
    return Response(out.getvalue(), mimetype="text/csv")


# -- the MTN simulator ---------------------------------------------------------------

@dataclass
class MomoTransfer:
    reference_id: str
    external_id: str
    money: Money
    amount: str  # as sent, major units
    msisdn: str
    payer_message: str
    payee_note: str
    callback_url: str | None
    status: str = "PENDING"
    reason: str | None = None
    financial_transaction_id: str | None = None
    created_at: datetime = field(default_factory=utc_now)
    completed_at: datetime | None = None

    def to_wire(self) -> dict:
        body = {
            "amount": self.amount,
            "currency": self.money.currency,
            "financialTransactionId": self.financial_transaction_id,
            "externalId": self.external_id,
            "payee": {"partyIdType": "MSISDN", "partyId": self.msisdn},
            "payerMessage": self.payer_message,
            "payeeNote": self.payee_note,
            "status": self.status,
        }
        if self.financial_transaction_id is None:
            del body["financialTransactionId"]
        if self.reason:
            body["reason"] = self.reason
        return body


def _error(status: int, code: str, message: str):
    return jsonify({"code": code, "message": message}), status


def split_name(name: str) -> tuple[str, str]:
    """``"Given Family Name"`` -> ``("Given", "Family Name")``; ``""`` -> ``("", "")``."""
    first, _, rest = (name or "").strip().partition(" ")
    return first, rest.strip()


def _parse_name_body(msisdn: str) -> tuple[str | None, str, str]:
    """``(problem, msisdn, name)`` of ``POST /sandbox/wallets/<rail>/<msisdn>`` ``{"name"}`` (this request)."""
    number = msisdn.lstrip("+")
    body = request.get_json(silent=True)
    name = body.get("name") if isinstance(body, dict) else None
    if not number.isdigit() or not 8 <= len(number) <= 15:
        return "msisdn must be 8 to 15 digits (E.164, no '+')", number, ""
    if not isinstance(name, str):
        return "name must be a string", number, ""
    return None, number, " ".join(name.split())


def add_wallet_routes(bp: Blueprint, rail: str, simulator, bad_request) -> None:
    """Every simulator's wallet view: ``GET /sandbox/wallets/<rail>/<msisdn>`` (what the provider says the
    wallet received: ``simulator.wallet``) and ``POST`` ``{"name"}`` (the holder name the provider reports,
    in ``simulator.names`` under ``simulator._lock``; an empty name clears it). ``bad_request(problem)`` is
    the provider's own 400."""

    def wallet(msisdn):
        return jsonify(simulator.wallet(msisdn.lstrip("+")))

    def set_wallet_name(msisdn):
        problem, number, name = _parse_name_body(msisdn)
        if problem:
            return bad_request(problem)
        with simulator._lock:
            if name:
                simulator.names[number] = name
            else:
                simulator.names.pop(number, None)
        return jsonify({"msisdn": number, "name": name})

    bp.add_url_rule(f"/sandbox/wallets/{rail}/<msisdn>", "wallet", wallet, methods=["GET"])
    bp.add_url_rule(f"/sandbox/wallets/{rail}/<msisdn>", "set_wallet_name", set_wallet_name, methods=["POST"])


#: GetBasicUserinfo's fixed sandbox values (those of MTN's own sandbox examples).
BASIC_USER_INFO = {"birthdate": "1976-08-13", "locale": "sv_SE", "gender": "MALE"}


class MtnProductAuth:
    """What every MTN MoMo product (Disbursement, Collection) does the same way: the
    ``Ocp-Apim-Subscription-Key``, the ``/token/`` grant on Basic ``apiUser:apiKey``, the bearer
    token and ``X-Target-Environment``, and the status read of a request by its reference id. A product sets ``api_user``, ``api_key``,
    ``subscription_key``, ``target_environment``, ``faults``, ``tokens`` and ``_lock``."""

    tokens_issued = 0

    def _check_subscription(self):
        key = request.headers.get("Ocp-Apim-Subscription-Key")
        if not key:
            return jsonify({
                "statusCode": 401,
                "message": "Access denied due to missing subscription key. "
                "Make sure to include subscription key when making requests to an API.",
            }), 401
        if key != self.subscription_key:
            return jsonify({
                "statusCode": 401,
                "message": "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.",
            }), 401
        return None

    def _check_bearer(self):
        denied = self._check_subscription()
        if denied:
            return denied
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with self._lock:
            expires = self.tokens.get(token)
        if not token or expires is None or expires < time.monotonic():
            return jsonify({"statusCode": 401, "message": "Unauthorized. Access token is missing or invalid."}), 401
        if request.headers.get("X-Target-Environment") != self.target_environment:
            return _error(400, "INVALID_TARGET_ENVIRONMENT", "X-Target-Environment is missing or not served here")
        return None

    def _status_reply(self, records: dict, reference_id: str):
        """``GET /<product>/v1_0/<resource>/{referenceId}``: the record as MTN shows it, or its 404."""
        try:
            denied = self._check_bearer()
            if denied:
                return denied
            if self.faults.take("status_error"):
                return _error(500, "INTERNAL_PROCESSING_ERROR", "simulated status failure")
            with self._lock:
                found = records.get(reference_id)
                body = found.to_wire() if found else None
            if body is None:
                return _error(404, "RESOURCE_NOT_FOUND", "Requested resource was not found.")
            return jsonify(body)
        finally:
            self.faults.delay()

    def _grant_token(self):
        """``POST /<product>/token/``: a bearer token for Basic ``apiUser:apiKey``."""
        try:
            denied = self._check_subscription()
            if denied:
                return denied
            if self.faults.take("token_error"):
                return _error(500, "INTERNAL_PROCESSING_ERROR", "simulated token failure")
            auth = request.headers.get("Authorization", "")
            try:
                user, _, key = base64.b64decode(auth[6:]).decode().partition(":") if auth.startswith("Basic ") else ("", "", "")
            except ValueError:
                user, key = "", ""
            if (user, key) != (self.api_user, self.api_key):
                return jsonify({"error": "login_failed"}), 401
            access_token = uuid.uuid4().hex + uuid.uuid4().hex
            with self._lock:
                self.tokens[access_token] = time.monotonic() + TOKEN_TTL_SECONDS
                self.tokens_issued += 1
            return jsonify({"access_token": access_token, "token_type": "access_token", "expires_in": TOKEN_TTL_SECONDS})
        finally:
            self.faults.delay()


class MomoSimulator(MtnProductAuth):
    """State and routes of the MTN MoMo Disbursement simulator (see module doc)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.api_user = env_or_local(ctx, "MIZANI_MOMO_API_USER", rail_config.LOCAL_MOMO_API_USER)
        self.api_key = env_or_local(ctx, "MIZANI_MOMO_API_KEY", rail_config.LOCAL_MOMO_API_KEY)
        self.subscription_key = env_or_local(ctx, "MIZANI_MOMO_SUBSCRIPTION_KEY", rail_config.LOCAL_MOMO_SUBSCRIPTION_KEY)
        self.target_environment = env_or_local(
            ctx, "MIZANI_MOMO_TARGET_ENVIRONMENT", rail_config.LOCAL_MOMO_TARGET_ENVIRONMENT
        )
        self.faults = Faults({"timeout_delay_ms": DEFAULT_TIMEOUT_DELAY_MS})
        self.callbacks = CallbackSender(self.faults, method="PUT")
        self._lock = threading.RLock()
        self.blueprint = self._build_blueprint()
        self.reset()

    def reset(self) -> None:
        self.callbacks.reset()
        with self._lock:
            self.transfers: dict[str, MomoTransfer] = {}
            self.names: dict[str, str] = {}
            self.refusals: dict[str, int] = {}  # msisdn -> transfers still to refuse
            self.tokens: dict[str, float] = {}
            self.tokens_issued = 0
            self._ftids = itertools.count(1)
        self.faults.reset()

    # -- helpers ------------------------------------------------------------------------
    def _finish(self, transfer: MomoTransfer, status: str, reason: str | None = None) -> None:
        """Make a transfer final (once) and fire its one callback."""
        with self._lock:
            if transfer.status in ("SUCCESSFUL", "FAILED"):
                return
            transfer.status = status
            transfer.reason = reason
            transfer.completed_at = utc_now()
            if status == "SUCCESSFUL":
                transfer.financial_transaction_id = str(100_000_000 + next(self._ftids))
            body = transfer.to_wire()
        self.callbacks.send(transfer.callback_url, body)

    def settle(self, reference_id: str, status: str, reason: str | None = None) -> MomoTransfer | None:
        with self._lock:
            transfer = self.transfers.get(reference_id)
        if transfer is not None:
            self._finish(transfer, status, reason)
        return transfer

    def wallet(self, msisdn: str) -> dict:
        with self._lock:
            rows = [
                (
                    t.money,
                    t.status == "SUCCESSFUL",
                    {
                        "referenceId": t.reference_id,
                        "externalId": t.external_id,
                        "financialTransactionId": t.financial_transaction_id,
                        "amount": money_json(t.money),
                        "status": t.status,
                        "date": rfc3339(t.completed_at or t.created_at),
                    },
                )
                for t in self.transfers.values()
                if t.msisdn == msisdn
            ]
        return wallet_view(msisdn, rows)

    # -- routes -----------------------------------------------------------------------
    def _build_blueprint(self) -> Blueprint:
        bp = Blueprint("momo", __name__)

        @bp.post("/disbursement/token/")
        def token():
            return self._grant_token()

        @bp.post("/disbursement/v1_0/transfer")
        def transfer():
            try:
                return self._transfer()
            finally:
                self.faults.delay()

        @bp.get("/disbursement/v1_0/transfer/<reference_id>")
        def transfer_status(reference_id):
            return self._status_reply(self.transfers, reference_id)

        @bp.post("/sandbox/momo/transfers/<reference_id>/settle")
        def settle(reference_id):
            body = request.get_json(silent=True) or {}
            status = str(body.get("status", "SUCCESSFUL")).upper()
            if status not in ("SUCCESSFUL", "FAILED"):
                return _error(400, "INVALID_STATUS", "status is SUCCESSFUL or FAILED")
            transfer = self.settle(reference_id, status, body.get("reason") or (None if status == "SUCCESSFUL" else "INTERNAL_PROCESSING_ERROR"))
            if transfer is None:
                return _error(404, "RESOURCE_NOT_FOUND", "Requested resource was not found.")
            with self._lock:
                return jsonify(transfer.to_wire())

        @bp.route("/sandbox/faults/momo", methods=["GET", "POST", "DELETE"])
        def faults():
            if request.method == "DELETE":
                self.faults.reset()
            elif request.method == "POST":
                try:
                    actions = self.faults.update(request.get_json(silent=True))
                except ValueError as err:
                    return _error(400, "INVALID_FAULT", str(err))
                for action in actions:
                    if action != "expire_tokens":
                        return _error(400, "INVALID_FAULT", f"unknown action {action!r}")
                    with self._lock:
                        self.tokens.clear()
            return jsonify(self.faults.snapshot())

        @bp.get("/sandbox/wallets/<msisdn>")
        def legacy_wallet(msisdn):
            return jsonify(self.wallet(msisdn.lstrip("+")))

        add_wallet_routes(bp, "mtn_momo", self, lambda problem: _error(400, "INVALID_PARAMETER", problem))

        @bp.post("/sandbox/wallets/mtn_momo/<msisdn>/refuse")
        def refuse_transfers(msisdn):
            body = request.get_json(silent=True)
            count = body.get("transfers") if isinstance(body, dict) else None
            if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 1000:
                return _error(400, "INVALID_PARAMETER", "transfers must be an integer from 0 to 1000")
            with self._lock:
                self.refusals[msisdn.lstrip("+")] = count
            return jsonify({"msisdn": msisdn.lstrip("+"), "refuse_transfers": count})

        @bp.get("/disbursement/v1_0/accountholder/<id_type>/<holder_id>/active")
        def accountholder_active(id_type, holder_id):
            try:
                denied = self._check_bearer()
                if denied:
                    return denied
                if id_type == "email":
                    return jsonify({"result": False})
                if id_type != "msisdn":
                    return _error(400, "INVALID_PARAMETER", "accountHolderIdType is msisdn or email (lower case)")
                if not holder_id.isdigit() or not 8 <= len(holder_id) <= 15:
                    return _error(400, "INVALID_PARAMETER", "accountHolderId is not a valid MSISDN")
                return jsonify({"result": holder_id != INACTIVE})
            finally:
                self.faults.delay()

        @bp.get("/disbursement/v1_0/accountholder/msisdn/<msisdn>/basicuserinfo")
        def basic_user_info(msisdn):
            try:
                denied = self._check_bearer()
                if denied:
                    return denied
                if not msisdn.isdigit() or not 8 <= len(msisdn) <= 15:
                    return _error(400, "INVALID_PARAMETER", "accountHolderMSISDN is not a valid MSISDN")
                with self._lock:
                    given, family = split_name(self.names.get(msisdn, ""))
                return jsonify({
                    "given_name": given,
                    "family_name": family,
                    **BASIC_USER_INFO,
                    "status": "INACTIVE" if msisdn == INACTIVE else "ACTIVE",
                })
            finally:
                self.faults.delay()

        @bp.get("/sandbox/statements/mtn_momo")
        def statement():
            with self._lock:
                final = sorted(
                    (t for t in self.transfers.values() if t.completed_at is not None), key=lambda t: t.completed_at
                )
                rows = [
                    [t.financial_transaction_id or "", t.external_id, t.amount, t.money.currency, t.status, rfc3339(t.completed_at)]
                    for t in final
                ]
            return csv_response(["financialTransactionId", "externalId", "amount", "currency", "status", "date"], rows)

        return bp

    def _transfer(self):
        denied = self._check_bearer()
        if denied:
            return denied
        reference_id = request.headers.get("X-Reference-Id", "")
        try:
            if uuid.UUID(reference_id).version != 4:
                raise ValueError
        except ValueError:
            return _error(400, "INVALID_REFERENCE_ID", "X-Reference-Id does not meet UUID Version 4")
        if self.faults.take("error_before_processing"):
            return _error(500, "INTERNAL_PROCESSING_ERROR", "simulated failure before processing")
        body = request.get_json(silent=True)
        problem, transfer = self._parse_transfer(reference_id, body)
        if problem:
            return _error(400, "INVALID_PARAMETER" if problem != "PAYEE_NOT_FOUND" else problem, problem)
        with self._lock:
            if reference_id in self.transfers:
                return _error(409, "RESOURCE_ALREADY_EXIST", "Duplicated reference id. Creation of resource failed.")
            self.transfers[reference_id] = transfer

        number = transfer.msisdn
        if number == FAILS:
            self._finish(transfer, "FAILED", "INTERNAL_PROCESSING_ERROR")
        elif number == REJECTED:
            self._finish(transfer, "FAILED", "APPROVAL_REJECTED")
        elif number == TIMES_OUT:
            # Hold the answer: the client's read timeout fires first; then the transfer expires.
            time.sleep(self.faults.setting("timeout_delay_ms") / 1000.0)
            self._finish(transfer, "FAILED", "EXPIRED")
        elif number in (ONGOING, PENDING):
            pass  # stays PENDING until settled by hand
        elif self._take_refusal(number):
            self._finish(transfer, "FAILED", "PAYEE_NOT_ALLOWED_TO_RECEIVE")
        else:
            self._finish(transfer, "SUCCESSFUL")

        if self.faults.take("error_after_success"):
            return _error(500, "INTERNAL_PROCESSING_ERROR", "An internal error occurred while processing.")
        return Response(status=202)

    def _take_refusal(self, msisdn: str) -> bool:
        with self._lock:
            left = self.refusals.get(msisdn, 0)
            if left:
                self.refusals[msisdn] = left - 1
            return bool(left)

    def _parse_transfer(self, reference_id: str, body) -> tuple[str | None, MomoTransfer | None]:
        if not isinstance(body, dict):
            return "the body must be a JSON object", None
        amount, currency = body.get("amount"), body.get("currency")
        payee = body.get("payee") or {}
        try:
            check_currency(currency)
            money = Money.parse(amount, currency)
            money.require_positive()
        except ValidationError as err:
            return f"amount/currency: {err.message}", None
        if not isinstance(payee, dict) or payee.get("partyIdType") != "MSISDN":
            return "payee.partyIdType must be MSISDN", None
        msisdn = str(payee.get("partyId") or "")
        if not msisdn.isdigit() or not 8 <= len(msisdn) <= 15:
            return "PAYEE_NOT_FOUND", None
        payer_message, payee_note = str(body.get("payerMessage") or ""), str(body.get("payeeNote") or "")
        for text in (payer_message, payee_note):
            if len(text) > 160 or "'" in text:
                return "payerMessage/payeeNote: at most 160 characters, no apostrophes", None
        external_id = str(body.get("externalId") or "")
        return None, MomoTransfer(
            reference_id=reference_id,
            external_id=external_id,
            money=money,
            amount=amount,
            msisdn=msisdn,
            payer_message=payer_message,
            payee_note=payee_note,
            callback_url=request.headers.get("X-Callback-Url") or None,
        )


def make(ctx) -> MomoSimulator:
    """The simulator contract: an object with ``.blueprint`` and ``.reset()``."""
    return MomoSimulator(ctx)
