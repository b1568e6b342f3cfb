"""An empty statement says which days it covers (issue 16, item 11): with a declared ``period`` the
ledger's movements of those days are ``missing_at_provider`` breaks; without one it covers no day.

Through the service, the Distributed Map's steps (in one process and as the state machine's input)
and ``POST /v1/reconciliations`` (a strict ``period`` object: a bad one is a 400, nothing reconciled)."""
from __future__ import annotations

import json
from datetime import date

import pytest
from chalice.test import Client

from chalicelib.recon import LedgerLine, MemoryLedgerSource, StatementError, reconcile_statement, reconciliation_id
from chalicelib.recon import distributed
from chalicelib.recon.archive import MemoryArchive
from chalicelib.recon.distributed import LargeStatements
from chalicelib.recon.reconciliations import Reconciliations
from chalicelib.workflow.engine import FakeWorkflow

HEADER = "financialTransactionId,externalId,amount,currency,status,date"
EMPTY = HEADER + "\n"  # the provider moved nothing for us: a header, no line
MAY_1 = (date(2026, 5, 1), date(2026, 5, 1))


def ledger() -> MemoryLedgerSource:
    return MemoryLedgerSource([
        LedgerLine("po_a", "mtn_momo", -150_000, "RWF", date(2026, 5, 1), "payout", "po_a"),
        LedgerLine("po_b", "mtn_momo", -90_000, "RWF", date(2026, 5, 1), "payout", "po_b"),
        LedgerLine("po_c", "mtn_momo", -70_000, "RWF", date(2026, 5, 2), "payout", "po_c"),  # the next day
    ])


def test_an_empty_statement_without_a_period_covers_no_day():
    rec = reconcile_statement("mtn_momo", EMPTY, ledger())
    assert rec.status == "balanced" and rec.breaks == []


def test_an_empty_statement_with_its_day_reports_that_day_s_movements_as_missing_at_the_provider():
    rec = reconcile_statement("mtn_momo", EMPTY, ledger(), period=MAY_1)
    assert rec.status == "breaks"
    assert sorted((b.reference, b.outcome) for b in rec.breaks) == [
        ("po_a", "missing_at_provider"), ("po_b", "missing_at_provider")]
    summary = rec.to_json()["summary"]
    assert summary["missing_at_provider"] == 2 and summary["lines"] == 0
    assert summary["outside_period"] == 1  # po_c, read within the slack days, is not in question


def test_the_period_is_part_of_the_id_and_without_one_the_id_is_unchanged():
    assert reconciliation_id("mtn_momo", EMPTY, None) == reconciliation_id("mtn_momo", EMPTY)
    may_2 = (date(2026, 5, 2), date(2026, 5, 2))
    ids = {reconciliation_id("mtn_momo", EMPTY), reconciliation_id("mtn_momo", EMPTY, MAY_1),
           reconciliation_id("mtn_momo", EMPTY, may_2)}
    assert len(ids) == 3
    assert reconcile_statement("mtn_momo", EMPTY, ledger(), period=MAY_1).reconciliation_id == \
        reconciliation_id("mtn_momo", EMPTY, MAY_1)


def test_a_line_dated_outside_the_declared_period_is_a_malformed_statement():
    content = EMPTY + "MTN1,po_c,70000,RWF,SUCCESSFUL,2026-05-02T10:00:00Z\n"
    with pytest.raises(StatementError) as err:
        reconcile_statement("mtn_momo", content, ledger(), period=MAY_1)
    assert err.value.errors == [(2, "dated 2026-05-02, outside the declared period 2026-05-01..2026-05-01")]
    rec = reconcile_statement("mtn_momo", content, ledger(), period=(date(2026, 5, 1), date(2026, 5, 2)))
    assert sorted((b.reference, b.outcome) for b in rec.breaks) == [
        ("po_a", "missing_at_provider"), ("po_b", "missing_at_provider")]


def test_the_distributed_map_takes_the_declared_period_locally_and_in_the_execution_input():
    content = EMPTY + "MTN1,po_c,70000,RWF,SUCCESSFUL,2026-05-02T10:00:00Z\n"
    period = (date(2026, 5, 1), date(2026, 5, 2))
    archive = MemoryArchive()
    rec = distributed.run_locally(archive, "mtn_momo", content, ledger(), 2, period=period)
    assert rec.reconciliation_id == reconciliation_id("mtn_momo", content, period)
    assert sorted(b.reference for b in rec.breaks) == ["po_a", "po_b"]

    workflow = FakeWorkflow()
    large = LargeStatements(MemoryArchive(), ledger(), workflow=workflow, min_lines=1, chunk_lines=1)
    reply = large.submit("mtn_momo", content, period=period)
    assert reply["status"] == "running"
    (execution_input,) = workflow.started.values()
    assert execution_input["period"] == ["2026-05-01", "2026-05-02"]
    planned = distributed.plan_stored(large.archive, ledger(), execution_input)  # the Plan step's check passes
    assert planned["reconciliation_id"] == reply["reconciliation_id"] == rec.reconciliation_id
    with pytest.raises(StatementError):
        large.submit("mtn_momo", content, period=MAY_1)


# -- over the API ------------------------------------------------------------------------------------

@pytest.fixture
def client(aws_env):
    import app as mizani
    from chalicelib import bootstrap

    bootstrap.reset()
    bootstrap.override(reconciliations=Reconciliations(MemoryArchive(), ledger()))
    with Client(mizani.app, stage_name="local") as c:
        yield c
    bootstrap.reset()


def post(client, payload: dict):
    from helpers import body, post_headers

    return client.http.post("/v1/reconciliations", body=body(payload), headers=post_headers("finance"))


def test_post_with_a_period_reconciles_an_empty_statement_against_that_day(client):
    reply = post(client, {"source": "mtn_momo", "content": EMPTY, "period": {"from": "2026-05-01", "to": "2026-05-01"}})
    assert reply.status_code == 201, reply.body
    doc = reply.json_body
    assert doc["status"] == "breaks" and doc["summary"]["missing_at_provider"] == 2
    assert {b["reference"] for b in doc["breaks"]} == {"po_a", "po_b"}
    assert post(client, {"source": "mtn_momo", "content": EMPTY}).json_body["status"] == "balanced"


@pytest.mark.parametrize("period", [
    {"from": "2026-05-02", "to": "2026-05-01"},  # backwards
    {"from": "2026-01-01", "to": "2026-04-30"},  # 120 days
    {"from": "2026-02-30", "to": "2026-03-01"},  # not a day
    {"from": "2026-05-01"},  # half
    {"start": "2026-05-01", "to": "2026-05-01"},  # unknown field
    {"from": 20260501, "to": "2026-05-01"},  # not a string
    "2026-05-01",
])
def test_a_bad_period_is_a_validation_error(client, period):
    reply = post(client, {"source": "mtn_momo", "content": EMPTY, "period": period})
    assert reply.status_code == 400, reply.body
    assert reply.json_body["error"]["code"] == "validation_error"
    assert all(f["path"].startswith("period") for f in reply.json_body["error"]["fields"])


def test_a_statement_line_outside_the_period_is_a_400_naming_the_line(client):
    content = EMPTY + "MTN1,po_c,70000,RWF,SUCCESSFUL,2026-05-02T10:00:00Z\n"
    reply = post(client, {"source": "mtn_momo", "content": content, "period": {"from": "2026-05-01", "to": "2026-05-01"}})
    assert reply.status_code == 400 and reply.json_body["error"]["code"] == "malformed_statement"
    assert json.dumps(reply.json_body).count("outside the declared period") >= 1
