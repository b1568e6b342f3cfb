"""What every reconciliation starts from: the statement, the ledger lines of its period, its id.

One place for the inputs, whichever path then reconciles them: ``service.reconcile_statement``
(in one process), ``parallel``/``columnar`` (large files on one machine) and ``distributed``
(the plan of the Step Functions Distributed Map in AWS). Each asks here for

- ``reconciliation_id``: the id derived from the source and the exact statement bytes;
- ``read_statement``: the statement parsed strictly (every bad line listed);
- ``statement_period``: its first and last day (``declared_period``: the period a caller
  declares instead, which the statement's lines must lie within: an empty statement then
  still says which days it covers, and the ledger's movements of those days are breaks);
- ``widen``: that period widened by the slack days (``DEFAULT_SLACK_DAYS``) on both sides;
- ``statement_inputs``: all three together with the ledger lines of the widened period.
"""
from __future__ import annotations

import hashlib
from datetime import date, timedelta

from chalicelib.recon.importers import parse_statement
from chalicelib.recon.ledger_source import LedgerSource, ledger_batch
from chalicelib.recon.model import SOURCES, LedgerBatch, ProviderBatch, StatementError, declared_period

#: Days the ledger is read beyond the statement's period on both sides, so that a payment booked
#: just before midnight and settled just after still matches.
DEFAULT_SLACK_DAYS = 2


Period = tuple[date, date]


def reconciliation_id(source: str, content: str | bytes, period: Period | None = None) -> str:
    """``rec_`` + 24 hex of SHA-256 over the source, the exact statement bytes and, when one is
    declared, the period (two empty statements of different days are two reconciliations).

    The same file reconciled again gets the same id (the API's natural idempotency
    key; with an unchanged ledger it also gets the same result). Without a declared
    period the id is what it always was."""
    data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    if period is not None:
        data += f"\nperiod {period[0].isoformat()}/{period[1].isoformat()}".encode()
    return "rec_" + hashlib.sha256(source.encode() + b"\n" + data).hexdigest()[:24]


def period_json(period: Period | None) -> list[str] | None:
    return None if period is None else [period[0].isoformat(), period[1].isoformat()]


def period_from_json(value) -> Period | None:
    return None if value is None else declared_period(value[0], value[1])


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


def require_within(batch: ProviderBatch, period: Period) -> None:
    """``StatementError`` (400) listing every line of ``batch`` dated outside the declared ``period``."""
    first, last = period
    outside = [(line, f"dated {day.isoformat()}, outside the declared period {first}..{last}")
               for line, day in zip(batch.line, batch.day) if day is not None and not first <= day <= last]
    if outside:
        raise StatementError(batch.source, outside)


def statement_inputs(source: str, content: str | bytes, ledger: LedgerSource, slack_days: int,
                     batch: ProviderBatch | None = None,
                     period: Period | None = None) -> tuple[ProviderBatch, LedgerBatch, tuple | None]:
    """The statement (``batch``: already parsed), the ledger lines of its period widened by
    ``slack_days`` on both sides, and the period: what every reconciliation path starts from.

    ``period``: the period the caller declares; the statement's lines must lie within it, and it
    is the period (an empty statement with one covers those days: the ledger's lines in it are
    ``missing_at_provider``). Without one, the statement's own first and last day."""
    batch = read_statement(source, content) if batch is None else batch
    if period is not None:
        require_within(batch, period)
    else:
        period = statement_period(batch)
    if period is None:  # an empty statement covers no day: nothing of the ledger is in question
        lines = LedgerBatch.from_lines(())
    else:
        lines = ledger_batch(ledger, SOURCES[source], widen(period, slack_days))
    return batch, lines, period
