"""Reconciliation engine: every outcome, classification, settlement, chunking, the result's shapes."""
from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest

from chalicelib.money import Money
from chalicelib.recon import (
    AMOUNT_MISMATCH, DUPLICATE, FEE, FX, MISSING_AT_PROVIDER, MISSING_IN_LEDGER, PAID_TWICE,
    REPEATED_LINE, SPLIT, ChunkResult, LedgerLine, MemoryLedgerSource, ProviderBatch, ProviderLine, Reconciliation,
    chunk_of, combine, partition, reconcile, reconcile_chunk, reconcile_statement,
    reconciliation_id,
)
from chalicelib.recon import distributed
from chalicelib.recon.archive import MemoryArchive
from chalicelib.recon.engine import _reconcile_chunk
from chalicelib.recon.model import FAILED, PENDING, LedgerBatch

DAY = date(2026, 5, 9)


def pl(ref, minor, *, kind="payout", cur="RWF", raw=None, fee=None, day=DAY, status="settled", orig=None,
       provider="mtn_momo", line=0):
    orig_minor, orig_currency = (orig.minor, orig.currency) if orig else (None, "")
    return ProviderLine(line, provider, ref, minor, cur, day, kind, fee, raw if raw is not None else f"txn-{ref}",
                        status, orig_minor, orig_currency)


def ll(ref, minor, *, kind="payout", cur="RWF", tid=None, day=DAY, provider="mtn_momo"):
    return LedgerLine(ref, provider, minor, cur, day, kind, tid or ref)


def numbered(lines):
    return [p._replace(line=n) for n, p in enumerate(lines, 2)]


def run(plines, llines, *, period=None, chunks=1, source="mtn_momo") -> Reconciliation:
    return reconcile(numbered(plines), llines, source=source, reconciliation_id="rec_test", period=period,
                     chunks=chunks)


def outcomes(rec: Reconciliation) -> list[tuple]:
    return [(b.line, b.reference, b.outcome, b.classification) for b in rec.breaks]


# -- each outcome ------------------------------------------------------------------------------

def test_a_provider_line_with_the_same_reference_and_amount_as_a_ledger_line_is_matched():
    rec = run([pl("po_1", -1500)], [ll("po_1", -1500)])
    assert rec.summary["matched"] == 1 and rec.breaks == [] and rec.status == "balanced"


def test_a_different_amount_for_the_same_reference_is_an_amount_mismatch_showing_both_amounts():
    rec = run([pl("po_1", -1600)], [ll("po_1", -1500)])
    (b,) = rec.breaks
    assert (b.line, b.outcome, b.classification) == (2, AMOUNT_MISMATCH, "")
    assert b.ledger_amount == Money(-1500, "RWF") and b.provider_amount == Money(-1600, "RWF")
    assert rec.status == "breaks"


def test_a_provider_line_the_ledger_does_not_know_is_missing_in_ledger():
    rec = run([pl("po_1", -1500), pl("po_x", -700)], [ll("po_1", -1500)])
    assert outcomes(rec) == [(3, "po_x", MISSING_IN_LEDGER, "")]
    assert rec.breaks[0].ledger_amount is None


def test_a_ledger_line_no_provider_line_reports_is_missing_at_provider_without_a_line_number():
    rec = run([pl("po_1", -1500)], [ll("po_1", -1500), ll("po_2", -900)])
    (b,) = rec.breaks
    assert (b.line, b.reference, b.outcome, b.transfer_id) == (None, "po_2", MISSING_AT_PROVIDER, "po_2")
    assert b.provider_amount is None and b.ledger_amount == Money(-900, "RWF")


def test_a_statement_listing_the_same_provider_transaction_twice_reports_the_second_as_a_duplicate():
    line = pl("po_1", -1500, raw="MTN-77")
    rec = run([line, line], [ll("po_1", -1500)])
    assert outcomes(rec) == [(3, "po_1", DUPLICATE, REPEATED_LINE)]
    assert rec.summary["matched"] == 1


def test_a_second_provider_payment_for_an_entry_already_matched_is_a_duplicate_paid_twice():
    rec = run([pl("po_1", -1500, raw="A"), pl("po_1", -1500, raw="B")], [ll("po_1", -1500)])
    assert outcomes(rec) == [(3, "po_1", DUPLICATE, PAID_TWICE)]


def test_every_provider_line_and_every_unclaimed_ledger_line_gets_exactly_one_outcome():
    rec = run(
        [pl("a", -1), pl("b", -2), pl("c", -3, raw="R"), pl("c", -3, raw="R"), pl("x", -9)],
        [ll("a", -1), ll("b", -5), ll("c", -3), ll("d", -4)],
    )
    s = rec.summary
    assert s["lines"] == 5
    assert s["matched"] + s["amount_mismatch"] + s["missing_in_ledger"] + s["duplicate"] == s["lines"]
    assert (s["matched"], s["amount_mismatch"], s["missing_in_ledger"], s["missing_at_provider"], s["duplicate"]) \
        == (2, 1, 1, 1, 1)


