"""The ledger side of a reconciliation: the ``LedgerSource`` port and its in-memory twin.

A source answers ``lines_for(provider, day_range=None)`` with ``LedgerLine``s of
posted transfers that touched that provider (voided or still-pending payouts are
not money that moved, so a source leaves them out). Its adapter decides, per
transfer code, the sign and the reference (see ``model``):

================  ======  ===============================================  ==========
code              sign    reference                                        provider
================  ======  ===============================================  ==========
``card_payment``  ``+``   the Stripe payment intent id                     ``stripe``
``card_refund``   ``-``   the payment intent id                            ``stripe``
``payout``        ``-``   the payout id sent as MTN ``externalId`` /       rail of the
                          M-Pesa ``OriginatorConversationID`` / Airtel     float account
                          ``transaction.id``
``float_topup``   ``+``   the bank reference (camt.053 ``EndToEndId``)     ``bank``
================  ======  ===============================================  ==========

A source may also offer ``batch_for(provider, day_range)`` returning a
``LedgerBatch`` (columns), which avoids one tuple per line for large ledgers;
``ledger_batch`` uses it when present.

Offline, finance can export the ledger lines as CSV (``read_ledger_csv``):
``transfer_id,provider,kind,reference,amount_minor,currency,day`` with
``amount_minor`` a signed integer of minor units and ``day`` ``YYYY-MM-DD``.
"""
from __future__ import annotations

import csv
import io
from datetime import date
from typing import Iterable, Protocol, runtime_checkable

from chalicelib.recon.model import LedgerBatch, LedgerLine
from chalicelib.recon.parsing import (
    BadLine, CsvFormat, collect, currency_exp, fast_amounts, fast_currencies, fast_instant_days, fast_required,
    parse_currency, parse_day, parse_minor, require,
)

DayRange = tuple[date, date]


@runtime_checkable
class LedgerSource(Protocol):
    """Port: the ledger lines of one provider, optionally within an inclusive day range."""

    def lines_for(self, provider: str, day_range: DayRange | None = None) -> Iterable[LedgerLine]:
        ...


class MemoryLedgerSource:
    """In-memory ``LedgerSource`` (tests, the CLI's ``--ledger`` CSV, the bench)."""

    def __init__(self, lines: Iterable[LedgerLine] | LedgerBatch = ()):
        self._batch = lines if isinstance(lines, LedgerBatch) else LedgerBatch.from_lines(lines)

    def add(self, *lines: LedgerLine) -> None:
        extra = LedgerBatch.from_lines(lines)
        for name in LedgerLine._fields:
            getattr(self._batch, name).extend(getattr(extra, name))

    def batch_for(self, provider: str, day_range: DayRange | None = None) -> LedgerBatch:
        return self._batch.select(provider, day_range)

    def lines_for(self, provider: str, day_range: DayRange | None = None) -> Iterable[LedgerLine]:
        return list(self.batch_for(provider, day_range))


def ledger_batch(source: LedgerSource, provider: str, day_range: DayRange | None = None) -> LedgerBatch:
    batch_for = getattr(source, "batch_for", None)
    if batch_for is not None:
        return batch_for(provider, day_range)
    return LedgerBatch.from_lines(source.lines_for(provider, day_range))


# -- the offline CSV export --------------------------------------------------------------------

COLUMNS = {
    "transfer_id": ("transfer_id",),
    "provider": ("provider",),
    "kind": ("kind", "code"),
    "reference": ("reference",),
    "amount_minor": ("amount_minor",),
    "currency": ("currency",),
    "day": ("day", "date"),
}
OUTPUTS = ("reference", "provider", "amount_minor", "currency", "day", "kind", "transfer_id")
SOURCE = "ledger_csv"


def _slow(get: dict) -> tuple:
    errors: list[str] = []
    transfer_id = collect(errors, require, get["transfer_id"], "transfer_id")
    provider = collect(errors, require, get["provider"], "provider")
    kind = collect(errors, require, get["kind"], "kind")
    reference = collect(errors, require, get["reference"], "reference")
    amount = collect(errors, parse_minor, get["amount_minor"], "amount_minor")
    currency = collect(errors, parse_currency, get["currency"])
    day = collect(errors, parse_day, (get["day"] or "").strip())
    if errors:
        raise BadLine("; ".join(errors))
    return reference, provider, amount, currency, day, kind, transfer_id


def _distinct(col) -> dict | None:
    """The distinct values of a repetitive column (provider, kind), each checked non-empty."""
    values = {v: v for v in set(col)}
    return None if not all(values) or any(map(str.isspace, values)) else values


def _fast(raw: dict, n: int) -> dict | None:
    references, transfer_ids = raw["reference"], raw["transfer_id"]
    same_ids = transfer_ids == references  # payouts: the transfer id is the reference
    if not fast_required(references) or not (same_ids or fast_required(transfer_ids)):
        return None
    providers, kinds = _distinct(raw["provider"]), _distinct(raw["kind"])
    if providers is None or kinds is None:
        return None
    currencies = fast_currencies(raw["currency"])
    amounts = fast_amounts(raw["amount_minor"], 0) if currencies is not None else None
    days = fast_instant_days(raw["day"], date_only=True) if amounts is not None else None
    if days is None:
        return None
    references = list(references)
    return {
        "reference": references, "amount_minor": amounts, "currency": currencies[0], "day": days,
        "provider": [next(iter(providers))] * n if len(providers) == 1 else list(map(providers.__getitem__,
                                                                                       raw["provider"])),
        "kind": [next(iter(kinds))] * n if len(kinds) == 1 else list(map(kinds.__getitem__, raw["kind"])),
        "transfer_id": references if same_ids else list(transfer_ids),  # shared strings: half the memory
    }


FORMAT = CsvFormat(SOURCE, COLUMNS, set(), OUTPUTS, _fast, _slow)


def read_ledger_csv(content: str | bytes) -> LedgerBatch:
    """Ledger lines from the offline CSV export; ``StatementError`` lists every bad line."""
    _lines, cols = FORMAT.read(content)
    return LedgerBatch(**cols)


def write_ledger_csv(lines: Iterable[LedgerLine]) -> str:
    """The offline CSV export of ledger lines (what ``read_ledger_csv`` reads)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["transfer_id", "provider", "kind", "reference", "amount_minor", "currency", "day"])
    for ln in lines:
        currency_exp(ln.currency)
        writer.writerow([ln.transfer_id, ln.provider, ln.kind, ln.reference, ln.amount_minor, ln.currency,
                         ln.day.isoformat()])
    return out.getvalue()
