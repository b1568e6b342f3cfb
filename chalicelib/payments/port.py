"""The ``CardGateway`` port: collect card payments and refund them.

Implemented by ``StripeCardGateway`` (stripe_adapter.py, the real Stripe API or the
local simulator) and ``FakeCardGateway`` (fake.py, in memory). Both:

- take and return ``Money`` (integer minor units + ISO 4217 code);
- make every write idempotent under a caller-supplied key (1-255 characters): the same
  key with the same arguments returns the first result and does nothing more; the same
  key with different arguments, or on another operation, raises ``IdempotencyKeyReused``.
  Callers derive keys deterministically (``"pi:" + order_id``, ``"refund:" + order_id``)
  and store nothing else: a retried Lambda cannot charge or refund twice;
- raise only the errors of ``chalicelib.payments.errors`` (plus ``ValidationError`` for
  arguments that never reach the processor).
"""
from __future__ import annotations

import abc
from typing import Mapping, Optional

from chalicelib.errors import ValidationError
from chalicelib.money import Money
from chalicelib.payments.model import PaymentIntentRef, RefundRef

MAX_IDEMPOTENCY_KEY_LENGTH = 255
#: The wallets confirmed at creation, through Stripe (``payment_method_types``).
WALLET_TYPES = frozenset({"alipay", "wechat_pay"})
# Stripe's metadata limits: 50 keys, key up to 40 characters, value up to 500.
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_LENGTH = 500


class CardGateway(abc.ABC):
    """Port to a card processor (PaymentIntents and refunds)."""

    @abc.abstractmethod
    def create_payment_intent(
        self, amount: Money, idempotency_key: str, metadata: Mapping[str, str],
        payment_method_type: Optional[str] = None, return_url: Optional[str] = None,
    ) -> PaymentIntentRef:
        """Create a PaymentIntent for ``amount``; ``metadata`` (e.g. ``order_id``) comes back on its webhooks.

        Without ``payment_method_type`` the buyer's client confirms it (the card flow). With a wallet
        (``alipay``, ``wechat_pay``: ``WALLET_TYPES``) it is created with that one
        ``payment_method_types`` entry and confirmed at once (Alipay needs ``return_url``), so it comes
        back ``requires_action`` with ``next_action`` (the redirect or the QR code)."""

    @abc.abstractmethod
    def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntentRef:
        """The PaymentIntent's current state (raises ``PaymentNotFound``)."""

    @abc.abstractmethod
    def refund(
        self,
        payment_intent_id: str,
        amount: Money,
        idempotency_key: str,
        metadata: Optional[Mapping[str, str]] = None,
    ) -> RefundRef:
        """Refund ``amount`` of a succeeded PaymentIntent (raises ``RefundExceedsPayment``,
        ``PaymentNotRefundable``, ``PaymentNotFound``)."""


def check_idempotency_key(key: str) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise ValidationError(
            "invalid_idempotency_key",
            f"an idempotency key is a string of 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters",
            path="idempotency_key",
        )
    return key


def check_metadata(metadata: Optional[Mapping[str, str]]) -> dict:
    """Metadata as Stripe accepts it: at most 50 string keys (<= 40 chars) to string values (<= 500 chars)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValidationError("invalid_metadata", "metadata is a mapping of strings to strings", path="metadata")
    if len(metadata) > MAX_METADATA_KEYS:
        raise ValidationError("invalid_metadata", f"metadata has at most {MAX_METADATA_KEYS} keys", path="metadata")
    checked = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_METADATA_KEY_LENGTH or "[" in key or "]" in key:
            raise ValidationError(
                "invalid_metadata",
                f"metadata keys are 1 to {MAX_METADATA_KEY_LENGTH} characters without brackets: {key!r}",
                path="metadata",
            )
        if not isinstance(value, str) or len(value) > MAX_METADATA_VALUE_LENGTH:
            raise ValidationError(
                "invalid_metadata",
                f"metadata values are strings of at most {MAX_METADATA_VALUE_LENGTH} characters: {key}",
                path=f"metadata.{key}",
            )
        if value:  # Stripe treats an empty value as "unset": keep the fake and the real one alike
            checked[key] = value
    return checked


def check_wallet(payment_method_type: Optional[str], return_url: Optional[str]) -> None:
    if payment_method_type is None:
        return
    if payment_method_type not in WALLET_TYPES:
        raise ValidationError("validation_error", f"payment_method_type is one of {', '.join(sorted(WALLET_TYPES))}",
                              path="payment_method_type")
    if payment_method_type == "alipay" and not return_url:
        raise ValidationError("validation_error", "Alipay needs a return_url (where the buyer comes back)",
                              path="return_url")


def check_payment_amount(amount: Money) -> Money:
    if not isinstance(amount, Money):
        raise ValidationError("invalid_amount", "the amount is a Money", path="amount")
    return amount.require_positive()