# -- classifications ---------------------------------------------------------------------------

def test_a_stripe_charge_whose_gross_matches_is_matched_with_the_fee_classified_not_a_break():
    line = pl("pi_1", 10000, kind="card_payment", cur="USD", fee=320, provider="stripe")
    rec = run([line], [ll("pi_1", 10000, kind="card_payment", cur="USD", provider="stripe")], source="stripe_balance")
    assert rec.breaks == []
    assert rec.summary["classified"][FEE] == 1
    (row,) = rec.settlement
    assert (row.expected, row.reported, row.fees, row.difference) == (10000, 10000, 320, 0)


def test_a_stripe_charge_booked_net_of_the_fee_is_an_amount_mismatch():
    line = pl("pi_1", 10000, kind="card_payment", cur="USD", fee=320, provider="stripe")
    rec = run([line], [ll("pi_1", 9680, kind="card_payment", cur="USD", provider="stripe")], source="stripe_balance")
    assert [b.outcome for b in rec.breaks] == [AMOUNT_MISMATCH]


def test_a_payment_and_its_refund_share_the_payment_intent_but_are_matched_by_kind():
    plines = [pl("pi_1", 10000, kind="card_payment", cur="USD", fee=320, provider="stripe"),
              pl("pi_1", -10000, kind="card_refund", cur="USD", fee=0, provider="stripe")]
    llines = [ll("pi_1", 10000, kind="card_payment", cur="USD", provider="stripe"),
              ll("pi_1", -10000, kind="card_refund", cur="USD", provider="stripe")]
    rec = run(plines, llines, source="stripe_balance")
    assert rec.breaks == [] and rec.summary["matched"] == 2
    only_payment = run(plines, llines[:1], source="stripe_balance")
    assert outcomes(only_payment) == [(3, "pi_1", MISSING_IN_LEDGER, "")]


def test_a_provider_line_converted_from_the_ledger_currency_matches_on_its_original_amount_as_fx():
    line = pl("pi_1", 1405, kind="card_payment", cur="USD", fee=0, orig=Money(10000, "CNY"), provider="stripe")
    rec = run([line], [ll("pi_1", 10000, kind="card_payment", cur="CNY", provider="stripe")], source="stripe_balance")
    assert rec.breaks == [] and rec.summary["classified"][FX] == 1


def test_currencies_that_differ_without_an_original_amount_are_an_fx_classified_mismatch():
    rec = run([pl("po_1", -1500, cur="KES")], [ll("po_1", -1500, cur="UGX")])
    assert outcomes(rec) == [(2, "po_1", AMOUNT_MISMATCH, FX)]


# -- one-to-many -------------------------------------------------------------------------------

def test_a_payout_split_into_parts_under_one_reference_matches_the_ledger_line_on_the_sum():
    rec = run([pl("po_9", -300000, raw="A"), pl("po_9", -200000, raw="B")], [ll("po_9", -500000)])
    assert rec.breaks == []
    assert rec.summary["matched"] == 2 and rec.summary["classified"][SPLIT] == 2
    (row,) = rec.settlement
    assert row.expected == row.reported == -500000


def test_split_parts_booked_one_transfer_per_part_under_the_parent_reference_pair_off_one_to_one():
    rec = run([pl("po_9", -250000, raw="A"), pl("po_9", -250000, raw="B")],
              [ll("po_9", -250000, tid="po_9:1"), ll("po_9", -250000, tid="po_9:2")])
    assert rec.breaks == [] and rec.summary["classified"][SPLIT] == 0


def test_split_parts_that_do_not_add_up_are_each_an_amount_mismatch_against_the_ledger_line():
    rec = run([pl("po_9", -300000, raw="A"), pl("po_9", -150000, raw="B")], [ll("po_9", -500000)])
    assert outcomes(rec) == [(2, "po_9", AMOUNT_MISMATCH, SPLIT), (3, "po_9", AMOUNT_MISMATCH, SPLIT)]
    assert {b.ledger_minor for b in rec.breaks} == {-500000}
    (row,) = rec.settlement
    assert (row.expected, row.reported, row.difference) == (-500000, -450000, 50000)  # expected counted once


def test_a_partial_capture_reversal_nets_against_its_charge():
    plines = [pl("pi_1", 10000, kind="card_payment", cur="USD", fee=0, raw="t1", provider="stripe"),
              pl("pi_1", -3000, kind="card_payment", cur="USD", fee=0, raw="t2", provider="stripe")]
    rec = run(plines, [ll("pi_1", 7000, kind="card_payment", cur="USD", provider="stripe")], source="stripe_balance")
    assert rec.breaks == []


