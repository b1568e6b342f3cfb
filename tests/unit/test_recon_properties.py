"""Properties: a statement made from the ledger reconciles clean; every injected discrepancy is found once."""
from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.recon import (
    AMOUNT_MISMATCH, DUPLICATE, MISSING_AT_PROVIDER, MISSING_IN_LEDGER, LedgerLine, ProviderBatch, ProviderLine,
    reconcile,
)
from chalicelib.recon.engine import _reconcile_chunk
from chalicelib.recon.model import LedgerBatch

START = date(2026, 5, 1)
INJECTIONS = ("drop", "change", "duplicate", "foreign")
EXPECTED = {"drop": MISSING_AT_PROVIDER, "change": AMOUNT_MISMATCH, "duplicate": DUPLICATE,
            "foreign": MISSING_IN_LEDGER}


@st.composite
def ledgers(draw):
    """Ledger payouts with unique references; some are paid out in parts (split payouts)."""
    count = draw(st.integers(min_value=4, max_value=40))
    lines, parts = [], {}
    for i in range(count):
        amount = -draw(st.integers(min_value=1, max_value=10**9))
        currency = draw(st.sampled_from(["RWF", "KES", "UGX"]))
        day = START + timedelta(days=draw(st.integers(0, 3)))
        ref = f"po_{i}"
        lines.append(LedgerLine(ref, "mtn_momo", amount, currency, day, "payout", ref))
        n_parts = draw(st.sampled_from([1, 1, 1, 2, 3])) if -amount >= 3 else 1
        if n_parts > 1:
            cuts = sorted(draw(st.lists(st.integers(1, -amount - 1), min_size=n_parts - 1, max_size=n_parts - 1,
                                        unique=True)))
            bounds = [0, *cuts, -amount]
            parts[ref] = [-(b - a) for a, b in zip(bounds, bounds[1:])]
    return lines, parts


def statement_from(ledger: list[LedgerLine], parts: dict, order: list[int]) -> list[ProviderLine]:
    rows = []
    for ln in ledger:
        for k, amount in enumerate(parts.get(ln.reference, [ln.amount_minor])):
            rows.append(ProviderLine(0, "mtn_momo", ln.reference, amount, ln.currency, ln.day, "payout", None,
                                     f"MTN-{ln.reference}-{k}"))
    rows = [rows[i % len(rows)] for i in order] if order else rows
    return rows


def numbered(rows):
    return [r._replace(line=n) for n, r in enumerate(rows, 2)]


def run(rows, ledger, chunks=1):
    return reconcile(numbered(rows), ledger, source="mtn_momo", reconciliation_id="rec_prop", chunks=chunks)


@settings(max_examples=60, deadline=None)
@given(ledgers(), st.randoms(use_true_random=False), st.integers(1, 4))
def test_a_statement_generated_from_the_ledger_reconciles_with_zero_breaks(data, rnd, chunks):
    ledger, parts = data
    rows = statement_from(ledger, parts, [])
    rnd.shuffle(rows)
    rec = run(rows, ledger, chunks)
    assert rec.breaks == []
    assert rec.summary["matched"] == rec.summary["lines"] == len(rows)
    assert all(r.difference == 0 for r in rec.settlement)


@settings(max_examples=80, deadline=None)
@given(ledgers(), st.randoms(use_true_random=False), st.sets(st.sampled_from(INJECTIONS), min_size=1),
       st.integers(1, 4))
def test_every_injected_discrepancy_is_found_exactly_once_with_the_right_outcome(data, rnd, kinds, chunks):
    ledger, parts = data
    rows = statement_from(ledger, parts, [])
    rnd.shuffle(rows)
    single = [ln.reference for ln in ledger if ln.reference not in parts]  # one-to-one payouts
    rnd.shuffle(single)
    expected = []
    for kind in sorted(kinds):
        if kind == "foreign":
            rows.insert(rnd.randrange(len(rows) + 1), ProviderLine(
                0, "mtn_momo", "po_foreign", -777, "RWF", START, "payout", None, "MTN-foreign"))
            expected.append(("po_foreign", EXPECTED[kind]))
            continue
        if kind == "duplicate":
            target = rnd.choice(rows)
            rows.insert(rnd.randrange(len(rows) + 1), target)
            expected.append((target.reference, EXPECTED[kind]))
            continue
        if not single:
            continue
        ref = single.pop()
        at = next(i for i, r in enumerate(rows) if r.reference == ref)
        if kind == "drop":
            del rows[at]
        else:
            delta = rnd.choice([-1, 1]) * rnd.randint(1, 1000)
            rows[at] = rows[at]._replace(amount_minor=rows[at].amount_minor + delta or 1)
        expected.append((ref, EXPECTED[kind]))
    rec = run(rows, ledger, chunks)
    assert sorted((b.reference, b.outcome) for b in rec.breaks) == sorted(expected)
    s = rec.summary
    assert s["matched"] + s["amount_mismatch"] + s["missing_in_ledger"] + s["duplicate"] == len(rows)


@settings(max_examples=60, deadline=None)
@given(ledgers(), st.randoms(use_true_random=False), st.lists(st.sampled_from(INJECTIONS + ("split",)), max_size=6))
def test_the_fast_path_decides_every_line_as_the_group_rules_would(data, rnd, mutations):
    ledger, parts = data
    rows = statement_from(ledger, parts, [])
    for m in mutations:
        i = rnd.randrange(len(rows))
        if m == "drop" and len(rows) > 1:
            del rows[i]
        elif m == "change":
            rows[i] = rows[i]._replace(amount_minor=rows[i].amount_minor - rnd.randint(1, 5))
        elif m == "duplicate":
            rows.insert(rnd.randrange(len(rows) + 1), rows[i]._replace(raw_id=rnd.choice([rows[i].raw_id, "other"])))
        elif m == "foreign":
            rows.append(rows[i]._replace(reference="po_elsewhere"))
        elif m == "split":
            rows.append(rows[i]._replace(raw_id="part-2", amount_minor=-1))
    rnd.shuffle(rows)
    P = ProviderBatch.from_lines(numbered(rows), "mtn_momo")
    L = LedgerBatch.from_lines(ledger)
    fast, rules = _reconcile_chunk(P, L, None), _reconcile_chunk(P, L, None, by_rules=True)
    fast.breaks.sort(key=lambda b: b.sort_key())
    rules.breaks.sort(key=lambda b: b.sort_key())
    assert fast == rules
