"""M-Pesa Lipa na M-Pesa Online simulator: STK push, its callback, the STK query, and reversals.

Daraja's wire format on Daraja's paths, so ``MpesaStkPush`` runs unchanged against it. OAuth is the
B2C simulator's (``/oauth/v1/generate`` in ``mpesa.py``, found through ``ctx.simulators``); the paybill
is ``MIZANI_MPESA_STK_SHORTCODE`` and the passkey ``MIZANI_MPESA_PASSKEY`` (the adapter's local
defaults): a ``Password`` that is not ``base64(shortcode + passkey + Timestamp)`` is refused (400).

- ``POST /mpesa/stkpush/v1/processrequest`` -> ``{"MerchantRequestID", "CheckoutRequestID",
  "ResponseCode": "0", "ResponseDescription", "CustomerMessage"}``; the push waits on the payer's phone.
- The result is POSTed once to ``CallBackURL``: ``{"Body": {"stkCallback": {"MerchantRequestID",
  "CheckoutRequestID", "ResultCode", "ResultDesc", "CallbackMetadata"?: {"Item": [Amount,
  MpesaReceiptNumber, TransactionDate, PhoneNumber]}}}}``.
- ``POST /mpesa/stkpushquery/v1/query`` -> ``{"ResponseCode": "0", ..., "ResultCode", "ResultDesc"}`` once
  the push is final; while the payer has not answered, HTTP 500 ``{"errorCode": "500.001.1001",
  "errorMessage": "The transaction is being processed"}``.
- ``POST /mpesa/reversal/v1/request`` (the B2C initiator's credentials) -> the acknowledgement; the result
  ``{"Result": {...}}`` is POSTed to ``ResultURL``; a completed push reverses once (the payer credited
  back), anything else fails with ResultCode ``R000001``.

``POST /sandbox/payments/<AccountReference>/pay`` ``{"outcome": "succeeded" | "failed"}`` is the payer
entering the PIN (or cancelling: ResultCode ``1032``). The MTN sandbox numbers, as payers (a sandbox
convention, as in the B2C simulator):

==============  =====================================================================
46733123450     declines: ResultCode 1 "The balance is insufficient for the transaction." at once
46733123451     cancels: ResultCode 1032 "Request cancelled by user" at once
46733123452     times out: the push answers only after ``timeout_delay_ms`` (default 1000 ms); the
                push exists and the payer can still pay it
46733123453     never answers: no callback, the query says "being processed" forever
46733123454     never answers, likewise
anything else   waits for ``/pay``
==============  =====================================================================

Faults: ``POST /sandbox/faults/mpesa_stk`` (the MTN simulator's document: ``error_after_success``,
``lose_callback``, ``duplicate_callback``, ``status_error``, ...). ``GET /sandbox/statements/mpesa_c2b``:
the paybill's statement as Safaricom's portal exports it (CSV ``Receipt No.,Completion Time,Initiation
Time,Details,Transaction Status,Paid In,Withdrawn,Balance,Reason Type,Other Party Info,Linked Transaction
ID,A/C No.``), completed payments and reversals.
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

from chalicelib.payments.collections import mpesa as adapter
from chalicelib.payouts.rails import config as rail_config
from sandbox.simulators.momo import (
    FAILS, ONGOING, PENDING, REJECTED, TIMES_OUT, CallbackSender, Faults, csv_response, env_or_local, utc_now,
)

DEFAULT_TIMEOUT_DELAY_MS = 1000
NEVER_ANSWERS = frozenset({ONGOING, PENDING})
RESULTS = {0: "The service request is processed successfully.", 1: "The balance is insufficient for the transaction.",
           1032: "Request cancelled by user"}


@dataclass
class StkPush:
    merchant_request_id: str
    checkout_request_id: str
    amount: int
    msisdn: str
    account_reference: str
    callback_url: str
    state: str = "pending"  # pending | completed | failed
    result_code: int | None = None
    receipt: str | None = None
    created_at: datetime = field(default_factory=utc_now)
    completed_at: datetime | None = None
    reversal: dict | None = None


def _daraja_error(status: int, code: str, message: str):
    return jsonify({"requestId": uuid.uuid4().hex[:20], "errorCode": code, "errorMessage": message}), status


class MpesaStkSimulator:
    """State and routes of the STK push simulator (see module doc)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.shortcode = env_or_local(ctx, "MIZANI_MPESA_STK_SHORTCODE", adapter.LOCAL_STK_SHORTCODE)
        self.passkey = env_or_local(ctx, "MIZANI_MPESA_PASSKEY", adapter.LOCAL_PASSKEY)
        self.initiator = env_or_local(ctx, "MIZANI_MPESA_INITIATOR_NAME", rail_config.LOCAL_MPESA_INITIATOR_NAME)
        self.credential = env_or_local(ctx, "MIZANI_MPESA_SECURITY_CREDENTIAL", rail_config.LOCAL_MPESA_SECURITY_CREDENTIAL)
        self.faults = Faults({"timeout_delay_ms": DEFAULT_TIMEOUT_DELAY_MS})
        self.callbacks = CallbackSender(self.faults, method="POST")
        self._lock = threading.RLock()
        self._rng = random.Random(20261202)
        self.blueprint = self._build_blueprint()
        self.reset()
        ctx.payers.append(self)

    def reset(self) -> None:
        self.callbacks.reset()
        with self._lock:
            self.pushes: dict[str, StkPush] = {}  # CheckoutRequestID -> push
            self._seq = itertools.count(1)
        self.faults.reset()

    # -- helpers ------------------------------------------------------------------------------------
    def _check_bearer(self):
        b2c = self.ctx.simulators.get("sandbox.simulators.mpesa")
        if b2c is None:
            return _daraja_error(503, "503.001.01", "the Daraja OAuth simulator is not loaded")
        return b2c._check_bearer()

    def _password_ok(self, body: dict) -> bool:
        expected = base64.b64encode(f"{self.shortcode}{self.passkey}{body.get('Timestamp')}".encode()).decode()
        return str(body.get("BusinessShortCode")) == self.shortcode and body.get("Password") == expected

    def _receipt(self) -> str:
        with self._lock:
            return "T" + "".join(self._rng.choice(string.ascii_uppercase + string.digits) for _ in range(9))

    def _finish(self, push: StkPush, code: int) -> None:
        with self._lock:
            if push.state != "pending":
                return
            push.result_code, push.completed_at = code, utc_now()
            callback = {"MerchantRequestID": push.merchant_request_id, "CheckoutRequestID": push.checkout_request_id,
                        "ResultCode": code, "ResultDesc": RESULTS.get(code, "The transaction failed.")}
            if code == 0:
                push.state, push.receipt = "completed", self._receipt()
                callback["CallbackMetadata"] = {"Item": [
                    {"Name": "Amount", "Value": push.amount}, {"Name": "MpesaReceiptNumber", "Value": push.receipt},
                    {"Name": "TransactionDate", "Value": int(f"{push.completed_at:%Y%m%d%H%M%S}")},
                    {"Name": "PhoneNumber", "Value": int(push.msisdn)}]}
            else:
                push.state = "failed"
        self.callbacks.send(push.callback_url, {"Body": {"stkCallback": callback}})

    def _by_reference(self, reference: str) -> StkPush | None:
        with self._lock:
            return next((p for p in self.pushes.values() if p.account_reference == reference), None)

    # -- ctx.payers ------------------------------------------------------------------------------------
    def owns_payment(self, payment_id: str) -> bool:
        return self._by_reference(payment_id) is not None

    def pay_payment(self, reference: str, body: dict) -> tuple[int, dict]:
        push = self._by_reference(reference)
        outcome = body.get("outcome", "succeeded")
        if outcome not in ("succeeded", "failed"):
            return 400, {"errorCode": "400.002.02", "errorMessage": "outcome is succeeded or failed"}
        if push.msisdn in NEVER_ANSWERS:
            return 409, {"errorCode": "409.001.02", "errorMessage": "this test number never answers"}
        if push.state != "pending":
            return 409, {"errorCode": "409.001.03", "errorMessage": f"the push is {push.state}"}
        self._finish(push, 0 if outcome == "succeeded" else 1032)
        with self._lock:
            return 200, {"CheckoutRequestID": push.checkout_request_id, "state": push.state, "receipt": push.receipt}

    # -- routes -----------------------------------------------------------------------------------------
    def _build_blueprint(self) -> Blueprint:
        bp = Blueprint("mpesa_stk", __name__)

        @bp.post("/mpesa/stkpush/v1/processrequest")
        def processrequest():
            try:
                return self._push()
            finally:
                self.faults.delay()

        @bp.post("/mpesa/stkpushquery/v1/query")
        def query():
            try:
                denied = self._check_bearer()
                if denied:
                    return denied
                if self.faults.take("status_error"):
                    return _daraja_error(500, "500.003.1001", "Internal Server Error")
                body = request.get_json(silent=True) or {}
                if not self._password_ok(body):
                    return _daraja_error(400, "400.002.02", "Bad Request - Invalid Password")
                with self._lock:
                    push = self.pushes.get(str(body.get("CheckoutRequestID") or ""))
                    if push is None:
                        return _daraja_error(400, "400.002.02", "Bad Request - Invalid CheckoutRequestID")
                    if push.state == "pending":
                        return _daraja_error(500, adapter.STILL_PROCESSING, "The transaction is being processed")
                    return jsonify({"ResponseCode": "0", "ResponseDescription": "The service request has been accepted successsfully",
                                    "MerchantRequestID": push.merchant_request_id,
                                    "CheckoutRequestID": push.checkout_request_id,
                                    "ResultCode": str(push.result_code), "ResultDesc": RESULTS.get(push.result_code, "")})
            finally:
                self.faults.delay()

        @bp.post("/mpesa/reversal/v1/request")
        def reversal():
            return self._reversal()

        @bp.route("/sandbox/faults/mpesa_stk", methods=["GET", "POST", "DELETE"])
        def faults():
            if request.method == "DELETE":
                self.faults.reset()
            elif request.method == "POST":
                try:
                    actions = self.faults.update(request.get_json(silent=True))
                except ValueError as err:
                    return _daraja_error(400, "400.002.02", str(err))
                if actions:
                    return _daraja_error(400, "400.002.02", f"unknown action {actions[0]!r}")
            return jsonify(self.faults.snapshot())

        @bp.get("/sandbox/statements/mpesa_c2b")
        def statement():
            rows = []
            with self._lock:
                for p in self.pushes.values():
                    if p.state == "completed" or p.reversal:
                        rows.append((p.completed_at, [p.receipt, f"{p.completed_at:%Y-%m-%dT%H:%M:%SZ}",
                                                      f"{p.created_at:%Y-%m-%dT%H:%M:%SZ}",
                                                      f"Pay Bill Online from {p.msisdn} Acc. {p.account_reference}",
                                                      "Completed", f"{p.amount}.00", "", "", "Pay Bill Online",
                                                      f"{p.msisdn} - ", "", p.account_reference]))
                    if p.reversal and p.reversal.get("completed_at"):
                        r = p.reversal
                        rows.append((r["completed_at"], [r["receipt"], f"{r['completed_at']:%Y-%m-%dT%H:%M:%SZ}",
                                                         f"{r['completed_at']:%Y-%m-%dT%H:%M:%SZ}",
                                                         f"Reversal of {p.receipt}", "Completed", "", f"{r['amount']}.00",
                                                         "", "Reversal", f"{p.msisdn} - ", p.receipt,
                                                         p.account_reference]))
            rows.sort(key=lambda r: r[0])
            return csv_response(["Receipt No.", "Completion Time", "Initiation Time", "Details", "Transaction Status",
                                 "Paid In", "Withdrawn", "Balance", "Reason Type", "Other Party Info",
                                 "Linked Transaction ID", "A/C No."], [row for _, row in rows])

        return bp

    def _push(self):
        denied = self._check_bearer()
        if denied:
            return denied
        if self.faults.take("error_before_processing"):
            return _daraja_error(500, "500.003.1001", "Internal Server Error")
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not self._password_ok(body):
            return _daraja_error(400, "400.002.02", "Bad Request - Invalid Password")
        if body.get("TransactionType") not in ("CustomerPayBillOnline", "CustomerBuyGoodsOnline"):
            return _daraja_error(400, "400.002.02", "Bad Request - Invalid TransactionType")
        amount = body.get("Amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
            return _daraja_error(400, "400.002.02", "Bad Request - Invalid Amount")
        msisdn = str(body.get("PhoneNumber") or "")
        if not msisdn.isdigit() or not 8 <= len(msisdn) <= 15 or str(body.get("PartyA")) != msisdn:
            return _daraja_error(400, "400.002.02", "Bad Request - Invalid PhoneNumber")
        if str(body.get("PartyB")) != self.shortcode:
            return _daraja_error(400, "400.002.02", "Bad Request - Invalid PartyB")
        reference = str(body.get("AccountReference") or "")
        if not reference or len(reference) > 12:
            return _daraja_error(400, "400.002.02", "Bad Request - Invalid AccountReference")
        if not str(body.get("CallBackURL") or "").startswith(("http://", "https://")):
            return _daraja_error(400, "400.002.02", "Bad Request - Invalid CallBackURL")
        n = next(self._seq)
        push = StkPush(f"{29000 + n}-{self._rng.randint(10**6, 10**7)}-1", f"ws_CO_{utc_now():%d%m%Y%H%M%S}{n:06d}",
                       amount, msisdn, reference, body["CallBackURL"])
        with self._lock:
            self.pushes[push.checkout_request_id] = push
        ack = {"MerchantRequestID": push.merchant_request_id, "CheckoutRequestID": push.checkout_request_id,
               "ResponseCode": "0", "ResponseDescription": "Success. Request accepted for processing",
               "CustomerMessage": "Success. Request accepted for processing"}
        if msisdn == FAILS:
            self._finish(push, 1)
        elif msisdn == REJECTED:
            self._finish(push, 1032)
        elif msisdn == TIMES_OUT:
            time.sleep(self.faults.setting("timeout_delay_ms") / 1000.0)
        if self.faults.take("error_after_success"):
            return _daraja_error(500, "500.003.1001", "Internal Server Error")
        return jsonify(ack)

    def _reversal(self):
        denied = self._check_bearer()
        if denied:
            return denied
        body = request.get_json(silent=True) or {}
        if body.get("CommandID") != "TransactionReversal" or body.get("Initiator") != self.initiator \
                or body.get("SecurityCredential") != self.credential:
            return _daraja_error(400, "400.002.02", "Bad Request - Invalid Initiator or CommandID")
        if not str(body.get("ResultURL") or "").startswith(("http://", "https://")):
            return _daraja_error(400, "400.002.02", "Bad Request - Invalid ResultURL")
        ack = {"OriginatorConversationID": f"{next(self._seq)}-{uuid.uuid4().hex[:8]}-1",
               "ConversationID": f"AG_{utc_now():%Y%m%d}_{uuid.uuid4().hex[:20]}", "ResponseCode": "0",
               "ResponseDescription": "Accept the service request successfully."}
        with self._lock:
            push = next((p for p in self.pushes.values() if p.receipt and p.receipt == body.get("TransactionID")), None)
            ok = push is not None and push.state == "completed" and push.reversal is None \
                and isinstance(body.get("Amount"), int) and 0 < body["Amount"] <= push.amount
            result = {"ResultType": 0, "OriginatorConversationID": ack["OriginatorConversationID"],
                      "ConversationID": ack["ConversationID"]}
            if ok:
                receipt = self._receipt()
                push.reversal = {"receipt": receipt, "amount": body["Amount"], "completed_at": utc_now()}
                result.update(ResultCode=0, ResultDesc="The service request is processed successfully.",
                              TransactionID=receipt)
            else:
                result.update(ResultCode="R000001", ResultDesc="The transaction cannot be reversed.", TransactionID="")
        self.callbacks.send(body["ResultURL"], {"Result": result})
        return jsonify(ack)


def make(ctx) -> MpesaStkSimulator:
    """The simulator contract: an object with ``.blueprint`` and ``.reset()``."""
    return MpesaStkSimulator(ctx)
