"""The wallet's daily limit on an order's payout: what does not fit today waits for the next day.

Limits come from ``MIZANI_PAYOUT_LIMITS`` (read on every payout), lowered here so that a
one-kilogram order (about 17,000 RWF) runs into them. "The next day" is reached by moving
the payout service's clock forward, in this process, where the workflow's tasks run.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib import bootstrap

#: Two parts of ~8,500 RWF; the second does not fit in the day's 15,000.
SPLIT_OVER_THE_DAY = {"mtn_momo:RWF": {"min": 100, "max_per_tx": 10_000, "max_per_day": 15_000}}
#: One part bigger than the whole day's allowance (a configuration where max_per_tx > max_per_day).
ONE_PART_OVER_THE_DAY = {"mtn_momo:RWF": {"min": 100, "max_per_tx": 1_000_000, "max_per_day": 10_000}}


def limits(config: dict) -> str:
    return json.dumps(config)


def order_payouts(world, seller: dict, order: dict) -> list[dict]:
    return sorted((p for p in world.payouts(seller["seller_id"]) if p["order_id"] == order["order_id"]),
                  key=lambda p: p["payout_id"])


def tomorrow_after_midnight() -> datetime:
    now = datetime.now(timezone.utc)
    return datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), timezone.utc) + timedelta(minutes=1)


def clear_until_a_part_is_scheduled(world, seller: dict, order: dict, expected_parts: int) -> list[dict]:
    assert world.customs(order, "cleared").status_code == 200

    def scheduled():
        parts = order_payouts(world, seller, order)
        done = len(parts) == expected_parts and all(p["status"] == "succeeded" or p["scheduled_for"] for p in parts)
        return parts if done and any(p["scheduled_for"] for p in parts) else None

    return world.until(scheduled, "a payout part scheduled for the next day")


def test_the_part_of_a_split_payout_that_exceeds_the_daily_limit_is_paid_the_next_day(world, monkeypatch):
    seller = world.seller()
    order = world.shipped(seller)
    with world.settings(MIZANI_PAYOUT_LIMITS=limits(SPLIT_OVER_THE_DAY)):
        first, second = clear_until_a_part_is_scheduled(world, seller, order, expected_parts=2)
        assert first["amount"]["amount"] + second["amount"]["amount"] == order["payout"]["amount"]
        assert first["status"] == "succeeded" and first["scheduled_for"] is None
        tomorrow = tomorrow_after_midnight().date().isoformat()
        assert second["status"] == "pending" and second["scheduled_for"].startswith(tomorrow)
        assert world.read(order["order_id"])["status"] == "payout_pending"
        assert [t["externalId"] for t in world.wallet_transfers(seller["payout"]["msisdn"], order["order_id"])] == \
            [first["payout_id"]]  # only what fits today was sent

        monkeypatch.setattr(bootstrap.payouts(), "clock", tomorrow_after_midnight)
        done = world.wait_for(order["order_id"], "settled")
    assert world.wallet(seller["payout"]["msisdn"])["balances"] == [done["payout"]]
    assert [p["status"] for p in order_payouts(world, seller, order)] == ["succeeded", "succeeded"]
    account = world.account(f"seller:{seller['seller_id']}")
    assert (account["debits_posted"], account["debits_pending"]) == (done["payout"]["amount"], 0)
    assert world.trial_balance()["balanced"] is True


def test_a_single_payout_larger_than_the_whole_daily_limit_is_not_sent_that_day(world, monkeypatch):
    # Whatever the configuration, a wallet never receives more than max_per_day in a day.
    seller = world.seller()
    order = world.shipped(seller)
    with world.settings(MIZANI_PAYOUT_LIMITS=limits(ONE_PART_OVER_THE_DAY)):
        assert order["payout"]["amount"] > ONE_PART_OVER_THE_DAY["mtn_momo:RWF"]["max_per_day"]
        [part] = clear_until_a_part_is_scheduled(world, seller, order, expected_parts=1)
        assert part["status"] == "pending"
        assert world.wallet_transfers(seller["payout"]["msisdn"], order["order_id"]) == []
    # the next day, under the usual limits, it goes out
    monkeypatch.setattr(bootstrap.payouts(), "clock", tomorrow_after_midnight)
    done = world.wait_for(order["order_id"], "settled")
    assert world.wallet(seller["payout"]["msisdn"])["balances"] == [done["payout"]]


def test_money_waiting_for_a_scheduled_payout_part_cannot_be_withdrawn(world):
    seller = world.seller()
    order = world.shipped(seller)
    with world.settings(MIZANI_PAYOUT_LIMITS=limits(SPLIT_OVER_THE_DAY)):
        _, waiting = clear_until_a_part_is_scheduled(world, seller, order, expected_parts=2)
        balance = world.balance(seller["seller_id"])
        reply = world.post(f"/v1/sellers/{seller['seller_id']}/payouts", "seller", seller["seller_id"],
                           {"amount": {"amount": 5_000, "currency": "RWF"}})
    assert balance["payout_pending"] == waiting["amount"]
    assert (reply.status_code, reply.json()["error"]["code"]) == (422, "insufficient_funds")
