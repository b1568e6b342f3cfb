"""M-Pesa Lipa na M-Pesa Online (Daraja STK push, STK query, reversal), implementing ``CollectionRail``.

Wire format (Daraja):

* ``GET /oauth/v1/generate?grant_type=client_credentials`` (Basic consumer key:secret) -> the bearer
  token, cached (``chalicelib.http.BearerToken``, the payout rail's).
* ``POST /mpesa/stkpush/v1/processrequest`` ``{"BusinessShortCode", "Password", "Timestamp",
  "TransactionType": "CustomerPayBillOnline", "Amount": <whole KES>, "PartyA": <payer>, "PartyB":
  <shortcode>, "PhoneNumber": <payer>, "CallBackURL", "AccountReference": <ours, at most 12 characters>,
  "TransactionDesc"}`` with ``Password = base64(BusinessShortCode + Passkey + Timestamp)`` and
  ``Timestamp`` ``YYYYMMDDHHMMSS`` -> ``{"MerchantRequestID", "CheckoutRequestID", "ResponseCode": "0",
  "ResponseDescription", "CustomerMessage"}``: the prompt is on the payer's phone.
* The outcome is POSTed to ``CallBackURL``: ``{"Body": {"stkCallback": {"MerchantRequestID",
  "CheckoutRequestID", "ResultCode", "ResultDesc", "CallbackMetadata": {"Item": [{"Name": "Amount"},
  {"Name": "MpesaReceiptNumber"}, {"Name": "TransactionDate"}, {"Name": "PhoneNumber"}]}}}}``: a hint;
  kept for the receipt (and the CheckoutRequestID when the request's own answer was lost).
* ``POST /mpesa/stkpushquery/v1/query`` ``{"BusinessShortCode", "Password", "Timestamp",
  "CheckoutRequestID"}`` -> ``{"ResponseCode", "ResponseDescription", "MerchantRequestID",
  "CheckoutRequestID", "ResultCode", "ResultDesc"}``: the verdict. ``ResultCode`` ``0`` paid; another code
  (``1032`` cancelled by the payer, ``1`` insufficient balance, ``1037`` no answer from the phone,
  ``2001`` wrong PIN...) is Safaricom saying nothing was collected. While the payer has not answered,
  Daraja answers HTTP 500 ``{"errorCode": "500.001.1001", "errorMessage": "The transaction is being
  processed"}``: pending.
* Reversal (a refund): ``POST /mpesa/reversal/v1/request`` ``{"Initiator", "SecurityCredential",
  "CommandID": "TransactionReversal", "TransactionID": <the receipt>, "Amount", "ReceiverParty":
  <shortcode>, "RecieverIdentifierType": "11", "ResultURL", "QueueTimeOutURL", "Remarks", "Occasion"}``
  (Daraja spells ``Reciever``) -> ``{"OriginatorConversationID", "ConversationID", "ResponseCode": "0"}``;
  the result is POSTed to ``ResultURL`` as ``{"Result": {"ResultType", "ResultCode", "ResultDesc",
  "OriginatorConversationID", "ConversationID", "TransactionID"}}``.

Honest finality. Safaricom does not deduplicate STK pushes, so ``request_is_idempotent`` is False: a
reference already requested is never pushed again (the record says so), and a request whose answer was
lost (a timeout) is known only through its callback, whose URL names the collection and carries its
token: the callback brings the CheckoutRequestID, then the query decides. A reversal has no query of
its own: its result on the collection's tokened result URL, matched on the ConversationID Daraja gave
when it accepted the reversal, decides it; until then the refund is pending (the refund step retries,
then a human looks).

Variables: ``MIZANI_MPESA_STK_SHORTCODE`` (the paybill), ``MIZANI_MPESA_PASSKEY`` (secret),
``MIZANI_MPESA_STK_CALLBACK_URL`` (a base), and the payout rail's ``MIZANI_MPESA_BASE_URL``, consumer
key/secret, initiator and security credential (for reversals).
"""
from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timezone
from typing import Callable

from chalicelib.errors import ValidationError
from chalicelib.http import BearerToken, HttpClient, HttpResponse, TransportError
from chalicelib.money import Money, exponent
from chalicelib.payouts.rails.callbacks import CallbackUrls
from chalicelib.payouts.rails.port import RailNotSent, RailStatus, normalize_msisdn, safe_note

