"""Safaricom M-Pesa B2C (Daraja) simulator: OAuth, B2C v3 payment request, Transaction Status, callbacks.

Speaks Daraja's wire format on Daraja's paths, so ``MpesaB2CRail`` runs
unchanged against it. Credentials are the ``MIZANI_MPESA_*`` values of the
stage's environment (``ctx.env``), defaulting to the local-sandbox constants.
As on Daraja, a wrong ``InitiatorName``/``SecurityCredential`` is accepted at
first and fails in the result callback (ResultCode 2001).

Every payment request is acknowledged (``ResponseCode "0"``) and its outcome is
POSTed to its ``ResultURL`` as Daraja's ``{"Result": {...}}`` body. The MTN
sandbox numbers of API.md are played likewise (a sandbox convention; Safaricom's
own sandbox has no such numbers):

==============  ==========================================================
46733123450     fails: ResultCode 1 "The balance is insufficient for the transaction."
46733123451     rejected: ResultCode 2040 (credit party customer type not supported)
46733123452     times out: the POST answers only after ``timeout_delay_ms``
                (default 1000 ms); then the request "expires in the queue": a
                notification goes to ``QueueTimeOutURL`` and no result ever
                comes; Transaction Status then says ``Expired`` (final, failed)
46733123453     stays ongoing: no result; Transaction Status says ``Pending``
46733123454     stays pending: likewise
anything else   ResultCode 0: paid, the wallet credited, full ResultParameters
==============  ==========================================================

A stuck payment can be settled by hand: ``POST /sandbox/mpesa/payments/<OriginatorConversationID>/settle``
``{"result_code": 0 | <code>, "result_desc"?}``.

A repeated ``OriginatorConversationID`` is refused with HTTP 409 ``{"requestId",
"errorCode": "409.001.01", "errorMessage": "Duplicate OriginatorConversationID"}``
and pays nothing (a sandbox convention: Safaricom does not document its behaviour).

``POST /mpesa/transactionstatus/v1/query`` (by ``OriginalConversationID`` or
``TransactionID``) is acknowledged and answered asynchronously at its
``ResultURL``: ``ResultParameters`` with ``TransactionStatus`` (``Completed`` /
``Failed`` / ``Expired`` / ``Pending``), ``ReceiptNo``, ``Amount``,
``OriginatorConversationID``..., and ``ReferenceData`` echoing its ``Occassion``.
Unknown transaction: ResultCode ``R000002`` "The transaction could not be found."

Faults: ``POST /sandbox/faults/mpesa``, same document as the MoMo simulator
(``latency_ms``, ``timeout_delay_ms``, ``error_after_success``,
``error_before_processing``, ``lose_callback``, ``duplicate_callback``,
``status_error``, ``token_error``, ``"expire_tokens": true``).

Holder names: ``POST /sandbox/wallets/mpesa/<msisdn>`` ``{"name"}`` -> ``{"msisdn", "name"}``
sets the name Safaricom shows for that wallet: a B2C result's ``ReceiverPartyPublicName``
(and a Transaction Status answer's ``CreditPartyName``) then read ``"<msisdn> - <name>"``
instead of the bare ``"<msisdn>"`` (no holder name: nothing to compare); an empty name clears it.

Sandbox views: ``GET /sandbox/wallets/mpesa/<msisdn>``; ``GET /sandbox/statements/mpesa_b2c``
-> CSV ``ConversationID,OriginatorConversationID,TransactionID,Amount,Currency,
ResultCode,ResultDesc,PartyB,CompletedAt`` (every result sent, Amount in whole
KES, CompletedAt RFC 3339 UTC), one record a line.
"""
from __future__ import annotations

import base64
import itertools
import random
import string
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from flask import Blueprint, jsonify, request

from chalicelib.money import Money
from chalicelib.payouts.rails import config as rail_config
from sandbox.simulators.momo import (
    FAILS,
    ONGOING,
    PENDING,
    REJECTED,
    TIMES_OUT,
    CallbackSender,
    Faults,
    csv_response,
    env_or_local,
    money_json,
    add_wallet_routes,
    rfc3339,
    utc_now,
    wallet_view,
)

CURRENCY = "KES"
DEFAULT_TIMEOUT_DELAY_MS = 1000
TOKEN_TTL_SECONDS = 3599
COMMAND_IDS = frozenset({"BusinessPayment", "SalaryPayment", "PromotionPayment"})

