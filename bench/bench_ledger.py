"""Ledger: DynamoDB requests per write, transfers per second on moto's server, and the
cold-start import time of the Lambda entry point beside a bare ``import boto3``."""
from __future__ import annotations

import threading
import time

from bench.common import RequestCounter, app_as_packaged, import_time_ms, moto_world, row


def main() -> None:
    print("Ledger and cold start")
    with app_as_packaged() as packaged:  # our modules with the bytecode make package ships (infra.bytecode)
        app_ms = import_time_ms("app", cwd=packaged)
    source_ms = import_time_ms("app")
    boto_ms = import_time_ms("boto3")
    row("import app as packaged, with bytecode (median of 7 runs)", f"{app_ms:.0f} ms")
    row("import app from sources, compiling each module", f"{source_ms:.0f} ms")
    row("import boto3 (same run)", f"{boto_ms:.0f} ms")
    row("ratio app as packaged / boto3 (target <= 1.5)", f"{app_ms / boto_ms:.2f}x")
    # not part of `import app`: paid once per container, on its first log line or metric
    powertools_ms = import_time_ms("aws_lambda_powertools.logging.formatter, "
                                   "aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch")
    row("first JSON log line/metric: import Powertools (same run)", f"{powertools_ms:.0f} ms")

    from chalicelib import aws, settings
    from chalicelib.ledger import Ledger, Transfer, TransferKind
    from chalicelib.ledger.dynamo import DynamoLedgerStore

    with moto_world():
        ledger = Ledger(DynamoLedgerStore(settings.get().table_prefix))
        ledger.create_account("psp:stripe:CNY", "CNY")
        ledger.create_account("escrow:o1", "CNY", "liability", ["debits_must_not_exceed_credits"])
        ledger.create_account("fx:CNY", "CNY")
        ledger.create_account("fx:RWF", "RWF")
        ledger.create_account("seller:s1", "RWF", "liability", ["debits_must_not_exceed_credits"])
        ledger.create_account("revenue:fees:CNY", "CNY", "revenue")
        ledger.create_account("float:mtn_momo:RWF", "RWF")
        counter = RequestCounter(aws.dynamodb())

        counter.reset()
        ledger.transfer(Transfer("b-single", "psp:stripe:CNY", "escrow:o1", 852_000, "CNY"))
        row("single transfer: DynamoDB requests", counter.describe())

        counter.reset()
        ledger.transfer(
            Transfer("b-fee", "escrow:o1", "revenue:fees:CNY", 12_780, "CNY"),
            Transfer("b-fx-in", "escrow:o1", "fx:CNY", 839_220, "CNY"),
            Transfer("b-fx-out", "fx:RWF", "seller:s1", 1_700_000, "RWF"),
        )
        row("linked chain of 3 (release): DynamoDB requests", counter.describe())

        counter.reset()
        ledger.transfer(Transfer("b-fx-in", "escrow:o1", "fx:CNY", 839_220, "CNY"))
        row("replay of a committed transfer: DynamoDB requests", counter.describe())

        counter.reset()
        ledger.transfer(Transfer("b-p", "seller:s1", "float:mtn_momo:RWF", 1_000, "RWF", TransferKind.PENDING))
        ledger.post("b-p:post", "b-p")
        row("pending + post (payout): DynamoDB requests", counter.describe())

        n = 200
        start = time.perf_counter()
        for i in range(n):
            ledger.transfer(Transfer(f"ts-{i}", "psp:stripe:CNY", "fx:CNY", 1, "CNY"))
        elapsed = time.perf_counter() - start
        row(f"throughput: {n} transfers, 1 thread, moto server over HTTP", f"{n / elapsed:.0f} transfers/s")

        n, threads = 400, 4
        start = time.perf_counter()

        def worker(w: int) -> None:
            for i in range(n // threads):
                ledger.transfer(Transfer(f"tp-{w}-{i}", "psp:stripe:CNY", "fx:CNY", 1, "CNY"))

        pool = [threading.Thread(target=worker, args=(w,)) for w in range(threads)]
        [t.start() for t in pool]
        [t.join() for t in pool]
        elapsed = time.perf_counter() - start
        row(f"throughput: {n} transfers, {threads} threads, moto server over HTTP", f"{n / elapsed:.0f} transfers/s")
        assert ledger.trial_balance().balanced


if __name__ == "__main__":
    main()
