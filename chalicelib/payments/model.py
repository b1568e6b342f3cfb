"""What card collection returns and what it reports: references to the processor's
objects, and the domain events parsed from its webhooks.

Plain frozen dataclasses with ``Money`` amounts; nothing here knows about Stripe's
SDK. Statuses are Stripe's own strings (``requires_payment_method``, ``succeeded``,
...) because the escrow flow only distinguishes "succeeded" from the rest.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping, Optional, Union

from chalicelib.money import Money

#: PaymentIntent statuses (Stripe's vocabulary).
PI_REQUIRES_PAYMENT_METHOD = "requires_payment_method"
PI_REQUIRES_ACTION = "requires_action"
PI_PROCESSING = "processing"
PI_SUCCEEDED = "succeeded"
PI_CANCELED = "canceled"


@dataclass(frozen=True)
class PaymentIntentRef:
    """A PaymentIntent at the processor: what the buyer's client needs (``client_secret``) and its state."""

    payment_intent_id: str
    client_secret: str
    status: str
    amount: Money
    metadata: Mapping[str, str] = field(default_factory=dict, compare=False)
    amount_received: Optional[Money] = None
    #: What the buyer's app must do next (Stripe's ``next_action``: ``alipay_handle_redirect``,
    #: ``wechat_pay_display_qr_code``), once an intent is confirmed with a wallet; ``None`` otherwise.
    next_action: Optional[Mapping] = field(default=None, compare=False)

    @property
    def succeeded(self) -> bool:
        return self.status == PI_SUCCEEDED


@dataclass(frozen=True)
class RefundRef:
    """A refund at the processor (``status`` ``succeeded``, ``pending``, ``failed`` or ``canceled``)."""

    refund_id: str
    status: str
    amount: Money
    payment_intent_id: Optional[str] = None


# -- domain events parsed from webhooks ---------------------------------------


@dataclass(frozen=True)
class PaymentSucceeded:
    """The buyer paid: ``amount`` was collected on ``payment_intent_id`` (Stripe ``payment_intent.succeeded``)."""

    event_id: str
    payment_intent_id: str
    order_id: Optional[str]
    amount: Money
    created: datetime
    charge_id: Optional[str] = None


@dataclass(frozen=True)
class PaymentFailed:
    """A payment attempt failed; the PaymentIntent may be paid later (Stripe ``payment_intent.payment_failed``)."""

    event_id: str
    payment_intent_id: str
    order_id: Optional[str]
    amount: Money
    created: datetime
    failure_code: Optional[str] = None
    failure_message: Optional[str] = None


@dataclass(frozen=True)
class RefundEvent:
    """A refund was created or changed status (Stripe ``refund.created``/``refund.updated``/``refund.failed``)."""

    event_id: str
    event_type: str
    refund_id: str
    payment_intent_id: Optional[str]
    order_id: Optional[str]
    amount: Money
    status: str
    created: datetime


@dataclass(frozen=True)
class Ignored:
    """A verified event the platform does not act on; acknowledge it with 2xx so Stripe stops retrying."""

    event_id: str
    event_type: str
    reason: str = "event type not handled"


PaymentEvent = Union[PaymentSucceeded, PaymentFailed, RefundEvent, Ignored]
