"""Reconcile a provider statement against the ledger: the service the API and the CLI call.

``reconcile_statement(source, content, ledger)`` parses the statement strictly,
asks the ``LedgerSource`` for the provider's lines of the statement's period
(widened by ``slack_days`` on both sides, so a payment booked just before
midnight and settled just after still matches), and runs the engine.

Every path starts from ``statement_inputs`` (the statement, the ledger lines of its
period, the period): this one, ``parallel``/``columnar`` for large files in one process,
and ``distributed`` (plan, ``reconcile_chunk`` per Map iteration, ``combine``) in AWS.
"""
from __future__ import annotations

import hashlib
from datetime import date, timedelta

from chalicelib.recon.engine import Reconciliation, reconcile
from chalicelib.recon.importers import parse_statement
from chalicelib.recon.ledger_source import LedgerSource, ledger_batch
from chalicelib.recon.model import SOURCES, LedgerBatch, ProviderBatch, StatementError

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


def reconcile_statement(source: str, content: str | bytes, ledger: LedgerSource, *, chunks: int = 1,
                        slack_days: int = DEFAULT_SLACK_DAYS, workers: int | None = None) -> Reconciliation:
    """Parse ``content`` as a ``source`` statement and reconcile it against ``ledger``.

    Raises ``StatementError`` (a ``ValidationError``, HTTP 400) listing every malformed
    line; nothing is reconciled then.

    ``workers``: processes to use (``parallel.reconcile_parallel``; default: the machine's
    cores, 1 in Lambda). Statements below ``parallel.MIN_PARALLEL_BYTES`` and non-CSV
    statements run in this process; a large CSV statement runs on the columnar engine
    where Polars is installed (``columnar``). The result is the same either way.
    """
    from chalicelib.recon import columnar, parallel

    if chunks == 1 and source in SOURCES and (columnar.wanted(source, content)
                                              or parallel.worth_forking(source, content, workers)):
        return parallel.reconcile_parallel(source, content, ledger, workers=workers, slack_days=slack_days,
                                           reconciliation_id=reconciliation_id(source, content))
    batch, lines, period = statement_inputs(source, content, ledger, slack_days)
    return reconcile(batch, lines, source=source, reconciliation_id=reconciliation_id(source, content),
                     period=period, chunks=chunks)