Secret = str | Callable[[], str]
#: Daraja's "the payer has not answered yet" on an STK query (HTTP 500).
STILL_PROCESSING = "500.001.1001"
#: AccountReference / TransactionDesc limits (the prompt shows the reference).
ACCOUNT_REFERENCE_LIMIT = 12
LOCAL_STK_SHORTCODE = "174379"
LOCAL_PASSKEY = "mpesa-local-passkey"


def _reveal(secret: Secret) -> str:
    return secret() if callable(secret) else secret


def _load(body) -> dict:
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body or b"{}")
        except (ValueError, RecursionError):
            raise ValidationError("invalid_callback", "the M-Pesa callback body is not JSON") from None
    if not isinstance(body, dict):
        raise ValidationError("invalid_callback", "the M-Pesa callback body is not a JSON object")
    return body


def _items(metadata) -> dict:
    items = metadata.get("Item", []) if isinstance(metadata, dict) else []
    return {str(i.get("Name")): i.get("Value") for i in items if isinstance(i, dict) and "Name" in i}


class MpesaStkPush:
    """Lipa na M-Pesa Online as a ``CollectionRail`` (see the module doc for finality)."""

    name = "mpesa"
    request_is_idempotent = False

    def __init__(self, base_url: str, consumer_key: Secret, consumer_secret: Secret, shortcode: str, passkey: Secret,
                 callback_url: str, callbacks: CallbackUrls, *, initiator_name: str, security_credential: Secret,
                 store=None, http: HttpClient | None = None, timeout_seconds: float = 10.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc), monotonic=time.monotonic):
        self.base_url = base_url.rstrip("/")
        self.shortcode = str(shortcode)
        self._passkey = passkey
        self.callback_url = callback_url
        self.callbacks = callbacks
        self.initiator_name = initiator_name
        self._security_credential = security_credential
        self.store = store  # CollectionStore: the CheckoutRequestID is written as soon as Daraja answers
        self.http = http or HttpClient(timeout_seconds)
        self.clock = clock
        self._tokens = BearerToken(
            self.http, "Daraja", "GET", f"{self.base_url}/oauth/v1/generate?grant_type=client_credentials",
            credentials=lambda: (_reveal(consumer_key), _reveal(consumer_secret)), default_ttl=3599, clock=monotonic)

    # -- HTTP ------------------------------------------------------------------------------
    def _password(self) -> tuple[str, str]:
        stamp = self.clock().astimezone(timezone.utc).strftime("%Y%m%d%H%M%S")
        raw = f"{self.shortcode}{_reveal(self._passkey)}{stamp}".encode()
        return base64.b64encode(raw).decode(), stamp

    def _post(self, path: str, body: dict) -> HttpResponse:
        for attempt in range(2):
            token = self._tokens.get()
            response = self.http.request("POST", f"{self.base_url}{path}", headers={"Authorization": f"Bearer {token}"},
                                         json_body=body, retry=False)
            if response.status == 401 and attempt == 0:
                self._tokens.drop(token)
                continue
            return response
        return response

    @staticmethod
    def whole(amount: Money) -> int:
        scale = 10 ** exponent(amount.currency)
        if amount.currency != "KES" or amount.minor % scale or amount.minor <= 0:
            raise ValidationError("validation_error", f"an STK push collects whole KES, not {amount}", path="amount")
        return amount.minor // scale

    # -- CollectionRail ---------------------------------------------------------------------------
    def request(self, reference: str, amount: Money, msisdn: str, note: str, record: dict) -> RailStatus:
        if len(reference) > ACCOUNT_REFERENCE_LIMIT:
            raise ValidationError("validation_error", "an STK push reference is at most 12 characters", path="reference")
        if record.get("requested"):  # Safaricom would prompt the payer again: never
            return self.status(reference, record)
        password, stamp = self._password()
        payer = normalize_msisdn(msisdn)
        body = {"BusinessShortCode": self.shortcode, "Password": password, "Timestamp": stamp,
                "TransactionType": "CustomerPayBillOnline", "Amount": self.whole(amount), "PartyA": payer,
                "PartyB": self.shortcode, "PhoneNumber": payer,
                "CallBackURL": self.callbacks.url(self.callback_url, reference), "AccountReference": reference,
                "TransactionDesc": safe_note(note, 13)}
        if self.store is not None:  # from now on Safaricom may have prompted: it is not sent twice
            self.store.update(reference, {"requested": True})
        try:
            response = self._post("/mpesa/stkpush/v1/processrequest", body)
        except TransportError as err:
            if not err.maybe_delivered:
                if self.store is not None:
                    self.store.update(reference, {"requested": False})
                raise RailNotSent("provider_unavailable", f"Daraja unreachable: {err.message}") from err
            return RailStatus("unknown", reason=err.kind, raw={"error": err.message})
        payload = response.json()
        raw = {"http_status": response.status, "body": payload if payload is not None else response.text[:500]}
        if response.status == 200 and isinstance(payload, dict) and str(payload.get("ResponseCode")) == "0":
            ids = {"checkout_request_id": payload.get("CheckoutRequestID"),
                   "merchant_request_id": payload.get("MerchantRequestID")}
            if self.store is not None and ids["checkout_request_id"]:
                self.store.update(reference, ids)
            return RailStatus("pending", provider_reference=ids["checkout_request_id"], raw=raw)
        if response.status in (401, 403, 429):
            if self.store is not None:
                self.store.update(reference, {"requested": False})  # refused before any prompt
            raise RailNotSent("provider_unavailable", f"Daraja did not accept the request (HTTP {response.status})",
                              http_status=response.status)
        if response.status >= 500 or response.status == 408 or response.status == 200:
            return RailStatus("unknown", reason=f"http_{response.status}", raw=raw)
        code = payload.get("errorCode") if isinstance(payload, dict) else None
        return RailStatus("failed", reason=f"rejected:{code or response.status}", raw=raw)

    def status(self, reference: str, record: dict) -> RailStatus:
        checkout = record.get("checkout_request_id")
        if not checkout:  # the request's answer was lost: only its callback can tell us its id
            return RailStatus("unknown", reason="awaiting_checkout_id")
        password, stamp = self._password()
        query = {"BusinessShortCode": self.shortcode, "Password": password, "Timestamp": stamp,
                 "CheckoutRequestID": checkout}
        try:
            response = self._post("/mpesa/stkpushquery/v1/query", query)
        except (TransportError, RailNotSent) as err:
            return RailStatus("unknown", reason="unreachable", raw={"error": str(err)})
        payload = response.json() if isinstance(response.json(), dict) else {}
        raw = {"http_status": response.status, "body": payload or response.text[:500]}
        if response.status == 200 and str(payload.get("ResponseCode")) == "0" and "ResultCode" in payload:
            code = str(payload.get("ResultCode")).strip()
            if code == "0":
                return RailStatus("succeeded", provider_reference=record.get("receipt"), raw=raw)
            return RailStatus("failed", reason=f"{code}: {payload.get('ResultDesc') or ''}".strip(), raw=raw)
        if str(payload.get("errorCode")) == STILL_PROCESSING:
            return RailStatus("pending", reason="the payer has not answered", raw=raw)
        return RailStatus("unknown", reason=f"http_{response.status}", raw=raw)

    def refund(self, reference: str, amount: Money, record: dict) -> RailStatus:
        refund = record.get("refund") or {}
        if refund.get("requested"):
            return self.refund_status(reference, record)
        receipt = record.get("receipt")
        if not receipt:
            return RailStatus("unknown", reason="no_receipt")  # the callback never brought it: a human reverses
        body = {"Initiator": self.initiator_name, "SecurityCredential": _reveal(self._security_credential),
                "CommandID": "TransactionReversal", "TransactionID": receipt, "Amount": self.whole(amount),
                "ReceiverParty": self.shortcode, "RecieverIdentifierType": "11",
                "ResultURL": self.callbacks.url(self.callback_url, reference),  # the collection's own URL
                "QueueTimeOutURL": self.callbacks.url(self.callback_url, reference),
                "Remarks": "Mizani refund", "Occasion": reference}
        if self.store is not None:
            self.store.update(reference, {"refund": {**refund, "requested": True}})
        try:
            response = self._post("/mpesa/reversal/v1/request", body)
        except (TransportError, RailNotSent) as err:
            return RailStatus("unknown", reason="reversal_unsent_or_unanswered", raw={"error": str(err)})
        payload = response.json() if isinstance(response.json(), dict) else {}
        if response.status == 200 and str(payload.get("ResponseCode")) == "0":
            if self.store is not None:
                self.store.update(reference, {"refund": {**refund, "requested": True,
                                                          "conversation_id": payload.get("ConversationID")}})
            return RailStatus("pending", raw={"body": payload})
        if 400 <= response.status < 500 and response.status not in (401, 403, 408, 429):
            return RailStatus("failed", reason=f"rejected:{payload.get('errorCode') or response.status}")
        return RailStatus("unknown", reason=f"http_{response.status}")

    def refund_status(self, reference: str, record: dict) -> RailStatus:
        refund = record.get("refund") or {}
        verdict = (refund.get("results") or {}).get(refund.get("conversation_id") or "")
        if verdict is None:
            return RailStatus("pending", reason="awaiting_reversal_result")
        if str(verdict.get("code")) == "0":
            return RailStatus("succeeded", provider_reference=verdict.get("transaction_id"))
        return RailStatus("failed", reason=f"{verdict.get('code')}: {verdict.get('desc') or ''}".strip())

    def callback_hint(self, reference: str, token: str | None, body, record: dict) -> dict | None:
        """An STK callback or a reversal result on this collection's URL: what it adds to the record."""
        if not self.callbacks.verify(reference, token):
            return None
        body = _load(body)
        if "Result" in body:  # a reversal result, kept under its ConversationID: only the one Daraja gave when
            # it accepted our reversal decides (it may arrive before that answer is stored: kept, matched later)
            result = body["Result"] if isinstance(body["Result"], dict) else {}
            refund = record.get("refund") or {}
            conversation = str(result.get("ConversationID") or "")
            if not refund.get("requested") or not conversation:
                return None
            verdict = {"code": str(result.get("ResultCode")), "desc": result.get("ResultDesc"),
                       "transaction_id": result.get("TransactionID")}
            return {"refund": {**refund, "results": {**(refund.get("results") or {}), conversation: verdict}}}
        callback = ((body.get("Body") or {}).get("stkCallback")) if isinstance(body.get("Body"), dict) else None
        if not isinstance(callback, dict):
            raise ValidationError("invalid_callback", "not an STK callback")
        checkout = callback.get("CheckoutRequestID")
        known = record.get("checkout_request_id")
        if known and checkout != known:
            return None  # about another push
        hint = {} if known else {"checkout_request_id": checkout, "merchant_request_id": callback.get("MerchantRequestID")}
        items = _items(callback.get("CallbackMetadata"))
        if str(callback.get("ResultCode")) == "0" and items.get("MpesaReceiptNumber"):
            hint["receipt"] = str(items["MpesaReceiptNumber"])
        return hint


