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


def statement_period(batch: ProviderBatch) -> tuple[date, date] | None:
    """First and last day of the statement's lines (``None`` for an empty statement)."""
    days = [d for d in batch.day if d is not None] if None in batch.day else batch.day
    return (min(days), max(days)) if days else None


def reconcile_statement(source: str, content: str | bytes, ledger: LedgerSource, *, chunks: int = 1,
                        slack_days: int = DEFAULT_SLACK_DAYS) -> Reconciliation:
    """Parse ``content`` as a ``source`` statement and reconcile it against ``ledger``.

    Raises ``StatementError`` (a ``ValidationError``, HTTP 400) listing every malformed
    line; nothing is reconciled then.
    """
    if source not in SOURCES:
        raise StatementError(source, [(0, f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")])
    batch = parse_statement(source, content)
    period = statement_period(batch)
    if period is None:  # an empty statement covers no day: nothing of the ledger is in question
        lines = LedgerBatch.from_lines(())
    else:
        slack = timedelta(days=slack_days)
        lines = ledger_batch(ledger, SOURCES[source], (period[0] - slack, period[1] + slack))
    return reconcile(batch, lines, source=source, reconciliation_id=reconciliation_id(source, content),
                     period=period, chunks=chunks)
