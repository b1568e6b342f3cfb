"""Airtel Money statements: read exactly, matched against the Airtel payouts the ledger booked."""
from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from chalicelib.ledger import Ledger, Transfer, TransferKind
from chalicelib.ledger.memory import MemoryLedgerStore
from chalicelib.money import Money
from chalicelib.recon import (
    AMOUNT_MISMATCH, DUPLICATE, MATCHED, MISSING_AT_PROVIDER, MISSING_IN_LEDGER, PAID_TWICE, REPEATED_LINE,
    LedgerLine, MemoryLedgerSource, StatementError, parse_statement, reconcile_statement, write_ledger_csv,
)
from chalicelib.recon import distributed, parallel
from chalicelib.recon.archive import MemoryArchive
from chalicelib.recon.cli import main
from chalicelib.recon.importers import airtel
from chalicelib.recon.ledger_records import StoreLedgerSource
from chalicelib.recon.model import FAILED, PENDING, SETTLED

ROOT = Path(__file__).resolve().parents[2]
HEADER = "transaction_id,reference,airtel_money_id,msisdn,amount,currency,status,message,completed_at\n"
DAY = date(2026, 5, 9)


def statement(*rows: str) -> str:
    return HEADER + "".join(f"{row}\n" for row in rows)


def ts(ref: str, amount: str, currency: str = "UGX", money_id: str = "", at: str = "2026-05-09T10:00:00Z") -> str:
    """A settled line as the sandbox writes it (Airtel's id defaults to one derived from ours)."""
    return f"{ref},Mizani payout,{money_id or 'MP260509.' + ref},256700000001,{amount},{currency},TS,SUCCESS,{at}"


def payout(ref: str, minor: int, currency: str = "UGX") -> LedgerLine:
    return LedgerLine(ref, "airtel_money", -minor, currency, DAY, "payout", ref)


def reconcile(content: str, *lines: LedgerLine):
    return reconcile_statement("airtel_money", content, MemoryLedgerSource(lines))


def outcomes(rec) -> list[tuple]:
    return [(b.reference, b.outcome, b.classification) for b in rec.breaks]


def bad_lines(content: str) -> dict[int, str]:
    with pytest.raises(StatementError) as info:
        parse_statement("airtel_money", content)
    return dict(info.value.errors)


# -- reading -------------------------------------------------------------------------------------

def test_the_sandbox_statement_becomes_negative_payout_lines_in_minor_units_keyed_on_our_payout_id():
    content = statement(
        ts("po_a", "150000", money_id="MP260509.1000.A00001"),
        ts("po_b", "1500.50", "KES", money_id="MP260509.1000.A00002", at="2026-05-09T23:59:59Z"),
        'po_c,Mizani payout,,254700000010,800,KES,TF,"Transaction failed, payee barred",2026-05-10T01:00:00Z',
    )
    lines = list(parse_statement("airtel_money", content))
    assert [(p.line, p.reference, p.amount, p.kind, p.status, p.raw_id) for p in lines] == [
        (2, "po_a", Money(-150000, "UGX"), "payout", SETTLED, "MP260509.1000.A00001"),
        (3, "po_b", Money(-150050, "KES"), "payout", SETTLED, "MP260509.1000.A00002"),
        (4, "po_c", Money(-80000, "KES"), "payout", FAILED, ""),
    ]
    assert lines[0].provider == "airtel_money" and lines[0].day == DAY and lines[0].fee is None


def test_a_completion_time_with_an_offset_counts_on_its_utc_day():
    (line,) = parse_statement("airtel_money", statement(ts("po_a", "10", at="2026-05-10T01:30:00+03:00")))
    assert line.day == DAY


def test_in_progress_and_ambiguous_lines_are_pending_and_status_codes_are_case_insensitive():
    content = statement("po_a,r,,2567,10,UGX,TIP,,2026-05-09T10:00:00Z", "po_b,r,,2567,10,UGX,ta,,2026-05-09",
                        "po_c,r,MP1,2567,10,UGX,ts,,2026-05-09")
    assert [p.status for p in parse_statement("airtel_money", content)] == [PENDING, PENDING, SETTLED]


