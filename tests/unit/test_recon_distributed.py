"""Large statements chunk by chunk through an archive: the Distributed Map's steps in one process."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.errors import InvalidState
from chalicelib.money import exponent
from chalicelib.recon import LedgerLine, MemoryLedgerSource, StatementError, reconcile_statement, reconciliation_id
from chalicelib.recon import distributed
from chalicelib.recon.archive import MemoryArchive
from chalicelib.recon.reconciliations import Reconciliations
from chalicelib.recon.stored import statement_key
from chalicelib.recon.distributed import LargeStatements
from chalicelib.recon.engine import chunk_of
from chalicelib.workflow.engine import FakeWorkflow

START = date(2026, 5, 1)
MOMO_HEADER = "financialTransactionId,externalId,amount,currency,status,date"


def major(minor: int, currency: str) -> str:
    """``minor`` as the wire's decimal string (no float anywhere)."""
    exp = exponent(currency)
    if not exp:
        return str(minor)
    whole, frac = divmod(abs(minor), 10 ** exp)
    return f"{'-' if minor < 0 else ''}{whole}.{frac:0{exp}d}"


def momo_row(raw_id, ref, minor, currency, day, status="SUCCESSFUL"):
    return f"{raw_id},{ref},{major(minor, currency)},{currency},{status},{day.isoformat()}T10:00:00Z"


# -- statements with injected breaks -----------------------------------------------------------

@st.composite
def momo_cases(draw):
    """A MoMo statement made from ledger payouts (some split in parts), then broken on purpose."""
    count = draw(st.integers(min_value=1, max_value=30))
    ledger, rows = [], []
    for i in range(count):
        ref = f"po_{i}"
        currency = draw(st.sampled_from(["RWF", "UGX", "KES"]))
        amount = draw(st.integers(min_value=3, max_value=10**8))
        day = START + timedelta(days=draw(st.integers(-3, 4)))  # some before the period: slack
        ledger.append(LedgerLine(ref, "mtn_momo", -amount, currency, day, "payout", ref))
        parts = draw(st.sampled_from([1, 1, 1, 2, 3]))
        cuts = sorted(draw(st.lists(st.integers(1, amount - 1), min_size=parts - 1, max_size=parts - 1, unique=True)))
        bounds = [0, *cuts, amount]
        for k, (a, b) in enumerate(zip(bounds, bounds[1:])):
            rows.append([f"MTN{i}x{k}", ref, b - a, currency, max(day, START), "SUCCESSFUL"])
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["drop", "change", "duplicate", "repeat", "foreign", "failed", "pending"]))
        at = draw(st.integers(0, max(0, len(rows) - 1)))
        if kind == "drop" and len(rows) > 1:
            del rows[at]
        elif kind == "change" and rows:
            rows[at][2] += draw(st.integers(1, 999))
        elif kind == "duplicate" and rows:
            rows.insert(at, [f"MTNdup{at}", *rows[at][1:]])  # a second transaction, same payout
        elif kind == "repeat" and rows:
            rows.insert(at, list(rows[at]))  # the statement lists one transaction twice
        elif kind == "foreign":
            rows.insert(at, [f"MTNf{at}", f"po_unknown_{at}", 777, "RWF", START, "SUCCESSFUL"])
        elif kind in ("failed", "pending") and rows:
            rows.insert(at, [f"MTNs{at}", rows[at][1], rows[at][2], rows[at][3], rows[at][4], kind.upper()])
    content = "\n".join([MOMO_HEADER, *(momo_row(*r) for r in rows)]) + "\n"
    return content, ledger


