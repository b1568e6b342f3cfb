"""A mobile-money collection account's statement (CSV): buyers' payments in, their refunds out.

The rules the collection formats share (``momo_collection``, ``mpesa_c2b``); each importer maps its
header names to the canonical columns and says, per row, which kind it is:

- ``reference`` (the order's collection reference, as the provider echoes it) is required;
- a payment is ``collection`` (``+``: money arrived in our collection account), a refund or reversal
  ``collection_refund`` (``-``), in minor units exact to the currency's exponent;
- ``status``: settled lines take part in matching; failed and pending ones are counted, not matched;
- the UTC day of ``date``; ``raw_id`` (the provider's transaction id) is required on a settled line.

A malformed line is never dropped: ``StatementError`` lists every bad line with its number.
"""
from __future__ import annotations

import csv
import io
from typing import Callable

from chalicelib.recon.importers.shared import make_batch
from chalicelib.recon.model import SETTLED, ProviderBatch
from chalicelib.recon.parsing import BadLine, Errors, parse_currency, parse_decimal, parse_instant_day, text_of

OUTPUTS = ("reference", "amount_minor", "currency", "day", "kind", "raw_id", "status")

#: (row as {canonical: text}) -> (kind, sign, status) of the line; ``BadLine`` if it cannot tell.
Classify = Callable[[dict], tuple[str, int, str]]


def parse(source: str, content: str | bytes, columns: dict[str, tuple[str, ...]], classify: Classify,
          amount_of: Callable[[dict], str], currency_of: Callable[[dict], str]) -> ProviderBatch:
    """Parse a collection statement of ``source`` (``columns``: canonical -> accepted header names, lower case)."""
    text = text_of(source, content)
    reader = csv.reader(io.StringIO(text))
    errors = Errors(source)
    header = next(reader, None)
    if header is None:
        errors.add(0, "the statement is empty")
        errors.raise_if_any()
    names = {h.strip().lower(): i for i, h in enumerate(header)}
    where = {}
    for canonical, accepted in columns.items():
        found = next((names[a] for a in accepted if a in names), None)
        if found is None:
            errors.add(1, f"no {accepted[0]!r} column")
        where[canonical] = found
    errors.raise_if_any()
    cols = {name: [] for name in OUTPUTS}
    lines: list[int] = []
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        get = {k: (row[i].strip() if i is not None and i < len(row) else "") for k, i in where.items()}
        try:
            kind, sign, status = classify(get)
            if not get["reference"]:
                raise BadLine("the reference is empty")
            currency = parse_currency(currency_of(get))
            amount = parse_decimal(amount_of(get), currency)
            if amount <= 0:
                raise BadLine(f"amount {amount_of(get)!r} must be positive")
            day = parse_instant_day(get["date"])
            if status == SETTLED and not get["raw_id"]:
                raise BadLine("the provider's transaction id is empty on a settled line")
        except BadLine as e:
            errors.add(number, str(e))
            continue
        for name, value in zip(OUTPUTS, (get["reference"], sign * amount, currency, day, kind, get["raw_id"], status)):
            cols[name].append(value)
        lines.append(number)
    errors.raise_if_any()
    return make_batch(source, lines, cols)
