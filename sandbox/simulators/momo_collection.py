"""MTN MoMo Collection simulator: token, requesttopay, its status, the one-shot callback, and refunds.

MTN's wire format on MTN's paths, so ``MtnMomoCollection`` runs unchanged against it:

- ``POST /collection/token/`` (Basic ``MIZANI_MOMO_COLLECTION_API_USER:..._API_KEY``, the Collection
  subscription key ``MIZANI_MOMO_COLLECTION_SUBSCRIPTION_KEY``; local defaults of the adapter).
- ``POST /collection/v1_0/requesttopay`` (Bearer, ``X-Reference-Id`` a v4 UUID, ``X-Target-Environment``,
  ``X-Callback-Url``) -> 202; a reused ``X-Reference-Id`` is ``409 RESOURCE_ALREADY_EXIST``.
- ``GET /collection/v1_0/requesttopay/<referenceId>`` -> the request (``status`` ``PENDING`` |
  ``SUCCESSFUL`` | ``FAILED``, ``reason``, ``financialTransactionId`` once paid); 404 if unknown.
- ``POST /disbursement/v1_0/refund`` and ``GET /disbursement/v1_0/refund/<referenceId>``: the refund
  of a successful request (``referenceIdToRefund``), authorised by the Disbursement simulator's token
  (``sandbox/simulators/momo.py``, through ``ctx.simulators``); it succeeds at once, credits the
  payer back, and is refused (400 ``NOT_ALLOWED``) for a request that was not paid or already refunded.

A request stays ``PENDING`` until the payer answers on the phone: ``POST /sandbox/payments/<externalId>/pay``
``{"outcome": "succeeded" | "failed"}`` (``ctx.payers``: the Stripe simulator hands it here) makes it
``SUCCESSFUL`` (or ``FAILED`` ``APPROVAL_REJECTED``) and PUTs it once to its ``X-Callback-Url``, never
retried. MTN's sandbox test numbers, as payers:

==============  =====================================================================
46733123450     declines: ``FAILED`` ``INTERNAL_PROCESSING_ERROR`` at once (e.g. not enough funds)
46733123451     rejects: ``FAILED`` ``APPROVAL_REJECTED`` at once
46733123452     times out: the POST answers after ``timeout_delay_ms`` (default 1000 ms), by which time a
                client with a shorter timeout has given up (``unknown``); the request exists, ``PENDING``,
                and the payer can still approve it
46733123453     never answers: ``PENDING`` forever, no callback (``/pay`` is refused: the phone is off)
46733123454     never answers, likewise
anything else   ``PENDING`` until ``/pay``
==============  =====================================================================

Faults (``POST /sandbox/faults/momo_collection``, the MTN simulator's document): ``error_after_success``
(the request is made, the POST answers 500), ``error_before_processing``, ``lose_callback``,
``duplicate_callback``, ``status_error``, ``token_error``, ``latency_ms``, ``timeout_delay_ms``.

``GET /sandbox/statements/mtn_momo_collection``: the collection account's statement, CSV
``financialTransactionId,externalId,type,amount,currency,status,date`` (``type`` ``REQUEST_TO_PAY`` or
``REFUND``; final requests and refunds, amounts in major units as on the wire, RFC 3339 UTC).
"""
from __future__ import annotations

import itertools
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from flask import Blueprint, Response, jsonify, request

from chalicelib.errors import ValidationError
from chalicelib.money import Money, check_currency
from chalicelib.payments.collections import momo as adapter
from chalicelib.payouts.rails import config as rail_config
from sandbox.simulators.momo import (
    FAILS, ONGOING, PENDING, REJECTED, TIMES_OUT, CallbackSender, Faults, MtnProductAuth, _error, csv_response, env_or_local, rfc3339,
    utc_now,
)

DEFAULT_TIMEOUT_DELAY_MS = 1000
NEVER_ANSWERS = frozenset({ONGOING, PENDING})


