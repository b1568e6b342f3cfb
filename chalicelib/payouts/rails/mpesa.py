"""Safaricom M-Pesa B2C (Daraja ``/mpesa/b2c/v3/paymentrequest``) adapter, implementing ``PayoutRail``.

Wire format (Daraja):

* ``GET /oauth/v1/generate?grant_type=client_credentials`` with
  ``Authorization: Basic base64(consumer_key:consumer_secret)`` ->
  ``{"access_token", "expires_in": "3599"}`` (a string). Cached until shortly
  before expiry; a 401 drops it and asks once more.
* ``POST /mpesa/b2c/v3/paymentrequest`` with ``Authorization: Bearer``; body
  ``{"OriginatorConversationID": our reference, "InitiatorName",
  "SecurityCredential", "CommandID": "BusinessPayment", "Amount": <whole units>,
  "PartyA": shortcode, "PartyB": msisdn, "Remarks", "QueueTimeOutURL",
  "ResultURL", "Occassion"}`` -> ``{"ConversationID", "OriginatorConversationID",
  "ResponseCode": "0", "ResponseDescription"}``. (Daraja spells the optional
  field ``Occassion``; we send that spelling.) That answer only acknowledges the
  request: the outcome comes later.
* The outcome is POSTed to ``ResultURL`` as ``{"Result": {"ResultType",
  "ResultCode", "ResultDesc", "OriginatorConversationID", "ConversationID",
  "TransactionID", "ResultParameters": {"ResultParameter": [{"Key", "Value"}...]},
  "ReferenceData": {...}}}``; ``ResultCode`` 0 is success. If the request expires
  in Safaricom's queue, a notification goes to ``QueueTimeOutURL`` instead.
* ``POST /mpesa/transactionstatus/v1/query`` (``CommandID:
  TransactionStatusQuery``, ``OriginalConversationID``) is asynchronous too: it
  is acknowledged at once and its answer (``ResultParameters`` with
  ``TransactionStatus``, ``ReceiptNo``, ``Amount``...) is POSTed to its ResultURL.

How finality is reached, honestly. M-Pesa has no synchronous status read, and a
callback is unsigned, so nothing a callback *says* decides a payout:

1. Every callback URL we hand Daraja is per payout and carries a secret token
   (``callbacks.CallbackUrls``): ``<ResultURL>/<reference>/<token>``. The webhook
   hands the body to ``accept_callback``, which refuses a wrong token, a body
   naming another payout, and (through ``MpesaResultStore``) anything about a
   reference we never sent or whose ``ConversationID`` / amount differ from what
   Daraja acknowledged at send time.
2. A B2C result is then kept as a *hint* and makes the caller advance the payout;
3. ``status(reference)`` answers the *verdict*: only a Transaction Status answer
   (our query about our payment, matched on the payment's ``ConversationID``) is
   one. Without a final verdict it fires a Transaction Status query, whose answer
   reaches the same webhook (``Occassion = "mizani-status:<reference>"`` names the
   payout even in a "not found" answer), and answers ``unknown``
   (``awaiting_result``) or the non-final state recorded so far.

The caller's poll loop (Step Functions Wait -> status) therefore converges on
the iteration after the status answer arrives. Only Safaricom's answer about the
transaction makes a payout ``failed``; a queue timeout is ``unknown``.

Re-sending. Safaricom does not document what it does with a repeated
``OriginatorConversationID``, so ``resend_is_idempotent`` is False: after
``unknown``/``not_found`` the caller must not send again automatically; it goes
to manual review. (The local simulator refuses a repeat with 409, which
``send`` turns into a status query.)
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Callable, Literal, Protocol

from chalicelib.errors import ValidationError
from chalicelib.money import Money, exponent
from chalicelib.payouts.rails.callbacks import CallbackUrls
from chalicelib.http import BearerToken, HttpClient, HttpResponse, TransportError
from chalicelib.payouts.rails.port import (
    NOT_FOUND,
    PayeeCheck,
    RailNotSent,
    RailStatus,
    check_reference,
    normalize_msisdn,
    safe_note,
)

#: Daraja's Remarks / Occassion stop at 100 characters.
MPESA_TEXT_LIMIT = 100

#: Prefix of the ``Occassion`` we put on status queries, echoed back in ``ReferenceData``.
STATUS_QUERY_TAG = "mizani-status:"

#: Transaction Status ``TransactionStatus`` values, normalised.
_TS_SUCCEEDED = {"completed", "success", "successful"}
_TS_FAILED = {"failed", "declined", "cancelled", "canceled", "expired"}
_TS_PENDING = {"pending", "processing", "in progress", "authorized", "authorised"}

#: ResultCode of a Transaction Status answer that means "no such transaction" (simulator convention;
#: Safaricom does not publish one). Any other non-zero code says the query failed, not the payment.
TS_NOT_FOUND_CODES = frozenset({"R000002"})

Secret = str | Callable[[], str]
CallbackKind = Literal["payment_result", "status_result", "queue_timeout"]


@dataclass(frozen=True)
class MpesaCallback:
    """One parsed Daraja callback.

    ``reference`` is our OriginatorConversationID of the *payment* (``None`` if the
    body does not say). ``dedup_key`` is what the caller deduplicates on: the
    ConversationID of the message (a status answer has its own, so a status
    answer never hides the payment result).
    """

    kind: CallbackKind
    reference: str | None
    conversation_id: str | None
    status: RailStatus
    #: The ConversationID Daraja gave the *payment* (a status answer carries it among its parameters).
    payment_conversation_id: str | None = None
    #: The amount the callback reports, in whole units as Daraja writes it (``None`` if absent).
    amount: str | int | None = None

    @property
    def dedup_key(self) -> str | None:
        return f"{self.kind}:{self.conversation_id}" if self.conversation_id else None



class ResultStore(Protocol):
    """What the rail needs of ``mpesa_store.MpesaResultStore`` (the record of each payout sent)."""

    def sending(self, reference: str, amount_whole: int) -> None: ...

    def sent(self, reference: str, conversation_id: str) -> None: ...

    def record(self, callback: "MpesaCallback") -> bool: ...

    def get(self, reference: str) -> RailStatus | None: ...


def _load(body) -> dict:
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):
            raise ValidationError("invalid_callback", "the M-Pesa callback body is not JSON") from None
    if not isinstance(body, dict):
        raise ValidationError("invalid_callback", "the M-Pesa callback body is not a JSON object")
    result = body.get("Result", body)  # Daraja wraps in {"Result": ...}; tolerate the bare object
    if not isinstance(result, dict):
        raise ValidationError("invalid_callback", "the M-Pesa callback has no Result object")
    return result


def _params(container, list_key: str) -> dict:
    """``{"ResultParameter": [{"Key", "Value"}]}`` (or a single object, or a bare list) -> dict."""
    if isinstance(container, dict):
        items = container.get(list_key, [])
    else:
        items = container or []
    if isinstance(items, dict):
        items = [items]
    out = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and "Key" in item:
            out[str(item["Key"])] = item.get("Value")
    return out


def _code(value) -> str:
    return str(value).strip() if value is not None else ""


def parse_result_callback(body) -> MpesaCallback:
    """Parse what Daraja POSTs to ResultURL: a B2C payment result or a Transaction Status answer."""
    result = _load(body)
    params = _params(result.get("ResultParameters"), "ResultParameter")
    refdata = _params(result.get("ReferenceData"), "ReferenceItem")
    code = _code(result.get("ResultCode"))
    desc = str(result.get("ResultDesc") or "")
    conversation_id = result.get("ConversationID") or None
    occasion = str(refdata.get("Occasion") or refdata.get("Occassion") or "")
    is_status_answer = "TransactionStatus" in params or occasion.startswith(STATUS_QUERY_TAG)

    if not is_status_answer:
        reference = result.get("OriginatorConversationID") or None
        if _code(result.get("ResultType")) == "1" or "timed out" in desc.lower():
            # A queue-timeout notice that reached the result URL: the request was not processed
            # *yet*, which is not a failure. Never let it void a payout.
            status = RailStatus("unknown", reason="queue_timeout", raw=result)
            return MpesaCallback("queue_timeout", reference, conversation_id, status, conversation_id)
        if code == "0":
            receipt = params.get("TransactionReceipt") or result.get("TransactionID") or None
            # "254712345678 - John Doe": Safaricom's name for the wallet that received the money.
            public_name = str(params.get("ReceiverPartyPublicName") or "")
            holder = public_name.split(" - ", 1)[1].strip() if " - " in public_name else None
            status = RailStatus("succeeded", provider_reference=receipt, raw=result, payee_name=holder or None)
        elif code:
            status = RailStatus("failed", reason=f"{code}: {desc}".strip(), raw=result)
        else:
            status = RailStatus("unknown", reason="result_without_code", raw=result)
        return MpesaCallback("payment_result", reference, conversation_id, status, conversation_id,
                             params.get("TransactionAmount"))

    # A Transaction Status answer: the payment's own ids are in ResultParameters.
    reference = (
        params.get("OriginatorConversationID")
        or params.get("Originator Conversation ID")
        or (occasion[len(STATUS_QUERY_TAG):] if occasion.startswith(STATUS_QUERY_TAG) else None)
        or None
    )
    payment_conversation_id = params.get("ConversationID") or None
    if code != "0":
        reason = NOT_FOUND if code in TS_NOT_FOUND_CODES else f"status_query_failed:{code}: {desc}"
        return MpesaCallback("status_result", reference, conversation_id, RailStatus("unknown", reason=reason, raw=result),
                             payment_conversation_id)
    ts = str(params.get("TransactionStatus") or "").strip().lower()
    receipt = params.get("ReceiptNo") or None
    if ts in _TS_SUCCEEDED:
        status = RailStatus("succeeded", provider_reference=receipt, raw=result)
    elif ts in _TS_FAILED:
        status = RailStatus("failed", provider_reference=receipt, reason=f"transaction_status:{ts}", raw=result)
    elif ts in _TS_PENDING:
        status = RailStatus("pending", provider_reference=receipt, raw=result)
    else:  # "reversed" or anything new: a human decides
        status = RailStatus("unknown", provider_reference=receipt, reason=f"transaction_status:{ts or 'missing'}", raw=result)
    return MpesaCallback("status_result", reference, conversation_id, status, payment_conversation_id, params.get("Amount"))


def parse_queue_timeout_callback(body) -> MpesaCallback:
    """Parse what Daraja POSTs to QueueTimeOutURL. Always ``unknown``: poll ``status``."""
    result = _load(body)
    reference = result.get("OriginatorConversationID") or None
    conversation_id = result.get("ConversationID") or None
    status = RailStatus("unknown", reason="queue_timeout", raw=result)
    return MpesaCallback("queue_timeout", reference, conversation_id, status, conversation_id)


def _reveal(secret: Secret) -> str:
    return secret() if callable(secret) else secret


class MpesaB2CRail:
    """M-Pesa B2C ``BusinessPayment`` as a ``PayoutRail`` (see the module doc for finality)."""

    name = "mpesa"
    resend_is_idempotent = False  # Safaricom documents no dedup of OriginatorConversationID

    def __init__(
        self,
        base_url: str,
        consumer_key: Secret,
        consumer_secret: Secret,
        initiator_name: str,
        security_credential: Secret,
        shortcode: str,
        result_url: str,
        queue_timeout_url: str,
        *,
        results: ResultStore | None = None,
        callbacks: CallbackUrls | None = None,
        status_result_url: str | None = None,
        command_id: str = "BusinessPayment",
        currency: str = "KES",
        http: HttpClient | None = None,
        timeout_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.base_url = base_url.rstrip("/")
        self._consumer_key = consumer_key
        self._consumer_secret = consumer_secret
        self.initiator_name = initiator_name
        self._security_credential = security_credential
        self.shortcode = str(shortcode)
        self.result_url = result_url
        self.queue_timeout_url = queue_timeout_url
        self.status_result_url = status_result_url or result_url
        if results is None:
            from chalicelib.documents import MemoryDocuments
            from chalicelib.payouts.rails.mpesa_store import MpesaResultStore

            results = MpesaResultStore(MemoryDocuments())
        self.results = results
        # Without a configured secret (unit tests) the token is still an HMAC, under a fixed test key.
        self.callbacks = callbacks or CallbackUrls("mpesa-unconfigured-callback-key", self.name)
        self.command_id = command_id
        self.currency = currency
        self.http = http or HttpClient(timeout_seconds)
        self._clock = clock
        self._tokens = BearerToken(
            self.http, "Daraja", "GET", f"{self.base_url}/oauth/v1/generate?grant_type=client_credentials",
            credentials=lambda: (_reveal(self._consumer_key), _reveal(self._consumer_secret)),
            default_ttl=3599, clock=clock,
        )

    # -- token -------------------------------------------------------------------
    def _access_token(self) -> str:
        """A cached bearer token; raises ``RailNotSent`` if Daraja will not give one."""
        return self._tokens.get()

    def _drop_token(self, token: str) -> None:
        self._tokens.drop(token)

    def _post(self, path: str, body: dict) -> HttpResponse:
        """One authenticated POST (no transport retry); a 401 re-authenticates once (nothing was processed)."""
        for auth_attempt in range(2):
            token = self._access_token()
            response = self.http.request(
                "POST", f"{self.base_url}{path}", headers={"Authorization": f"Bearer {token}"}, json_body=body, retry=False
            )
            if response.status == 401 and auth_attempt == 0:
                self._drop_token(token)
                continue
            return response
        return response

    # -- PayoutRail ---------------------------------------------------------------
    def whole_units(self, amount: Money) -> int:
        """B2C takes whole currency units; a fractional amount must be split or rounded by the caller."""
        if not isinstance(amount, Money):
            raise ValidationError("invalid_amount", "amount must be Money", path="amount")
        amount.require_positive()
        if amount.currency != self.currency:
            raise ValidationError(
                "unsupported_currency", f"M-Pesa B2C pays {self.currency}, not {amount.currency}", path="amount.currency"
            )
        scale = 10 ** exponent(amount.currency)
        if amount.minor % scale:
            raise ValidationError(
                "amount_not_whole_units", f"M-Pesa B2C pays whole {amount.currency}; {amount} has cents", path="amount"
            )
        return amount.minor // scale

    def send(self, reference: str, amount: Money, msisdn: str, note: str) -> RailStatus:
        check_reference(reference)
        body = {
            "OriginatorConversationID": reference,
            "InitiatorName": self.initiator_name,
            "SecurityCredential": _reveal(self._security_credential),
            "CommandID": self.command_id,
            "Amount": self.whole_units(amount),
            "PartyA": self.shortcode,
            "PartyB": normalize_msisdn(msisdn),
            "Remarks": safe_note(note, MPESA_TEXT_LIMIT),
            "QueueTimeOutURL": self.callbacks.url(self.queue_timeout_url, reference),
            "ResultURL": self.callbacks.url(self.result_url, reference),
            "Occassion": safe_note(reference, MPESA_TEXT_LIMIT),
        }
        # Recorded before the request leaves: a callback for this reference is now plausible.
        self.results.sending(reference, body["Amount"])
        try:
            response = self._post("/mpesa/b2c/v3/paymentrequest", body)
        except TransportError as err:
            if not err.maybe_delivered:
                raise RailNotSent("provider_unavailable", f"Daraja unreachable: {err.message}") from err
            return RailStatus("unknown", reason=err.kind, raw={"error": err.message})
        payload = response.json()
        raw = {"http_status": response.status, "body": payload if payload is not None else response.text[:500]}
        if response.status == 200 and isinstance(payload, dict):
            if _code(payload.get("ResponseCode")) == "0":
                if payload.get("ConversationID"):
                    self.results.sent(reference, str(payload["ConversationID"]))
                return RailStatus("pending", raw=raw)
            if _is_duplicate(payload):
                return self.status(reference)
            return RailStatus("failed", reason=f"rejected:{payload.get('ResponseCode')}", raw=raw)
        if response.status == 409 or (isinstance(payload, dict) and _is_duplicate(payload)):
            return self.status(reference)  # Safaricom already has this OriginatorConversationID
        if response.status in (401, 403, 429):
            raise RailNotSent(
                "provider_unavailable", f"Daraja did not accept the request (HTTP {response.status})", http_status=response.status
            )
        if response.status >= 500 or response.status == 408 or response.status == 200:
            return RailStatus("unknown", reason=f"http_{response.status}", raw=raw)
        error_code = payload.get("errorCode") if isinstance(payload, dict) else None
        return RailStatus("failed", reason=f"rejected:{error_code or response.status}", raw=raw)

    def status(self, reference: str, **_wallet) -> RailStatus:
        known = self.results.get(reference)
        if known is not None and known.is_final:
            return known
        query = {
            "Initiator": self.initiator_name,
            "SecurityCredential": _reveal(self._security_credential),
            "CommandID": "TransactionStatusQuery",
            "OriginalConversationID": reference,
            "PartyA": self.shortcode,
            "IdentifierType": "4",
            "ResultURL": self.callbacks.url(self.status_result_url, reference),
            "QueueTimeOutURL": self.callbacks.url(self.queue_timeout_url, reference),
            "Remarks": "payout status",
            "Occassion": f"{STATUS_QUERY_TAG}{reference}"[:MPESA_TEXT_LIMIT],
        }
        try:
            response = self._post("/mpesa/transactionstatus/v1/query", query)
        except (TransportError, RailNotSent) as err:
            return known or RailStatus("unknown", reason="status_query_unsent", raw={"error": err.message})
        payload = response.json()
        raw = {"http_status": response.status, "status_query": payload if payload is not None else response.text[:500]}
        if known is not None:
            return known
        if response.status == 200 and isinstance(payload, dict) and _code(payload.get("ResponseCode")) == "0":
            return RailStatus("unknown", reason="awaiting_result", raw=raw)
        return RailStatus("unknown", reason=f"status_query_http_{response.status}", raw=raw)


    def check_payee(self, msisdn: str, currency: str) -> PayeeCheck:
        """Daraja has no account lookup before a payment: the holder's name comes back with the
        first payout's result (``ReceiverPartyPublicName``), and is compared then."""
        return PayeeCheck(checked=False)

    # -- callbacks (hints) ----------------------------------------------------------
    def accept_callback(self, reference: str, token: str | None, body, *, queue_timeout: bool = False) -> bool:
        """A POST to one of our per-payout callback URLs: True if it is kept (then advance the payout).

        Refused (False, nothing stored): a token that is not this payout's, a body about
        another payout, or anything ``MpesaResultStore.record`` does not match to what we
        sent. Raises ``ValidationError`` for a body that is not a Daraja callback.
        """
        if not self.callbacks.verify(reference, token):
            return False
        callback = parse_queue_timeout_callback(body) if queue_timeout else parse_result_callback(body)
        if callback.reference is None:
            callback = replace(callback, reference=reference)  # a "not found" answer: the URL names the payout
        if callback.reference != reference:
            return False
        return self.results.record(callback)


    def callback_payout(self, body, *, payout_id: str | None = None, token: str | None = None,
                        kind: str = "result") -> str | None:
        """The payout to advance after a callback, or ``None``: the bare URL (no token) is never kept."""
        if not payout_id or not token:
            return None
        kept = self.accept_callback(payout_id, token, body or b"{}", queue_timeout=kind == "timeout")
        return payout_id if kept else None


