"""Stripe events -> domain events: what the escrow service acts on."""
from datetime import datetime, timezone

import pytest

from chalicelib.money import Money
from chalicelib.payments import (
    Ignored,
    MalformedEvent,
    PaymentFailed,
    PaymentSucceeded,
    RefundEvent,
    parse_event,
)

CREATED = 1_790_000_000


def payment_intent(**overrides) -> dict:
    intent = {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 854400,
        "amount_received": 854400,
        "currency": "cny",
        "latest_charge": "ch_1",
        "last_payment_error": None,
        "metadata": {"order_id": "ord_42"},
        "status": "succeeded",
    }
    intent.update(overrides)
    return intent


def event(event_type: str, obj: dict, **overrides) -> dict:
    body = {
        "id": "evt_1",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": CREATED,
        "data": {"object": obj},
        "livemode": False,
        "type": event_type,
    }
    body.update(overrides)
    return body


def test_a_succeeded_payment_intent_becomes_payment_succeeded_for_its_order():
    parsed = parse_event(event("payment_intent.succeeded", payment_intent()))
    assert parsed == PaymentSucceeded(
        event_id="evt_1",
        payment_intent_id="pi_1",
        order_id="ord_42",
        amount=Money(854400, "CNY"),
        created=datetime(2026, 9, 21, 14, 13, 20, tzinfo=timezone.utc),
        charge_id="ch_1",
    )


def test_a_zero_decimal_currency_keeps_its_amount():
    parsed = parse_event(event("payment_intent.succeeded", payment_intent(amount=1500000, amount_received=1500000,
                                                                          currency="rwf")))
    assert parsed.amount == Money(1500000, "RWF")


def test_the_amount_received_is_what_counts_as_paid():
    parsed = parse_event(event("payment_intent.succeeded", payment_intent(amount=1000, amount_received=900)))
    assert parsed.amount == Money(900, "CNY")


def test_an_expanded_latest_charge_still_yields_its_id():
    parsed = parse_event(event("payment_intent.succeeded", payment_intent(latest_charge={"id": "ch_9", "object": "charge"})))
    assert parsed.charge_id == "ch_9"


def test_a_payment_without_order_metadata_has_no_order_id():
    parsed = parse_event(event("payment_intent.succeeded", payment_intent(metadata={})))
    assert isinstance(parsed, PaymentSucceeded) and parsed.order_id is None


def test_a_failed_payment_carries_the_decline_reason():
    failed = payment_intent(
        status="requires_payment_method",
        amount_received=0,
        last_payment_error={"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
                            "message": "Your card has insufficient funds."},
    )
    parsed = parse_event(event("payment_intent.payment_failed", failed))
    assert isinstance(parsed, PaymentFailed)
    assert (parsed.order_id, parsed.amount, parsed.failure_code) == ("ord_42", Money(854400, "CNY"), "insufficient_funds")
    assert parsed.failure_message == "Your card has insufficient funds."


def test_refund_events_carry_the_refund():
    refund = {"id": "re_1", "object": "refund", "amount": 1000, "currency": "cny", "payment_intent": "pi_1",
              "status": "succeeded", "metadata": {"order_id": "ord_42"}}
    parsed = parse_event(event("refund.created", refund))
    assert parsed == RefundEvent(
        event_id="evt_1", event_type="refund.created", refund_id="re_1", payment_intent_id="pi_1",
        order_id="ord_42", amount=Money(1000, "CNY"), status="succeeded",
        created=datetime.fromtimestamp(CREATED, tz=timezone.utc),
    )


@pytest.mark.parametrize("event_type", ["charge.succeeded", "customer.created", "payment_intent.created"])
def test_other_event_types_are_ignored_not_errors(event_type):
    parsed = parse_event(event(event_type, {"id": "x", "object": "whatever"}))
    assert parsed == Ignored("evt_1", event_type)


@pytest.mark.parametrize(
    "broken",
    [
        event("payment_intent.succeeded", payment_intent(), data={}),
        event("payment_intent.succeeded", {"id": "re_1", "object": "refund"}),
        event("payment_intent.succeeded", payment_intent(currency=None)),
        event("payment_intent.succeeded", payment_intent(amount_received="854400")),
        event("payment_intent.succeeded", payment_intent(), created="yesterday"),
        event("refund.created", payment_intent()),
        {"object": "event", "type": "payment_intent.succeeded"},
    ],
)
def test_an_event_missing_what_the_platform_needs_is_malformed(broken):
    with pytest.raises(MalformedEvent) as e:
        parse_event(broken)
    assert e.value.code == "malformed_event"