@dataclass
class RequestToPay:
    reference_id: str
    external_id: str
    money: Money
    amount: str
    msisdn: str
    payer_message: str
    payee_note: str
    callback_url: str | None
    status: str = "PENDING"
    reason: str | None = None
    financial_transaction_id: str | None = None
    created_at: datetime = field(default_factory=utc_now)
    completed_at: datetime | None = None
    refunded: bool = False

    def to_wire(self) -> dict:
        body = {"amount": self.amount, "currency": self.money.currency, "externalId": self.external_id,
                "payer": {"partyIdType": "MSISDN", "partyId": self.msisdn}, "payerMessage": self.payer_message,
                "payeeNote": self.payee_note, "status": self.status}
        if self.financial_transaction_id:
            body["financialTransactionId"] = self.financial_transaction_id
        if self.reason:
            body["reason"] = self.reason
        return body


@dataclass
class Refund:
    reference_id: str
    external_id: str
    money: Money
    amount: str
    refunded: RequestToPay
    status: str = "SUCCESSFUL"
    financial_transaction_id: str | None = None
    completed_at: datetime = field(default_factory=utc_now)

    def to_wire(self) -> dict:
        return {"amount": self.amount, "currency": self.money.currency, "externalId": self.external_id,
                "payee": {"partyIdType": "MSISDN", "partyId": self.refunded.msisdn}, "status": self.status,
                "financialTransactionId": self.financial_transaction_id, "payerMessage": "Mizani refund",
                "payeeNote": "Mizani refund"}


