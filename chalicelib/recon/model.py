"""Reconciliation vocabulary: provider and ledger lines, outcomes, statement errors.

Signs. Every amount is signed minor units from the point of view of *our balance
at the provider*: ``+`` money arrived there (a card payment, a float top-up
credited by the bank), ``-`` money left it (a refund, a payout to a wallet).
Importers convert each provider's own convention to this one; a
``LedgerSource`` does the same for ledger transfers (``card_payment`` +,
``card_refund`` -, ``payout`` -, ``float_topup`` +).

Kinds use the ledger's transfer codes (``card_payment``, ``card_refund``,
``payout``, ``float_topup``) so that a provider line and a ledger line of the
same business event share ``(kind, reference)``, the matching key. Lines of
kinds the ledger does not book (a Stripe ``payout`` to our bank, a ``fee``...)
keep their provider category as ``kind`` and show up as ``missing_in_ledger``:
visible, never hidden.

Lines are small ``NamedTuple``s holding ints (``amount_minor``), not ``Money``
objects: a million-line statement stays a million compact tuples (or, in the
hot path, a few column lists, see ``ProviderBatch``). ``.amount`` builds the
``Money`` when someone wants one.
"""
from __future__ import annotations

from datetime import date
from itertools import compress, repeat
from operator import and_, ge, le, ne
from typing import Iterable, Iterator, NamedTuple, Sequence

from chalicelib.errors import ValidationError
from chalicelib.money import Money
from chalicelib.rails import RAILS

# -- outcomes -------------------------------------------------------------------------
MATCHED = "matched"
AMOUNT_MISMATCH = "amount_mismatch"
MISSING_IN_LEDGER = "missing_in_ledger"
MISSING_AT_PROVIDER = "missing_at_provider"
DUPLICATE = "duplicate"
OUTCOMES = (MATCHED, AMOUNT_MISMATCH, MISSING_IN_LEDGER, MISSING_AT_PROVIDER, DUPLICATE)

# -- classifications (a separate field: *why* an outcome looks the way it does) ---------
FEE = "fee"  # matched on the gross amount; the provider kept a fee (Stripe gross vs net)
FX = "fx"  # the provider converted: matched on its original amount, or currencies differ
SPLIT = "split"  # one ledger line against several provider lines (or the reverse), compared on the sum
REPEATED_LINE = "repeated_line"  # the statement lists the same provider transaction id twice
PAID_TWICE = "paid_twice"  # a second provider transaction for a ledger entry already matched
CLASSIFICATIONS = (FEE, FX, SPLIT, REPEATED_LINE, PAID_TWICE)

# -- provider line statuses ---------------------------------------------------------------
SETTLED = "settled"  # money moved: takes part in matching
FAILED = "failed"  # the provider says no money moved: counted, not matched
PENDING = "pending"  # not final at the provider yet: counted, not matched

# -- sources and the provider each one reports on -------------------------------------------


def collection_provider(rail: str) -> str:
    """The reconciliation provider of a rail's collection account (its payouts are ``rail`` itself)."""
    return f"{rail}_collection"


#: The longest period a caller may declare for a statement (a quarter): its ledger lines are read in one go.
MAX_DECLARED_DAYS = 92


def declared_period(first: date | str, last: date | str) -> tuple[date, date]:
    """A caller's period ``first..last`` (inclusive, ISO days), checked: ``ValueError`` when a day is
    not a calendar day, the period runs backwards or is longer than ``MAX_DECLARED_DAYS``."""
    first = date.fromisoformat(first) if isinstance(first, str) else first
    last = date.fromisoformat(last) if isinstance(last, str) else last
    if last < first:
        raise ValueError("the period's 'to' is before its 'from'")
    if (last - first).days + 1 > MAX_DECLARED_DAYS:
        raise ValueError(f"a period covers at most {MAX_DECLARED_DAYS} days")
    return first, last


