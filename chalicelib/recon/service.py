"""Reconcile a provider statement against the ledger: the service the API and the CLI call.

``reconcile_statement(source, content, ledger)`` parses the statement strictly,
asks the ``LedgerSource`` for the provider's lines of the statement's period
(widened by ``slack_days`` on both sides, so a payment booked just before
midnight and settled just after still matches), and runs the engine.

Every path starts from ``inputs.statement_inputs`` (the statement, the ledger lines of its
period, the period): this one, ``parallel``/``columnar`` for large files in one process,
and ``distributed`` (plan, ``reconcile_chunk`` per Map iteration, ``combine``) in AWS.
"""
from __future__ import annotations

from chalicelib.recon.engine import Reconciliation, reconcile
from chalicelib.recon.inputs import DEFAULT_SLACK_DAYS, reconciliation_id, statement_inputs
from chalicelib.recon.ledger_source import LedgerSource
from chalicelib.recon.model import SOURCES


def reconcile_statement(source: str, content: str | bytes, ledger: LedgerSource, *, chunks: int = 1,
                        slack_days: int = DEFAULT_SLACK_DAYS, workers: int | None = None,
                        period: tuple | None = None) -> Reconciliation:
    """Parse ``content`` as a ``source`` statement and reconcile it against ``ledger``.

    Raises ``StatementError`` (a ``ValidationError``, HTTP 400) listing every malformed
    line; nothing is reconciled then.

    ``workers``: processes to use (``parallel.reconcile_parallel``; default: the machine's
    cores, 1 in Lambda). Statements below ``parallel.MIN_PARALLEL_BYTES`` and non-CSV
    statements run in this process; a large CSV statement runs on the columnar engine
    where Polars is installed (``columnar``). The result is the same either way.

    ``columnar`` and ``parallel`` are imported here, not at module load: they are plain Python
    (Polars and ``multiprocessing`` are imported only once they run), and in Lambda both
    decline (no Polars in the package, one worker), so the statement is reconciled below.

    ``period``: the ``(first, last)`` day the caller declares the statement covers
    (``inputs.statement_inputs``); it is part of the id. A statement with one is reconciled
    here, on the engine: the fast paths take the period from the statement's own lines.
    """
    from chalicelib.recon import columnar, parallel

    if period is None and chunks == 1 and source in SOURCES and (
            columnar.wanted(source, content) or parallel.worth_forking(source, content, workers)):
        return parallel.reconcile_parallel(source, content, ledger, workers=workers, slack_days=slack_days,
                                           reconciliation_id=reconciliation_id(source, content))
    declared = period
    batch, lines, period = statement_inputs(source, content, ledger, slack_days, period=declared)
    return reconcile(batch, lines, source=source, reconciliation_id=reconciliation_id(source, content, declared),
                     period=period, chunks=chunks)