class MomoCollectionSimulator(MtnProductAuth):
    """State and routes of the MTN MoMo Collection simulator (see module doc)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.api_user = env_or_local(ctx, "MIZANI_MOMO_COLLECTION_API_USER", adapter.LOCAL_COLLECTION_API_USER)
        self.api_key = env_or_local(ctx, "MIZANI_MOMO_COLLECTION_API_KEY", adapter.LOCAL_COLLECTION_API_KEY)
        self.subscription_key = env_or_local(ctx, "MIZANI_MOMO_COLLECTION_SUBSCRIPTION_KEY",
                                             adapter.LOCAL_COLLECTION_SUBSCRIPTION_KEY)
        self.target_environment = env_or_local(ctx, "MIZANI_MOMO_TARGET_ENVIRONMENT",
                                               rail_config.LOCAL_MOMO_TARGET_ENVIRONMENT)
        self.faults = Faults({"timeout_delay_ms": DEFAULT_TIMEOUT_DELAY_MS})
        self.callbacks = CallbackSender(self.faults, method="PUT")
        self._lock = threading.RLock()
        self.blueprint = self._build_blueprint()
        self.reset()
        ctx.payers.append(self)

    def reset(self) -> None:
        self.callbacks.reset()
        with self._lock:
            self.requests: dict[str, RequestToPay] = {}
            self.refunds: dict[str, Refund] = {}
            self.tokens: dict[str, float] = {}
            self._ids = itertools.count(1)
        self.faults.reset()

    # -- auth (MtnProductAuth) -------------------------------------------------------------------
    def _disbursement_bearer(self):
        """Refunds are the Disbursement product's: its simulator's token and key decide."""
        disbursement = self.ctx.simulators.get("sandbox.simulators.momo")
        if disbursement is None:
            return _error(503, "SERVICE_UNAVAILABLE", "the Disbursement simulator is not loaded")
        return disbursement._check_bearer()

    # -- outcomes ----------------------------------------------------------------------------------
    def _finish(self, rtp: RequestToPay, status: str, reason: str | None = None) -> None:
        with self._lock:
            if rtp.status != "PENDING":
                return
            rtp.status, rtp.reason, rtp.completed_at = status, reason, utc_now()
            if status == "SUCCESSFUL":
                rtp.financial_transaction_id = str(300_000_000 + next(self._ids))
            body = rtp.to_wire()
        self.callbacks.send(rtp.callback_url, body)

    def _by_external(self, external_id: str) -> RequestToPay | None:
        with self._lock:
            return next((r for r in self.requests.values() if r.external_id == external_id), None)

    # -- ctx.payers ---------------------------------------------------------------------------------
    def owns_payment(self, payment_id: str) -> bool:
        return self._by_external(payment_id) is not None

    def pay_payment(self, external_id: str, body: dict) -> tuple[int, dict]:
        rtp = self._by_external(external_id)
        outcome = body.get("outcome", "succeeded")
        if outcome not in ("succeeded", "failed"):
            return 400, {"code": "INVALID_PARAMETER", "message": "outcome is succeeded or failed"}
        if rtp.msisdn in NEVER_ANSWERS:
            return 409, {"code": "PAYER_DELAYED", "message": "this test number never answers"}
        if rtp.status != "PENDING":
            return 409, {"code": "NOT_ALLOWED", "message": f"the request is {rtp.status}"}
        self._finish(rtp, "SUCCESSFUL" if outcome == "succeeded" else "FAILED",
                     None if outcome == "succeeded" else "APPROVAL_REJECTED")
        with self._lock:
            return 200, {"requesttopay": rtp.to_wire(), "referenceId": rtp.reference_id}

    def wallet(self, msisdn: str) -> dict:
        with self._lock:
            paid = [r for r in self.requests.values() if r.msisdn == msisdn and r.status == "SUCCESSFUL"]
            back = [f for f in self.refunds.values() if f.refunded.msisdn == msisdn]
        debits: dict[str, int] = {}
        for r in paid:
            debits[r.money.currency] = debits.get(r.money.currency, 0) + r.money.minor
        for f in back:
            debits[f.money.currency] = debits.get(f.money.currency, 0) - f.money.minor
        return {"msisdn": msisdn, "paid": [{"amount": v, "currency": k} for k, v in sorted(debits.items())]}

    # -- routes ----------------------------------------------------------------------------------------
    def _build_blueprint(self) -> Blueprint:
        bp = Blueprint("momo_collection", __name__)

        @bp.post("/collection/token/")
        def token():
            return self._grant_token()

        @bp.post("/collection/v1_0/requesttopay")
        def requesttopay():
            try:
                return self._request_to_pay()
            finally:
                self.faults.delay()

        @bp.get("/collection/v1_0/requesttopay/<reference_id>")
        def requesttopay_status(reference_id):
            return self._status_reply(self.requests, reference_id)

        @bp.post("/disbursement/v1_0/refund")
        def refund():
            denied = self._disbursement_bearer()
            if denied:
                return denied
            return self._refund()

        @bp.get("/disbursement/v1_0/refund/<reference_id>")
        def refund_status(reference_id):
            denied = self._disbursement_bearer()
            if denied:
                return denied
            with self._lock:
                found = self.refunds.get(reference_id)
                body = found.to_wire() if found else None
            if body is None:
                return _error(404, "RESOURCE_NOT_FOUND", "Requested resource was not found.")
            return jsonify(body)

        @bp.route("/sandbox/faults/momo_collection", methods=["GET", "POST", "DELETE"])
        def faults():
            if request.method == "DELETE":
                self.faults.reset()
            elif request.method == "POST":
                try:
                    actions = self.faults.update(request.get_json(silent=True))
                except ValueError as err:
                    return _error(400, "INVALID_FAULT", str(err))
                if actions:
                    return _error(400, "INVALID_FAULT", f"unknown action {actions[0]!r}")
            return jsonify(self.faults.snapshot())

        @bp.get("/sandbox/momo_collection/wallets/<msisdn>")
        def wallet(msisdn):
            return jsonify(self.wallet(msisdn.lstrip("+")))

        @bp.get("/sandbox/statements/mtn_momo_collection")
        def statement():
            with self._lock:
                rows = [(r.completed_at, [r.financial_transaction_id or "", r.external_id, "REQUEST_TO_PAY", r.amount,
                                          r.money.currency, r.status, rfc3339(r.completed_at)])
                        for r in self.requests.values() if r.completed_at is not None]
                rows += [(f.completed_at, [f.financial_transaction_id or "", f.external_id, "REFUND", f.amount,
                                           f.money.currency, f.status, rfc3339(f.completed_at)])
                         for f in self.refunds.values()]
            rows.sort(key=lambda r: r[0])
            return csv_response(["financialTransactionId", "externalId", "type", "amount", "currency", "status", "date"],
                                [row for _, row in rows])

        return bp

    def _request_to_pay(self):
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
        if not isinstance(body, dict):
            return _error(400, "INVALID_PARAMETER", "the body must be a JSON object")
        payer = body.get("payer") or {}
        try:
            check_currency(body.get("currency"))
            money = Money.parse(body.get("amount"), body.get("currency"))
            money.require_positive()
        except ValidationError as err:
            return _error(400, "INVALID_PARAMETER", f"amount/currency: {err.message}")
        msisdn = str(payer.get("partyId") or "") if isinstance(payer, dict) else ""
        if not isinstance(payer, dict) or payer.get("partyIdType") != "MSISDN" or not msisdn.isdigit() \
                or not 8 <= len(msisdn) <= 15:
            return _error(400, "PAYER_NOT_FOUND", "payer.partyId is not an MSISDN")
        rtp = RequestToPay(reference_id, str(body.get("externalId") or ""), money, body["amount"], msisdn,
                           str(body.get("payerMessage") or ""), str(body.get("payeeNote") or ""),
                           request.headers.get("X-Callback-Url") or None)
        with self._lock:
            if reference_id in self.requests:
                return _error(409, "RESOURCE_ALREADY_EXIST", "Duplicated reference id. Creation of resource failed.")
            self.requests[reference_id] = rtp
        if msisdn == FAILS:
            self._finish(rtp, "FAILED", "INTERNAL_PROCESSING_ERROR")
        elif msisdn == REJECTED:
            self._finish(rtp, "FAILED", "APPROVAL_REJECTED")
        elif msisdn == TIMES_OUT:
            time.sleep(self.faults.setting("timeout_delay_ms") / 1000.0)  # the client gives up first
        if self.faults.take("error_after_success"):
            return _error(500, "INTERNAL_PROCESSING_ERROR", "An internal error occurred while processing.")
        return Response(status=202)

    def _refund(self):
        reference_id = request.headers.get("X-Reference-Id", "")
        try:
            if uuid.UUID(reference_id).version != 4:
                raise ValueError
        except ValueError:
            return _error(400, "INVALID_REFERENCE_ID", "X-Reference-Id does not meet UUID Version 4")
        body = request.get_json(silent=True) or {}
        with self._lock:
            if reference_id in self.refunds:
                return _error(409, "RESOURCE_ALREADY_EXIST", "Duplicated reference id. Creation of resource failed.")
            original = self.requests.get(str(body.get("referenceIdToRefund") or ""))
            try:
                money = Money.parse(body.get("amount"), body.get("currency"))
            except ValidationError as err:
                return _error(400, "INVALID_PARAMETER", f"amount/currency: {err.message}")
            if original is None or original.status != "SUCCESSFUL" or original.refunded \
                    or money.currency != original.money.currency or money.minor > original.money.minor:
                return _error(400, "NOT_ALLOWED", "the transaction to refund is not refundable (not paid, already "
                                                  "refunded, or a larger amount)")
            original.refunded = True
            self.refunds[reference_id] = Refund(reference_id, str(body.get("externalId") or ""), money, body["amount"],
                                                original, financial_transaction_id=str(400_000_000 + next(self._ids)))
        return Response(status=202)


def make(ctx) -> MomoCollectionSimulator:
    """The simulator contract: an object with ``.blueprint`` and ``.reset()``."""
    return MomoCollectionSimulator(ctx)
