"""A mobile-money payout statement CSV: one payout from our float a line (MTN MoMo, Airtel Money).

The rules the formats share; each importer says which header names it reads, its status
vocabulary, and how its columns are named in error messages:

- ``reference`` (our payout id, as the provider echoes it) is required;
- ``amount`` is positive, in major units as on the wire, exact to the currency's ISO 4217
  exponent (``Money.parse``), and becomes negative minor units (money left our float);
- ``currency`` is an ISO 4217 code, as written (upper case);
- ``status`` is one of the vocabulary's codes (case-insensitive): ``SETTLED``, ``FAILED``
  (no money moved: counted, not matched) or ``PENDING``;
- ``date`` is an ISO 8601 date or date-time; its UTC day is the line's day;
- ``raw_id`` (the provider's transaction id) is required on a settled line.

Every line is ``kind`` ``payout``. A malformed line is never dropped: ``StatementError``
lists every bad line with its number and the reasons.
"""
from __future__ import annotations

from itertools import compress, repeat
from operator import eq

from chalicelib.recon.importers.shared import make_batch
from chalicelib.recon.model import SETTLED, ProviderBatch
from chalicelib.recon.parsing import (
    BadLine, CsvFormat, collect, fast_amounts, fast_currencies, fast_instant_days, fast_required, parse_currency,
    parse_decimal, parse_instant_day, require,
)

#: The canonical columns every payout format maps its header names to.
CANONICAL = ("raw_id", "reference", "amount", "currency", "status", "date")
OUTPUTS = ("reference", "amount_minor", "currency", "day", "raw_id", "status")


class PayoutCsv:
    """One provider's payout statement format (module doc).

    ``columns``: each canonical column and the header names accepted for it (lower case);
    ``statuses``: the provider's status codes (upper case) and ``SETTLED``/``FAILED``/``PENDING``;
    ``reference_label``, ``raw_id_label``, ``date_label``: the columns as error messages name
    them; ``settled_label``: the provider's code for a settled line, as error messages say it.
    """

    def __init__(self, source: str, columns: dict[str, tuple[str, ...]], statuses: dict[str, str], *,
                 reference_label: str, raw_id_label: str, date_label: str, settled_label: str):
        if set(columns) != set(CANONICAL):
            raise ValueError(f"a payout format maps exactly {CANONICAL}, not {sorted(columns)}")
        self.source = source
        self.statuses = statuses
        self.reference_label, self.raw_id_label = reference_label, raw_id_label
        self.date_label, self.settled_label = date_label, settled_label
        self.format = CsvFormat(source, columns, set(), OUTPUTS, self.fast, self.slow)

    def status_of(self, text: str | None) -> str:
        """``SETTLED``/``FAILED``/``PENDING`` of a status text (``BadLine``: not in the vocabulary)."""
        status = self.statuses.get((text or "").strip().upper())
        if status is None:
            raise BadLine(f"status {text!r} is not one of {', '.join(self.statuses)}")
        return status

    def slow(self, get: dict) -> tuple:
        """One row, by the exact rules (``CsvFormat``'s slow path); ``BadLine`` says every reason."""
        errors: list[str] = []
        reference = collect(errors, require, get["reference"], self.reference_label)
        currency = collect(errors, parse_currency, get["currency"])
        amount = collect(errors, parse_decimal, get["amount"], currency) if currency else None
        if amount is not None and amount <= 0:
            errors.append(f"amount {get['amount']!r} must be positive")
        day = collect(errors, parse_instant_day, get["date"], self.date_label)
        status = collect(errors, self.status_of, get["status"])
        raw_id = get["raw_id"] or ""
        if status == SETTLED and not raw_id.strip():
            errors.append(f"{self.raw_id_label} is empty on a {self.settled_label} line")
        if errors:
            raise BadLine("; ".join(errors))
        return reference, -amount, currency, day, raw_id, status

    def fast(self, raw: dict, n: int) -> dict | None:
        """A block of rows column by column, or ``None`` (the slow path decides)."""
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
            mapping[text] = self.statuses.get(text.strip().upper())
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

    def batch(self, lines, cols: dict) -> ProviderBatch:
        """The batch of the CSV format's output columns (``format.read`` or ``format.read_range``)."""
        return make_batch(self.source, lines, cols, kind="payout")

    def parse(self, content: str | bytes) -> ProviderBatch:
        """Parse a statement; ``StatementError`` lists every malformed line."""
        return self.batch(*self.format.read(content))
