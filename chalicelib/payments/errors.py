"""Card-payment errors. Each subclasses a kind from ``chalicelib.errors``, so the API
layer's one error table maps them by class; ``code`` is the stable string clients see.

The Stripe adapter translates the SDK's exceptions into these (see
``stripe_adapter.translate_stripe_error``); the fake raises the same ones, so a
test written against ``FakeCardGateway`` holds for the real gateway. Every error
built from a provider reply carries ``detail``: ``provider``, ``provider_code``,
``provider_request_id``, ``http_status`` and ``param`` when Stripe sent them.
"""
from __future__ import annotations

from chalicelib.errors import (
    BusinessRuleViolation,
    InvalidState,
    MizaniError,
    NotFound,
    ProviderUnavailable,
    ValidationError,
)


class PaymentNotFound(NotFound):
    """The card processor has no PaymentIntent (or refund) with this id (HTTP 404, code ``not_found``)."""

    code = "not_found"


class CardDeclined(BusinessRuleViolation):
    """The card issuer or the processor declined the card (HTTP 422, code ``card_declined``).

    ``detail["decline_code"]`` holds the issuer's reason when Stripe gives one.
    """

    code = "card_declined"


class RefundExceedsPayment(BusinessRuleViolation):
    """The refund is larger than what is left to refund on the payment (HTTP 422, code ``refund_exceeds_payment``)."""

    code = "refund_exceeds_payment"


class PaymentNotRefundable(InvalidState):
    """The payment has no successful charge to refund yet (HTTP 409, code ``payment_not_refundable``)."""

    code = "payment_not_refundable"


class PaymentRejected(BusinessRuleViolation):
    """The processor refused a well-formed request for another reason: amount out of its
    limits, unsupported currency, invalid parameter (HTTP 422, code ``payment_rejected``).
    ``detail["provider_code"]`` says which."""

    code = "payment_rejected"


class IdempotencyKeyReused(BusinessRuleViolation):
    """An idempotency key was reused for a different request: another endpoint or other
    parameters (HTTP 422, code ``idempotency_key_reused``). A bug in how the key is derived."""

    code = "idempotency_key_reused"


class PaymentProviderUnavailable(ProviderUnavailable):
    """The processor could not be reached, timed out, throttled us or failed on its side;
    retrying with the same idempotency key is safe (HTTP 503, ``retryable``)."""

    code = "provider_unavailable"


class PaymentProviderMisconfigured(MizaniError):
    """The processor refused our credentials or permissions: an operator must fix the
    configuration; retrying will not help (HTTP 500, logged; code ``provider_misconfigured``)."""

    code = "provider_misconfigured"


class MalformedEvent(ValidationError):
    """A verified webhook event lacks a field the platform needs (HTTP 400, code ``malformed_event``)."""

    code = "malformed_event"
