"""The coffee order's payout: split to fit MTN's per-transaction maximum, and the seller's SMS.

The coffee order (100 kg at 12.00 USD/kg) guarantees the co-operative about 1.7 million RWF;
MTN MoMo pays at most 1,000,000 RWF per transaction, so the payout goes out in parts.
"""
from __future__ import annotations

import threading

import pytest

RWF_MAX_PER_TRANSFER = 1_000_000
SMS_MAX_CHARS = 160


def money_text(m: dict) -> str:
    """How the seller reads an amount: "1,707,447 RWF" (RWF has no minor unit)."""
    assert m["currency"] == "RWF"
    return f"{m['amount']:,} RWF"


def test_a_payout_above_mtns_per_transaction_maximum_is_split_into_parts_that_add_up(world, coffee):
    order = coffee.order
    parts = [p for p in world.payouts(coffee.seller["seller_id"]) if p["order_id"] == order["order_id"]]
    assert len(parts) == 2
    assert sum(p["amount"]["amount"] for p in parts) == order["payout"]["amount"]
    assert all(p["amount"]["currency"] == "RWF" and p["amount"]["amount"] <= RWF_MAX_PER_TRANSFER for p in parts)
    assert all(p["status"] == "succeeded" and p["msisdn"] == coffee.msisdn and p["rail"] == "mtn_momo" for p in parts)
    assert len({p["payout_id"] for p in parts}) == len({p["provider_reference"] for p in parts}) == 2

    transfers = world.wallet_transfers(coffee.msisdn, order["order_id"])
    assert sorted(t["externalId"] for t in transfers) == sorted(p["payout_id"] for p in parts)
    assert len({t["referenceId"] for t in transfers}) == 2  # each part under its own MTN reference
    assert sorted(t["amount"]["amount"] for t in transfers) == sorted(p["amount"]["amount"] for p in parts)


def test_the_seller_is_told_by_sms_at_payment_clearance_and_payout_in_rwf_with_the_order_reference(world, coffee):
    order = coffee.order
    ref = order["order_id"][-8:].upper()
    # the last one is sent right after the order is marked settled
    messages = world.until(lambda: (found := world.sms(coffee.msisdn)) and len(found) >= 3 and found, "three SMS")
    assert len(messages) == 3  # paid, customs cleared, payout sent: once each
    for m in messages:
        assert len(m["message"]) <= SMS_MAX_CHARS and m["parts"] == 1, m
        assert ref in m["message"]
        assert money_text(order["payout"]) in m["message"]
        assert "CNY" not in m["message"] and "USD" not in m["message"]  # the seller's currency only
    paid, cleared, sent = (m["message"] for m in messages)
    assert "paid" in paid and "escrow" in paid
    assert "cleared" in cleared
    assert "sent" in sent
    for p in world.payouts(coffee.seller["seller_id"]):
        assert p["provider_reference"] in sent
    assert [m["sent_at"] for m in messages] == sorted(m["sent_at"] for m in messages)


def test_an_sms_is_sent_once_even_when_two_drains_overlap(world):
    seller = world.seller()
    msisdn = seller["payout"]["msisdn"]
    order = world.order(seller)
    world.http.post(f"{world.sim}/sandbox/faults/sms", json={"latency_ms": 1500}, timeout=30)  # a slow gateway
    try:
        buyer = type(world)(world.sb)  # the webhook (and its inline drain) runs while we sweep
        paying = threading.Thread(target=buyer.pay, args=(order,))
        paying.start()
        world.until(lambda: world.sms(msisdn), "the paid SMS to reach the gateway")  # the first drain is still waiting
        world.sweep()  # the scheduled sweeper drains the same outbox meanwhile
        paying.join(30)
    finally:
        world.http.delete(f"{world.sim}/sandbox/faults/sms", timeout=30)
    paid = [m for m in world.sms(msisdn) if "is paid" in m["message"]]
    assert len(paid) == 1, [m["message"] for m in paid]
