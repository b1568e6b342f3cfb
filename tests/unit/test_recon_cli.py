"""The finance CLI: tables on stdout, and an exit status a script can act on."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.recon.cli import main

ROOT = Path(__file__).resolve().parents[2]
STATEMENT = (
    "financialTransactionId,externalId,amount,currency,status,date\n"
    "1001,po_a,1500,RWF,SUCCESSFUL,2026-05-09T10:00:00Z\n"
    "1002,po_b,2500,RWF,SUCCESSFUL,2026-05-09T11:00:00Z\n"
)
LEDGER = (
    "transfer_id,provider,kind,reference,amount_minor,currency,day\n"
    "po_a,mtn_momo,payout,po_a,-1500,RWF,2026-05-09\n"
    "po_b,mtn_momo,payout,po_b,-2500,RWF,2026-05-09\n"
)


@pytest.fixture
def files(tmp_path):
    def write(statement=STATEMENT, ledger=LEDGER):
        s, l = tmp_path / "statement.csv", tmp_path / "ledger.csv"
        s.write_text(statement)
        l.write_text(ledger)
        return str(s), str(l)
    return write


def test_a_clean_reconciliation_exits_0_and_prints_the_summary_and_settlement(files, capsys):
    statement, ledger = files()
    assert main([statement, "--source", "mtn_momo", "--ledger", ledger]) == 0
    out = capsys.readouterr().out
    assert "status balanced" in out and "no breaks" in out
    assert "matched" in out and "2026-05-09" in out and "-4,000" in out


def test_breaks_exit_1_and_are_listed_and_written_as_csv(files, capsys, tmp_path):
    statement, ledger = files(ledger=LEDGER.replace("-2500", "-2400") + "po_c,mtn_momo,payout,po_c,-1,RWF,2026-05-09\n")
    out_csv = tmp_path / "breaks.csv"
    assert main([statement, "--source", "mtn_momo", "--ledger", ledger, "--breaks-csv", str(out_csv)]) == 1
    out = capsys.readouterr().out
    assert "amount_mismatch" in out and "missing_at_provider" in out and "breaks (2 of 2)" in out
    rows = list(csv.DictReader(out_csv.open()))
    assert [(r["reference"], r["outcome"]) for r in rows] == [("po_b", "amount_mismatch"), ("po_c", "missing_at_provider")]


def test_a_malformed_statement_exits_2_naming_the_bad_lines(files, capsys):
    statement, ledger = files(statement=STATEMENT + "1003,po_c,12x,RWF,SUCCESSFUL,2026-05-09T11:00:00Z\n")
    assert main([statement, "--source", "mtn_momo", "--ledger", ledger]) == 2
    err = capsys.readouterr().err
    assert "line 4" in err and "12x" in err


def test_a_malformed_ledger_export_or_a_missing_file_exits_2(files, capsys, tmp_path):
    statement, ledger = files(ledger=LEDGER + "po_x,mtn_momo,payout,po_x,abc,RWF,2026-05-09\n")
    assert main([statement, "--source", "mtn_momo", "--ledger", ledger]) == 2
    assert "line 4" in capsys.readouterr().err
    assert main([str(tmp_path / "nope.csv"), "--source", "mtn_momo", "--ledger", ledger]) == 2


def test_json_output_is_the_api_document(files, capsys):
    import json

    statement, ledger = files()
    assert main([statement, "--source", "mtn_momo", "--ledger", ledger, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "balanced" and doc["summary"]["matched"] == 2 and doc["breaks"] == []


def test_python_dash_m_runs_the_cli(files):
    statement, ledger = files(ledger=LEDGER.replace("-2500", "-2400"))
    proc = subprocess.run([sys.executable, "-m", "chalicelib.recon", statement, "--source", "mtn_momo",
                           "--ledger", ledger], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1 and "amount_mismatch" in proc.stdout