def test_a_malformed_statement_lists_every_bad_line_with_its_number_and_reason():
    content = statement(
        ts("po_a", "150000"),
        ts("po_b", "15.5.0"),  # 3
        ts("", "100"),  # 4: no transaction_id
        ts("po_d", "100", "XYZ"),  # 5
        "po_e,r,MP5,2567,100,UGX,DONE,,2026-05-09T10:00:00Z",  # 6: not a status
        "po_f,r,,2567,100,UGX,TS,,2026-05-09T10:00:00Z",  # 7: settled without Airtel's id
        ts("po_g", "150000.5"),  # 8: UGX has no decimals
        ts("po_h", "1500.505", "KES"),  # 9: KES has two
        ts("po_i", "0"),  # 10
        ts("po_j", "-100"),  # 11
        ts("po_k", "100", at="2026-02-30T10:00:00Z"),  # 12
        "po_l,r,MP12,2567,100,UGX,TS",  # 13: fields missing
        ts("po_m", "100"),
    )
    errors = bad_lines(content)
    assert sorted(errors) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    assert "15.5.0" in errors[3] and "transaction_id is empty" in errors[4] and "XYZ" in errors[5]
    assert "DONE" in errors[6] and "TS, TF, TIP, TA" in errors[6]
    assert errors[7] == "airtel_money_id is empty on a TS line"
    assert "more" in errors[8] and "more" in errors[9]
    assert "must be positive" in errors[10] and "must be positive" in errors[11]
    assert "completed_at" in errors[12] and "expected 9 fields, found 7" in errors[13]


def test_a_statement_without_a_required_column_is_refused_on_its_header():
    content = HEADER.replace("airtel_money_id,", "") + "po_a,r,2567,10,UGX,TS,,2026-05-09\n"
    assert bad_lines(content) == {1: "missing column airtel_money_id (header: transaction_id, reference, msisdn, "
                                     "amount, currency, status, message, completed_at)"}


def test_the_fast_and_the_line_by_line_path_read_a_statement_alike(monkeypatch):
    rows = [f"po_{i},pay,{'MP' + str(i) if i % 7 else ''},25670000{i:04d},{i}.{i % 100:02d},KES,"
            f"{'TS' if i % 7 else 'TF'},msg,2026-05-{1 + i % 28:02d}T0{i % 10}:00:00Z" for i in range(1, 300)]
    content = statement(*rows)
    fast = list(parse_statement("airtel_money", content))
    monkeypatch.setattr(airtel.FORMAT, "fast", lambda raw, n: None)
    assert list(parse_statement("airtel_money", content)) == fast


# -- matching ------------------------------------------------------------------------------------

def test_a_clean_statement_matches_the_airtel_payouts_the_ledger_booked():
    at_ns = int(datetime(2026, 5, 9, 9, 0, tzinfo=timezone.utc).timestamp() * 1e9)
    ledger = Ledger(MemoryLedgerStore(), clock_ns=lambda: at_ns)
    for account, currency in (("fx:UGX", "UGX"), ("seller:s1", "UGX"), ("float:airtel_money:UGX", "UGX"),
                              ("float:mtn_momo:UGX", "UGX")):
        ledger.create_account(account, currency)
    ledger.transfer(Transfer("fund", "fx:UGX", "seller:s1", 10_000_000, "UGX"))
    for ref, amount, rail in (("po_1", 150_000, "airtel_money"), ("po_2", 250_000, "airtel_money"),
                              ("po_3", 40_000, "airtel_money"), ("po_m", 70_000, "mtn_momo")):
        ledger.transfer(Transfer(ref, "seller:s1", f"float:{rail}:UGX", amount, "UGX", TransferKind.PENDING,
                                 code="payout", reference=ref))
        if ref == "po_3":  # Airtel said TF: the reservation is voided, no money moved
            ledger.void(f"{ref}:void", ref, code="payout", reference=ref)
        else:
            ledger.post(f"{ref}:post", ref, code="payout", reference=ref)
    content = statement(ts("po_1", "150000"), ts("po_2", "250000", at="2026-05-09T11:00:00Z"),
                        "po_3,Mizani payout,,256700000010,40000,UGX,TF,Transaction failed,2026-05-09T11:30:00Z")

    rec = reconcile_statement("airtel_money", content, StoreLedgerSource(ledger.store))

    assert rec.status == "balanced" and rec.breaks == [] and rec.provider == "airtel_money"
    assert (rec.counts[MATCHED], rec.counts["not_settled"], rec.counts["ledger_lines"]) == (2, 1, 2)
    (row,) = rec.settlement  # the MTN payout of the same day is not Airtel's
    assert (row.provider, row.currency, row.day, row.expected, row.reported) == (
        "airtel_money", "UGX", DAY, -400_000, -400_000)


