"""What every reconciliation starts from: the statement, the ledger lines of its period, its id.

One place for the inputs, whichever path then reconciles them: ``service.reconcile_statement``
(in one process), ``parallel``/``columnar`` (large files on one machine) and ``distributed``
(the plan of the Step Functions Distributed Map in AWS). Each asks here for

- ``reconciliation_id``: the id derived from the source and the exact statement bytes;
- ``read_statement``: the statement parsed strictly (every bad line listed);
- ``statement_period``: its first and last day;
- ``widen``: that period widened by the slack days (``DEFAULT_SLACK_DAYS``) on both sides;
- ``statement_inputs``: all three together with the ledger lines of the widened period.
"""
from __future__ import annotations

import hashlib
from datetime import date, timedelta

from chalicelib.recon.importers import parse_statement
from chalicelib.recon.ledger_source import LedgerSource, ledger_batch
from chalicelib.recon.model import SOURCES, LedgerBatch, ProviderBatch, StatementError

#: Days the ledger is read beyond the statement's period on both sides, so that a payment booked
#: just before midnight and settled just after still matches.
DEFAULT_SLACK_DAYS = 2


def reconciliation_id(source: str, content: str | bytes) -> str:
    """``rec_`` + 24 hex of SHA-256 over the source and the exact statement bytes.

    The same file reconciled again gets the same id (the API's natural idempotency
    key; with an unchanged ledger it also gets the same result)."""
    data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    return "rec_" + hashlib.sha256(source.encode() + b"\n" + data).hexdigest()[:24]


def widen(period: tuple[date, date], slack_days: int) -> tuple[date, date]:
    """``period`` widened by ``slack_days`` on both sides, within the calendar (a statement
    dated 9999-12-31 is odd, not a crash)."""
    first = period[0] - timedelta(days=min(slack_days, (period[0] - date.min).days))
    last = period[1] + timedelta(days=min(slack_days, (date.max - period[1]).days))
    return first, last


def statement_period(batch: ProviderBatch) -> tuple[date, date] | None:
    """First and last day of the statement's lines (``None`` for an empty statement)."""
    days = [d for d in batch.day if d is not None] if None in batch.day else batch.day
    return (min(days), max(days)) if days else None


def read_statement(source: str, content: str | bytes) -> ProviderBatch:
    """``content`` parsed strictly as a ``source`` statement (``StatementError`` lists every bad line)."""
    if source not in SOURCES:
        raise StatementError(source, [(0, f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")])
    return parse_statement(source, content)


def statement_inputs(source: str, content: str | bytes, ledger: LedgerSource, slack_days: int,
                     batch: ProviderBatch | None = None) -> tuple[ProviderBatch, LedgerBatch, tuple | None]:
    """The statement (``batch``: already parsed), the ledger lines of its period widened by
    ``slack_days`` on both sides, and the period: what every reconciliation path starts from."""
    batch = read_statement(source, content) if batch is None else batch
    period = statement_period(batch)
    if period is None:  # an empty statement covers no day: nothing of the ledger is in question
        lines = LedgerBatch.from_lines(())
    else:
        lines = ledger_batch(ledger, SOURCES[source], widen(period, slack_days))
    return batch, lines, period
