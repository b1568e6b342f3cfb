"""Payouts against fakes: split, finality, unknown outcomes, limits, withdrawals."""
import threading
from datetime import datetime, timezone

import pytest

from chalicelib.errors import BusinessRuleViolation
from chalicelib.money import Money
from payout_world import WALLET, World

@pytest.fixture
def world():
    return World()


def test_a_payout_above_the_transaction_limit_is_split_and_settles_once_every_part_is_paid(world):
    order = world.released_order()
    oid, payout = order["order_id"], order["payout"]["amount"]
    assert payout > 1_000_000  # the sandbox's MTN RWF per-transaction maximum
    assert world.payouts.start_for_order(oid) == "succeeded"
    parts = [p["amount"]["amount"] for p in world.payouts.list_for_seller("coop-1")]
    assert len(parts) == 2 and sum(parts) == payout and max(parts) <= 1_000_000
    world.payouts.finish_for_order(oid, "succeeded")
    assert world.escrow.order(oid)["status"] == "settled"
    assert sum(m.minor for m in world.rail.credited(WALLET)) == payout
    assert world.seller_account().balance == 0
    assert world.ledger.get_account("float:mtn_momo:RWF").credits_posted == payout
    assert world.ledger.trial_balance().balanced
    texts = [m for _, m in world.phone.messages]
    assert any("held in escrow" in t for t in texts) and any("sent to your MTN MoMo wallet" in t for t in texts)
    assert all(len(t) <= 160 for t in texts)


def test_an_unknown_outcome_is_polled_until_final_and_pays_once(world):
    world.rail.script(WALLET, send="unknown", statuses=["pending", "succeeded"])
    oid = world.released_order()["order_id"]
    assert world.payouts.start_for_order(oid) == "pending"
    assert world.seller_account().debits_pending == world.escrow.order(oid)["payout"]["amount"]
    assert world.payouts.check_for_order(oid) == "pending"
    assert world.payouts.check_for_order(oid) == "succeeded"
    assert world.payouts.check_for_order(oid) == "succeeded"  # a retried check changes nothing
    assert sum(m.minor for m in world.rail.credited(WALLET)) == world.escrow.order(oid)["payout"]["amount"]
    assert world.seller_account().debits_posted == world.escrow.order(oid)["payout"]["amount"]


def test_a_failed_payout_gives_the_money_back_to_the_sellers_balance(world):
    world.rail.script(WALLET, send="failed", reason="PAYEE_NOT_FOUND")
    order = world.released_order()
    oid = order["order_id"]
    assert world.payouts.start_for_order(oid) == "failed"
    world.payouts.finish_for_order(oid, "failed")
    assert world.escrow.order(oid)["status"] == "payout_failed"
    assert world.seller_account().available == order["payout"]["amount"]
    assert world.rail.credited(WALLET) == []
    assert any("safe in your Mizani balance" in m for _, m in world.phone.messages)


def test_a_lost_request_is_sent_again_under_the_same_reference(world):
    world.rail.script(WALLET, send="unknown", recorded=False)
    oid = world.released_order()["order_id"]
    assert world.payouts.start_for_order(oid) == "pending"
    world.rail.script(WALLET, send="succeeded")
    assert world.payouts.check_for_order(oid) == "succeeded"
    assert sum(m.minor for m in world.rail.credited(WALLET)) == world.escrow.order(oid)["payout"]["amount"]


def test_withdrawals_cannot_exceed_the_available_balance(world):
    world.rail.script(WALLET, send="failed")
    oid = world.released_order()["order_id"]
    world.payouts.start_for_order(oid)  # fails: the money stays in the balance
    available = world.seller_account().available
    world.rail.script(WALLET, send="succeeded")
    with pytest.raises(BusinessRuleViolation) as e:
        world.payouts.withdraw(world.seller, Money(available + 1, "RWF"), "w1")
    assert e.value.code == "insufficient_funds"
    done = world.payouts.withdraw(world.seller, Money(500_000, "RWF"), "w2")
    assert done["status"] == "succeeded"
    assert world.payouts.withdraw(world.seller, Money(500_000, "RWF"), "w2")["payout_id"] == done["payout_id"]
    assert world.seller_account().available == available - 500_000


def test_two_concurrent_withdrawals_never_overdraw(world):
    world.rail.script(WALLET, send="failed")
    oid = world.released_order()["order_id"]
    world.payouts.start_for_order(oid)
    available = world.seller_account().available
    world.rail.script(WALLET, send="succeeded")
    amount = available // 2 + 1  # each alone fits; both together do not
    outcomes = []

    def withdraw(key):
        try:
            outcomes.append(world.payouts.withdraw(world.seller, Money(amount, "RWF"), key)["status"])
        except BusinessRuleViolation as refused:
            outcomes.append(refused.code)

    threads = [threading.Thread(target=withdraw, args=(k,)) for k in ("a", "b")]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(outcomes) == ["insufficient_funds", "succeeded"]
    assert world.seller_account().available == available - amount >= 0


def test_the_daily_wallet_limit_refuses_a_withdrawal_and_schedules_an_order_payout(world):
    world.rail.script(WALLET, send="failed")
    for key in ("k1", "k2", "k3", "k4"):
        world.payouts.start_for_order(world.released_order(key)["order_id"])
    world.rail.script(WALLET, send="succeeded")
    for key in ("w1", "w2", "w3", "w4", "w5"):
        world.payouts.withdraw(world.seller, Money(1_000_000, "RWF"), key)  # 5,000,000 RWF: the day's maximum
    with pytest.raises(BusinessRuleViolation) as e:
        world.payouts.withdraw(world.seller, Money(100, "RWF"), "w6")
    assert e.value.code == "limit_exceeded"
    oid = world.released_order("k5")["order_id"]
    assert world.payouts.start_for_order(oid) == "pending"
    scheduled = [p for p in world.payouts.list_for_seller("coop-1") if p["order_id"] == oid]
    assert all(p["status"] == "pending" and p["scheduled_for"].startswith("2026-11-29") for p in scheduled)
    world.now = datetime(2026, 11, 29, 0, 5, tzinfo=timezone.utc)
    assert world.payouts.check_for_order(oid) == "succeeded"