@st.composite
def stripe_cases(draw):
    """A Stripe balance transaction list (JSON): charges with fees, refunds, conversions, breaks."""
    count = draw(st.integers(min_value=1, max_value=25))
    ledger, items = [], []
    for i in range(count):
        pi = f"pi_{i}"
        currency = draw(st.sampled_from(["CNY", "USD"]))
        amount = draw(st.integers(min_value=100, max_value=10**7))
        day = START + timedelta(days=draw(st.integers(0, 3)))
        created = int(datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc).timestamp())
        ledger.append(LedgerLine(pi, "stripe", amount, currency, day, "card_payment", f"pay:{i}"))
        fee = draw(st.integers(0, amount // 10))
        item = {"id": f"txn_{i}", "object": "balance_transaction", "amount": amount, "fee": fee,
                "net": amount - fee, "currency": currency.lower(), "created": created,
                "reporting_category": "charge", "payment_intent": pi}
        if draw(st.booleans()) and currency == "USD":  # Stripe converted: customer paid in CNY
            item["amount"] = draw(st.integers(min_value=100, max_value=10**7))
            item["net"] = item["amount"] - fee
            item["currency"] = "eur"
            item["source"] = {"id": f"ch_{i}", "currency": "usd", "amount": amount}
        items.append(item)
        if draw(st.integers(0, 4)) == 0:  # a refund of part of it
            refund = draw(st.integers(1, amount))
            ledger.append(LedgerLine(pi, "stripe", -refund, currency, day, "card_refund", f"refund:{i}"))
            items.append({"id": f"txn_r{i}", "amount": -refund, "fee": 0, "net": -refund,
                          "currency": currency.lower(), "created": created, "reporting_category": "refund",
                          "payment_intent": pi})
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["drop", "change", "fee_line", "payout"]))
        at = draw(st.integers(0, len(items) - 1))
        if kind == "drop" and len(items) > 1:
            del items[at]
        elif kind == "change":
            items[at] = {**items[at], "amount": items[at]["amount"] + 1, "net": items[at]["net"] + 1}
        else:
            items.insert(at, {"id": f"txn_x{at}{kind}", "amount": -500, "fee": 0, "net": -500, "currency": "usd",
                              "created": items[at]["created"], "reporting_category": kind})
    return json.dumps({"object": "list", "data": items, "has_more": False}), ledger


def _same_as_in_one_process(source, content, ledger_lines, chunks):
    ledger = MemoryLedgerSource(ledger_lines)
    archive = MemoryArchive()
    chunked = distributed.run_locally(archive, source, content, ledger, chunks)
    whole = reconcile_statement(source, content, ledger)
    assert chunked == whole
    assert chunked.to_json(1, 10_000) == whole.to_json(1, 10_000)
    assert chunked.breaks_csv() == whole.breaks_csv()
    return archive, chunked


@settings(max_examples=60, deadline=None)
@given(momo_cases(), st.sampled_from([1, 3, 7]))
def test_a_mobile_money_statement_reconciled_chunk_by_chunk_through_the_archive_is_exactly_the_in_process_one(
        case, chunks):
    content, ledger = case
    _same_as_in_one_process("mtn_momo", content, ledger, chunks)


@settings(max_examples=40, deadline=None)
@given(stripe_cases(), st.sampled_from([1, 3, 7]))
def test_a_card_statement_with_fees_refunds_and_conversions_is_exactly_the_in_process_one_in_chunks(case, chunks):
    content, ledger = case
    _same_as_in_one_process("stripe_balance", content, ledger, chunks)


def _momo(*rows):
    return "\n".join([MOMO_HEADER, *(momo_row(*r) for r in rows)]) + "\n"


def _payouts(*pairs):
    return MemoryLedgerSource([LedgerLine(ref, "mtn_momo", -amount, "RWF", START, "payout", ref) for ref, amount in pairs])


def test_the_parts_of_a_split_payout_and_its_ledger_line_land_in_one_chunk():
    refs = [f"po_{i}" for i in range(20)]
    content = _momo(*[(f"M{i}", ref, 1000, "RWF", START) for i, ref in enumerate(refs)],
                    ("S1", "po_split", 300, "RWF", START), ("S2", "po_split", 200, "RWF", START),
                    ("S3", "po_split", 500, "RWF", START))
    ledger = _payouts(*[(ref, 1000) for ref in refs], ("po_split", 1000))
    archive = MemoryArchive()
    execution = distributed.plan(archive, "mtn_momo", content, ledger, 7)
    items = json.loads(archive.get(execution["manifest_key"]))
    docs = [json.loads(archive.get(item["chunk_key"])) for item in items]
    holding = [n for n, doc in enumerate(docs) if "po_split" in doc["statement"]["reference"]]
    assert holding == [chunk_of("po_split", 7)]
    doc = docs[holding[0]]
    assert doc["statement"]["reference"].count("po_split") == 3 and doc["ledger"]["reference"] == [
        r for r in doc["ledger"]["reference"] if chunk_of(r, 7) == holding[0]]
    assert "po_split" in doc["ledger"]["reference"]
    for n, doc in enumerate(docs):  # every reference, both sides, in the chunk chunk_of names
        assert {chunk_of(r, 7) for r in doc["statement"]["reference"] + doc["ledger"]["reference"]} <= {n}
    rec = distributed.run_locally(MemoryArchive(), "mtn_momo", content, ledger, 7)
    assert rec.breaks == [] and rec.classified["split"] == 3


