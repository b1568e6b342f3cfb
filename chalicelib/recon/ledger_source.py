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
                          M-Pesa ``OriginatorConversationID``              float account
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
from itertools import repeat
from typing import Iterable, Protocol, runtime_checkable

from chalicelib.recon.model import LedgerBatch, LedgerLine, all_equal
from chalicelib.recon.parsing import (
    BadLine, CsvFormat, collect, currency_exp, fast_currencies, fast_required, parse_currency, parse_day,
    parse_minor, require,
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


def _fast(raw: dict, n: int) -> dict | None:
    for name in ("transfer_id", "provider", "kind", "reference"):
        if not fast_required(raw[name]):
            return None
    currencies = fast_currencies(raw["currency"])
    if currencies is None:
        return None
    amounts = raw["amount_minor"]
    if not all(map(str.isascii, amounts)) or not all(map(str.isdigit, map(str.removeprefix, amounts, repeat("-")))):
        return None
    if max(map(len, amounts)) > 17:
        return None
    days_raw = raw["day"]
    days = {}
    for text in set(days_raw):
        try:
            days[text] = parse_day(text)
        except BadLine:
            return None
    values = list(map(int, amounts))
    if max(map(abs, values)) > 10**15:
        return None
    interned = {}
    providers = raw["provider"]
    if all_equal(providers, providers[0]):
        provider_col = [providers[0]] * n
    else:
        provider_col = [interned.setdefault(p, p) for p in providers]
    kinds = raw["kind"]
    kind_col = [kinds[0]] * n if all_equal(kinds, kinds[0]) else [interned.setdefault(k, k) for k in kinds]
    return {"reference": list(raw["reference"]), "provider": provider_col, "amount_minor": values,
            "currency": currencies[0], "day": list(map(days.__getitem__, days_raw)), "kind": kind_col,
            "transfer_id": list(raw["transfer_id"])}


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
