"""Large statements: a reconciliation as a Step Functions Distributed Map over chunks in S3.

The same per-chunk code runs in AWS and locally; only who calls it differs.

``plan``         parse the statement once, read the ledger lines of its period, partition both
                 sides by reference (``engine.partition``: a reference's lines, a split payout's
                 parts included, land in one chunk), write every chunk and the manifest; return
                 where the manifest is. In AWS this is the state machine's first step, a Lambda
                 with minutes to spare (``plan_stored``): the API only checks the statement
                 (a malformed one is a synchronous 400), keeps it in S3 and starts the execution.
``run_chunk``    one Map item (a Lambda in AWS): read a chunk, ``reconcile_chunk``, write the
                 ``ChunkResult``.
``finish``       after the Map: read every chunk result, ``combine``, store the reconciliation
                 exactly where ``Reconciliations`` keeps it (``stored``: GET and breaks.csv read it unchanged).
``run_locally``  plan, every chunk, finish, in one process.

Objects (the statements bucket; ``archive`` is an ``S3Archive`` or a ``MemoryArchive``)::

    reconciliations/<id>/manifest.json     [{"reconciliation_id", "chunk_key", "result_key"}, ...]
                                           (the Map's ItemReader reads it)
    reconciliations/<id>/chunks/<n>.json   chunk n: the statement's and the ledger's columns
    reconciliations/<id>/results/<n>.json  ``ChunkResult.to_dict()`` of chunk n
    reconciliations/<id>/status.json       {"status": "running" | "failed" | "finished", ...}
    reconciliations/<id>.json              ``Reconciliation.to_dict()``, as for a small statement

Chunks hold columns, not row objects: amounts are JSON integers of minor units (never
floats; reading refuses anything else), days ISO dates. ``LargeStatements`` decides per
statement: fewer than ``min_lines`` lines is the caller's in-process path; more runs the
state machine when one is configured, else ``run_locally``.
"""
from __future__ import annotations

import json
import math
import time
from datetime import date
from typing import Callable, Iterable

from chalicelib.errors import InvalidState
from chalicelib.recon.engine import ChunkResult, Reconciliation, combine, partition, reconcile_chunk
from chalicelib.recon.inputs import (
    DEFAULT_SLACK_DAYS,
    period_from_json,
    period_json,
    read_statement,
    reconciliation_id,
    require_within,
    statement_inputs,
)
from chalicelib.recon.ledger_source import LedgerSource
from chalicelib.recon.model import LedgerBatch, LedgerLine, ProviderBatch
from chalicelib.recon.stored import count_breaks, save_reconciliation, statement_key

FORMAT = 1  # version of the chunk document
DEFAULT_MIN_LINES = 200_000  # statements with fewer lines are reconciled in process
DEFAULT_CHUNK_LINES = 50_000  # statement lines per chunk (one Lambda each)
#: The Map's output (one ``{"result_key"}`` per chunk) must stay under Step Functions' 256 KiB.
MAX_CHUNKS = 1000
#: ``infra/reconcile.asl.json``'s TimeoutSeconds: a "running" mark older than this (plus a
#: margin) belongs to an execution that timed out or was stopped, so it may start again.
EXECUTION_TIMEOUT_SECONDS = 3 * 3600
_STALE_AFTER_SECONDS = EXECUTION_TIMEOUT_SECONDS + 600

RUNNING, FAILED, FINISHED = "running", "failed", "finished"

_PROVIDER_COLUMNS = ("line", "reference", "amount_minor", "currency", "day", "kind", "raw_id")
_PROVIDER_OPTIONAL = ("fee_minor", "status", "orig_minor", "orig_currency")  # None: the whole batch has none
_INT_COLUMNS = {"line", "amount_minor", "fee_minor", "orig_minor"}


class ChunkMissing(Exception):
    """A chunk, a chunk result or the manifest is not where the plan put it."""


class IncompleteResults(Exception):
    """``finish`` was handed result keys that are not exactly the manifest's: a chunk would be lost."""


# -- keys ----------------------------------------------------------------------------------------

def manifest_key(rec_id: str) -> str:
    return f"reconciliations/{rec_id}/manifest.json"


def chunk_key(rec_id: str, n: int) -> str:
    return f"reconciliations/{rec_id}/chunks/{n}.json"


def result_key(rec_id: str, n: int) -> str:
    return f"reconciliations/{rec_id}/results/{n}.json"