def test_the_manifest_names_each_chunk_and_where_its_result_goes():
    content = _momo(("M1", "po_1", 1000, "RWF", START), ("M2", "po_2", 2000, "RWF", START))
    archive = MemoryArchive()
    execution = distributed.plan(archive, "mtn_momo", content, _payouts(("po_1", 1000)), 3)
    rid = reconciliation_id("mtn_momo", content)
    assert execution == {"reconciliation_id": rid, "source": "mtn_momo",
                         "manifest_key": f"reconciliations/{rid}/manifest.json", "chunks": 3, "lines": 2,
                         "ledger_lines": 1}
    assert json.loads(archive.get(execution["manifest_key"])) == [
        {"reconciliation_id": rid, "chunk_key": f"reconciliations/{rid}/chunks/{n}.json",
         "result_key": f"reconciliations/{rid}/results/{n}.json"} for n in range(3)]


def test_a_chunk_keeps_amounts_as_integers_of_minor_units_and_days_as_iso_dates():
    content = _momo(("M1", "po_1", 1250, "KES", START))  # 12.50 KES on the wire
    archive = MemoryArchive()
    execution = distributed.plan(archive, "mtn_momo", content, MemoryLedgerSource(), 1)
    raw = archive.get(json.loads(archive.get(execution["manifest_key"]))[0]["chunk_key"]).decode()
    doc = json.loads(raw)
    assert doc["statement"]["amount_minor"] == [-1250] and doc["statement"]["day"] == ["2026-05-01"]
    assert doc["period"] == ["2026-05-01", "2026-05-01"]
    assert "12.5" not in raw and "." not in json.dumps(doc["statement"]["amount_minor"])


def test_a_chunk_whose_amounts_are_not_integers_is_refused():
    content = _momo(("M1", "po_1", 1000, "RWF", START))
    archive = MemoryArchive()
    execution = distributed.plan(archive, "mtn_momo", content, MemoryLedgerSource(), 1)
    item = json.loads(archive.get(execution["manifest_key"]))[0]
    doc = json.loads(archive.get(item["chunk_key"]))
    doc["statement"]["amount_minor"] = [-1000.0]
    archive.put(item["chunk_key"], json.dumps(doc).encode(), "application/json")
    with pytest.raises(ValueError, match="not integers"):
        distributed.run_chunk(archive, item)


def test_finish_refuses_result_keys_that_are_not_exactly_the_manifests():
    content = _momo(("M1", "po_1", 1000, "RWF", START), ("M2", "po_2", 2000, "RWF", START))
    archive = MemoryArchive()
    execution = distributed.plan(archive, "mtn_momo", content, _payouts(("po_1", 1000)), 3)
    keys = [distributed.run_chunk(archive, item)["result_key"]
            for item in json.loads(archive.get(execution["manifest_key"]))]
    with pytest.raises(distributed.IncompleteResults):
        distributed.finish(archive, execution["reconciliation_id"], "mtn_momo", keys[:-1])
    with pytest.raises(distributed.IncompleteResults):
        distributed.finish(archive, execution["reconciliation_id"], "mtn_momo", keys + keys[:1])
    assert archive.get(f"reconciliations/{execution['reconciliation_id']}.json") is None