# -- statuses, periods ---------------------------------------------------------------------------

def test_failed_and_pending_provider_lines_are_counted_but_never_matched():
    plines = [pl("po_1", -1500), pl("po_2", -900, status=FAILED), pl("po_3", -100, status=PENDING)]
    rec = run(plines, [ll("po_1", -1500), ll("po_3", -100)])
    assert rec.summary["not_settled"] == 2 and rec.summary["lines"] == 1
    assert outcomes(rec) == [(None, "po_3", MISSING_AT_PROVIDER, "")]


def test_ledger_lines_outside_the_statement_period_match_but_are_never_reported_missing():
    early, late = date(2026, 5, 8), date(2026, 5, 12)
    rec = run([pl("po_1", -1500)], [ll("po_1", -1500, day=early), ll("po_2", -900, day=late)],
              period=(DAY, DAY))
    assert rec.breaks == [] and rec.summary["matched"] == 1 and rec.summary["outside_period"] == 1


# -- settlement ---------------------------------------------------------------------------------

def test_settlement_per_currency_and_day_shows_expected_reported_and_the_difference():
    d2 = date(2026, 5, 10)
    rec = run([pl("a", -100), pl("b", -250), pl("c", -300, day=d2), pl("x", -5, day=d2), pl("k", -7, cur="KES")],
              [ll("a", -100), ll("b", -200), ll("c", -300, day=d2), ll("m", -50, day=d2), ll("k", -7, cur="KES")])
    rows = {(r.currency, r.day): (r.expected, r.reported, r.difference, r.lines) for r in rec.settlement}
    assert rows == {
        ("KES", DAY): (-7, -7, 0, 1),
        ("RWF", DAY): (-300, -350, -50, 2),
        ("RWF", d2): (-350, -305, 45, 2),
    }
    assert sum(r.difference for r in rec.settlement) == sum(
        (b.provider_minor or 0) - (b.ledger_minor or 0) for b in rec.breaks)


def test_a_shuffled_statement_gives_the_same_settlement_as_one_in_date_order():
    days = [date(2026, 5, d) for d in (1, 2, 3)]
    plines = [pl(f"r{i}", -(i + 1), day=days[i % 3]) for i in range(60)]
    llines = [ll(f"r{i}", -(i + 1), day=days[i % 3]) for i in range(60)]
    ordered = run(sorted(plines, key=lambda p: p.day), llines)
    shuffled = run(plines, llines)
    assert ordered.settlement == shuffled.settlement


# -- chunks, ids, idempotency ------------------------------------------------------------------

def _mixed_case():
    plines = [pl(f"po_{i}", -(1000 + i)) for i in range(50)]
    plines += [pl("po_s", -300, raw="S1"), pl("po_s", -200, raw="S2"), pl("po_7", -1007, raw="txn-po_7"),
               pl("po_x", -1)]
    plines[3] = plines[3]._replace(amount_minor=-5)
    llines = [ll(f"po_{i}", -(1000 + i)) for i in range(50) if i != 11] + [ll("po_s", -500), ll("po_gone", -9)]
    return plines, llines


@pytest.mark.parametrize("chunks", [2, 3, 7])
def test_reconciling_in_chunks_gives_the_same_result_as_in_one(chunks):
    plines, llines = _mixed_case()
    assert run(plines, llines, chunks=chunks) == run(plines, llines, chunks=1)


def test_a_reference_always_lands_in_the_same_chunk_on_both_sides():
    plines, llines = _mixed_case()
    pparts = partition(ProviderBatch.from_lines(numbered(plines), "mtn_momo"), 4)
    lparts = partition(LedgerBatch.from_lines(llines), 4)
    for k, (p, l) in enumerate(zip(pparts, lparts)):
        assert {chunk_of(r, 4) for r in p.reference} <= {k}
        assert {chunk_of(r, 4) for r in l.reference} <= {k}


def test_chunk_results_survive_a_json_round_trip_as_a_map_state_would_pass_them():
    plines, llines = _mixed_case()
    chunks = [reconcile_chunk(p, l) for p, l in zip(partition(ProviderBatch.from_lines(numbered(plines)), 3),
                                                     partition(LedgerBatch.from_lines(llines), 3))]
    revived = [ChunkResult.from_dict(json.loads(json.dumps(c.to_dict()))) for c in chunks]
    assert combine(revived, source="mtn_momo", reconciliation_id="r") == \
        combine(chunks, source="mtn_momo", reconciliation_id="r")


def test_the_fast_path_agrees_with_the_group_rules_applied_to_every_key():
    plines, llines = _mixed_case()
    P, L = ProviderBatch.from_lines(numbered(plines), "mtn_momo"), LedgerBatch.from_lines(llines)
    fast = _reconcile_chunk(P, L, None)
    rules = _reconcile_chunk(P, L, None, by_rules=True)
    fast.breaks.sort(key=lambda b: b.sort_key())
    rules.breaks.sort(key=lambda b: b.sort_key())
    assert fast == rules


