"""Matching: provider lines against ledger lines, keyed on our ids.

The key is ``(kind, reference)``: the reference is *our* id as the provider echoes
it (payment intent, payout id, bank reference), the kind keeps a payment and its
refund (same payment intent) apart. Each provider line, and each ledger line no
provider line claims, ends as exactly one outcome; a ``classification`` says why
when there is something to say. The rules, for the lines of one key (provider
lines in statement order, ledger lines by transfer id):

1. ``duplicate``/``repeated_line``: a provider line whose provider id (``raw_id``)
   an earlier line of the key already had: the statement lists it twice.
2. ``matched``: a provider line and a ledger line with the same amount and currency
   pair off (``fee`` when the provider kept a fee: Stripe lines are compared on the
   gross, the fee is reported in the settlement, not a break); failing that, one
   whose pre-conversion amount (``orig_*``) equals a ledger line is ``matched``/``fx``.
3. ``matched``/``split``: what is left is one ledger line against several provider
   lines (or several ledger lines against one provider line) and the sums agree.
   This is the one-to-many model of a split payout: every part is sent to the rail
   with the same payout reference (``externalId`` / ``OriginatorConversationID``)
   and the ledger books one transfer for it, or one per part with that reference;
   parts with equal amounts pair off in rule 2, the rest are compared on the sum.
   (A payout whose parts carry their own references is simply one-to-one per part.)
4. ``duplicate``/``paid_twice``: a leftover provider line with the amount of a line
   that already matched: a second provider transaction for the same ledger entry.
5. ``amount_mismatch``: leftovers pair off in order (``fx`` when the currencies
   differ); one ledger line against several provider lines that do not add up makes
   every one of them an ``amount_mismatch``/``split`` against that ledger line.
6. ``missing_in_ledger``: provider lines still left; ``missing_at_provider``: ledger
   lines still left, if dated inside the statement's period (a ledger line outside
   it belongs to another statement; it may match here, it is never a break here).

Speed. ``reconcile_chunk`` applies the rules above group by group only to the few
keys where something does not line up. The common case (one provider line and one
ledger line with the same amount) is decided for all keys at once with builtin
pipelines over the column lists: a dict from key to ledger row, ``map``/``compress``
to find the keys that need a closer look. No object per line is made.

Chunking. ``partition`` splits both sides by a stable hash (CRC-32) of the
reference, so a reference's lines always land in the same chunk;
``reconcile_chunk`` is a pure function of one chunk and ``combine`` adds chunk
results up. A Step Functions Distributed Map runs the chunks in parallel; locally
``reconcile`` runs them in one process. The result does not depend on the number
of chunks.
"""
from __future__ import annotations

import base64
import csv
import io
import json
import zlib
from array import array
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from itertools import compress, islice, repeat
from operator import add, and_, eq, mod, ne, not_, or_, setitem
from typing import Iterable, NamedTuple, Sequence

from chalicelib.money import Money, exponent
from chalicelib.recon.parsing import bulk
from chalicelib.recon.model import (
    AMOUNT_MISMATCH, DUPLICATE, FEE, FX, MATCHED, MISSING_AT_PROVIDER, MISSING_IN_LEDGER, OUTCOMES, PAID_TWICE,
    REPEATED_LINE, SETTLED, SOURCES, SPLIT, LedgerBatch, ProviderBatch, as_ledger_batch, as_provider_batch,
)

STATUS_BALANCED = "balanced"  # every line matched
STATUS_BREAKS = "breaks"  # at least one break

#: Counters of a result besides the outcomes.
EXTRA_COUNTS = ("lines", "not_settled", "ledger_lines", "outside_period")


