"""Reconcile a provider statement against the ledger: the service the API and the CLI call.

``reconcile_statement(source, content, ledger)`` parses the statement strictly,
asks the ``LedgerSource`` for the provider's lines of the statement's period
(widened by ``slack_days`` on both sides, so a payment booked just before
midnight and settled just after still matches), and runs the engine.

The Step Functions Distributed Map wiring is thin on top of the same pieces:
``parse_statement`` once, ``partition`` both sides by reference, ``reconcile_chunk``
per chunk (one Map iteration each; ``ChunkResult.to_dict`` is its output),
``combine`` in the step after the Map.
"""
from __future__ import annotations

import hashlib
from datetime import date, timedelta

from chalicelib.recon.engine import ChunkResult, Reconciliation, partition, reconcile, reconcile_chunk
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


def _inputs(source: str, content: str | bytes, ledger: LedgerSource, slack_days: int):
    if source not in SOURCES:
        raise StatementError(source, [(0, f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")])
    batch = parse_statement(source, content)
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
    batch, lines, period = _inputs(source, content, ledger, slack_days)
    return reconcile(batch, lines, source=source, reconciliation_id=reconciliation_id(source, content),
                     period=period, chunks=chunks)


def reconcile_statement_chunk(source: str, content: str | bytes, ledger: LedgerSource, *, chunk: int, chunks: int,
                              slack_days: int = DEFAULT_SLACK_DAYS) -> ChunkResult:
    """One Distributed Map iteration: chunk ``chunk`` of ``chunks`` of the statement, reconciled.

    ``combine([ChunkResult.from_dict(r) for r in outputs], source=source,
    reconciliation_id=reconciliation_id(source, content))`` after the Map gives the same
    ``Reconciliation`` as ``reconcile_statement``. (Each iteration parses the whole statement
    and keeps its share; a parent step that writes the partitions to S3 first would spare that.)
    """
    if not 0 <= chunk < chunks:
        raise ValueError(f"chunk {chunk} is not in 0..{chunks - 1}")
    batch, lines, period = _inputs(source, content, ledger, slack_days)
    return reconcile_chunk(partition(batch, chunks)[chunk], partition(lines, chunks)[chunk], period=period)