def test_a_statement_reconciled_chunk_by_chunk_as_the_distributed_map_would_combines_to_the_whole():
    content = "financialTransactionId,externalId,amount,currency,status,date\n" + "".join(
        f"{i},po_{i},{100 + i},RWF,SUCCESSFUL,2026-05-09T10:00:00Z\n" for i in range(40) if i != 7)
    ledger = MemoryLedgerSource([ll(f"po_{i}", -(100 + i) - (i == 3)) for i in range(41)])
    # plan (chunks and manifest as JSON), every chunk, finish: what the state machine runs
    whole = distributed.run_locally(MemoryArchive(), "mtn_momo", content, ledger, 4)
    assert whole.reconciliation_id == reconciliation_id("mtn_momo", content)
    assert whole == reconcile_statement("mtn_momo", content, ledger)
    assert sorted((b.reference, b.outcome) for b in whole.breaks) == [
        ("po_3", AMOUNT_MISMATCH), ("po_40", MISSING_AT_PROVIDER), ("po_7", MISSING_AT_PROVIDER)]


def test_reconciling_the_same_statement_again_gives_the_same_id_and_the_same_result():
    content = ("financialTransactionId,externalId,amount,currency,status,date\n"
               "1,po_1,1500,RWF,SUCCESSFUL,2026-05-09T10:00:00Z\n2,po_2,900,RWF,SUCCESSFUL,2026-05-09T11:00:00Z\n")
    ledger = MemoryLedgerSource([ll("po_1", -1500), ll("po_3", -100)])
    first = reconcile_statement("mtn_momo", content, ledger)
    again = reconcile_statement("mtn_momo", content.encode(), ledger)
    assert first.reconciliation_id == again.reconciliation_id == reconciliation_id("mtn_momo", content)
    assert first.to_dict() == again.to_dict()
    assert reconciliation_id("mpesa_b2c", content) != first.reconciliation_id
    assert reconciliation_id("mtn_momo", content + "\n") != first.reconciliation_id


# -- the result's shapes -----------------------------------------------------------------------

def test_to_json_has_the_api_shape_and_pages_the_breaks():
    plines = [pl(f"x{i}", -i - 1) for i in range(5)]
    rec = run(plines, [ll("gone", -1)])
    page1 = rec.to_json(page=1, page_size=4)
    assert set(page1) == {"reconciliation_id", "source", "status", "summary", "settlement", "breaks", "next_page",
                          "has_more", "next_cursor"}
    assert {"lines", "matched", "amount_mismatch", "missing_in_ledger", "missing_at_provider", "duplicate"} \
        <= set(page1["summary"])
    assert set(page1["settlement"][0]) >= {"provider", "currency", "day", "expected", "reported", "difference"}
    assert page1["settlement"][0]["expected"] == {"amount": -1, "currency": "RWF"}
    b = page1["breaks"][0]
    assert set(b) >= {"line", "reference", "outcome", "ledger_amount", "provider_amount"}
    assert b["provider_amount"] == {"amount": -1, "currency": "RWF"} and b["ledger_amount"] is None
    assert len(page1["breaks"]) == 4 and page1["next_page"] == 2
    page2 = rec.to_json(page=2, page_size=4)
    assert [x["reference"] for x in page2["breaks"]] == ["x4", "gone"] and page2["next_page"] is None
    assert page1["has_more"] is True and page2["has_more"] is False and page2["next_cursor"] is None
    assert rec.to_json(page_size=4, start=4)["breaks"] == page2["breaks"]  # where page1's next_cursor points
    json.dumps(page1)


def test_breaks_csv_lists_every_break_with_amounts_in_major_units():
    rec = run([pl("po_1", -160050, cur="KES"), pl("po_x", -7, cur="KES")],
              [ll("po_1", -150000, cur="KES"), ll("po_2", -1, cur="KES")])
    rows = list(csv.DictReader(io.StringIO(rec.breaks_csv())))
    assert [(r["line"], r["reference"], r["outcome"]) for r in rows] == [
        ("2", "po_1", AMOUNT_MISMATCH), ("3", "po_x", MISSING_IN_LEDGER), ("", "po_2", MISSING_AT_PROVIDER)]
    assert (rows[0]["ledger_amount"], rows[0]["provider_amount"], rows[0]["difference"]) == \
        ("-1500.00", "-1600.50", "-100.50")


def test_a_reconciliation_survives_a_storage_round_trip():
    plines, llines = _mixed_case()
    rec = run(plines, llines)
    assert Reconciliation.from_dict(json.loads(json.dumps(rec.to_dict()))) == rec