class Break(NamedTuple):
    """One line that did not match, as finance sees it (API ``breaks[]``, ``breaks.csv``)."""

    line: int | None  # the statement line; None for missing_at_provider
    reference: str
    kind: str
    outcome: str
    classification: str
    day: date
    ledger_minor: int | None
    ledger_currency: str
    provider_minor: int | None
    provider_currency: str
    transfer_id: str
    provider_id: str

    @property
    def ledger_amount(self) -> Money | None:
        return None if self.ledger_minor is None else Money(self.ledger_minor, self.ledger_currency)

    @property
    def provider_amount(self) -> Money | None:
        return None if self.provider_minor is None else Money(self.provider_minor, self.provider_currency)

    def sort_key(self) -> tuple:
        if self.line is not None:
            return (0, self.line, "", self.reference, self.transfer_id)
        return (1, 0, self.day.isoformat(), self.reference, self.transfer_id)

    def to_json(self) -> dict:
        return {
            "line": self.line,
            "reference": self.reference,
            "outcome": self.outcome,
            "ledger_amount": _money_json(self.ledger_minor, self.ledger_currency),
            "provider_amount": _money_json(self.provider_minor, self.provider_currency),
            "kind": self.kind,
            "classification": self.classification or None,
            "day": self.day.isoformat(),
            "transfer_id": self.transfer_id or None,
            "provider_id": self.provider_id or None,
        }

    def to_row(self) -> list:
        return [self.line, self.reference, self.kind, self.outcome, self.classification, self.day.isoformat(),
                self.ledger_minor, self.ledger_currency, self.provider_minor, self.provider_currency,
                self.transfer_id, self.provider_id]

    @classmethod
    def from_row(cls, row: Sequence) -> "Break":
        values = list(row)
        values[5] = date.fromisoformat(values[5])
        return cls(*values)


def _money_json(minor: int | None, currency: str) -> dict | None:
    return None if minor is None else {"amount": minor, "currency": currency}


@dataclass
class ChunkResult:
    """What one chunk found: counts, settlement sums per (provider, currency, day), breaks.

    Small and JSON-friendly (``to_dict``/``from_dict``) so a Distributed Map child
    can hand it to the combine step; breaks are the only part that grows, and
    only with what does not match.
    """

    provider: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES + EXTRA_COUNTS, 0))
    classified: dict[str, int] = field(default_factory=lambda: {FEE: 0, FX: 0, SPLIT: 0})
    # (provider, currency, day) -> [expected, reported, fees, lines]
    settlement: dict[tuple[str, str, date], list[int]] = field(default_factory=dict)
    breaks: list[Break] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "provider": self.provider,
            "counts": dict(self.counts),
            "classified": dict(self.classified),
            "settlement": [[p, c, d.isoformat(), *v] for (p, c, d), v in sorted(self.settlement.items())],
            "breaks": [b.to_row() for b in self.breaks],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ChunkResult":
        return cls(
            provider=data["provider"],
            counts=dict(data["counts"]),
            classified=dict(data["classified"]),
            settlement={(p, c, date.fromisoformat(d)): list(v) for p, c, d, *v in data["settlement"]},
            breaks=[Break.from_row(r) for r in data["breaks"]],
        )


# -- the per-chunk function --------------------------------------------------------------------

def reconcile_chunk(provider_lines, ledger_lines, *, period: tuple[date, date] | None = None) -> ChunkResult:
    """Match one chunk: ``provider_lines`` (a ``ProviderBatch`` or ``ProviderLine``s) against
    ``ledger_lines`` (a ``LedgerBatch`` or ``LedgerLine``s). Pure: no I/O, no clock.

    ``period`` (first and last day of the statement, inclusive): ledger lines outside
    it are used for matching but never reported missing. ``None``: every ledger line counts.
    """
    with bulk():
        return _reconcile_chunk(as_provider_batch(provider_lines), as_ledger_batch(ledger_lines), period)


