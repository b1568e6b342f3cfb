"""eWTP's day buckets on moto's DynamoDB: the conditional write decides, even under concurrency."""
import threading
from datetime import date, timedelta

import pytest

from chalicelib import settings as app_settings
from chalicelib.escrow.ewtp import DynamoEwtpBuckets, decide
from chalicelib.money import Money

DAY0 = date(2026, 11, 1)


@pytest.fixture
def buckets(aws_env):
    return DynamoEwtpBuckets(app_settings.get().table("app"))


def test_the_order_that_reaches_a_million_over_the_week_is_not_tariff_free(buckets):
    free = [decide(buckets, "b", "s", f"o{n}", Money(150_000_00, "USD"), DAY0 + timedelta(days=n)).tariff_free
            for n in range(8)]
    assert free == [True] * 6 + [False, False]
    assert decide(buckets, "b", "s", "later", Money(150_000_00, "USD"), DAY0 + timedelta(days=36)).tariff_free


def test_a_retried_checkout_reads_back_the_decision_it_was_counted_with(buckets):
    assert decide(buckets, "b", "s", "o1", Money(700_000_00, "USD"), DAY0).tariff_free
    assert not decide(buckets, "b", "s", "o2", Money(700_000_00, "USD"), DAY0).tariff_free
    assert decide(buckets, "b", "s", "o1", Money(700_000_00, "USD"), DAY0).tariff_free
    assert not decide(buckets, "b", "s", "o2", Money(700_000_00, "USD"), DAY0).tariff_free
    assert buckets.sums([f"ewtp#b#s#{DAY0}"]) == 1_400_000_00


def test_of_six_orders_placed_at_once_exactly_those_that_fit_are_tariff_free(buckets):
    results, start = {}, threading.Barrier(6)

    def place(n):
        start.wait()
        results[n] = decide(buckets, "b", "s", f"o{n}", Money(300_000_00, "USD"), DAY0).tariff_free

    threads = [threading.Thread(target=place, args=(n,)) for n in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sum(results.values()) == 3  # 900,000 fits under the million; the other three are counted, not free
    assert buckets.sums([f"ewtp#b#s#{DAY0}"]) == 1_800_000_00