def test_finish_stores_the_reconciliation_where_get_and_breaks_csv_read_it():
    content = _momo(("M1", "po_1", 1000, "RWF", START), ("M2", "po_9", 5, "RWF", START))
    ledger = _payouts(("po_1", 1000), ("po_2", 2000))
    archive = MemoryArchive()
    rec = distributed.run_locally(archive, "mtn_momo", content, ledger, 3)
    service = Reconciliations(archive, ledger)
    assert service.page(rec.reconciliation_id, 1) == rec.to_json(1, 100)
    assert service.breaks_csv(rec.reconciliation_id) == rec.breaks_csv()
    assert sorted((b.reference, b.outcome) for b in rec.breaks) == [
        ("po_2", "missing_at_provider"), ("po_9", "missing_in_ledger")]


# -- the API's choice: in process, or the state machine ---------------------------------------------

BIG = _momo(*[(f"M{i}", f"po_{i}", 1000 + i, "RWF", START) for i in range(12)])
BIG_LEDGER = [(f"po_{i}", 1000 + i) for i in range(12)] + [("po_missing", 5)]


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self):
        return self.now


def _service(workflow=None, min_lines=10, clock=None):
    archive = MemoryArchive()
    ledger = _payouts(*BIG_LEDGER)
    large = LargeStatements(archive, ledger, workflow, min_lines=min_lines, chunk_lines=5, clock=clock or Clock())
    return archive, Reconciliations(archive, ledger, large=large)


def _run_the_state_machine(archive, execution_input):
    """What Plan, the Distributed Map and Finish do, given the execution input."""
    planned = distributed.plan_stored(archive, _payouts(*BIG_LEDGER), execution_input)
    items = json.loads(archive.get(planned["manifest_key"]))
    keys = [distributed.run_chunk(archive, item)["result_key"] for item in items]
    return distributed.finish(archive, execution_input["reconciliation_id"], execution_input["source"], keys)


def test_a_statement_under_the_threshold_is_reconciled_in_process_and_starts_nothing():
    workflow = FakeWorkflow()
    archive, service = _service(workflow, min_lines=13)
    reply = service.submit("mtn_momo", BIG)
    assert reply["status"] == "breaks" and reply["summary"]["lines"] == 12
    assert workflow.started == {}
    assert not any("/manifest.json" in key for key in archive.objects)


def test_a_large_statement_starts_the_state_machine_and_reads_running_until_it_finishes():
    workflow = FakeWorkflow()
    archive, service = _service(workflow)
    rid = reconciliation_id("mtn_momo", BIG)
    reply = service.submit("mtn_momo", BIG)
    assert reply == {"reconciliation_id": rid, "source": "mtn_momo", "status": "running", "lines": 12, "chunks": 3}
    assert list(workflow.started) == [rid]
    # the API only checked and kept the statement: reading the ledger and chunking is the Plan step's
    assert workflow.started[rid]["statement_key"] == statement_key("mtn_momo", BIG)
    assert archive.get(f"reconciliations/{rid}/manifest.json") is None
    assert service.page(rid, 1)["status"] == "running"
    with pytest.raises(InvalidState):
        service.breaks_csv(rid)
    rec = _run_the_state_machine(archive, workflow.started[rid])
    assert rec == reconcile_statement("mtn_momo", BIG, _payouts(*BIG_LEDGER))
    assert service.page(rid, 1) == rec.to_json(1, 100)
    assert service.breaks_csv(rid) == rec.breaks_csv()


def test_submitting_a_large_statement_again_while_it_runs_starts_nothing_more():
    workflow = FakeWorkflow()
    _archive, service = _service(workflow)
    service.submit("mtn_momo", BIG)
    again = service.submit("mtn_momo", BIG)
    assert again["status"] == "running" and len(workflow.started) == 1


def test_a_large_statement_reconciled_again_after_it_finished_runs_under_a_new_execution_name():
    workflow = FakeWorkflow()
    archive, service = _service(workflow)
    rid = reconciliation_id("mtn_momo", BIG)
    service.submit("mtn_momo", BIG)
    _run_the_state_machine(archive, workflow.started[rid])
    assert service.submit("mtn_momo", BIG)["status"] == "running"
    assert list(workflow.started) == [rid, f"{rid}-2"]