def _reconcile_chunk(P: ProviderBatch, L: LedgerBatch, period, by_rules: bool = False) -> ChunkResult:
    """``by_rules``: send every key through the group rules (tests hold the fast path to them)."""
    provider = P.provider or (L.provider[0] if len(L) else "")
    result = ChunkResult(provider)
    counts = result.counts
    if P.status is not None:  # failed/pending provider lines moved no money: counted, never matched
        settled = list(map(SETTLED.__eq__, P.status))
        counts["not_settled"] = len(P) - sum(settled)
        P = P.take(mask=settled)
    n, m = len(P), len(L)
    counts["lines"] = n
    counts["ledger_lines"] = m
    pkeys, lkeys = _keys(P, L)

    # Find the few rows the group rules must look at, for all keys at once:
    lidx = dict(zip(lkeys, range(m)))  # key -> its (last) ledger row
    slow_j: set[int] = set()  # ledger rows whose key needs the rules
    ledger_dup_keys: set = set()
    if len(lidx) != m:  # keys with several ledger lines
        ledger_dup_keys.update(compress(lkeys, map(ne, map(lidx.__getitem__, lkeys), range(m))))
        slow_j.update(map(lidx.__getitem__, ledger_dup_keys))
    rows = list(map(lidx.get, pkeys, repeat(m)))  # each provider line's ledger row; m: none
    del lidx
    # claimant[j]: the last provider line pointing at ledger row j (-1: none), scattered in C;
    # a provider line that is not its row's claimant shares the row with another line.
    claimant = array("q", [-1]) * (m + 1)
    any(map(setitem, repeat(claimant), rows, range(n)))  # setitem returns None: ``any`` runs it all
    claimant[m] = -1
    shared = set(compress(rows, map(ne, map(claimant.__getitem__, rows), range(n))))
    shared.discard(m)
    slow_j.update(shared)  # ... ledger rows claimed by several provider lines (a split, a duplicate)
    # ... provider lines without a ledger line, or whose amount (or currency) differs ...
    ledger_amount = [*L.amount_minor, None]
    same = map(eq, P.amount_minor, map(ledger_amount.__getitem__, rows))
    one_currency = n and m and P.currency.count(P.currency[0]) == n and L.currency.count(P.currency[0]) == m
    if not one_currency:
        ledger_currency = [*L.currency, None]
        same = map(and_, same, map(eq, P.currency, map(ledger_currency.__getitem__, rows)))
    p_slow = set(compress(range(n), map(not_, same)))
    del ledger_amount
    # ... and every provider line of the keys found so far (several provider lines on one row)
    if slow_j:
        p_slow.update(compress(range(n), map(slow_j.__contains__, rows)))
    # ledger rows: those no provider line claims, those of slow provider lines, those found above
    l_slow = set(_unclaimed(claimant, m))
    del claimant
    l_slow.update(slow_j)
    l_slow.update(rows[i] for i in p_slow)
    l_slow.discard(m)
    if ledger_dup_keys:
        l_slow.update(compress(range(m), map(ledger_dup_keys.__contains__, lkeys)))
    del rows
    if by_rules:
        p_slow, l_slow = set(range(n)), set(range(m))

    settlement = bucket_sums(provider, P)
    fees = P.fee_minor
    fee_lines = sum(map(bool, fees)) if fees is not None else 0
    slow_rows = len(p_slow)
    if p_slow or l_slow:
        groups: dict = {}
        for i in sorted(p_slow):
            groups.setdefault(pkeys[i], ([], []))[0].append(i)
        for j in sorted(l_slow):
            groups.setdefault(lkeys[j], ([], []))[1].append(j)
        resolver = _GroupResolver(P, L, provider, period, result, settlement)
        for pis, ljs in groups.values():
            resolver.resolve(pis, ljs)
        if fees is not None:
            fee_lines -= sum(1 for i in p_slow if fees[i])
    fast_matched = n - slow_rows
    counts[MATCHED] += fast_matched
    result.classified[FEE] += fee_lines
    result.settlement = {k: v for k, v in settlement.items() if any(v)}
    return result