def status_key(rec_id: str) -> str:
    return f"reconciliations/{rec_id}/status.json"


def chunks_for(lines: int, chunk_lines: int = DEFAULT_CHUNK_LINES) -> int:
    """How many chunks for a statement of ``lines`` lines (at least 1, at most ``MAX_CHUNKS``)."""
    return max(1, min(MAX_CHUNKS, math.ceil(lines / max(1, chunk_lines))))


# -- the three steps -----------------------------------------------------------------------------

def plan(archive, source: str, content: str | bytes, ledger_source: LedgerSource, chunks: int, *,
         statement: ProviderBatch | None = None, slack_days: int = DEFAULT_SLACK_DAYS,
         period: tuple | None = None) -> dict:
    """Write the chunks and the manifest of ``content``; return the state machine's input.

    ``statement``: ``content`` already parsed (``inputs.read_statement``), to spare a second parse.
    The ledger lines are those ``reconcile_statement`` would use: the provider's lines of the
    statement's period (``period``, when the caller declared one) widened by ``slack_days`` on both sides.
    """
    if not 1 <= chunks <= MAX_CHUNKS:
        raise ValueError(f"chunks must be in 1..{MAX_CHUNKS}, not {chunks}")
    declared = period
    batch, ledger, period = statement_inputs(source, content, ledger_source, slack_days, batch=statement,
                                             period=declared)
    rec_id = reconciliation_id(source, content, declared)
    manifest = []
    for n, (p, l) in enumerate(zip(partition(batch, chunks), partition(ledger, chunks))):
        _put_json(archive, chunk_key(rec_id, n), {
            "format": FORMAT,
            "reconciliation_id": rec_id,
            "source": source,
            "chunk": n,
            "chunks": chunks,
            "period": period_json(period),
            "statement": statement_to_json(p),
            "ledger": ledger_to_json(l),
        })
        manifest.append({"reconciliation_id": rec_id, "chunk_key": chunk_key(rec_id, n),
                         "result_key": result_key(rec_id, n)})
    _put_json(archive, manifest_key(rec_id), manifest)
    return {
        "reconciliation_id": rec_id,
        "source": source,
        "manifest_key": manifest_key(rec_id),
        "chunks": chunks,
        "lines": len(batch),
        "ledger_lines": len(ledger),
    }


def plan_stored(archive, ledger_source: LedgerSource, event: dict) -> dict:
    """The state machine's ``Plan`` step: ``plan`` the statement the API kept in S3.

    ``event``: the execution input ``{reconciliation_id, source, statement_key, chunks}`` (and
    ``period``, ``["YYYY-MM-DD", "YYYY-MM-DD"]``, when the caller declared one). The statement
    must still be the one the id was derived from (the key is its content hash)."""
    data = archive.get(event["statement_key"])
    if data is None:
        raise ChunkMissing(f"no statement at {event['statement_key']}")
    content = data.decode("utf-8")
    period = period_from_json(event.get("period"))
    if reconciliation_id(event["source"], content, period) != event["reconciliation_id"]:
        raise ValueError(f"{event['statement_key']} is not the statement of {event['reconciliation_id']}")
    return plan(archive, event["source"], content, ledger_source, int(event["chunks"]), period=period)


def run_chunk(archive, item: dict) -> dict:
    """One Map item ``{"reconciliation_id", "chunk_key", "result_key"}``: reconcile, store the result."""
    doc = _get_json(archive, item["chunk_key"])
    if doc.get("format") != FORMAT:
        raise ValueError(f"{item['chunk_key']}: chunk format {doc.get('format')!r}, expected {FORMAT}")
    period = None if doc["period"] is None else tuple(map(date.fromisoformat, doc["period"]))
    result = reconcile_chunk(statement_from_json(doc["statement"]), ledger_from_json(doc["ledger"]), period=period)
    _put_json(archive, item["result_key"], result.to_dict())
    return {"result_key": item["result_key"]}