def test_every_kind_of_break_is_reported():
    content = statement(
        ts("po_1", "150000"),
        ts("po_2", "249000"),  # the ledger paid 250000
        ts("po_9", "5000"),  # no payout of ours
        ts("po_4", "30000", money_id="MP4"), ts("po_4", "30000", money_id="MP4"),  # the same line twice
        ts("po_5", "20000", money_id="MP5a"), ts("po_5", "20000", money_id="MP5b"),  # paid twice
    )
    rec = reconcile(content, payout("po_1", 150000), payout("po_2", 250000), payout("po_3", 60000),
                    payout("po_4", 30000), payout("po_5", 20000))
    assert sorted(outcomes(rec)) == [
        ("po_2", AMOUNT_MISMATCH, ""), ("po_3", MISSING_AT_PROVIDER, ""), ("po_4", DUPLICATE, REPEATED_LINE),
        ("po_5", DUPLICATE, PAID_TWICE), ("po_9", MISSING_IN_LEDGER, ""),
    ]
    mismatch = next(b for b in rec.breaks if b.reference == "po_2")
    assert (mismatch.ledger_amount, mismatch.provider_amount) == (Money(-250000, "UGX"), Money(-249000, "UGX"))
    assert rec.counts[MATCHED] == 3 and rec.status == "breaks"


def test_a_failed_line_for_a_payout_the_ledger_posted_leaves_the_payout_missing_at_provider():
    content = statement("po_1,r,,2567,150000,UGX,TF,Transaction failed,2026-05-09T10:00:00Z")
    rec = reconcile(content, payout("po_1", 150000))
    assert outcomes(rec) == [("po_1", MISSING_AT_PROVIDER, "")] and rec.counts["not_settled"] == 1


def test_chunked_or_forked_the_reconciliation_is_the_same():
    rows, ledger = [], []
    for i in range(400):
        minor = 1000 + i * 7
        ledger.append(payout(f"po_{i:04d}", minor, "KES"))
        if i % 50 != 3:  # a few missing at provider
            rows.append(ts(f"po_{i:04d}", f"{(minor + (i % 61 == 0)) // 100}.{(minor + (i % 61 == 0)) % 100:02d}",
                           "KES"))
    content = statement(*rows)
    whole = reconcile(content, *ledger)
    assert whole.breaks  # mismatches and missing lines to carry through every path
    chunked = distributed.run_locally(MemoryArchive(), "airtel_money", content, MemoryLedgerSource(ledger), 3)
    forked = parallel.reconcile_parallel("airtel_money", content.encode(), write_ledger_csv(ledger).encode(),
                                         workers=2, min_bytes=0, slack_days=2,
                                         reconciliation_id=whole.reconciliation_id, stats=(stats := {}))
    assert stats["workers"] == 2
    assert chunked.to_dict() == whole.to_dict() == forked.to_dict()


# -- the finance CLI -----------------------------------------------------------------------------

@pytest.fixture
def files(tmp_path):
    def write(content: str, *lines: LedgerLine) -> tuple[str, str]:
        s, l = tmp_path / "airtel.csv", tmp_path / "ledger.csv"
        s.write_text(content)
        l.write_text(write_ledger_csv(lines))
        return str(s), str(l)
    return write


def test_python_dash_m_reconciles_an_airtel_statement(files):
    clean = files(statement(ts("po_1", "150000"), ts("po_2", "250000")), payout("po_1", 150000), payout("po_2", 250000))
    proc = subprocess.run([sys.executable, "-m", "chalicelib.recon", clean[0], "--source", "airtel_money",
                           "--ledger", clean[1]], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "source airtel_money  provider airtel_money  status balanced" in proc.stdout and "-400,000" in proc.stdout


def test_the_cli_exits_1_on_breaks_and_2_on_a_malformed_airtel_statement(files, capsys):
    statement_path, ledger_path = files(statement(ts("po_1", "149000")), payout("po_1", 150000))
    assert main([statement_path, "--source", "airtel_money", "--ledger", ledger_path]) == 1
    assert "amount_mismatch" in capsys.readouterr().out
    statement_path, ledger_path = files(statement(ts("po_1", "150000"), ts("po_2", "12x")), payout("po_1", 150000))
    assert main([statement_path, "--source", "airtel_money", "--ledger", ledger_path]) == 2
    err = capsys.readouterr().err
    assert "line 3" in err and "12x" in err
