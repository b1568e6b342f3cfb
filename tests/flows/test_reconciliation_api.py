"""Reconciliation over HTTP: finance uploads a provider statement and sees every break."""
import json

import pytest
from chalice.test import Client

from chalicelib import bootstrap
from chalicelib.ledger import Transfer, TransferKind
from helpers import auth_headers, post_headers


@pytest.fixture
def client(aws_env):
    import app as app_module

    ledger = bootstrap.ledger()
    for account, currency in (("psp:stripe:CNY", "CNY"), ("escrow:o1", "CNY"), ("seller:s1", "RWF"),
                              ("float:mtn_momo:RWF", "RWF"), ("fx:RWF", "RWF")):
        ledger.create_account(account, currency)
    ledger.transfer(Transfer("pay:o1", "psp:stripe:CNY", "escrow:o1", 852_000, "CNY", code="card_payment", reference="pi_1"))
    ledger.transfer(Transfer("fund", "fx:RWF", "seller:s1", 2_000_000, "RWF"))
    for ref, amount in (("po_1", 900_000), ("po_2", 800_000)):
        ledger.transfer(Transfer(ref, "seller:s1", "float:mtn_momo:RWF", amount, "RWF", TransferKind.PENDING, code="payout", reference=ref))
        ledger.post(f"{ref}:post", ref, code="payout", reference=ref)
    with Client(app_module.app, stage_name="local") as test_client:
        yield test_client


def _today():
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def momo_statement(*rows):
    lines = ["financialTransactionId,externalId,amount,currency,status,date"]
    lines += [f"{i + 100},{ref},{amount},RWF,SUCCESSFUL,{_today()}" for i, (ref, amount) in enumerate(rows)]
    return "\n".join(lines) + "\n"


def submit(client, body, role="finance"):
    return client.http.post("/v1/reconciliations", body=json.dumps(body), headers=post_headers(role=role, sub="fin-1"))


def test_a_statement_that_agrees_with_the_ledger_has_no_breaks(client):
    reply = submit(client, {"source": "mtn_momo", "content": momo_statement(("po_1", 900000), ("po_2", 800000))})
    assert reply.status_code == 201, reply.body
    rec = reply.json_body
    assert rec["summary"]["lines"] == 2 and rec["summary"]["matched"] == 2
    assert rec["breaks"] == [] and rec["next_page"] is None
    (row,) = rec["settlement"]
    assert row["expected"] == row["reported"] and row["difference"]["amount"] == 0


def test_each_discrepancy_is_a_break_that_finance_can_download(client):
    statement = momo_statement(("po_1", 899000), ("po_9", 5000))  # po_1 short; po_9 unknown; po_2 missing
    rec = submit(client, {"source": "mtn_momo", "content": statement}).json_body
    outcomes = sorted((b["reference"], b["outcome"]) for b in rec["breaks"])
    assert outcomes == [("po_1", "amount_mismatch"), ("po_2", "missing_at_provider"), ("po_9", "missing_in_ledger")]
    again = client.http.get(f"/v1/reconciliations/{rec['reconciliation_id']}", headers=auth_headers(role="finance", sub="f"))
    assert again.status_code == 200 and again.json_body["breaks"] == rec["breaks"]
    csv_reply = client.http.get(f"/v1/reconciliations/{rec['reconciliation_id']}/breaks.csv", headers=auth_headers(role="admin", sub="a"))
    assert csv_reply.status_code == 200 and csv_reply.headers["Content-Type"].startswith("text/csv")
    assert csv_reply.body.decode().count("\n") == 4  # header + 3 breaks


def test_reconciling_the_same_statement_again_gives_the_same_reconciliation(client):
    statement = momo_statement(("po_1", 900000))
    first = submit(client, {"source": "mtn_momo", "content": statement}).json_body
    second = submit(client, {"source": "mtn_momo", "content": statement}).json_body
    assert first["reconciliation_id"] == second["reconciliation_id"]
    assert first["summary"] == second["summary"]


def test_a_malformed_statement_is_refused_with_its_line_numbers_and_nothing_is_stored(client):
    statement = momo_statement(("po_1", 900000)) + "bad,row\n"
    reply = submit(client, {"source": "mtn_momo", "content": statement})
    assert reply.status_code == 400
    assert "3" in json.dumps(reply.json_body["error"])


def test_only_finance_and_admins_reconcile(client):
    assert submit(client, {"source": "mtn_momo", "content": momo_statement()}, role="buyer").status_code == 403
    missing = client.http.get("/v1/reconciliations/rec_000000000000000000000000", headers=auth_headers(role="finance", sub="f"))
    assert missing.status_code == 404
