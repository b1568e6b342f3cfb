"""Card collection: Stripe PaymentIntents, refunds and webhook events.

- ``CardGateway`` (port.py): the port; ``StripeCardGateway`` (stripe_adapter.py) over
  Stripe's API or the sandbox simulator; ``FakeCardGateway`` (fake.py) in memory.
  ``build_card_gateway(settings)`` makes the container's gateway from settings.
- ``verify_webhook(payload, sig_header, secret)`` -> the verified event dict, or
  ``InvalidSignature``; ``parse_event(event)`` -> ``PaymentSucceeded`` |
  ``PaymentFailed`` | ``RefundEvent`` | ``Ignored`` (events.py, pure).
- Errors (errors.py) subclass the kinds of ``chalicelib.errors``.

Importing this package never imports ``stripe`` (cold start): the adapter imports it
inside its functions, and it is the only module that imports it at all.
"""
from chalicelib.payments.amounts import from_stripe_amount, stripe_exponent, to_stripe_amount  # noqa: F401
from chalicelib.payments.errors import (  # noqa: F401
    CardDeclined,
    IdempotencyKeyReused,
    MalformedEvent,
    PaymentNotFound,
    PaymentNotRefundable,
    PaymentProviderMisconfigured,
    PaymentProviderUnavailable,
    PaymentRejected,
    RefundExceedsPayment,
)
from chalicelib.payments.events import HANDLED_EVENT_TYPES, parse_event  # noqa: F401
from chalicelib.payments.fake import FakeCardGateway  # noqa: F401
from chalicelib.payments.model import (  # noqa: F401
    Ignored,
    PaymentEvent,
    PaymentFailed,
    PaymentIntentRef,
    PaymentSucceeded,
    RefundEvent,
    RefundRef,
)
from chalicelib.payments.port import CardGateway  # noqa: F401
from chalicelib.payments.stripe_adapter import (  # noqa: F401
    SIGNATURE_HEADER,
    StripeCardGateway,
    build_card_gateway,
    translate_stripe_error,
    verify_webhook,
)