def test_a_running_mark_older_than_the_state_machines_timeout_does_not_block_a_new_run():
    workflow, clock = FakeWorkflow(), Clock()
    _archive, service = _service(workflow, clock=clock)
    service.submit("mtn_momo", BIG)
    clock.now += distributed.EXECUTION_TIMEOUT_SECONDS + 3600  # stopped or timed out: never marked
    service.submit("mtn_momo", BIG)
    assert len(workflow.started) == 2


def test_a_failed_run_shows_as_failed_with_its_error_and_has_no_breaks_to_download():
    workflow = FakeWorkflow()
    archive, service = _service(workflow)
    rid = reconciliation_id("mtn_momo", BIG)
    service.submit("mtn_momo", BIG)
    distributed.mark_failed(archive, rid, {"Error": "States.TaskFailed", "Cause": "chunk 2 timed out"}, "mtn_momo")
    page = service.page(rid, 1)
    assert page["status"] == "failed" and "chunk 2 timed out" in page["error"]["message"]
    with pytest.raises(InvalidState):
        service.breaks_csv(rid)
    assert service.submit("mtn_momo", BIG)["status"] == "running" and len(workflow.started) == 2


def test_a_state_machine_that_cannot_be_started_leaves_the_reconciliation_failed_not_running():
    class Down:
        def start(self, name, payload):
            raise RuntimeError("throttled")

    archive, service = _service(Down())
    with pytest.raises(RuntimeError):
        service.submit("mtn_momo", BIG)
    assert service.page(reconciliation_id("mtn_momo", BIG), 1)["status"] == "failed"


def test_without_a_state_machine_a_large_statement_runs_chunk_by_chunk_here_with_the_same_result():
    archive, service = _service(workflow=None)
    reply = service.submit("mtn_momo", BIG)
    whole = reconcile_statement("mtn_momo", BIG, _payouts(*BIG_LEDGER))
    assert reply == whole.to_json(1, 100)
    assert len(json.loads(archive.get(distributed.manifest_key(whole.reconciliation_id)))) == 3


def test_a_malformed_large_statement_is_refused_with_its_line_numbers_and_nothing_starts():
    workflow = FakeWorkflow()
    archive, service = _service(workflow)
    with pytest.raises(StatementError) as refused:
        service.submit("mtn_momo", BIG + "bad,row\n")
    assert refused.value.errors[0][0] == 14
    assert workflow.started == {} and not any("/chunks/" in key for key in archive.objects)


def test_the_chunk_count_follows_the_statement_size_within_the_maps_limits():
    assert distributed.chunks_for(0) == 1
    assert distributed.chunks_for(200_000, 50_000) == 4
    assert distributed.chunks_for(200_001, 50_000) == 5
    assert distributed.chunks_for(10**9, 1) == distributed.MAX_CHUNKS


def test_the_plan_step_refuses_a_statement_that_changed_since_the_api_checked_it():
    workflow = FakeWorkflow()
    archive, service = _service(workflow)
    rid = reconciliation_id("mtn_momo", BIG)
    service.submit("mtn_momo", BIG)
    execution_input = workflow.started[rid]
    archive.put(execution_input["statement_key"], BIG.replace("SUCCESSFUL", "FAILED", 1).encode(), "text/plain")
    with pytest.raises(ValueError, match="is not the statement of"):
        distributed.plan_stored(archive, _payouts(*BIG_LEDGER), execution_input)
    assert archive.get(f"reconciliations/{rid}/manifest.json") is None


def test_a_statement_given_by_s3_key_is_planned_from_that_key():
    workflow = FakeWorkflow()
    archive, service = _service(workflow)
    archive.put("uploads/finance/may.csv", BIG.encode(), "text/csv")
    rid = reconciliation_id("mtn_momo", BIG)
    service.submit("mtn_momo", s3_key="uploads/finance/may.csv")
    assert workflow.started[rid]["statement_key"] == "uploads/finance/may.csv"
    rec = _run_the_state_machine(archive, workflow.started[rid])
    assert rec == reconcile_statement("mtn_momo", BIG, _payouts(*BIG_LEDGER))