RESULT_DESCRIPTIONS = {
    0: "The service request is processed successfully.",
    1: "The balance is insufficient for the transaction.",
    2001: "The initiator information is invalid.",
    2040: "Credit Party customer type (Unregistered or Registered Customer) can't be supported by the service.",
}
TS_STATUS = {"succeeded": "Completed", "failed": "Failed", "expired": "Expired", "pending": "Pending"}


@dataclass
class B2CPayment:
    originator_conversation_id: str
    conversation_id: str
    amount: int
    party_a: str
    party_b: str
    remarks: str
    result_url: str
    queue_timeout_url: str
    command_id: str
    occasion: str = ""
    state: str = "pending"  # pending | succeeded | failed | expired
    result_code: int | None = None
    result_desc: str | None = None
    transaction_id: str | None = None
    created_at: datetime = field(default_factory=utc_now)
    completed_at: datetime | None = None
    result_body: dict | None = None


def _daraja_error(status: int, code: str, message: str):
    return jsonify({"requestId": uuid.uuid4().hex[:20], "errorCode": code, "errorMessage": message}), status


def _bad(field_name: str):
    return _daraja_error(400, "400.002.02", f"Bad Request - Invalid {field_name}")


class MpesaSimulator:
    """State and routes of the M-Pesa B2C simulator (see module doc)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.consumer_key = env_or_local(ctx, "MIZANI_MPESA_CONSUMER_KEY", rail_config.LOCAL_MPESA_CONSUMER_KEY)
        self.consumer_secret = env_or_local(ctx, "MIZANI_MPESA_CONSUMER_SECRET", rail_config.LOCAL_MPESA_CONSUMER_SECRET)
        self.initiator_name = env_or_local(ctx, "MIZANI_MPESA_INITIATOR_NAME", rail_config.LOCAL_MPESA_INITIATOR_NAME)
        self.security_credential = env_or_local(
            ctx, "MIZANI_MPESA_SECURITY_CREDENTIAL", rail_config.LOCAL_MPESA_SECURITY_CREDENTIAL
        )
        self.shortcode = env_or_local(ctx, "MIZANI_MPESA_SHORTCODE", rail_config.LOCAL_MPESA_SHORTCODE)
        self.faults = Faults({"timeout_delay_ms": DEFAULT_TIMEOUT_DELAY_MS})
        self.callbacks = CallbackSender(self.faults, method="POST")
        self._lock = threading.RLock()
        self._rng = random.Random(20240706)
        self.blueprint = self._build_blueprint()
        self.reset()

    def reset(self) -> None:
        self.callbacks.reset()
        with self._lock:
            self.payments: dict[str, B2CPayment] = {}
            self.names: dict[str, str] = {}
            self.tokens: dict[str, float] = {}
            self.tokens_issued = 0
            self.status_queries = 0
            self._seq = itertools.count(1)
            self.working_funds = 10_000_000
        self.faults.reset()

    # -- ids ------------------------------------------------------------------------
    def _conversation_id(self) -> str:
        return f"AG_{utc_now():%Y%m%d}_{uuid.uuid4().hex[:20]}"

    def _receipt(self) -> str:
        with self._lock:
            return "S" + "".join(self._rng.choice(string.ascii_uppercase + string.digits) for _ in range(9))

    def _public_name(self, msisdn: str) -> str:
        """``"<msisdn> - <holder name>"`` as Safaricom shows a wallet, or the bare number while the
        sandbox holds no name for it (API.md: no holder name, so no name check) (call under the lock)."""
        name = self.names.get(msisdn)
        return f"{msisdn} - {name}" if name else msisdn

    # -- auth -----------------------------------------------------------------------
    def _check_bearer(self):
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with self._lock:
            expires = self.tokens.get(token)
        if not token or expires is None or expires < time.monotonic():
            return _daraja_error(401, "404.001.03", "Invalid Access Token")
        return None

    # -- outcomes ---------------------------------------------------------------------
    def _finish(self, payment: B2CPayment, result_code: int, result_desc: str | None = None) -> None:
        """Give a payment its result (once) and POST it to ResultURL."""
        with self._lock:
            if payment.state != "pending":
                return
            payment.completed_at = utc_now()
            payment.result_code = result_code
            payment.result_desc = result_desc or RESULT_DESCRIPTIONS.get(result_code, "The transaction failed.")
            result = {
                "ResultType": 0,
                "ResultCode": result_code,
                "ResultDesc": payment.result_desc,
                "OriginatorConversationID": payment.originator_conversation_id,
                "ConversationID": payment.conversation_id,
                "ReferenceData": {"ReferenceItem": {"Key": "QueueTimeoutURL", "Value": payment.queue_timeout_url}},
            }
            if result_code == 0:
                payment.state = "succeeded"
                payment.transaction_id = self._receipt()
                self.working_funds -= payment.amount
                result["TransactionID"] = payment.transaction_id
                result["ResultParameters"] = {
                    "ResultParameter": [
                        {"Key": "TransactionAmount", "Value": payment.amount},
                        {"Key": "TransactionReceipt", "Value": payment.transaction_id},
                        {"Key": "B2CRecipientIsRegisteredCustomer", "Value": "Y"},
                        {"Key": "B2CChargesPaidAccountAvailableFunds", "Value": 0},
                        {"Key": "ReceiverPartyPublicName", "Value": self._public_name(payment.party_b)},
                        {"Key": "TransactionCompletedDateTime", "Value": f"{payment.completed_at:%d.%m.%Y %H:%M:%S}"},
                        {"Key": "B2CUtilityAccountAvailableFunds", "Value": self.working_funds},
                        {"Key": "B2CWorkingAccountAvailableFunds", "Value": self.working_funds},
                    ]
                }
            else:
                payment.state = "failed"
                payment.transaction_id = f"{self._receipt()[:3]}0000000"
                result["TransactionID"] = payment.transaction_id
            payment.result_body = {"Result": result}
            body = payment.result_body
        self.callbacks.send(payment.result_url, body)

    def _expire(self, payment: B2CPayment) -> None:
        """The request timed out in Safaricom's queue: notify QueueTimeOutURL; no result will come."""
        with self._lock:
            if payment.state != "pending":
                return
            payment.state = "expired"
            body = {
                "Result": {
                    "ResultType": 1,
                    "ResultCode": 1,
                    "ResultDesc": "The service request has timed out.",
                    "OriginatorConversationID": payment.originator_conversation_id,
                    "ConversationID": payment.conversation_id,
                    "TransactionID": "",
                }
            }
        self.callbacks.send(payment.queue_timeout_url, body)

    def settle(self, originator_id: str, result_code: int, result_desc: str | None = None) -> B2CPayment | None:
        with self._lock:
            payment = self.payments.get(originator_id)
        if payment is not None:
            self._finish(payment, result_code, result_desc)
        return payment

    def _status_answer(self, query_originator: str, query_conversation: str, payment: B2CPayment | None, occasion: str) -> dict:
        result = {
            "ResultType": 0,
            "OriginatorConversationID": query_originator,
            "ConversationID": query_conversation,
            "TransactionID": payment.transaction_id if payment and payment.transaction_id else "",
            "ReferenceData": {"ReferenceItem": {"Key": "Occasion", "Value": occasion}},
        }
        if payment is None:
            result.update(ResultCode="R000002", ResultDesc="The transaction could not be found.")
            return {"Result": result}
        stamp = f"{(payment.completed_at or payment.created_at):%Y%m%d%H%M%S}"
        result.update(ResultCode=0, ResultDesc="The service request has been accepted successfully.")
        result["ResultParameters"] = {
            "ResultParameter": [
                {"Key": "DebitPartyName", "Value": f"{payment.party_a} - Mizani"},
                {"Key": "CreditPartyName", "Value": self._public_name(payment.party_b)},
                {"Key": "OriginatorConversationID", "Value": payment.originator_conversation_id},
                {"Key": "InitiatedTime", "Value": int(f"{payment.created_at:%Y%m%d%H%M%S}")},
                {"Key": "DebitAccountType", "Value": "Utility Account"},
                {"Key": "DebitPartyCharges", "Value": ""},
                {"Key": "TransactionReason", "Value": payment.remarks},
                {"Key": "ReasonType", "Value": "Business Payment to Customer via API"},
                {"Key": "TransactionStatus", "Value": TS_STATUS[payment.state]},
                {"Key": "FinalisedTime", "Value": int(stamp)},
                {"Key": "Amount", "Value": payment.amount},
                {"Key": "ConversationID", "Value": payment.conversation_id},
                {"Key": "ReceiptNo", "Value": payment.transaction_id or ""},
            ]
        }
        return {"Result": result}

    def wallet(self, msisdn: str) -> dict:
        with self._lock:
            rows = [
                (
                    Money(p.amount * 100, CURRENCY),
                    p.state == "succeeded",
                    {
                        "OriginatorConversationID": p.originator_conversation_id,
                        "ConversationID": p.conversation_id,
                        "TransactionID": p.transaction_id,
                        "amount": money_json(Money(p.amount * 100, CURRENCY)),
                        "status": p.state,
                        "date": rfc3339(p.completed_at or p.created_at),
                    },
                )
                for p in self.payments.values()
                if p.party_b == msisdn
            ]
        return wallet_view(msisdn, rows)

    # -- routes -----------------------------------------------------------------------
    def _build_blueprint(self) -> Blueprint:
        bp = Blueprint("mpesa", __name__)

        @bp.get("/oauth/v1/generate")
        def oauth():
            try:
                if request.args.get("grant_type") != "client_credentials":
                    return _daraja_error(400, "400.008.01", "Invalid grant type passed")
                if self.faults.take("token_error"):
                    return _daraja_error(500, "500.003.1001", "Internal Server Error")
                auth = request.headers.get("Authorization", "")
                try:
                    key, _, secret = base64.b64decode(auth[6:]).decode().partition(":") if auth.startswith("Basic ") else ("", "", "")
                except ValueError:
                    key, secret = "", ""
                if key != self.consumer_key or secret != self.consumer_secret:
                    return _daraja_error(400, "400.008.02", "Invalid Authentication passed")
                token = base64.b64encode(uuid.uuid4().bytes).decode().rstrip("=")
                with self._lock:
                    self.tokens[token] = time.monotonic() + TOKEN_TTL_SECONDS
                    self.tokens_issued += 1
                return jsonify({"access_token": token, "expires_in": str(TOKEN_TTL_SECONDS)})
            finally:
                self.faults.delay()

        @bp.post("/mpesa/b2c/v3/paymentrequest")
        def payment_request():
            try:
                return self._payment_request()
            finally:
                self.faults.delay()

        @bp.post("/mpesa/transactionstatus/v1/query")
        def transaction_status():
            try:
                return self._transaction_status()
            finally:
                self.faults.delay()

        @bp.post("/sandbox/mpesa/payments/<originator_id>/settle")
        def settle(originator_id):
            body = request.get_json(silent=True) or {}
            try:
                code = int(body.get("result_code", 0))
            except (TypeError, ValueError):
                return _bad("result_code")
            payment = self.settle(originator_id, code, body.get("result_desc"))
            if payment is None:
                return _daraja_error(404, "404.001.01", "Resource not found")
            with self._lock:
                return jsonify(payment.result_body or {"state": payment.state})

        @bp.route("/sandbox/faults/mpesa", methods=["GET", "POST", "DELETE"])
        def faults():
            if request.method == "DELETE":
                self.faults.reset()
            elif request.method == "POST":
                try:
                    actions = self.faults.update(request.get_json(silent=True))
                except ValueError as err:
                    return _daraja_error(400, "400.002.02", str(err))
                for action in actions:
                    if action != "expire_tokens":
                        return _daraja_error(400, "400.002.02", f"unknown action {action!r}")
                    with self._lock:
                        self.tokens.clear()
            return jsonify(self.faults.snapshot())

        add_wallet_routes(bp, "mpesa", self, lambda problem: _daraja_error(400, "400.002.02", f"Bad Request - {problem}"))

        @bp.get("/sandbox/statements/mpesa_b2c")
        def statement():
            with self._lock:
                done = sorted(
                    (p for p in self.payments.values() if p.result_code is not None), key=lambda p: p.completed_at
                )
                rows = [
                    [
                        p.conversation_id,
                        p.originator_conversation_id,
                        p.transaction_id or "",
                        p.amount,
                        CURRENCY,
                        p.result_code,
                        p.result_desc,
                        p.party_b,
                        rfc3339(p.completed_at),
                    ]
                    for p in done
                ]
            return csv_response(
                [
                    "ConversationID",
                    "OriginatorConversationID",
                    "TransactionID",
                    "Amount",
                    "Currency",
                    "ResultCode",
                    "ResultDesc",
                    "PartyB",
                    "CompletedAt",
                ],
                rows,
            )

        return bp

    def _payment_request(self):
        denied = self._check_bearer()
        if denied:
            return denied
        if self.faults.take("error_before_processing"):
            return _daraja_error(500, "500.003.1001", "Internal Server Error")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _bad("request body")
        originator = str(body.get("OriginatorConversationID") or "")
        if not originator or len(originator) > 100:
            return _bad("OriginatorConversationID")
        if body.get("CommandID") not in COMMAND_IDS:
            return _bad("CommandID")
        amount = body.get("Amount")
        try:
            if isinstance(amount, bool) or float(amount) != int(float(amount)) or int(float(amount)) <= 0:
                raise ValueError
            amount = int(float(amount))
        except (TypeError, ValueError):
            return _bad("Amount")
        if str(body.get("PartyA") or "") != self.shortcode:
            return _bad("PartyA")
        party_b = str(body.get("PartyB") or "")
        if not party_b.isdigit() or not 8 <= len(party_b) <= 15:
            return _bad("PartyB")
        remarks = str(body.get("Remarks") or "")
        if not 2 <= len(remarks) <= 100:
            return _bad("Remarks")
        for url_field in ("ResultURL", "QueueTimeOutURL"):
            if not str(body.get(url_field) or "").startswith(("http://", "https://")):
                return _bad(url_field)
        payment = B2CPayment(
            originator_conversation_id=originator,
            conversation_id=self._conversation_id(),
            amount=amount,
            party_a=self.shortcode,
            party_b=party_b,
            remarks=remarks,
            result_url=body["ResultURL"],
            queue_timeout_url=body["QueueTimeOutURL"],
            command_id=body["CommandID"],
            occasion=str(body.get("Occassion") or body.get("Occasion") or ""),
        )
        with self._lock:
            if originator in self.payments:
                return _daraja_error(409, "409.001.01", "Duplicate OriginatorConversationID")
            self.payments[originator] = payment
        ack = {
            "ConversationID": payment.conversation_id,
            "OriginatorConversationID": originator,
            "ResponseCode": "0",
            "ResponseDescription": "Accept the service request successfully.",
        }

        if body.get("InitiatorName") != self.initiator_name or body.get("SecurityCredential") != self.security_credential:
            self._finish(payment, 2001)
        elif party_b == FAILS:
            self._finish(payment, 1)
        elif party_b == REJECTED:
            self._finish(payment, 2040)
        elif party_b == TIMES_OUT:
            time.sleep(self.faults.setting("timeout_delay_ms") / 1000.0)
            self._expire(payment)
        elif party_b in (ONGOING, PENDING):
            pass
        else:
            self._finish(payment, 0)

        if self.faults.take("error_after_success"):
            return _daraja_error(500, "500.003.1001", "Internal Server Error")
        return jsonify(ack)

    def _transaction_status(self):
        denied = self._check_bearer()
        if denied:
            return denied
        if self.faults.take("status_error"):
            return _daraja_error(500, "500.003.1001", "Internal Server Error")
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or body.get("CommandID") != "TransactionStatusQuery":
            return _bad("CommandID")
        result_url = str(body.get("ResultURL") or "")
        if not result_url.startswith(("http://", "https://")):
            return _bad("ResultURL")
        original = str(body.get("OriginalConversationID") or "")
        transaction_id = str(body.get("TransactionID") or "")
        if not original and not transaction_id:
            return _bad("TransactionID")
        with self._lock:
            self.status_queries += 1
            payment = self.payments.get(original) if original else None
            if payment is None and transaction_id:
                payment = next((p for p in self.payments.values() if p.transaction_id == transaction_id), None)
            query_originator = f"{next(self._seq)}-{uuid.uuid4().hex[:8]}-1"
            query_conversation = self._conversation_id()
            answer = self._status_answer(
                query_originator, query_conversation, payment, str(body.get("Occassion") or body.get("Occasion") or "")
            )
        self.callbacks.send(result_url, answer)
        return jsonify({
            "OriginatorConversationID": query_originator,
            "ConversationID": query_conversation,
            "ResponseCode": "0",
            "ResponseDescription": "Accept the service request successfully.",
        })


def make(ctx) -> MpesaSimulator:
    """The simulator contract: an object with ``.blueprint`` and ``.reset()``."""
    return MpesaSimulator(ctx)
