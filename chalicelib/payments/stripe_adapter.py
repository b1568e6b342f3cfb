"""The Stripe adapter: ``StripeCardGateway``, ``verify_webhook`` and the error translation.

This is the only module of Mizani that imports ``stripe``, and only inside functions:
importing the SDK costs ~100 ms, so ``import app`` (and every Lambda cold start that
never talks to Stripe) stays fast. The client is built on first use and reused by the
container.

- Requests go through ``stripe.StripeClient`` (the v1 services), pointed at Stripe or,
  in the ``local`` stage, at the sandbox simulator (``base_addresses={"api": ...}``), sent by
  Mizani's one HTTP client with one deadline per call (``stripe_http.StripeHttp``).
  Idempotency keys travel per request as ``options={"idempotency_key": key}`` (the
  SDK sends the ``Idempotency-Key`` header). The SDK retries connection errors, 409 and
  5xx ``max_network_retries`` times with the same key, so a retry never charges twice.
- Every ``stripe.StripeError`` becomes a domain error (``translate_stripe_error``):
  network, timeout, rate limit, 5xx -> ``PaymentProviderUnavailable`` (retryable);
  card errors -> ``CardDeclined``; invalid requests -> ``PaymentNotFound``,
  ``RefundExceedsPayment``, ``PaymentNotRefundable`` or ``PaymentRejected``;
  bad credentials -> ``PaymentProviderMisconfigured``.
- Webhooks: ``verify_webhook`` checks the ``Stripe-Signature`` HMAC with the SDK's
  ``WebhookSignature`` and then the timestamp in *both* directions (the SDK rejects old
  timestamps but accepts any future one), so a captured request cannot be replayed later
  nor pre-signed for later use.
"""
from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from typing import Any, Mapping, Optional

from chalicelib.errors import InvalidSignature, MizaniError
from chalicelib.money import Money
from chalicelib.payments.amounts import from_stripe_amount, to_stripe_amount
from chalicelib.payments.errors import (
    CardDeclined,
    IdempotencyKeyReused,
    PaymentNotFound,
    PaymentNotRefundable,
    PaymentProviderMisconfigured,
    PaymentProviderUnavailable,
    PaymentRejected,
    RefundExceedsPayment,
)
from chalicelib.payments.model import PaymentIntentRef, RefundRef
from chalicelib.payments.port import (
    CardGateway,
    check_idempotency_key,
    check_metadata,
    check_payment_amount,
    check_wallet,
)
from chalicelib.secrets import secret_of

#: The header Stripe signs webhooks with.
SIGNATURE_HEADER = "Stripe-Signature"
DEFAULT_TOLERANCE_SECONDS = 300

# Stripe error codes (error.code) that mean something specific on a refund.
_REFUND_TOO_LARGE_CODES = frozenset(["amount_too_large", "charge_already_refunded"])
_NOT_REFUNDABLE_CODES = frozenset(
    ["payment_intent_unexpected_state", "charge_not_refundable", "charge_disputed", "charge_expired_for_capture"]
)


