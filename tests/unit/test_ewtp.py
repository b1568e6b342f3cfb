"""eWTP's 30-day rule: the sum of a buyer's orders from one seller decides, not each order alone."""
import threading
from datetime import date, timedelta

import pytest

from chalicelib.escrow.ewtp import THRESHOLD_USD_MINOR, MemoryEwtpBuckets, decide
from chalicelib.money import Money

USD_150K = Money(150_000_00, "USD")
DAY0 = date(2026, 11, 1)


def test_eight_orders_over_a_week_the_one_that_reaches_a_million_is_not_tariff_free():
    buckets = MemoryEwtpBuckets()
    decisions = [decide(buckets, "buyer-1", "coop-1", f"o{n}", USD_150K, DAY0 + timedelta(days=n)) for n in range(8)]
    assert [d.tariff_free for d in decisions] == [True] * 6 + [False, False]
    assert decisions[5].window_total == Money(900_000_00, "USD")
    assert "takes the total to 1,050,000.00 USD" in decisions[6].reason
    assert "(900,000.00 USD)" in decisions[6].reason
    assert decisions[0].reason.startswith("under 1,000,000.00 USD")


def test_orders_older_than_thirty_days_no_longer_count():
    buckets = MemoryEwtpBuckets()
    for n in range(6):
        decide(buckets, "buyer-1", "coop-1", f"o{n}", USD_150K, DAY0)
    assert not decide(buckets, "buyer-1", "coop-1", "o6", USD_150K, DAY0 + timedelta(days=29)).tariff_free
    fresh = decide(buckets, "buyer-1", "coop-1", "o7", USD_150K, DAY0 + timedelta(days=30))
    assert fresh.tariff_free and fresh.window_total == Money(300_000_00, "USD")  # o6 and o7 only


def test_each_buyer_and_seller_pair_has_its_own_sum():
    buckets = MemoryEwtpBuckets()
    for n in range(7):
        decide(buckets, "buyer-1", "coop-1", f"o{n}", USD_150K, DAY0)
    assert decide(buckets, "buyer-2", "coop-1", "b2", USD_150K, DAY0).tariff_free
    assert decide(buckets, "buyer-1", "coop-2", "s2", USD_150K, DAY0).tariff_free


def test_a_retried_checkout_is_counted_once_and_keeps_its_answer():
    buckets = MemoryEwtpBuckets()
    first = decide(buckets, "buyer-1", "coop-1", "o1", Money(600_000_00, "USD"), DAY0)
    second = decide(buckets, "buyer-1", "coop-1", "o2", Money(600_000_00, "USD"), DAY0)
    assert (first.tariff_free, second.tariff_free) == (True, False)
    assert decide(buckets, "buyer-1", "coop-1", "o1", Money(600_000_00, "USD"), DAY0).tariff_free is True
    assert decide(buckets, "buyer-1", "coop-1", "o2", Money(600_000_00, "USD"), DAY0).tariff_free is False
    assert buckets.sums([f"ewtp#buyer-1#coop-1#{DAY0}"]) == 1_200_000_00


def test_one_order_of_a_million_is_not_tariff_free_on_its_own():
    decision = decide(MemoryEwtpBuckets(), "buyer-1", "coop-1", "o1", Money(THRESHOLD_USD_MINOR, "USD"), DAY0)
    assert not decision.tariff_free and "alone" in decision.reason
    assert decide(MemoryEwtpBuckets(), "b", "s", "o", Money(THRESHOLD_USD_MINOR - 1, "USD"), DAY0).tariff_free


@pytest.mark.parametrize("orders", [2, 8])
def test_of_orders_placed_at_the_same_moment_only_those_that_fit_are_tariff_free(orders):
    buckets = MemoryEwtpBuckets()
    results = {}
    start = threading.Barrier(orders)

    def place(n):
        start.wait()
        results[n] = decide(buckets, "buyer-1", "coop-1", f"o{n}", Money(400_000_00, "USD"), DAY0).tariff_free

    threads = [threading.Thread(target=place, args=(n,)) for n in range(orders)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sum(results.values()) == 2  # 800,000 fits; a third 400,000 would reach 1,200,000