def finish(archive, reconciliation_id: str, source: str, result_keys: Iterable[str]) -> Reconciliation:
    """Combine the chunk results into the reconciliation and store it (``reconciliations/<id>.json``).

    The keys must be exactly the manifest's result keys (when the manifest is there): a result
    left out would silently drop its lines from the totals.
    """
    keys = list(result_keys)
    manifest = archive.get(manifest_key(reconciliation_id))
    if manifest is not None:
        expected = {item["result_key"] for item in json.loads(manifest)}
        if set(keys) != expected or len(keys) != len(expected):
            raise IncompleteResults(
                f"{reconciliation_id}: {len(keys)} result keys for {len(expected)} chunks "
                f"(missing {sorted(expected - set(keys))[:5]}, unexpected {sorted(set(keys) - expected)[:5]})")
    results = [ChunkResult.from_dict(_get_json(archive, key)) for key in keys]
    rec = combine(results, source=source, reconciliation_id=reconciliation_id)
    save_reconciliation(archive, rec)
    count_breaks(rec)
    mark(archive, reconciliation_id, FINISHED, source=source)
    return rec


def run_locally(archive, source: str, content: str | bytes, ledger_source: LedgerSource, chunks: int, *,
                statement: ProviderBatch | None = None, period: tuple | None = None) -> Reconciliation:
    """``plan``, ``run_chunk`` for every manifest item, ``finish``: the Distributed Map in one process."""
    execution = plan(archive, source, content, ledger_source, chunks, statement=statement, period=period)
    items = _get_json(archive, execution["manifest_key"])
    keys = [run_chunk(archive, item)["result_key"] for item in items]
    return finish(archive, execution["reconciliation_id"], source, keys)


# -- status of a reconciliation that runs in the state machine -----------------------------------

def mark(archive, rec_id: str, status: str, **detail) -> dict:
    """Set the status, keeping what the earlier mark knew (the attempt number, the size)."""
    doc = {k: v for k, v in (status_of(archive, rec_id) or {}).items() if k != "error"}
    doc.update(detail, reconciliation_id=rec_id, status=status)
    _put_json(archive, status_key(rec_id), doc)
    return doc


def mark_failed(archive, rec_id: str, error: dict | None, source: str = "") -> dict:
    """The state machine's Catch: keep why it failed (``Error``/``Cause`` of the failed state)."""
    error = error or {}
    cause = str(error.get("Cause") or "")
    return mark(archive, rec_id, FAILED, source=source,
                error={"code": "reconciliation_failed", "message": f"{error.get('Error') or 'failed'}: {cause[:2000]}"})


def status_of(archive, rec_id: str) -> dict | None:
    data = archive.get(status_key(rec_id)) if rec_id.startswith("rec_") else None
    return None if data is None else json.loads(data)


def status_document(status: dict) -> dict:
    """What GET answers while the state machine runs, or after it failed."""
    doc = {"reconciliation_id": status["reconciliation_id"], "source": status.get("source", ""),
           "status": status["status"]}
    for key in ("lines", "chunks", "error"):
        if key in status:
            doc[key] = status[key]
    return doc


class LargeStatements:
    """Statements of at least ``min_lines`` lines: the state machine, or ``run_locally`` without one.

    ``workflow``: a ``start(name, payload)`` port (``StepFunctionsWorkflow`` of the reconcile
    state machine; ``None`` in the local stage). The execution is named after the
    reconciliation (``<id>``, then ``<id>-2``... when the same statement is reconciled again:
    Step Functions keeps a name for 90 days). A second submit while one runs starts nothing.
    """

    def __init__(self, archive, ledger_source: LedgerSource, workflow=None, *, min_lines: int = DEFAULT_MIN_LINES,
                 chunk_lines: int = DEFAULT_CHUNK_LINES, clock: Callable[[], float] = time.time):
        self.archive = archive
        self.ledger_source = ledger_source
        self.workflow = workflow
        self.min_lines = min_lines
        self.chunk_lines = chunk_lines
        self.clock = clock

    def submit(self, source: str, content: str, page_size: int = 100, key: str | None = None,
               period: tuple | None = None) -> dict | None:
        """The reply for a large statement; ``None`` when it is small (the caller reconciles it).

        ``key``: where the statement already is in the archive (else it is stored here);
        ``period``: the period the caller declared (``inputs.statement_inputs``)."""
        if _fewer_lines_than(content, self.min_lines):
            return None
        statement = read_statement(source, content)
        if len(statement) < self.min_lines:
            return None
        chunks = chunks_for(len(statement), self.chunk_lines)
        if self.workflow is None:
            rec = run_locally(self.archive, source, content, self.ledger_source, chunks, statement=statement,
                              period=period)
            return rec.to_json(1, page_size)
        if period is not None:
            require_within(statement, period)  # a synchronous 400, as for a malformed line
        rec_id = reconciliation_id(source, content, period)
        current = status_of(self.archive, rec_id)
        if current and current["status"] == RUNNING and self.clock() - current.get("started_at", 0) < _STALE_AFTER_SECONDS:
            return status_document(current)
        attempt = (current or {}).get("attempt", 0) + 1
        if key is None:
            key = statement_key(source, content)
            self.archive.put(key, content.encode(), "text/plain")
        execution_input = {"reconciliation_id": rec_id, "source": source, "statement_key": key, "chunks": chunks,
                           "lines": len(statement)}
        if period is not None:
            execution_input["period"] = period_json(period)
        name = rec_id if attempt == 1 else f"{rec_id}-{attempt}"
        running = mark(self.archive, rec_id, RUNNING, source=source, lines=len(statement), chunks=chunks,
                       attempt=attempt, execution=name, started_at=int(self.clock()))
        try:
            self.workflow.start(name, execution_input)  # already started under this name: nothing to do
        except Exception as error:
            mark_failed(self.archive, rec_id, {"Error": type(error).__name__, "Cause": str(error)}, source)
            raise
        return status_document(running)


