"""Large statements over HTTP: chunk by chunk in the local stage; 'running' while the state machine works."""
import json

import pytest
from chalice.test import Client

from chalicelib import bootstrap, settings
from chalicelib.ledger import Transfer, TransferKind
from chalicelib.recon import distributed
from chalicelib.recon.distributed import LargeStatements
from chalicelib.recon.ledger_records import StoreLedgerSource
from chalicelib.workflow.engine import FakeWorkflow
from helpers import auth_headers, post_headers

PAYOUTS = [(f"po_{i}", 100_000 + i) for i in range(8)]


@pytest.fixture
def client(aws_env):
    import app as app_module

    ledger = bootstrap.ledger()
    for account, currency in (("seller:s1", "RWF"), ("float:mtn_momo:RWF", "RWF"), ("fx:RWF", "RWF")):
        ledger.create_account(account, currency)
    ledger.transfer(Transfer("fund", "fx:RWF", "seller:s1", 10_000_000, "RWF"))
    for ref, amount in PAYOUTS:
        ledger.transfer(Transfer(ref, "seller:s1", "float:mtn_momo:RWF", amount, "RWF", TransferKind.PENDING,
                                 code="payout", reference=ref))
        ledger.post(f"{ref}:post", ref, code="payout", reference=ref)
    with Client(app_module.app, stage_name="local") as test_client:
        yield test_client


def _today():
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def statement():
    rows = [f"{i + 100},{ref},{amount - (i == 2)},RWF,SUCCESSFUL,{_today()}" for i, (ref, amount) in enumerate(PAYOUTS)
            if i != 5]
    return "financialTransactionId,externalId,amount,currency,status,date\n" + "\n".join(rows) + "\n"


def submit(client, content):
    return client.http.post("/v1/reconciliations", body=json.dumps({"source": "mtn_momo", "content": content}),
                            headers=post_headers(role="finance", sub="fin-1"))


def get(client, path):
    return client.http.get(path, headers=auth_headers(role="finance", sub="fin-1"))


def _reload(monkeypatch, **env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings.get.cache_clear()
    bootstrap.reset()


def test_in_the_local_stage_a_large_statement_is_reconciled_chunk_by_chunk_with_the_same_answer(client, monkeypatch):
    content = statement()
    small = submit(client, content)
    assert small.status_code == 201, small.body
    _reload(monkeypatch, MIZANI_RECON_DISTRIBUTED_LINES="3", MIZANI_RECON_CHUNK_LINES="2")
    large = submit(client, content)
    assert large.status_code == 201, large.body
    assert large.json_body == small.json_body
    rid = large.json_body["reconciliation_id"]
    manifest = bootstrap.recon_archive().get(distributed.manifest_key(rid))
    assert len(json.loads(manifest)) == 4  # 7 lines, 2 a chunk: it did go through the chunks
    assert sorted((b["reference"], b["outcome"]) for b in large.json_body["breaks"]) == [
        ("po_2", "amount_mismatch"), ("po_5", "missing_at_provider")]


def test_a_large_statement_answers_running_until_the_state_machine_has_stored_the_reconciliation(client):
    workflow = FakeWorkflow()
    archive = bootstrap.recon_archive()
    # as in AWS: a state machine is configured (a fake that records the start)
    bootstrap.override(large_statements=LargeStatements(
        archive, StoreLedgerSource(bootstrap.ledger().store), workflow, min_lines=3, chunk_lines=2))

    reply = submit(client, statement())
    assert reply.status_code == 201, reply.body
    rid = reply.json_body["reconciliation_id"]
    assert reply.json_body["status"] == "running"
    assert get(client, f"/v1/reconciliations/{rid}").json_body["status"] == "running"
    assert get(client, f"/v1/reconciliations/{rid}/breaks.csv").status_code == 409

    started = workflow.started[rid]  # what Plan, the Distributed Map and Finish do with the execution input
    planned = distributed.plan_stored(archive, StoreLedgerSource(bootstrap.ledger().store), started)
    keys = [distributed.run_chunk(archive, item)["result_key"]
            for item in json.loads(archive.get(planned["manifest_key"]))]
    distributed.finish(archive, rid, started["source"], keys)

    done = get(client, f"/v1/reconciliations/{rid}")
    assert done.status_code == 200 and done.json_body["status"] == "breaks"
    assert sorted((b["reference"], b["outcome"]) for b in done.json_body["breaks"]) == [
        ("po_2", "amount_mismatch"), ("po_5", "missing_at_provider")]
    assert get(client, f"/v1/reconciliations/{rid}/breaks.csv").status_code == 200