class StripeCardGateway(CardGateway):
    """``CardGateway`` over Stripe's API (or the sandbox's simulator of it)."""

    def __init__(
        self,
        api_key: str,
        api_base: Optional[str] = None,
        max_network_retries: int = 2,
        timeout_seconds: float = 10.0,
    ) -> None:
        if not api_key:
            raise PaymentProviderMisconfigured(message="no Stripe API key is configured (MIZANI_STRIPE_API_KEY)")
        self._api_key = api_key
        self._api_base = api_base.rstrip("/") if api_base else None
        self._max_network_retries = max_network_retries
        self._timeout_seconds = timeout_seconds
        self._client: Any = None
        self._client_lock = threading.Lock()

    def __repr__(self) -> str:  # never print the key
        return f"StripeCardGateway(api_base={self._api_base or 'https://api.stripe.com'!r})"

    # -- CardGateway ---------------------------------------------------------
    def create_payment_intent(
        self, amount: Money, idempotency_key: str, metadata: Mapping[str, str],
        payment_method_type: Optional[str] = None, return_url: Optional[str] = None,
    ) -> PaymentIntentRef:
        check_payment_amount(amount)
        check_idempotency_key(idempotency_key)
        check_wallet(payment_method_type, return_url)
        params: dict = {
            "amount": to_stripe_amount(amount),
            "currency": amount.currency.lower(),
            # The buyer's client confirms with Stripe.js / the Payment Element; Stripe picks the methods.
            "automatic_payment_methods": {"enabled": True},
        }
        if payment_method_type is not None:
            # A wallet, confirmed server-side at creation: the intent comes back requires_action with
            # next_action (alipay_handle_redirect / wechat_pay_display_qr_code) for the buyer's app.
            del params["automatic_payment_methods"]
            params.update({"payment_method_types": [payment_method_type], "confirm": True,
                           "payment_method_data": {"type": payment_method_type}})
            if return_url:
                params["return_url"] = return_url
            if payment_method_type == "wechat_pay":
                params["payment_method_options"] = {"wechat_pay": {"client": "web"}}
        metadata = check_metadata(metadata)
        if metadata:
            params["metadata"] = metadata
        with _translated("create_payment_intent"):
            intent = self._stripe().v1.payment_intents.create(
                params=params, options={"idempotency_key": idempotency_key}
            )
        return _intent_ref(intent)

    def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntentRef:
        if not isinstance(payment_intent_id, str) or not payment_intent_id:
            raise PaymentNotFound(message="a PaymentIntent id is a non-empty string")
        with _translated("retrieve_payment_intent"):
            intent = self._stripe().v1.payment_intents.retrieve(payment_intent_id)
        return _intent_ref(intent)

    def refund(
        self,
        payment_intent_id: str,
        amount: Money,
        idempotency_key: str,
        metadata: Optional[Mapping[str, str]] = None,
    ) -> RefundRef:
        check_payment_amount(amount)
        check_idempotency_key(idempotency_key)
        metadata = check_metadata(metadata)
        # A refund has no currency parameter: Stripe refunds in the charge's currency. Check it
        # first, or 1000 (RWF, meant) would silently refund 10.00 of a USD payment.
        intent = self.retrieve_payment_intent(payment_intent_id)
        if intent.amount.currency != amount.currency:
            raise PaymentRejected(
                "currency_mismatch",
                f"refund in {amount.currency} of a payment in {intent.amount.currency}",
                provider="stripe",
            )
        params: dict = {"payment_intent": payment_intent_id, "amount": to_stripe_amount(amount)}
        if metadata:
            params["metadata"] = metadata
        with _translated("refund"):
            refund = _plain(
                self._stripe().v1.refunds.create(params=params, options={"idempotency_key": idempotency_key})
            )
        return RefundRef(
            refund_id=refund["id"],
            status=refund["status"],
            amount=from_stripe_amount(refund["amount"], refund["currency"]),
            payment_intent_id=_id_of(refund.get("payment_intent")) or payment_intent_id,
        )

    # -- internals -------------------------------------------------------------
    def _stripe(self):
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    # lazy: the SDK costs ~100 ms, paid on the first Stripe call of a container
                    from chalicelib.payments.stripe_http import stripe_client

                    self._client = stripe_client(self._api_key, self._api_base, self._max_network_retries,
                                                 self._timeout_seconds)
        return self._client


def build_card_gateway(settings=None) -> StripeCardGateway:
    """The container's card gateway from ``chalicelib.settings`` (``stripe_api_key``, ``stripe_api_base``).

    Cheap: the Stripe client itself is built on the first call. Refuses a live key in the
    ``local`` stage, where the API base is the sandbox.
    """
    if settings is None:
        from chalicelib import settings as settings_module

        settings = settings_module.get()
    if settings.is_local and secret_of(settings, "stripe_api_key").startswith(("sk_live_", "rk_live_")):
        raise PaymentProviderMisconfigured(message="a live Stripe key is configured in the local stage")
    return StripeCardGateway(
        secret_of(settings, "stripe_api_key"),
        api_base=settings.stripe_api_base or None,
        max_network_retries=2,
        timeout_seconds=settings.http_timeout_seconds,
    )


# -- error translation ---------------------------------------------------------


def translate_stripe_error(error: BaseException, operation: str = "") -> MizaniError:
    """The domain error for a ``stripe.StripeError`` raised during ``operation``
    (``create_payment_intent``, ``retrieve_payment_intent``, ``refund``)."""
    import stripe

    code = getattr(error, "code", None)
    http_status = getattr(error, "http_status", None)
    detail = {
        "provider": "stripe",
        "provider_code": code,
        "provider_request_id": getattr(error, "request_id", None),
        "http_status": http_status,
        "param": getattr(error, "param", None),
    }
    message = getattr(error, "user_message", None) or str(error) or type(error).__name__

    if isinstance(error, stripe.CardError):
        body = error.json_body if isinstance(error.json_body, dict) else {}
        decline_code = (body.get("error") or {}).get("decline_code")
        return CardDeclined(message=message, decline_code=decline_code, **detail)
    if isinstance(error, (stripe.APIConnectionError, stripe.RateLimitError)):
        return PaymentProviderUnavailable(message=f"Stripe: {message}", **detail)
    if isinstance(error, stripe.IdempotencyError):
        return IdempotencyKeyReused(message=f"Stripe: {message}", **detail)
    if isinstance(error, (stripe.AuthenticationError, stripe.PermissionError)):
        return PaymentProviderMisconfigured(message=f"Stripe refused our credentials: {message}", **detail)
    if isinstance(error, stripe.InvalidRequestError):
        if http_status == 404 or code == "resource_missing":
            return PaymentNotFound(message=message, **detail)
        if operation == "refund" and code in _REFUND_TOO_LARGE_CODES:
            return RefundExceedsPayment(message=message, **detail)
        if operation == "refund" and code in _NOT_REFUNDABLE_CODES:
            return PaymentNotRefundable(message=message, **detail)
        return PaymentRejected(message=message, **detail)
    if isinstance(error, stripe.APIError) or http_status is None or http_status >= 500 or http_status == 409:
        # 5xx, 409 (concurrent use of a key, lock timeout), unreadable replies: Stripe's side; retry is safe.
        return PaymentProviderUnavailable(message=f"Stripe: {message}", **detail)
    return PaymentRejected(message=message, **detail)