def _is_duplicate(payload: dict) -> bool:
    text = " ".join(str(payload.get(k) or "") for k in ("errorMessage", "ResponseDescription")).lower()
    return "duplicate" in text


def from_settings(settings, *, results: ResultStore | None = None, http: HttpClient | None = None, **_ports) -> MpesaB2CRail:
    """The rail as the registry builds it, from ``MIZANI_MPESA_*`` (see ``config.py``)."""
    from chalicelib.payouts.rails import config as c

    api = c.local_api_url()
    return MpesaB2CRail(
        base_url=c.env_value("MIZANI_MPESA_BASE_URL", settings, c.local_sandbox_url(settings)),
        consumer_key=c.secret_value("MIZANI_MPESA_CONSUMER_KEY", settings, c.LOCAL_MPESA_CONSUMER_KEY),
        consumer_secret=c.secret_value("MIZANI_MPESA_CONSUMER_SECRET", settings, c.LOCAL_MPESA_CONSUMER_SECRET),
        initiator_name=c.env_value("MIZANI_MPESA_INITIATOR_NAME", settings, c.LOCAL_MPESA_INITIATOR_NAME),
        security_credential=c.secret_value("MIZANI_MPESA_SECURITY_CREDENTIAL", settings, c.LOCAL_MPESA_SECURITY_CREDENTIAL),
        shortcode=c.env_value("MIZANI_MPESA_SHORTCODE", settings, c.LOCAL_MPESA_SHORTCODE),
        result_url=c.env_value("MIZANI_MPESA_RESULT_URL", settings, f"{api}/v1/webhooks/mpesa/result"),
        queue_timeout_url=c.env_value("MIZANI_MPESA_QUEUE_TIMEOUT_URL", settings, f"{api}/v1/webhooks/mpesa/timeout"),
        status_result_url=c.env_value("MIZANI_MPESA_STATUS_RESULT_URL", settings, required=False),
        results=results,
        callbacks=c.callback_urls("mpesa", settings),
        http=http,
        timeout_seconds=c.http_timeout(settings),
    )
