"""Stripe webhook events -> Mizani domain events.

``parse_event`` takes the event dict that ``verify_webhook`` returned (never an
unverified body) and answers one of ``PaymentSucceeded``, ``PaymentFailed``,
``RefundEvent`` or ``Ignored``. It is pure: deduplication by ``event_id`` and the
effect on the order belong to the escrow service.

The PaymentIntent's ``metadata["order_id"]`` (set by whoever created the intent)
becomes ``order_id``; it is ``None`` when absent, and the caller decides what an
unknown payment means.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from chalicelib.errors import ValidationError
from chalicelib.payments.amounts import from_stripe_amount
from chalicelib.payments.errors import MalformedEvent
from chalicelib.payments.model import (
    Ignored,
    PaymentEvent,
    PaymentFailed,
    PaymentSucceeded,
    RefundEvent,
)

PAYMENT_SUCCEEDED = "payment_intent.succeeded"
PAYMENT_FAILED = "payment_intent.payment_failed"
REFUND_EVENTS = frozenset(["refund.created", "refund.updated", "refund.failed"])

#: The event types ``parse_event`` turns into something other than ``Ignored``:
#: what a Stripe webhook endpoint for Mizani should subscribe to.
HANDLED_EVENT_TYPES = frozenset([PAYMENT_SUCCEEDED, PAYMENT_FAILED, *REFUND_EVENTS])


def parse_event(event: Mapping[str, Any]) -> PaymentEvent:
    """The domain event for a verified Stripe event (raises ``MalformedEvent`` if a needed field is missing)."""
    if not isinstance(event, Mapping):
        raise MalformedEvent(message="a Stripe event is a JSON object")
    event_id = _str(event, "id", "event")
    event_type = _str(event, "type", "event")
    if event_type not in HANDLED_EVENT_TYPES:
        return Ignored(event_id, event_type)

    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(obj, Mapping):
        raise MalformedEvent(message=f"event {event_id} has no data.object", path="data.object")
    created = _created(event, event_id)

    if event_type in (PAYMENT_SUCCEEDED, PAYMENT_FAILED):
        if obj.get("object") != "payment_intent":
            raise MalformedEvent(message=f"event {event_id} ({event_type}) does not carry a payment_intent")
        payment_intent_id = _str(obj, "id", "data.object")
        order_id = _order_id(obj)
        if event_type == PAYMENT_SUCCEEDED:
            received = obj.get("amount_received") or obj.get("amount")
            return PaymentSucceeded(
                event_id=event_id,
                payment_intent_id=payment_intent_id,
                order_id=order_id,
                amount=_money(received, obj.get("currency"), event_id),
                created=created,
                charge_id=_optional_id(obj.get("latest_charge")),
            )
        error = obj.get("last_payment_error") if isinstance(obj.get("last_payment_error"), Mapping) else {}
        return PaymentFailed(
            event_id=event_id,
            payment_intent_id=payment_intent_id,
            order_id=order_id,
            amount=_money(obj.get("amount"), obj.get("currency"), event_id),
            created=created,
            failure_code=error.get("decline_code") or error.get("code"),
            failure_message=error.get("message"),
        )

    # refund.* events carry the Refund object
    if obj.get("object") != "refund":
        raise MalformedEvent(message=f"event {event_id} ({event_type}) does not carry a refund")
    return RefundEvent(
        event_id=event_id,
        event_type=event_type,
        refund_id=_str(obj, "id", "data.object"),
        payment_intent_id=_optional_id(obj.get("payment_intent")),
        order_id=_order_id(obj),
        amount=_money(obj.get("amount"), obj.get("currency"), event_id),
        status=_str(obj, "status", "data.object"),
        created=created,
    )


def _str(obj: Mapping, key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedEvent(message=f"{where}.{key} is missing", path=f"{where}.{key}")
    return value


def _optional_id(value: Any) -> str | None:
    # Expandable fields arrive as an id or, when expanded, as the object itself.
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _order_id(obj: Mapping) -> str | None:
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    order_id = metadata.get("order_id")
    return order_id if isinstance(order_id, str) and order_id else None


def _created(event: Mapping, event_id: str) -> datetime:
    created = event.get("created")
    if isinstance(created, bool) or not isinstance(created, int):
        raise MalformedEvent(message=f"event {event_id} has no integer created time", path="created")
    return datetime.fromtimestamp(created, tz=timezone.utc)


def _money(amount: Any, currency: Any, event_id: str):
    if not isinstance(currency, str):
        raise MalformedEvent(message=f"event {event_id} has no currency", path="data.object.currency")
    try:
        return from_stripe_amount(amount, currency)
    except ValidationError as e:
        raise MalformedEvent(message=f"event {event_id}: {e.message}", path="data.object.amount") from None
