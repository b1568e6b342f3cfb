"""Stripe webhooks over HTTP: signatures and their time window, duplicates, out-of-order
delivery, unknown payments, amounts that do not match the order.

Deliveries come from the Stripe simulator (``/sandbox/payments/{pi}/pay``,
``/sandbox/stripe/events/{id}/resend``) or, for events Stripe would never send for this
order, from an event we sign ourselves with the webhook secret.
"""
from __future__ import annotations

import json
import time
import uuid


def intent_event(event_type: str, intent: dict, **changes) -> dict:
    """A Stripe event carrying ``intent`` (a PaymentIntent object), as Stripe shapes it."""
    return {
        "id": f"evt_test_{uuid.uuid4().hex[:20]}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "data": {"object": {**intent, **changes}},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def error_code(delivery_or_response) -> str:
    body = delivery_or_response["response"] if isinstance(delivery_or_response, dict) else delivery_or_response.text
    return json.loads(body)["error"]["code"]


def paid_timeline(order: dict) -> list[str]:
    return [e["status"] for e in order["timeline"] if e["status"] == "paid"]


# -- duplicates -------------------------------------------------------------------------------


def test_a_resent_payment_event_is_acknowledged_and_moves_no_money_twice(world):
    seller = world.seller()
    order = world.order(seller)
    first = world.pay(order)["webhook"]
    world.wait_for(order["order_id"], "paid")

    again = world.stripe_resend(first["event_id"])
    assert again["status"] == 200
    assert json.loads(again["response"]) == {"received": True, "duplicate": True}

    escrow = world.account(f"escrow:{order['order_id']}")
    assert escrow["credits_posted"] == order["pay"]["amount"] == escrow["balance"]
    after = world.read(order["order_id"])
    assert after["status"] == "paid" and paid_timeline(after) == ["paid"]
    world.texted(seller["payout"]["msisdn"], "is paid")
    world.sweep()  # anything the resend queued would go out now
    paid_sms = [m for m in world.sms(seller["payout"]["msisdn"]) if "is paid" in m["message"]]
    assert len(paid_sms) == 1


def test_the_same_payment_under_a_new_event_id_still_moves_the_money_once(world):
    # Stripe may deliver the "same" success twice under different event ids: the ledger id
    # (pay:<order>) is what makes it harmless.
    order = world.paid(world.seller())
    intent = world.stripe_api(f"/v1/payment_intents/{order['payment']['payment_intent_id']}")
    reply = world.stripe_webhook(intent_event("payment_intent.succeeded", intent))
    assert reply.status_code == 200
    assert world.account(f"escrow:{order['order_id']}")["credits_posted"] == order["pay"]["amount"]
    assert paid_timeline(world.read(order["order_id"])) == ["paid"]


# -- signatures and their time window ---------------------------------------------------------------


def test_a_payment_event_replayed_ten_minutes_later_is_refused_as_invalid_signature(world):
    order = world.order(world.seller())
    event_id = world.pay(order)["webhook"]["event_id"]
    stale = world.stripe_resend(event_id, timestamp_offset=-600)
    assert stale["status"] == 400 and error_code(stale) == "invalid_signature"


def test_a_payment_event_signed_ten_minutes_in_the_future_is_refused(world):
    order = world.order(world.seller())
    event_id = world.pay(order)["webhook"]["event_id"]
    future = world.stripe_resend(event_id, timestamp_offset=600)
    assert future["status"] == 400 and error_code(future) == "invalid_signature"


def test_a_payment_event_signed_with_another_secret_is_refused(world):
    order = world.order(world.seller())
    event_id = world.pay(order)["webhook"]["event_id"]
    forged = world.stripe_resend(event_id, secret="whsec_not_ours")
    assert forged["status"] == 400 and error_code(forged) == "invalid_signature"


def test_a_refused_signature_moves_nothing(world):
    # A success that was never delivered validly: stale, future-dated, or unsigned.
    order = world.order(world.seller())
    intent = world.stripe_api(f"/v1/payment_intents/{order['payment']['payment_intent_id']}")
    event = intent_event("payment_intent.succeeded", intent, status="succeeded", amount_received=intent["amount"])
    assert world.stripe_webhook(event, offset=-600).status_code == 400
    assert world.stripe_webhook(event, offset=+600).status_code == 400
    unsigned = world.http.post(world.api + "/v1/webhooks/stripe", data=json.dumps(event), timeout=30,
                               headers={"Content-Type": "application/json"})
    assert (unsigned.status_code, error_code(unsigned)) == (400, "invalid_signature")
    assert world.read(order["order_id"])["status"] == "awaiting_payment"
    escrow = world.get(f"/v1/ledger/accounts/escrow:{order['order_id']}", "finance", "fin-1")
    assert escrow.status_code == 404 or escrow.json()["credits_posted"] == 0


# -- ordering -----------------------------------------------------------------------------------------


def test_a_declined_card_then_a_successful_one_converges_to_paid(world):
    order = world.order(world.seller())
    declined = world.pay(order, "failed")["webhook"]
    assert declined["status"] == 200
    after_decline = world.read(order["order_id"])
    assert after_decline["status"] == "awaiting_payment"
    assert [e["status"] for e in after_decline["timeline"]] == ["awaiting_payment", "payment_failed"]

    assert world.pay(order, "succeeded")["webhook"]["status"] == 200
    paid = world.wait_for(order["order_id"], "paid")
    assert [e["status"] for e in paid["timeline"]] == ["awaiting_payment", "payment_failed", "paid"]
    assert world.account(f"escrow:{order['order_id']}")["balance"] == order["pay"]["amount"]


def test_a_decline_delivered_after_the_success_leaves_the_order_paid(world):
    order = world.order(world.seller())
    assert world.pay(order)["webhook"]["status"] == 200
    world.wait_for(order["order_id"], "paid")
    # The decline of an earlier attempt, delivered late (Stripe does not guarantee order).
    intent = world.stripe_api(f"/v1/payment_intents/{order['payment']['payment_intent_id']}")
    late = intent_event(
        "payment_intent.payment_failed", intent, status="requires_payment_method",
        last_payment_error={"type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
                            "message": "Your card was declined."},
    )
    late["created"] -= 60
    assert world.stripe_webhook(late).status_code == 200
    after = world.read(order["order_id"])
    assert after["status"] == "paid"
    assert world.account(f"escrow:{order['order_id']}")["balance"] == order["pay"]["amount"]


# -- events that do not belong to an order -------------------------------------------------------------


def test_a_payment_event_for_an_unknown_payment_intent_answers_404(world):
    intent = {"id": f"pi_unknown_{uuid.uuid4().hex[:16]}", "object": "payment_intent", "amount": 1000,
              "amount_received": 1000, "currency": "cny", "status": "succeeded",
              "metadata": {"order_id": "ord_does_not_exist"}}
    reply = world.stripe_webhook(intent_event("payment_intent.succeeded", intent))
    assert (reply.status_code, error_code(reply)) == (404, "not_found")


def test_a_payment_event_naming_another_order_than_its_payment_intent_answers_404(world):
    seller = world.seller()
    mine, other = world.order(seller), world.order(seller)
    intent = world.stripe_api(f"/v1/payment_intents/{mine['payment']['payment_intent_id']}")
    event = intent_event("payment_intent.succeeded", intent, status="succeeded", amount_received=intent["amount"],
                         metadata={**intent["metadata"], "order_id": other["order_id"]})
    reply = world.stripe_webhook(event)
    assert (reply.status_code, error_code(reply)) == (404, "not_found")
    assert world.read(mine["order_id"])["status"] == "awaiting_payment"
    assert world.read(other["order_id"])["status"] == "awaiting_payment"


def test_a_payment_of_another_amount_sends_the_order_to_manual_review_not_into_escrow(world):
    order = world.order(world.seller())
    intent = world.stripe_api(f"/v1/payment_intents/{order['payment']['payment_intent_id']}")
    short = order["pay"]["amount"] - 100
    reply = world.stripe_webhook(intent_event("payment_intent.succeeded", intent, status="succeeded",
                                              amount=short, amount_received=short))
    assert reply.status_code == 200
    after = world.read(order["order_id"])
    assert after["status"] == "manual_review"
    escrow = world.get(f"/v1/ledger/accounts/escrow:{order['order_id']}", "finance", "fin-1")
    assert escrow.status_code == 404 or escrow.json()["credits_posted"] == 0
