"""MTN MoMo disbursement statement (CSV).

Columns (header names case-insensitive, any order, extra columns ignored):

==========================  ============================================================
``financialTransactionId``  MTN's transaction id (``raw_id``); required when SUCCESSFUL
``externalId``              our payout id, sent as ``externalId`` (``reference``); required
``amount``                  positive, major units as on the wire (``"1500"`` RWF, ``"12.50"``)
``currency``                ISO 4217, upper case
``status``                  ``SUCCESSFUL`` (settled); ``FAILED``/``REJECTED``/``EXPIRED``/
                            ``TIMEOUT`` (failed: no money moved); ``PENDING``/``ONGOING``
``date``                    RFC 3339 / ISO 8601 date-time (UTC day taken) or date
==========================  ============================================================

Every line is a payout: ``kind`` ``payout``, amount negative (money left our float).
"""
from __future__ import annotations

from itertools import compress, repeat
from operator import eq

from chalicelib.recon.importers import make_batch
from chalicelib.recon.model import FAILED, PENDING, SETTLED, ProviderBatch
from chalicelib.recon.parsing import (
    BadLine, CsvFormat, collect, fast_amounts, fast_currencies, fast_instant_days, fast_required, parse_currency,
    parse_decimal, parse_instant_day, require,
)

SOURCE = "mtn_momo"
STATUSES = {
    "SUCCESSFUL": SETTLED,
    "FAILED": FAILED, "REJECTED": FAILED, "EXPIRED": FAILED, "TIMEOUT": FAILED,
    "PENDING": PENDING, "ONGOING": PENDING,
}
COLUMNS = {
    "raw_id": ("financialtransactionid",),
    "reference": ("externalid",),
    "amount": ("amount",),
    "currency": ("currency",),
    "status": ("status",),
    "date": ("date",),
}
OUTPUTS = ("reference", "amount_minor", "currency", "day", "raw_id", "status")


def _status(text: str | None) -> str:
    status = STATUSES.get((text or "").strip().upper())
    if status is None:
        raise BadLine(f"status {text!r} is not one of {', '.join(STATUSES)}")
    return status


def _slow(get: dict) -> tuple:
    errors: list[str] = []
    reference = collect(errors, require, get["reference"], "externalId")
    currency = collect(errors, parse_currency, get["currency"])
    amount = collect(errors, parse_decimal, get["amount"], currency) if currency else None
    if amount is not None and amount <= 0:
        errors.append(f"amount {get['amount']!r} must be positive")
    day = collect(errors, parse_instant_day, get["date"], "date")
    status = collect(errors, _status, get["status"])
    raw_id = get["raw_id"] or ""
    if status == SETTLED and not raw_id.strip():
        errors.append("financialTransactionId is empty on a SUCCESSFUL line")
    if errors:
        raise BadLine("; ".join(errors))
    return reference, -amount, currency, day, raw_id, status


def _fast(raw: dict, n: int) -> dict | None:
    if not fast_required(raw["reference"]):
        return None
    currencies = fast_currencies(raw["currency"])
    if currencies is None:
        return None
    currency, exp = currencies
    amounts = fast_amounts(raw["amount"], exp, positive=True, negate=True)
    if amounts is None:
        return None
    days = fast_instant_days(raw["date"])
    if days is None:
        return None
    mapping = {}
    for text in set(raw["status"]):
        mapping[text] = STATUSES.get(text.strip().upper())
        if mapping[text] is None:
            return None
    mapping_all_settled = set(mapping.values()) == {SETTLED}
    statuses = [SETTLED] * n if mapping_all_settled else list(map(mapping.__getitem__, raw["status"]))
    raw_ids = raw["raw_id"]
    settled_ids = raw_ids if mapping_all_settled else list(compress(raw_ids, map(eq, statuses, repeat(SETTLED))))
    if not fast_required(settled_ids):
        return None
    return {"reference": list(raw["reference"]), "amount_minor": amounts, "currency": currency, "day": days,
            "raw_id": list(raw_ids), "status": statuses}


FORMAT = CsvFormat(SOURCE, COLUMNS, set(), OUTPUTS, _fast, _slow)


def batch(lines, cols: dict) -> ProviderBatch:
    """The batch of the CSV format's output columns (``FORMAT.read`` or ``FORMAT.read_range``)."""
    return make_batch(SOURCE, lines, cols, kind="payout")


def parse(content: str | bytes) -> ProviderBatch:
    """Parse an MTN MoMo statement CSV; ``StatementError`` lists every malformed line."""
    return batch(*FORMAT.read(content))