SOURCES = {
    "stripe_balance": "stripe",
    "camt053": "bank",
    # every payout rail of the registry, under its reconciliation source
    **{rail.recon_source: rail.name for rail in RAILS.values()},
    # every collecting rail's collection account, under its own source
    **{rail.collection.recon_source: collection_provider(rail.name) for rail in RAILS.values() if rail.collection},
}

#: Ledger transfer codes and their sign in reconciliation (see the module docstring).
LEDGER_CODE_SIGNS = {"card_payment": 1, "card_refund": -1, "payout": -1, "float_topup": 1, "float_withdrawal": -1,
                     "collection": 1, "collection_refund": -1, "bank_transfer": 1, "bank_refund": -1,
                     # a card dispute: the card network takes the disputed amount, and gives it back if won
                     "card_dispute": -1, "card_dispute_reversal": 1}


def _money(minor: int | None, currency: str) -> Money | None:
    return None if minor is None else Money(minor, currency)


class ProviderLine(NamedTuple):
    """One line of a provider's statement.

    ``line`` is where it was in the file (the CSV line, the XML line of the camt.053
    ``<Ntry>``, or the 1-based item number in a JSON list). ``reference`` is our id as
    the provider echoes it (payment intent id, payout id, bank entry reference);
    ``raw_id`` is the provider's own transaction id. ``fee_minor`` is what the
    provider kept (Stripe), ``None`` where the format has no fees. ``orig_*`` is the
    amount before the provider converted it (Stripe's customer-facing amount, the
    camt.053 instructed amount), when it did.
    """

    line: int
    provider: str
    reference: str
    amount_minor: int
    currency: str
    day: date
    kind: str
    fee_minor: int | None
    raw_id: str
    status: str = SETTLED
    orig_minor: int | None = None
    orig_currency: str = ""

    @property
    def amount(self) -> Money:
        return Money(self.amount_minor, self.currency)

    @property
    def fee(self) -> Money | None:
        return _money(self.fee_minor, self.currency)

    @property
    def original(self) -> Money | None:
        return _money(self.orig_minor, self.orig_currency) if self.orig_currency else None


class LedgerLine(NamedTuple):
    """One ledger transfer as reconciliation sees it.

    ``reference`` must be the id the provider echoes back (payment intent id for card
    payments and refunds, the payout id sent as MTN ``externalId`` / M-Pesa
    ``OriginatorConversationID`` / Airtel ``transaction.id``, the bank reference of a float
    top-up); ``kind`` is
    the transfer code; ``amount_minor`` is signed as in the module docstring.
    """

    reference: str
    provider: str
    amount_minor: int
    currency: str
    day: date
    kind: str
    transfer_id: str

    @property
    def amount(self) -> Money:
        return Money(self.amount_minor, self.currency)


class StatementError(ValidationError):
    """A statement (or ledger export) has malformed lines; ``errors`` lists every one.

    ``errors`` is ``[(line, reason), ...]`` in line order (line 0: the file as a
    whole, e.g. a missing column). Nothing of a malformed file is reconciled: a
    dropped row would be a silent break. ``fields`` carries the same list in the
    API's validation-error shape.
    """

    code = "malformed_statement"
    MAX_LISTED = 1000  # the message and ``fields`` list at most this many; ``total`` counts all

    def __init__(self, source: str, errors: Sequence[tuple[int, str]], total: int | None = None):
        self.source = source
        self.errors = sorted(errors)[: self.MAX_LISTED]
        self.total = total if total is not None else len(errors)
        shown = "; ".join(f"line {n}: {why}" if n else why for n, why in self.errors[:20])
        more = f" (and {self.total - min(20, len(self.errors))} more)" if self.total > 20 else ""
        super().__init__(
            "malformed_statement",
            f"{source}: {self.total} malformed line{'s' if self.total != 1 else ''}: {shown}{more}",
            path="content",
            fields=[{"path": f"line {n}" if n else "content", "message": why} for n, why in self.errors],
            source=source,
        )


# -- column batches: what the engine really works on ------------------------------------------