def _unclaimed(claimant: array, m: int) -> list[int]:
    """Rows ``j < m`` where ``claimant[j] == -1``, found by searching the raw bytes for eight
    0xff bytes (row indices are below 2**31, so a match is always one whole -1)."""
    buf = claimant.tobytes()
    found = []
    minus_one = b"\xff" * claimant.itemsize
    pos = buf.find(minus_one)
    while pos >= 0:
        if pos % claimant.itemsize == 0:
            found.append(pos // claimant.itemsize)
            pos += claimant.itemsize
        else:
            pos += 1
        pos = buf.find(minus_one, pos)
    if found and found[-1] == m:
        found.pop()
    return found


def _keys(P: ProviderBatch, L: LedgerBatch) -> tuple[Sequence[str], Sequence[str]]:
    """Matching keys: the references themselves when both sides hold one and the same kind
    (every mobile-money and bank statement), else ``kind + "\\x1f" + reference``."""
    pk, lk = set(P.kind), set(L.kind)
    if len(pk | lk) <= 1:
        return P.reference, L.reference
    prefix = {k: k + "\x1f" for k in pk | lk}
    return (list(map(add, map(prefix.__getitem__, P.kind), P.reference)),
            list(map(add, map(prefix.__getitem__, L.kind), L.reference)))


def bucket_sums(provider: str, P: ProviderBatch) -> dict:
    """``{(provider, currency, day): [expected, reported, fees, lines]}`` over all provider lines,
    expected starting equal to reported (the group rules adjust it where lines differ).

    Statements come in date order, so sums are taken over runs of equal (currency, day):
    a couple of C-speed passes. A shuffled statement falls back to one step per line.
    """
    n = len(P)
    out: dict = {}
    if not n:
        return out
    day, currency = P.day, P.currency
    changes = map(ne, islice(day, 1, None), day)
    if currency.count(currency[0]) != n:  # several currencies (identity makes this count cheap)
        changes = map(or_, changes, map(ne, islice(currency, 1, None), currency))
    starts = [0, *compress(range(1, n), changes)]
    amounts, fees = P.amount_minor, P.fee_minor
    if fees is not None and None in fees:
        fees = [f or 0 for f in fees]
    if len(starts) > n // 8:  # not in date order
        for i in range(n):
            key = (provider, currency[i], day[i])
            bucket = out.get(key)
            if bucket is None:
                bucket = out[key] = [0, 0, 0, 0]
            bucket[0] += amounts[i]
            bucket[1] += amounts[i]
            if fees is not None:
                bucket[2] += fees[i]
            bucket[3] += 1
        return out
    for s, e in zip(starts, [*starts[1:], n]):
        key = (provider, currency[s], day[s])
        bucket = out.get(key)
        if bucket is None:
            bucket = out[key] = [0, 0, 0, 0]
        total = sum(amounts[s:e])
        bucket[0] += total
        bucket[1] += total
        if fees is not None:
            bucket[2] += sum(fees[s:e])
        bucket[3] += e - s
    return out


class _GroupResolver:
    """The group rules (module docstring) for the lines of one key."""

    def __init__(self, P: ProviderBatch, L: LedgerBatch, provider: str, period, result: ChunkResult,
                 settlement: dict):
        self.P, self.L, self.provider, self.period = P, L, provider, period
        self.result = result
        self.counts = result.counts
        self.classified = result.classified
        self.settlement = settlement
        self.fees = P.fee_minor
        self.orig_minor = P.orig_minor
        self.orig_currency = P.orig_currency

    def _expect(self, currency: str, day: date, minor: int) -> None:
        key = (self.provider, currency, day)
        bucket = self.settlement.get(key)
        if bucket is None:
            bucket = self.settlement[key] = [0, 0, 0, 0]
        bucket[0] += minor

    def _provider_row(self, i: int, outcome: str, classification: str, j: int | None) -> None:
        """Record provider line ``i``'s outcome. Every slow provider line first takes back the
        expected amount ``bucket_sums`` credited it with; matched lines put it back."""
        P, L = self.P, self.L
        self.counts[outcome] += 1
        amount, currency, day = P.amount_minor[i], P.currency[i], P.day[i]
        self._expect(currency, day, -amount)
        if outcome == MATCHED:
            self._expect(currency, day, amount)
            if classification in self.classified:
                self.classified[classification] += 1
            return
        self.result.breaks.append(Break(
            P.line[i], P.reference[i], P.kind[i], outcome, classification, day,
            None if j is None else L.amount_minor[j], "" if j is None else L.currency[j],
            amount, currency, "" if j is None else L.transfer_id[j], P.raw_id[i],
        ))

    def _ledger_row(self, j: int) -> None:
        L = self.L
        day = L.day[j]
        if self.period is not None and not (self.period[0] <= day <= self.period[1]):
            self.counts["outside_period"] += 1
            return
        self.counts[MISSING_AT_PROVIDER] += 1
        self._expect(L.currency[j], day, L.amount_minor[j])
        self.result.breaks.append(Break(None, L.reference[j], L.kind[j], MISSING_AT_PROVIDER, "", day,
                                        L.amount_minor[j], L.currency[j], None, "", L.transfer_id[j], ""))

    def resolve(self, pis: list[int], ljs: list[int]) -> None:
        P, L = self.P, self.L
        ljs.sort(key=L.transfer_id.__getitem__)
        # 1. the statement repeats a provider transaction
        seen: set = set()
        rest = []
        for i in pis:
            raw = P.raw_id[i]
            if raw and raw in seen:
                self._provider_row(i, DUPLICATE, REPEATED_LINE, None)
            else:
                seen.add(raw)
                rest.append(i)
        # 2. equal amounts pair off
        pool: dict[tuple, list[int]] = {}
        for j in ljs:
            pool.setdefault((L.amount_minor[j], L.currency[j]), []).append(j)
        taken: set[int] = set()
        matched_amounts: set = set()
        left_p = []
        for i in rest:
            amount = (P.amount_minor[i], P.currency[i])
            candidates = pool.get(amount)
            classification = FEE if self.fees is not None and self.fees[i] else ""
            if not candidates and self.orig_currency is not None and self.orig_currency[i]:
                candidates = pool.get((self.orig_minor[i], self.orig_currency[i]))
                classification = FX
            if candidates:
                taken.add(candidates.pop(0))
                matched_amounts.add(amount)
                self._provider_row(i, MATCHED, classification, None)
            else:
                left_p.append(i)
        left_l = [j for j in ljs if j not in taken]
        # 3. one against many, compared on the sum
        if left_p and left_l and (len(left_l) == 1 or len(left_p) == 1) and len(left_p) + len(left_l) > 2:
            currencies = {P.currency[i] for i in left_p} | {L.currency[j] for j in left_l}
            if len(currencies) == 1 and sum(P.amount_minor[i] for i in left_p) == sum(
                    L.amount_minor[j] for j in left_l):
                for i in left_p:
                    self._provider_row(i, MATCHED, SPLIT, None)
                left_p, left_l = [], []
        # 4. a second provider transaction for an entry that already matched
        if left_p and matched_amounts:
            still = []
            for i in left_p:
                if (P.amount_minor[i], P.currency[i]) in matched_amounts:
                    self._provider_row(i, DUPLICATE, PAID_TWICE, None)
                else:
                    still.append(i)
            left_p = still
        # 5. amounts that differ
        if left_p and left_l:
            if len(left_l) == 1 and len(left_p) > 1:
                j = left_l[0]
                for i in left_p:
                    self._provider_row(i, AMOUNT_MISMATCH, SPLIT, j)
                self._expect(L.currency[j], P.day[left_p[0]], L.amount_minor[j])
                left_p, left_l = [], []
            else:
                k = min(len(left_p), len(left_l))
                for i, j in zip(left_p[:k], left_l[:k]):
                    self._provider_row(i, AMOUNT_MISMATCH, FX if P.currency[i] != L.currency[j] else "", j)
                    self._expect(L.currency[j], P.day[i], L.amount_minor[j])
                left_p, left_l = left_p[k:], left_l[k:]
        # 6. nothing on the other side
        for i in left_p:
            self._provider_row(i, MISSING_IN_LEDGER, "", None)
        for j in left_l:
            self._ledger_row(j)


# -- chunks ----------------------------------------------------------------------------------

def chunk_of(reference: str, chunks: int) -> int:
    """The chunk of a reference: stable across processes and machines (CRC-32, not ``hash``)."""
    return zlib.crc32(reference.encode()) % chunks


def partition(lines, chunks: int):
    """Split a ``ProviderBatch`` or ``LedgerBatch`` into ``chunks`` batches by ``chunk_of(reference)``."""
    if chunks < 1:
        raise ValueError("chunks must be at least 1")
    if chunks == 1:
        return [lines]
    ids = list(map(mod, map(zlib.crc32, map(str.encode, lines.reference)), repeat(chunks)))
    return [lines.take(mask=map(eq, ids, repeat(k))) for k in range(chunks)]


def combine(results: Iterable[ChunkResult], *, source: str, reconciliation_id: str) -> "Reconciliation":
    """Add chunk results up into one ``Reconciliation`` (breaks in a stable order)."""
    counts = dict.fromkeys(OUTCOMES + EXTRA_COUNTS, 0)
    classified = {FEE: 0, FX: 0, SPLIT: 0}
    settlement: dict = {}
    breaks: list[Break] = []
    provider = SOURCES.get(source, "")
    for r in results:
        provider = r.provider or provider
        for k, v in r.counts.items():
            counts[k] = counts.get(k, 0) + v
        for k, v in r.classified.items():
            classified[k] = classified.get(k, 0) + v
        for k, v in r.settlement.items():
            bucket = settlement.setdefault(k, [0, 0, 0, 0])
            for x, y in enumerate(v):
                bucket[x] += y
        breaks.extend(r.breaks)
    breaks.sort(key=Break.sort_key)
    rows = [SettlementRow(p, c, d, *v) for (p, c, d), v in sorted(settlement.items())]
    return Reconciliation(reconciliation_id, source, provider, counts, classified, rows, breaks)


def reconcile(provider_lines, ledger_lines, *, source: str, reconciliation_id: str,
              period: tuple[date, date] | None = None, chunks: int = 1) -> "Reconciliation":
    """Partition, reconcile every chunk, combine: the local twin of the Distributed Map."""
    P = as_provider_batch(provider_lines, source)
    L = as_ledger_batch(ledger_lines)
    results = [reconcile_chunk(p, l, period=period) for p, l in zip(partition(P, chunks), partition(L, chunks))]
    return combine(results, source=source, reconciliation_id=reconciliation_id)


# -- the result --------------------------------------------------------------------------------

class SettlementRow(NamedTuple):
    """Per provider, currency and day: what the ledger expected, what the provider reported."""

    provider: str
    currency: str
    day: date
    expected: int
    reported: int
    fees: int
    lines: int

    @property
    def difference(self) -> int:
        return self.reported - self.expected

    def to_json(self) -> dict:
        return {
            "provider": self.provider,
            "currency": self.currency,
            "day": self.day.isoformat(),
            "expected": _money_json(self.expected, self.currency),
            "reported": _money_json(self.reported, self.currency),
            "difference": _money_json(self.difference, self.currency),
            "fees": _money_json(self.fees, self.currency),
            "lines": self.lines,
        }


def breaks_cursor(reconciliation_id: str, offset: int) -> str:
    """The ``next_cursor`` of a reconciliation's breaks: the offset of the next page's first break,
    bound to that reconciliation (opaque to clients; URL-safe)."""
    position = json.dumps({"reconciliation_id": reconciliation_id, "offset": offset}, separators=(",", ":"))
    return base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")


def breaks_offset(cursor: str, reconciliation_id: str) -> int:
    """The offset ``breaks_cursor`` wrote; a cursor of another reconciliation, or none of ours, is a
    400 ``invalid_cursor`` (never a 500: a cursor that decodes to deeply nested JSON included)."""
    from chalicelib.errors import ValidationError

    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset = position["offset"]
        if position["reconciliation_id"] != reconciliation_id or type(offset) is not int or offset < 0:
            raise ValueError(cursor)
        return offset
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        raise ValidationError("invalid_cursor", "the cursor is not one of this reconciliation's",
                              path="query.cursor") from None


@dataclass
class Reconciliation:
    """A statement reconciled against the ledger: summary, settlement, breaks.

    ``reconciliation_id`` is derived from the source and the statement's content
    (``inputs.reconciliation_id``), so reconciling the same file again yields the same
    id; with an unchanged ledger, the same result.
    """

    reconciliation_id: str
    source: str
    provider: str
    counts: dict[str, int]
    classified: dict[str, int]
    settlement: list[SettlementRow]
    breaks: list[Break]

    @property
    def status(self) -> str:
        return STATUS_BREAKS if self.breaks else STATUS_BALANCED

    @property
    def summary(self) -> dict:
        """API ``summary``: the statement's lines and every outcome; extras after them."""
        s = {"lines": self.counts["lines"]}
        s.update((k, self.counts[k]) for k in OUTCOMES)
        s["not_settled"] = self.counts["not_settled"]
        s["ledger_lines"] = self.counts["ledger_lines"]
        s["outside_period"] = self.counts["outside_period"]
        s["classified"] = dict(self.classified)
        return s

    def to_json(self, page: int = 1, page_size: int = 100, start: int | None = None) -> dict:
        """The API's reconciliation document with one page of breaks (pages count from 1); ``start``: the
        page begins at that break instead (a cursor's offset), and ``next_page`` is then not given."""
        if page < 1 or page_size < 1 or (start is not None and start < 0):
            raise ValueError("page and page_size start at 1, start at 0")
        by_page = start is None
        start = (page - 1) * page_size if by_page else start
        chunk = self.breaks[start:start + page_size]
        return {
            "reconciliation_id": self.reconciliation_id,
            "source": self.source,
            "status": self.status,
            "summary": self.summary,
            "settlement": [r.to_json() for r in self.settlement],
            "breaks": [b.to_json() for b in chunk],
            "next_page": page + 1 if by_page and start + page_size < len(self.breaks) else None,
            "has_more": start + page_size < len(self.breaks),
            "next_cursor": breaks_cursor(self.reconciliation_id, start + page_size)
            if start + page_size < len(self.breaks) else None,
        }

    def breaks_csv(self) -> str:
        """Every break as CSV, amounts in major units (``12.50``) beside their currency; a text cell that a
        spreadsheet would run as a formula is written with a leading ``'`` (OWASP's CSV injection advice)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["line", "reference", "kind", "outcome", "classification", "day", "ledger_amount",
                         "ledger_currency", "provider_amount", "provider_currency", "difference", "transfer_id",
                         "provider_id"])
        for b in self.breaks:
            difference = ""
            if b.ledger_minor is not None and b.provider_minor is not None and b.ledger_currency == b.provider_currency:
                difference = _major(b.provider_minor - b.ledger_minor, b.provider_currency)
            text = _csv_text  # what a provider or a client wrote: never a formula; our amounts stay numbers
            writer.writerow([
                "" if b.line is None else b.line, text(b.reference), text(b.kind), text(b.outcome),
                text(b.classification), b.day.isoformat(), _major(b.ledger_minor, b.ledger_currency),
                text(b.ledger_currency), _major(b.provider_minor, b.provider_currency), text(b.provider_currency),
                difference, text(b.transfer_id), text(b.provider_id),
            ])
        return out.getvalue()

    def to_dict(self) -> dict:
        """Everything, for storage (``from_dict`` reads it back)."""
        return {
            "reconciliation_id": self.reconciliation_id,
            "source": self.source,
            "provider": self.provider,
            "counts": dict(self.counts),
            "classified": dict(self.classified),
            "settlement": [[r.provider, r.currency, r.day.isoformat(), r.expected, r.reported, r.fees, r.lines]
                           for r in self.settlement],
            "breaks": [b.to_row() for b in self.breaks],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Reconciliation":
        return cls(
            data["reconciliation_id"], data["source"], data["provider"], dict(data["counts"]),
            dict(data["classified"]),
            [SettlementRow(p, c, date.fromisoformat(d), *v) for p, c, d, *v in data["settlement"]],
            [Break.from_row(r) for r in data["breaks"]],
        )


def _major(minor: int | None, currency: str) -> str:
    if minor is None:
        return ""
    exp = exponent(currency)
    return f"{Decimal(minor).scaleb(-exp):.{exp}f}"


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_text(value):
    """``value`` for a CSV text cell: one starting like a formula (``=``, ``+``, ``-``, ``@``, tab, CR) gets
    a leading apostrophe, so a spreadsheet shows it as text instead of running it."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
