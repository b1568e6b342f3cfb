"""Which reconciliation last looked at a ledger line, and what it said."""
from datetime import date

from chalicelib.documents import MemoryDocuments
from chalicelib.recon import LedgerLine, ProviderLine, reconcile
from chalicelib.recon.runs import ReconciliationRuns

DAY = date(2026, 12, 1)


def line(n, ref, amount):
    return ProviderLine(n, "mtn_momo", ref, amount, "RWF", DAY, "payout", None, f"mtn-{n}")


def ledger(ref, amount):
    return LedgerLine(ref, "mtn_momo", amount, "RWF", DAY, "payout", f"{ref}:post")


def runs_with(*recs):
    clock = iter(["2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z", "2026-12-01T12:00:00Z"])
    stored = {r.reconciliation_id: r for r in recs}
    runs = ReconciliationRuns(MemoryDocuments(), load=stored.__getitem__, clock=lambda: next(clock))
    for rec in recs:
        runs.record({}, rec)
    return runs


def test_a_line_of_a_covered_day_is_matched_unless_it_is_a_break():
    rec = reconcile([line(2, "po_a", -100), line(3, "po_b", -90)], [ledger("po_a", -100), ledger("po_b", -99)],
                    source="mtn_momo", reconciliation_id="rec_1", period=(DAY, DAY))
    runs = runs_with(rec)
    assert runs.latest_outcome("mtn_momo", "payout", "po_a", "po_a:post", DAY).outcome == "matched"
    assert runs.latest_outcome("mtn_momo", "payout", "po_b", "po_b:post", DAY).outcome == "amount_mismatch"
    assert runs.latest_outcome("mtn_momo", "payout", "po_a", "po_a:post", date(2026, 12, 2)) is None
    assert runs.latest_outcome("stripe", "card_payment", "pi_1", "pay:o1", DAY) is None


def test_the_latest_run_covering_the_day_decides():
    broken = reconcile([line(2, "po_a", -100)], [ledger("po_a", -100), ledger("po_c", -5)], source="mtn_momo",
                       reconciliation_id="rec_old", period=(DAY, DAY))
    fixed = reconcile([line(2, "po_a", -100), line(3, "po_c", -5)], [ledger("po_a", -100), ledger("po_c", -5)],
                      source="mtn_momo", reconciliation_id="rec_new", period=(DAY, DAY))
    runs = runs_with(broken, fixed)
    found = runs.latest_outcome("mtn_momo", "payout", "po_c", "po_c:post", DAY)
    assert (found.outcome, found.reconciliation_id) == ("matched", "rec_new")
    page = runs.page(limit=1)
    assert page["has_more"] and page["reconciliations"][0]["reconciliation_id"] == "rec_new"
    assert page["reconciliations"][0]["first_day"] == "2026-12-01"