class ProviderBatch:
    """A statement held column-wise: one list per field, index ``i`` is one line.

    Iterating yields ``ProviderLine`` tuples; the engine works on the columns with
    builtin iterator pipelines (``map``/``zip``/``compress`` over whole lists) and
    touches single lines in Python only where something does not match. ``line``
    may be a ``range`` (a CSV without multi-line records); ``fee_minor``,
    ``status`` and ``orig_*`` are ``None`` when the whole batch has none (no fees;
    every line settled; no conversion).
    """

    __slots__ = ("source", "provider", "line", "reference", "amount_minor", "currency", "day", "kind",
                 "fee_minor", "raw_id", "status", "orig_minor", "orig_currency")

    def __init__(self, source: str, provider: str, *, line: Sequence[int], reference: list, amount_minor: list,
                 currency: list, day: list, kind: list, raw_id: list, fee_minor: list | None = None,
                 status: list | None = None, orig_minor: list | None = None, orig_currency: list | None = None):
        self.source = source
        self.provider = provider
        self.line = line
        self.reference = reference
        self.amount_minor = amount_minor
        self.currency = currency
        self.day = day
        self.kind = kind
        self.fee_minor = fee_minor
        self.raw_id = raw_id
        self.status = status
        self.orig_minor = orig_minor
        self.orig_currency = orig_currency

    def __len__(self) -> int:
        return len(self.reference)

    def row(self, i: int) -> ProviderLine:
        return ProviderLine(
            self.line[i], self.provider, self.reference[i], self.amount_minor[i], self.currency[i], self.day[i],
            self.kind[i], None if self.fee_minor is None else self.fee_minor[i], self.raw_id[i],
            SETTLED if self.status is None else self.status[i],
            None if self.orig_minor is None else self.orig_minor[i],
            "" if self.orig_currency is None else self.orig_currency[i],
        )

    def __iter__(self) -> Iterator[ProviderLine]:
        return map(self.row, range(len(self)))

    def __eq__(self, other) -> bool:
        return isinstance(other, ProviderBatch) and self.source == other.source and list(self) == list(other)

    def __repr__(self) -> str:
        return f"<ProviderBatch {self.source} {len(self)} lines>"

    @classmethod
    def from_lines(cls, lines: Iterable[ProviderLine], source: str = "", provider: str = "") -> "ProviderBatch":
        """Columns from ``ProviderLine`` tuples (tests, the API's small uploads)."""
        rows = list(lines)
        if not provider:
            providers = {r.provider for r in rows}
            if len(providers) > 1:
                raise ValueError(f"one batch holds one provider's lines, not {sorted(providers)}")
            provider = providers.pop() if providers else ""
        cols = list(zip(*rows)) if rows else [()] * len(ProviderLine._fields)
        get = dict(zip(ProviderLine._fields, (list(c) for c in cols)))
        fees = get["fee_minor"]
        return cls(
            source, provider, line=get["line"], reference=get["reference"], amount_minor=get["amount_minor"],
            currency=get["currency"], day=get["day"], kind=get["kind"], raw_id=get["raw_id"],
            fee_minor=fees if any(f is not None for f in fees) else None,
            status=get["status"] if any(s != SETTLED for s in get["status"]) else None,
            orig_minor=get["orig_minor"] if any(o is not None for o in get["orig_minor"]) else None,
            orig_currency=get["orig_currency"] if any(get["orig_currency"]) else None,
        )

    def take(self, indices: Iterable[int] | None = None, mask: Iterable | None = None) -> "ProviderBatch":
        """The lines at ``indices`` (or where ``mask`` is true), columns kept aligned."""
        return ProviderBatch(self.source, self.provider, **_take(self, _COLS_P, indices, mask))

    @classmethod
    def concat(cls, batches: Sequence["ProviderBatch"]) -> "ProviderBatch":
        """The lines of ``batches`` one after the other (one source and provider); an optional
        column absent from some batches is filled with its default there."""
        first = next((b for b in batches if b.provider), batches[0])
        fill = {"fee_minor": None, "status": SETTLED, "orig_minor": None, "orig_currency": ""}
        out = {}
        for name in _COLS_P:
            cols = [getattr(b, name) for b in batches]
            if all(c is None for c in cols):
                out[name] = None
                continue
            joined: list = []
            for b, c in zip(batches, cols):
                joined.extend([fill[name]] * len(b) if c is None else c)
            out[name] = joined
        return cls(first.source, first.provider, **out)


