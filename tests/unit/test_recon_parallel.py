"""Reconciliation on several processes gives exactly the one-process result."""
from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from chalicelib.recon import parallel
from chalicelib.recon.engine import reconcile
from chalicelib.recon.importers import momo, parse_statement, stripe
from chalicelib.recon.ledger_source import MemoryLedgerSource, read_ledger_csv
from chalicelib.recon.model import ProviderBatch, StatementError
from chalicelib.recon.inputs import reconciliation_id, statement_period
from chalicelib.recon.service import reconcile_statement

START = date(2026, 5, 1)


def _files(n: int = 3000, seed: int = 7) -> tuple[bytes, bytes]:
    """An MTN statement and its ledger CSV with a split payout, a changed amount, a repeated line,
    a second payment, a dropped line and a foreign line every few hundred lines."""
    rng = random.Random(seed)
    ledger = ["transfer_id,provider,kind,reference,amount_minor,currency,day"]
    rows = []
    txn = 1000
    for i in range(n):
        ref, amount, day = f"po_{i:06d}", rng.randint(100, 900_000), START + timedelta(days=i * 10 // n)
        ledger.append(f"{ref},mtn_momo,payout,{ref},{-amount},GHS,{day.isoformat()}")
        stamp = f"{day.isoformat()}T{rng.randrange(24):02d}:00:00Z"
        case = i % 97
        if case == 1:
            continue  # dropped: missing_at_provider
        parts = [amount // 3, amount - amount // 3] if case == 2 else [amount + (5 if case == 3 else 0)]
        for part in parts:
            rows.append((stamp, txn, ref, part))
            txn += 1
        if case == 4:
            rows.append((stamp, txn - 1, ref, amount))  # repeated line
        if case == 5:
            rows.append((stamp, txn, ref, amount))  # paid twice
            txn += 1
        if case == 6:
            rows.append((stamp, txn, f"ext_foreign_{i}", 1234))
            txn += 1
    rows.sort()
    statement = ["financialTransactionId,externalId,amount,currency,status,date"]
    statement += [f"{t},{ref},{a // 100}.{a % 100:02d},GHS,SUCCESSFUL,{stamp}" for stamp, t, ref, a in rows]
    return ("\n".join(statement) + "\n").encode(), ("\n".join(ledger) + "\n").encode()


def _one_process(content: bytes, ledger: bytes):
    batch = parse_statement("mtn_momo", content)
    return reconcile(batch, read_ledger_csv(ledger).select("mtn_momo"), source="mtn_momo",
                     reconciliation_id=reconciliation_id("mtn_momo", content), period=statement_period(batch))


@pytest.mark.parametrize("workers", [2, 3])
def test_several_processes_find_exactly_what_one_process_finds(workers):
    content, ledger = _files()
    expected = _one_process(content, ledger)
    stats: dict = {}
    got = parallel.reconcile_parallel("mtn_momo", content, ledger, workers=workers, min_bytes=0, stats=stats,
                                      reconciliation_id=reconciliation_id("mtn_momo", content))
    assert stats["workers"] == workers
    assert got.to_dict() == expected.to_dict()
    assert expected.breaks and {b.outcome for b in expected.breaks} == {
        "amount_mismatch", "duplicate", "missing_in_ledger", "missing_at_provider"}


def test_break_line_numbers_are_the_file_lines_on_both_sides_of_a_split():
    content, ledger = _files()
    got = parallel.reconcile_parallel("mtn_momo", content, ledger, workers=2, min_bytes=0,
                                      reconciliation_id="rec_x")
    lines = content.decode().split("\n")
    numbered = [b for b in got.breaks if b.line is not None]
    half = len(lines) // 2
    assert any(b.line < half for b in numbered) and any(b.line > half for b in numbered)
    for b in numbered:
        assert lines[b.line - 1].split(",")[1] == b.reference  # line N of the file is lines[N - 1]


def test_every_malformed_line_is_reported_with_its_number_whichever_worker_read_it():
    content, ledger = _files()
    lines = content.decode().split("\n")
    bad = [5, len(lines) // 2 + 3, len(lines) - 3]  # 1-based line numbers, in both halves
    for n in bad:
        fields = lines[n - 1].split(",")
        fields[2] = "12.5x"
        lines[n - 1] = ",".join(fields)
    broken = "\n".join(lines).encode()
    with pytest.raises(StatementError) as one:
        parse_statement("mtn_momo", broken)
    with pytest.raises(StatementError) as several:
        parallel.reconcile_parallel("mtn_momo", broken, ledger, workers=2, min_bytes=0, reconciliation_id="rec_x")
    assert [n for n, _ in several.value.errors] == bad
    assert several.value.errors == one.value.errors
    assert several.value.total == 3


def test_a_malformed_ledger_line_is_reported_too():
    content, ledger = _files()
    lines = ledger.decode().split("\n")
    lines[-5] = lines[-5].replace("GHS", "XXX")
    with pytest.raises(StatementError) as e:
        parallel.reconcile_parallel("mtn_momo", content, "\n".join(lines).encode(), workers=2, min_bytes=0,
                                    reconciliation_id="rec_x")
    assert e.value.source == "ledger_csv"
    assert [n for n, _ in e.value.errors] == [len(lines) - 4]


def test_byte_ranges_read_back_to_the_whole_file():
    content, _ = _files(500)
    ranges = momo.FORMAT.split(content, 3)
    assert ranges[0][2] == 2 and len(ranges) == 3
    whole_lines, whole = momo.FORMAT.read(content)
    pieces = [momo.FORMAT.read_range(content, *r) for r in ranges]
    assert [n for lines, _, _ in pieces for n in lines] == list(whole_lines)
    for name, col in whole.items():
        assert [v for _, cols, _ in pieces for v in cols[name]] == col


def test_a_quoted_csv_is_not_split_and_runs_in_one_process():
    content, ledger = _files(300)
    quoted = content.replace(b",GHS,", b',"GHS",')
    assert momo.FORMAT.split(quoted, 2) is None
    stats: dict = {}
    got = parallel.reconcile_parallel("mtn_momo", quoted, ledger, workers=2, min_bytes=0, stats=stats,
                                      reconciliation_id="rec_x")
    assert stats["workers"] == 1
    assert got.breaks == _one_process(content, ledger).breaks


def test_reconcile_statement_with_a_ledger_source_is_the_same_on_several_processes(monkeypatch):
    content, ledger = _files()
    source = MemoryLedgerSource(read_ledger_csv(ledger))
    one = reconcile_statement("mtn_momo", content, source, workers=1)
    monkeypatch.setattr(parallel, "MIN_PARALLEL_BYTES", 0)
    runs = []
    run = parallel._Job.run
    monkeypatch.setattr(parallel._Job, "run", lambda self, *a: runs.append(self.workers) or run(self, *a))
    several = reconcile_statement("mtn_momo", content, source, workers=2)
    assert runs == [2]
    assert several.to_dict() == one.to_dict()


def test_stripe_fees_survive_the_exchange_between_workers():
    header = "balance_transaction_id,created_utc,reporting_category,currency,gross,fee,net,payment_intent_id"
    rows = [header]
    ledger = ["transfer_id,provider,kind,reference,amount_minor,currency,day"]
    for i in range(400):
        fee = 30 + i % 7
        rows.append(f"txn_{i},2026-05-0{1 + i % 5} 10:00:00,charge,usd,{10 + i}.00,0.{fee},{9 + i}.{100 - fee}"
                    f",pi_{i}")
        ledger.append(f"tr_{i},stripe,card_payment,pi_{i},{(10 + i) * 100},USD,2026-05-0{1 + i % 5}")
    content, ledger_csv = ("\n".join(rows) + "\n").encode(), ("\n".join(ledger) + "\n").encode()
    batch = stripe.parse(content)
    expected = reconcile(batch, read_ledger_csv(ledger_csv).select("stripe"), source="stripe_balance",
                         reconciliation_id="rec_x", period=statement_period(batch))
    got = parallel.reconcile_parallel("stripe_balance", content, ledger_csv, workers=2, min_bytes=0,
                                      reconciliation_id="rec_x")
    assert got.to_dict() == expected.to_dict()
    assert got.classified["fee"] == 400 and not got.breaks


def test_concat_fills_an_optional_column_absent_from_one_batch():
    a = ProviderBatch("mtn_momo", "mtn_momo", line=[2], reference=["r"], amount_minor=[-1], currency=["GHS"],
                      day=[START], kind=["payout"], raw_id=["t"], status=["failed"])
    b = ProviderBatch("mtn_momo", "mtn_momo", line=range(3, 4), reference=["s"], amount_minor=[-2],
                      currency=["GHS"], day=[START], kind=["payout"], raw_id=["u"])
    both = ProviderBatch.concat([a, b])
    assert list(both) == list(a) + list(b)
