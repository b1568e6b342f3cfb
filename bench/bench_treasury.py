"""Treasury: the FX exposure of 100,000 open orders (positions, their escrow balances, today's rates).

Two figures: the whole ``Treasury.exposure()`` on the in-memory stores (the computation itself:
reading every open position and escrow balance, summing per currency, marking to market), and the
same report on moto's DynamoDB over HTTP for a smaller book, with the DynamoDB requests it costs
(which grow with the book: one Query page per ~1 MB of positions, one BatchGetItem per 100 escrows).
"""
from __future__ import annotations

import json
import statistics
import time

from bench.common import RequestCounter, moto_world, row  # noqa: F401

OPEN_ORDERS = 100_000
MOTO_ORDERS = 5_000
PAY = ("CNY", "EUR", "GBP", "USD")
PAYOUT = ("RWF", "KES", "UGX", "TZS", "GHS")


def positions(n: int):
    from chalicelib.treasury.positions import Position

    for i in range(n):
        yield Position(order_id=f"ord_{i:08d}", pay_currency=PAY[i % len(PAY)], payout_currency=PAYOUT[i % len(PAYOUT)],
                       convert_minor=800_000 + i % 1000, payout_minor=1_700_000 + i % 777,
                       opened_at=f"2026-12-01T00:00:00.{i:06d}Z"[:27] + "Z", locked_mid={"CNY": "0.1407", "RWF": "0.000689"})


def memory_treasury(n: int):
    from chalicelib.fx import SnapshotRateSource
    from chalicelib.ledger import Account, Ledger
    from chalicelib.ledger.memory import MemoryLedgerStore
    from chalicelib.treasury.positions import MemoryPositionStore
    from chalicelib.treasury.service import Treasury

    store, ledger_store = MemoryPositionStore(), MemoryLedgerStore()
    for i, p in enumerate(positions(n)):
        store.open(p, None)
        if i % 4:  # three in four paid: their escrow holds the pay amount
            ledger_store.accounts[f"escrow:{p.order_id}"] = Account(f"escrow:{p.order_id}", p.pay_currency, "liability",
                                                                   credits_posted=p.convert_minor + 12_000)
    return Treasury(store, SnapshotRateSource(), Ledger(ledger_store))


def timed(fn, runs: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    print(f"FX exposure ({OPEN_ORDERS:,} open orders in memory; {MOTO_ORDERS:,} on moto's DynamoDB over HTTP)")
    treasury = memory_treasury(OPEN_ORDERS)
    seconds, found = timed(treasury.exposure)
    row(f"exposure of {OPEN_ORDERS:,} open orders, in-memory stores (median of 3)", f"{seconds * 1000:.0f} ms")
    row("  open orders counted / currencies reported", f"{found['open_orders']:,} / {len(found['currencies'])}")

    from chalicelib import aws, settings
    from chalicelib.fx import SnapshotRateSource
    from chalicelib.ledger import Ledger
    from chalicelib.ledger.dynamo import DynamoLedgerStore
    from chalicelib.treasury.dynamo_store import OPEN_INDEX, DynamoPositionStore
    from chalicelib.treasury.service import Treasury

    with moto_world() as server:
        import boto3
        from botocore.config import Config

        s = settings.get()
        # moto answers a large GSI page slowly on a busy machine: a patient client (the code's own is 10 s)
        client = boto3.client("dynamodb", endpoint_url=server.url, region_name="us-east-1",
                              config=Config(read_timeout=600, retries={"mode": "standard", "max_attempts": 2}))
        app_table, accounts_table = s.table("app"), f"{s.table_prefix}-accounts"
        items = []
        for i, p in enumerate(positions(MOTO_ORDERS)):
            items.append((app_table, {"pk": {"S": f"fxpos#{p.order_id}"}, "sk": {"S": "doc"}, "state": {"S": "open"},
                                      "version": {"N": "1"}, "doc": {"S": json.dumps(p.to_dict())},
                                      "gsi1pk": {"S": OPEN_INDEX}, "gsi1sk": {"S": f"{p.opened_at}#{p.order_id}"}}))
            if i % 4:
                items.append((accounts_table, {"account_id": {"S": f"escrow:{p.order_id}"}, "currency": {"S": p.pay_currency},
                                               "kind": {"S": "liability"}, "credits_posted": {"N": str(p.convert_minor + 12_000)},
                                               "debits_posted": {"N": "0"}, "debits_pending": {"N": "0"},
                                               "credits_pending": {"N": "0"}}))
        started = time.perf_counter()
        for start in range(0, len(items), 25):
            batch: dict = {}
            for table, item in items[start:start + 25]:
                batch.setdefault(table, []).append({"PutRequest": {"Item": item}})
            while batch:
                batch = client.batch_write_item(RequestItems=batch).get("UnprocessedItems") or {}
        row(f"  (loading {len(items):,} items into moto took)", f"{time.perf_counter() - started:.1f} s")
        treasury = Treasury(DynamoPositionStore(app_table, client=client), SnapshotRateSource(),
                            Ledger(DynamoLedgerStore(s.table_prefix, client=client)))
        counter = RequestCounter(client)
        seconds, found = timed(treasury.exposure, runs=1)
        row(f"exposure of {MOTO_ORDERS:,} open orders, moto server over HTTP", f"{seconds:.1f} s")
        row("  DynamoDB requests", counter.describe())
        assert found["open_orders"] == MOTO_ORDERS


if __name__ == "__main__":
    main()