class LedgerBatch:
    """Ledger lines held column-wise, as ``ProviderBatch``; iterating yields ``LedgerLine``."""

    __slots__ = ("reference", "provider", "amount_minor", "currency", "day", "kind", "transfer_id")

    def __init__(self, *, reference: list, provider: list, amount_minor: list, currency: list, day: list,
                 kind: list, transfer_id: list):
        self.reference = reference
        self.provider = provider
        self.amount_minor = amount_minor
        self.currency = currency
        self.day = day
        self.kind = kind
        self.transfer_id = transfer_id

    def __len__(self) -> int:
        return len(self.reference)

    def row(self, i: int) -> LedgerLine:
        return LedgerLine(self.reference[i], self.provider[i], self.amount_minor[i], self.currency[i], self.day[i],
                          self.kind[i], self.transfer_id[i])

    def __iter__(self) -> Iterator[LedgerLine]:
        return map(self.row, range(len(self)))

    def __repr__(self) -> str:
        return f"<LedgerBatch {len(self)} lines>"

    @classmethod
    def from_lines(cls, lines: Iterable[LedgerLine]) -> "LedgerBatch":
        rows = list(lines)
        cols = [list(c) for c in zip(*rows)] if rows else [[] for _ in LedgerLine._fields]
        return cls(**dict(zip(LedgerLine._fields, cols)))

    def take(self, indices: Iterable[int] | None = None, mask: Iterable | None = None) -> "LedgerBatch":
        return LedgerBatch(**_take(self, LedgerLine._fields, indices, mask))

    @classmethod
    def concat(cls, batches: Sequence["LedgerBatch"]) -> "LedgerBatch":
        out = {name: [] for name in LedgerLine._fields}
        for b in batches:
            for name in LedgerLine._fields:
                out[name].extend(getattr(b, name))
        return cls(**out)

    def select(self, provider: str | None = None, day_range: tuple[date, date] | None = None) -> "LedgerBatch":
        """The lines of one provider and (inclusive) day range, without a Python loop per line."""
        mask = None
        if provider is not None and not all_equal(self.provider, provider):
            mask = map(provider.__eq__, self.provider)
        if day_range is not None:
            first, last = day_range
            in_range = map(and_, map(ge, self.day, repeat(first)), map(le, self.day, repeat(last)))
            mask = in_range if mask is None else map(and_, mask, in_range)
        return self if mask is None else self.take(mask=mask)


_COLS_P = ("line", "reference", "amount_minor", "currency", "day", "kind", "fee_minor", "raw_id", "status",
           "orig_minor", "orig_currency")


def _take(batch, names, indices, mask) -> dict:
    if mask is not None:
        mask = list(mask)
        pick = lambda col: list(compress(col, mask))  # noqa: E731
    else:
        idx = list(indices)
        pick = lambda col: list(map(col.__getitem__, idx))  # noqa: E731
    out = {}
    for name in names:
        col = getattr(batch, name)
        out[name] = None if col is None else pick(col)
    return out


def as_provider_batch(lines, source: str = "") -> ProviderBatch:
    return lines if isinstance(lines, ProviderBatch) else ProviderBatch.from_lines(lines, source)


def as_ledger_batch(lines) -> LedgerBatch:
    return lines if isinstance(lines, LedgerBatch) else LedgerBatch.from_lines(lines)


def all_equal(values: Sequence, value) -> bool:
    """``True`` if every element of ``values`` equals ``value`` (C speed)."""
    return not any(map(ne, values, repeat(value)))