def unfinished(archive, rec_id: str) -> dict | None:
    """The status document if ``rec_id`` runs in (or failed in) the state machine, else ``None``."""
    status = status_of(archive, rec_id)
    if status is None or status["status"] == FINISHED:
        return None
    return status_document(status)


def require_finished(archive, rec_id: str) -> None:
    """Raise ``InvalidState`` (409) when ``rec_id`` is still running or failed: no breaks to export."""
    status = unfinished(archive, rec_id)
    if status is not None:
        raise InvalidState("invalid_state", f"reconciliation {rec_id} is {status['status']}", status=status["status"])


def _fewer_lines_than(content: str | bytes, min_lines: int) -> bool:
    """Certainly fewer than ``min_lines`` statement lines, without parsing: few newlines and too
    few bytes for a one-line JSON list of that many items (every item takes over 32 bytes)."""
    newline = "\n" if isinstance(content, str) else b"\n"
    return content.count(newline) + 1 < min_lines and len(content) < 32 * min_lines


# -- chunk documents --------------------------------------------------------------------------------

def statement_to_json(batch: ProviderBatch) -> dict:
    doc = {"source": batch.source, "provider": batch.provider}
    for name in _PROVIDER_COLUMNS + _PROVIDER_OPTIONAL:
        col = getattr(batch, name)
        doc[name] = None if col is None else (_days_out(col) if name == "day" else list(col))
    return doc


def statement_from_json(doc: dict) -> ProviderBatch:
    cols = {}
    for name in _PROVIDER_COLUMNS + _PROVIDER_OPTIONAL:
        col = doc[name]
        if col is None and name in _PROVIDER_OPTIONAL:
            cols[name] = None
            continue
        cols[name] = _column_in(name, col)
    return ProviderBatch(doc["source"], doc["provider"], **cols)


def ledger_to_json(batch: LedgerBatch) -> dict:
    return {name: _days_out(getattr(batch, name)) if name == "day" else list(getattr(batch, name))
            for name in LedgerLine._fields}


def ledger_from_json(doc: dict) -> LedgerBatch:
    return LedgerBatch(**{name: _column_in(name, doc[name]) for name in LedgerLine._fields})


def _column_in(name: str, col: list) -> list:
    if not isinstance(col, list):
        raise ValueError(f"chunk column {name!r} is not a list")
    if name == "day":
        return _days_in(col)
    if name in _INT_COLUMNS:
        kinds = set(map(type, col))
        if not kinds <= {int, type(None)}:  # json gives float for 1.0 / 1e3: never money
            raise ValueError(f"chunk column {name!r} holds {sorted(k.__name__ for k in kinds)}, not integers")
    return col


def _days_out(col) -> list:
    names = {d: None if d is None else d.isoformat() for d in set(col)}
    return list(map(names.__getitem__, col))


def _days_in(col: list) -> list:
    days = {s: None if s is None else date.fromisoformat(s) for s in set(col)}  # one date object per day
    return list(map(days.__getitem__, col))


def _put_json(archive, key: str, value) -> None:
    archive.put(key, json.dumps(value, separators=(",", ":")).encode(), "application/json")


def _get_json(archive, key: str):
    data = archive.get(key)
    if data is None:
        raise ChunkMissing(f"no object at {key}")
    return json.loads(data)