@contextmanager
def _translated(operation: str):
    import stripe

    try:
        yield
    except stripe.StripeError as e:
        raise translate_stripe_error(e, operation) from e


def _plain(obj: Any) -> dict:
    # stripe-python 16 objects are not dicts (no .get); work on their plain data.
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _id_of(value: Any) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    return value.get("id")


def _intent_ref(intent: Any) -> PaymentIntentRef:
    intent = _plain(intent)
    currency = intent["currency"]
    metadata = intent.get("metadata") or {}
    received = intent.get("amount_received")
    return PaymentIntentRef(
        payment_intent_id=intent["id"],
        client_secret=intent.get("client_secret") or "",
        status=intent["status"],
        amount=from_stripe_amount(intent["amount"], currency),
        metadata={str(k): str(v) for k, v in metadata.items()},
        amount_received=from_stripe_amount(received, currency) if received is not None else None,
        next_action=intent.get("next_action") or None,
    )


# -- webhooks --------------------------------------------------------------------


def verify_webhook(
    payload: bytes,
    sig_header: Optional[str],
    secret: str,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: Optional[float] = None,
) -> dict:
    """The event dict of a genuine Stripe webhook, or ``InvalidSignature`` (code ``invalid_signature``).

    ``payload`` is the raw request body, byte for byte (re-serialised JSON does not verify).
    Rejects: a missing or malformed header, no ``v1`` signature, a signature that does not
    match ``secret``, a timestamp more than ``tolerance`` seconds before or after ``now``
    (default: the current time), a body that is not UTF-8 JSON of a Stripe event.
    """
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    if not isinstance(payload, (bytes, bytearray)):
        raise InvalidSignature(message="the webhook body must be the raw bytes of the request")
    payload = bytes(payload)
    timestamp = _signed_timestamp(sig_header)

    import stripe

    try:
        # Signature only (tolerance=None): the timestamp is checked below, in both directions.
        stripe.WebhookSignature.verify_header(payload, sig_header, secret, tolerance=None)
    except stripe.SignatureVerificationError as e:
        raise InvalidSignature(message=f"Stripe-Signature does not verify: {e.user_message}") from None
    except (UnicodeDecodeError, ValueError, TypeError):
        raise InvalidSignature(message="Stripe-Signature does not verify: unreadable body or header") from None

    now = time.time() if now is None else now
    if timestamp < now - tolerance:
        raise InvalidSignature(message=f"Stripe-Signature timestamp {timestamp} is older than {tolerance} s")
    if timestamp > now + tolerance:
        raise InvalidSignature(message=f"Stripe-Signature timestamp {timestamp} is more than {tolerance} s in the future")

    try:
        event = json.loads(payload)
    except ValueError:
        raise InvalidSignature(message="the signed webhook body is not JSON") from None
    if (
        not isinstance(event, dict)
        or event.get("object") != "event"
        or not isinstance(event.get("id"), str)
        or not isinstance(event.get("type"), str)
    ):
        raise InvalidSignature(message="the signed webhook body is not a Stripe event")
    return event


def _signed_timestamp(header: Optional[str]) -> int:
    """The ``t=`` of ``t=<unix>,v1=<hex>[,v1=...]`` (the first one, as the SDK reads it)."""
    if not header or not isinstance(header, str):
        raise InvalidSignature(message=f"the {SIGNATURE_HEADER} header is missing")
    for item in header.split(","):
        key, sep, value = item.partition("=")
        if key.strip() == "t" and sep:
            value = value.strip()
            if not value.isascii() or not value.isdigit() or len(value) > 12:
                break
            return int(value)
    raise InvalidSignature(message=f"the {SIGNATURE_HEADER} header has no valid t= timestamp")
