"""KYC tiers: what a party may be paid per day and per month, on the daily limit's conditional counters."""
from datetime import timedelta

import pytest

from chalicelib.errors import BusinessRuleViolation
from chalicelib.money import Money
from chalicelib.payouts.service import PayoutService
from chalicelib.payouts.tiers import TierCounters, tier_limits
from chalicelib.workflow.order_payouts import OrderPayouts
from payout_world import WALLET, World

LIMITS = {"0:RWF": {"per_day": 1_000_000, "per_month": 2_500_000}, "1:RWF": {"per_day": 3_000_000, "per_month": 9_000_000}}


@pytest.fixture
def world():
    w = World()
    w.payouts = PayoutService(w.docs, w.ledger, lambda name: w.rail, clock=lambda: w.now, tiers=TierCounters(w.docs, LIMITS))
    w.order_payouts = OrderPayouts(w.escrow, w.payouts)
    return w


def funded(world, orders: int = 3) -> dict:
    """The seller's balance filled by released orders whose payouts failed."""
    for n in range(orders):
        world.balance_order(f"fund{n}")
    return world.escrow.get_seller(*_seller())


def _seller():
    from payout_world import SELLER

    return SELLER, "coop-1"


def withdraw(world, amount: int, key: str):
    seller = world.escrow.get_seller(*_seller())
    return world.payouts.withdraw(seller, Money(amount, "RWF"), key)


def test_a_tier_0_party_is_paid_up_to_its_daily_limit_and_refused_beyond_with_nothing_counted(world):
    funded(world)
    withdraw(world, 600_000, "w1")
    before = world.seller_account().available
    with pytest.raises(BusinessRuleViolation) as refused:
        withdraw(world, 500_000, "w2")  # 1,100,000 would pass the 1,000,000 a day
    assert refused.value.code == "limit_exceeded" and "a day" in refused.value.message
    assert world.seller_account().available == before  # nothing reserved
    withdraw(world, 400_000, "w3")  # what is left of the day still fits: the refusal counted nothing
    assert sum(m.minor for m in world.rail.credited(WALLET)) == 1_000_000


def test_the_monthly_limit_counts_across_days_and_a_new_month_starts_afresh(world):
    funded(world, 4)
    for day in range(2):
        withdraw(world, 1_000_000, f"d{day}")
        world.now += timedelta(days=1)
    with pytest.raises(BusinessRuleViolation) as refused:
        withdraw(world, 600_000, "d2")  # 2,600,000 in the month would pass 2,500,000
    assert "a month" in refused.value.message
    withdraw(world, 500_000, "d3")
    world.now = world.now.replace(month=world.now.month % 12 + 1, day=1)
    withdraw(world, 1_000_000, "next-month")


def test_a_higher_tier_may_be_paid_more(world):
    funded(world)
    world.docs.update("seller#coop-1", lambda doc: {**doc, "kyc_tier": 1})
    withdraw(world, 2_500_000, "big")
    assert sum(m.minor for m in world.rail.credited(WALLET)) == 2_500_000


def test_an_orders_payout_over_the_tier_waits_for_the_next_day_and_is_then_paid(world):
    order = world.released_order("o1")
    assert order["payout"]["amount"] > 1_000_000
    world.order_payouts.start_for_order(order["order_id"])
    payouts = [world.docs.get(f"payout#{pid}") for pid in world.docs.get(f"orderpayouts#{order['order_id']}")["payout_ids"]]
    waiting = [p for p in payouts if p["status"] == "scheduled"]
    assert waiting and {p["reason"] for p in waiting} == {"tier_daily_limit"}
    assert sum(m.minor for m in world.rail.credited(WALLET)) <= 1_000_000
    world.now += timedelta(days=1, hours=1)
    assert world.order_payouts.check_for_order(order["order_id"]) == "succeeded"
    assert sum(m.minor for m in world.rail.credited(WALLET)) == order["payout"]["amount"]


def test_a_failed_payout_gives_its_tier_count_back(world):
    funded(world)
    world.rail.script(WALLET, send="failed", reason="PAYEE_NOT_FOUND")
    failed = withdraw(world, 900_000, "fails")
    assert failed["status"] == "failed"
    world.rail.script(WALLET, send="succeeded")
    withdraw(world, 900_000, "again")  # fits: the failed one no longer counts


def test_limits_come_from_the_configuration_per_tier_and_currency():
    assert tier_limits(0, "RWF", LIMITS).per_day == 1_000_000
    assert tier_limits(2, "RWF", LIMITS) is None  # not named: unbounded beyond the wallet's own limits
    assert tier_limits(0, "KES", LIMITS) is None
