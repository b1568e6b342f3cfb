"""The FX positions and capacity counters in DynamoDB (moto): the limit holds under concurrent checkouts."""
import threading

import pytest

from chalicelib.treasury.dynamo_store import DynamoPositionStore
from chalicelib.treasury.positions import Position


def position(order_id: str, payout: int = 1_000) -> Position:
    return Position(order_id=order_id, pay_currency="CNY", payout_currency="RWF", convert_minor=500,
                    payout_minor=payout, opened_at=f"2026-12-01T10:00:00.{order_id[-3:]:0>6}Z",
                    locked_mid={"CNY": "0.14", "RWF": "0.00069"})


@pytest.fixture
def store(aws_env):
    return DynamoPositionStore(aws_env.table("app"), client=aws_env.client("dynamodb"))


def test_concurrent_checkouts_never_take_more_than_the_limit(store):
    wins, lock = [], threading.Lock()

    def checkout(i: int) -> None:
        if store.open(position(f"ord-{i:03d}"), limit_minor=5_000):
            with lock:
                wins.append(i)

    threads = [threading.Thread(target=checkout, args=(i,)) for i in range(12)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(wins) == 5
    assert store.counters(["RWF", "KES"]) == {"RWF": 5_000, "KES": 0}
    assert sorted(p.order_id for p in store.open_positions()) == sorted(f"ord-{i:03d}" for i in wins)


def test_a_position_opens_once_and_closes_once(store):
    assert store.open(position("ord-001", 700), None)
    assert store.open(position("ord-001", 700), limit_minor=1)  # a retried checkout: already counted
    assert store.counters(["RWF"]) == {"RWF": 700}
    closed = store.close("ord-001", "released", "2026-12-02T00:00:00Z", {"CNY": "0.14", "RWF": "0.0007"}, -25)
    again = store.close("ord-001", "released", "2026-12-03T00:00:00Z", {"CNY": "0.2", "RWF": "0.1"}, 999)
    assert again == closed and closed.realized_pnl_minor == -25
    assert store.counters(["RWF"]) == {"RWF": 0} and store.realized_total() == -25
    assert list(store.open_positions()) == []
    assert store.close("ord-404", "released", "2026-12-02T00:00:00Z", None, 1) is None


def test_closed_positions_page_latest_first(store):
    for i in range(3):
        store.open(position(f"ord-00{i}"), None)
        store.close(f"ord-00{i}", "cancelled", f"2026-12-0{i + 1}T00:00:00Z", None, None)
    first, cursor = store.closed_page(2, None)
    assert [p.order_id for p in first] == ["ord-002", "ord-001"] and cursor
    rest, _ = store.closed_page(2, cursor)
    assert [p.order_id for p in rest] == ["ord-000"]