def from_settings(settings, *, http: HttpClient | None = None, store=None, **_ports) -> MpesaStkPush:
    """The adapter from ``MIZANI_MPESA_STK_*`` / ``MIZANI_MPESA_PASSKEY`` and the payout rail's ``MIZANI_MPESA_*``."""
    from chalicelib.payouts.rails import config as c

    api = c.local_api_url()
    return MpesaStkPush(
        base_url=c.env_value("MIZANI_MPESA_BASE_URL", settings, c.local_sandbox_url(settings)),
        consumer_key=c.secret_value("MIZANI_MPESA_CONSUMER_KEY", settings, c.LOCAL_MPESA_CONSUMER_KEY),
        consumer_secret=c.secret_value("MIZANI_MPESA_CONSUMER_SECRET", settings, c.LOCAL_MPESA_CONSUMER_SECRET),
        shortcode=c.env_value("MIZANI_MPESA_STK_SHORTCODE", settings, LOCAL_STK_SHORTCODE),
        passkey=c.secret_value("MIZANI_MPESA_PASSKEY", settings, LOCAL_PASSKEY),
        callback_url=c.env_value("MIZANI_MPESA_STK_CALLBACK_URL", settings, f"{api}/v1/webhooks/collections/mpesa"),
        callbacks=c.callback_urls("mpesa_collection", settings),
        initiator_name=c.env_value("MIZANI_MPESA_INITIATOR_NAME", settings, c.LOCAL_MPESA_INITIATOR_NAME),
        security_credential=c.secret_value("MIZANI_MPESA_SECURITY_CREDENTIAL", settings, c.LOCAL_MPESA_SECURITY_CREDENTIAL),
        store=store,
        http=http,
        timeout_seconds=c.http_timeout(settings),
    )
