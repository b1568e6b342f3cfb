"""Reconciliation on several cores: the statement parsed by byte ranges, matched by reference.

Most of a million-line reconciliation is turning CSV text into Python values, and
one Python process uses one core. ``reconcile_parallel`` spreads the work over
``workers`` processes (the calling process is worker 0, the others are forked):

1. parse: worker ``k`` reads byte range ``k`` of the statement (and of the ledger CSV
   export, when the ledger comes as one), cut at line boundaries, so every line keeps
   its true line number (``CsvFormat.split``/``read_range``). Bad lines are collected
   by every worker and reported together, as one process would: nothing is reconciled.
2. exchange: each worker splits what it parsed by reference into ``workers`` parts
   (``_split``) and sends part ``j`` to worker ``j`` in a compact columnar form
   (``_pack``), relayed by worker 0: every worker only ever talks to worker 0.
3. match: worker ``j`` puts its parts together in statement order and runs
   ``reconcile_chunk`` on them, the same per-chunk code as a Distributed Map
   iteration; worker 0 ``combine``s the chunk results.

The result is the one-process result: a reference's lines all land in one
partition, in statement order, and ``combine`` does not depend on the number of
chunks (``tests/unit/test_recon_parallel.py`` holds it to that).

Everything runs in the calling process when forking is unavailable or not worth
it: one worker (Lambda, where ``default_workers`` is 1), a statement below
``MIN_PARALLEL_BYTES``, a statement that is not a plain CSV (camt.053 XML, JSON,
a CSV with quoted fields, where a record may span lines).
"""
from __future__ import annotations

import os
import pickle
from array import array
from itertools import compress, repeat
from operator import eq, mod
import time
import traceback
from datetime import date
from typing import Any

from chalicelib.recon import columnar
from chalicelib.recon.engine import ChunkResult, Reconciliation, combine, reconcile, reconcile_chunk
from chalicelib.recon.importers import csv_format, parse_statement
from chalicelib.recon.inputs import statement_period, widen
from chalicelib.recon.model import SOURCES, LedgerBatch, ProviderBatch, StatementError
from chalicelib.recon.parsing import bulk, bytes_of

MIN_PARALLEL_BYTES = 4 << 20  # below ~50,000 lines a fork costs more than it saves
_NOTHING = (date.max, date.min)  # a day range no day is in


def default_workers() -> int:
    """1 unless ``MIZANI_RECON_WORKERS`` asks for more (and never in AWS Lambda or without ``fork``).

    Measured on the 2-core development machine, two forked workers were *slower* than one
    process (the split and the exchange cost more CPU than they save), so forking is opt-in.
    """
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or not hasattr(os, "fork"):
        return 1
    return max(1, int(os.environ.get("MIZANI_RECON_WORKERS", "1") or 1))


def worth_forking(source: str, content: str | bytes, workers: int | None = None,
                  min_bytes: int | None = None) -> bool:
    """Whether ``reconcile_parallel`` would fork for this statement (else it runs in one process)."""
    workers = default_workers() if workers is None else workers
    min_bytes = MIN_PARALLEL_BYTES if min_bytes is None else min_bytes
    return workers > 1 and len(content) >= min_bytes and csv_format(source, content) is not None


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (Linux ``VmHWM``; 0 where unknown)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def reconcile_parallel(source: str, content: str | bytes, ledger, *, reconciliation_id: str,
                       workers: int | None = None, slack_days: int | None = None,
                       min_bytes: int | None = None, stats: dict | None = None) -> Reconciliation:
    """Parse ``content`` as a ``source`` statement and reconcile it against ``ledger`` on ``workers`` cores.

    ``ledger``: the ledger CSV export (``bytes``/``str``, ``ledger_source.read_ledger_csv``'s
    format: parsed by the workers too), a ``LedgerBatch``, or a ``LedgerSource``. Only the
    provider's lines take part; with ``slack_days`` only those of the statement's period
    widened by that many days (as ``service.reconcile_statement``), else all of them.
    ``stats``, if given, receives ``engine``, ``workers``, ``parse_s`` (parse and exchange),
    ``match_s`` and ``worker_peak_rss_mb`` (the forked workers' peaks, this process excluded).

    A large CSV statement goes to the columnar engine first where Polars is installed
    (``columnar.wanted``; ``MIZANI_RECON_ENGINE=python`` turns it off); whatever it does not
    take comes here.
    """
    if source not in SOURCES:
        raise StatementError(source, [(0, f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")])
    stats = {} if stats is None else stats
    if columnar.wanted(source, content):
        rec = columnar.reconcile_columnar(source, content, ledger, reconciliation_id=reconciliation_id,
                                          slack_days=slack_days, stats=stats)
        if rec is not None:
            return rec
    workers = default_workers() if workers is None else max(1, workers)
    data = bytes_of(source, content)
    min_bytes = MIN_PARALLEL_BYTES if min_bytes is None else min_bytes
    plan = csv_format(source, data) if workers > 1 and len(data) >= min_bytes else None
    ranges = plan[0].split(data, workers) if plan is not None else None
    if ranges is None:
        return _one_process(source, data, ledger, reconciliation_id, slack_days, stats)
    job = _Job(source, plan, data, ranges, ledger, slack_days, workers)
    return job.run(reconciliation_id, stats)


def _one_process(source, data, ledger, reconciliation_id, slack_days, stats) -> Reconciliation:
    t0 = time.perf_counter()
    batch = parse_statement(source, data)
    period = statement_period(batch)
    lines = _ledger_whole(ledger, SOURCES[source], _window(period, slack_days))
    t1 = time.perf_counter()
    rec = reconcile(batch, lines, source=source, reconciliation_id=reconciliation_id, period=period)
    stats.update(engine="python", workers=1, parse_s=t1 - t0, match_s=time.perf_counter() - t1, worker_peak_rss_mb=[])
    return rec


def _window(period, slack_days) -> tuple[date, date] | None:
    if slack_days is None:
        return None
    if period is None:
        return _NOTHING  # an empty statement covers no day: nothing of the ledger is in question
    return widen(period, slack_days)


def _is_csv(ledger) -> bool:
    return isinstance(ledger, (bytes, bytearray, memoryview, str))


def _ledger_whole(ledger, provider: str, window) -> LedgerBatch:
    from chalicelib.recon.ledger_source import ledger_batch, read_ledger_csv

    if _is_csv(ledger):
        return read_ledger_csv(ledger).select(provider, window)
    if isinstance(ledger, LedgerBatch):
        return ledger.select(provider, window)
    if window == _NOTHING:
        return LedgerBatch.from_lines(())
    return ledger_batch(ledger, provider, window)


class _Job:
    """One parallel reconciliation: what every worker needs (inherited by ``fork``, never pickled)."""

    def __init__(self, source, plan, data, ranges, ledger, slack_days, workers):
        from chalicelib.recon import ledger_source

        self.source, self.provider = source, SOURCES[source]
        self.fmt, self.make = plan
        self.data, self.ranges = data, ranges
        self.workers = len(ranges)
        self.slack_days = slack_days
        self.ledger = ledger
        self.ledger_mode = "source"  # fetched by worker 0 once the period is known
        self.ledger_data = self.ledger_ranges = None
        if _is_csv(ledger):
            self.ledger_data = bytes_of(ledger_source.SOURCE, ledger)
            self.ledger_ranges = ledger_source.FORMAT.split(self.ledger_data, self.workers)
            if self.ledger_ranges is None:  # quoted fields: read whole, then shared like a batch
                self.ledger = ledger_source.read_ledger_csv(self.ledger_data)
            else:
                self.ledger_mode = "csv"
        if isinstance(self.ledger, LedgerBatch):
            self.ledger_mode = "batch"
            self.ledger = self.ledger.select(self.provider, None)

    # -- the two halves of a worker's work ---------------------------------------------------------

    def parse(self, k: int):
        """Worker ``k``'s byte ranges, parsed and partitioned: ``(errors, period, parts)``;
        ``errors`` is ``(statement items, total, ledger items, total)``, ``parts[j]`` is
        ``(ProviderBatch, LedgerBatch | None)`` for worker ``j``, packed (``_pack``) except
        ``parts[k]``; ``parts`` is ``None`` when there are errors."""
        from chalicelib.recon import ledger_source

        lines, cols, errors = self.fmt.read_range(self.data, *self.ranges[k])
        ledger_errors = None
        if self.ledger_mode == "csv":
            _lines, lcols, ledger_errors = ledger_source.FORMAT.read_range(self.ledger_data, *self.ledger_ranges[k])
        errs = (errors.items, errors.total, ledger_errors.items if ledger_errors else [],
                ledger_errors.total if ledger_errors else 0)
        if errs[1] or errs[3]:
            return errs, None, None
        with bulk():
            P = self.make(lines, cols)
            period = statement_period(P)
            p_parts = _split(P, self.workers, k)
            del P, cols, lines
            if self.ledger_mode == "csv":
                L = LedgerBatch(**lcols).select(self.provider, None)
            elif self.ledger_mode == "batch":
                m, W = len(self.ledger), self.workers
                a, b = m * k // W, m * (k + 1) // W
                L = LedgerBatch(**{name: getattr(self.ledger, name)[a:b] for name in self.ledger.__slots__})
            else:
                L = None
            l_parts = _split(L, self.workers, k) if L is not None else [None] * self.workers
        return errs, period, list(zip(p_parts, l_parts))

    def match(self, parts, period, window, ledger: LedgerBatch | None) -> ChunkResult:
        """Partition ``k``: its parts from every worker, in worker (statement) order, reconciled."""
        with bulk():
            parts = [(_unpack(p), _unpack(l)) for p, l in parts]
            P = ProviderBatch.concat([p for p, _ in parts])
            ledger = _unpack(ledger)
            if ledger is None:
                ledger = LedgerBatch.concat([l for _, l in parts])
            del parts
            if window is not None:
                ledger = ledger.select(None, window)
            return reconcile_chunk(P, ledger, period=period)

    # -- worker 0 ----------------------------------------------------------------------------------

    def run(self, reconciliation_id: str, stats: dict) -> Reconciliation:
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        W = self.workers
        t0 = time.perf_counter()
        conns, procs = [], []
        try:
            for k in range(1, W):
                mine, theirs = ctx.Pipe()
                proc = ctx.Process(target=self._child, args=(k, theirs), daemon=True)
                proc.start()
                theirs.close()
                conns.append(mine)
                procs.append(proc)
            with bulk():
                errs0, period0, parts0 = self.parse(0)
                t_own = time.perf_counter()
                headers = [(errs0, period0)]
                inbox: list[dict[int, bytes]] = [{} for _ in range(W)]  # inbox[j][k]: worker k's part for j
                for k, conn in enumerate(conns, 1):
                    errs, period = _receive(conn, "parsed")
                    headers.append((errs, period))
                    if not (errs[1] or errs[3]):
                        for j in range(W):
                            if j != k:
                                inbox[j][k] = _receive(conn, "part")
                self._raise_errors(headers, conns)
                periods = [p for _, p in headers if p is not None]
                period = (min(p[0] for p in periods), max(p[1] for p in periods)) if periods else None
                window = _window(period, self.slack_days)
                ledger_parts = [None] * W
                if self.ledger_mode == "source":
                    ledger_parts = _split(_ledger_whole(self.ledger, self.provider, window), W, 0)
                    window = None
                for k, conn in enumerate(conns, 1):
                    conn.send(("go", period, window, ledger_parts[k]))
                    for j in range(W):
                        if j != k:
                            conn.send(("part", inbox[k].pop(j) if j else parts0[k]))
                own = [parts0[0] if j == 0 else inbox[0].pop(j) for j in range(W)]
                del parts0, inbox
                t1 = time.perf_counter()
                results = [self.match(own, period, window, ledger_parts[0])]
                del own
                t_matched = time.perf_counter()
                peaks, child_phases = [], []
                for conn in conns:
                    result, peak, phases = _receive(conn, "result")
                    results.append(result)
                    peaks.append(peak)
                    child_phases.append(phases)
        finally:
            for conn in conns:
                conn.close()
            for proc in procs:
                proc.join(timeout=5)
                if proc.is_alive():
                    proc.terminate()
                    proc.join()
        rec = combine(results, source=self.source, reconciliation_id=reconciliation_id)
        stats.update(engine="python", workers=W, parse_s=t1 - t0, match_s=time.perf_counter() - t1, worker_peak_rss_mb=peaks,
                     phases={"worker 0": (t_own - t0, t1 - t_own, t_matched - t1),
                             **{f"worker {k}": p for k, p in enumerate(child_phases, 1)}})
        return rec

    def _raise_errors(self, headers, conns) -> None:
        from chalicelib.recon import ledger_source

        for offset, source in ((0, self.source), (2, ledger_source.SOURCE)):
            total = sum(errs[offset + 1] for errs, _ in headers)
            if total:
                for conn in conns:
                    try:
                        conn.send(("stop",))
                    except OSError:  # that worker found errors too and is gone
                        pass
                items = [item for errs, _ in headers for item in errs[offset]]
                raise StatementError(source, items, total)

    # -- workers 1.. -------------------------------------------------------------------------------

    def _child(self, k: int, conn) -> None:
        try:
            with bulk():
                t0 = time.perf_counter()
                errs, period, parts = self.parse(k)
                t1 = time.perf_counter()
                conn.send(("parsed", (errs, period)))
                if parts is None:
                    return
                for j in range(self.workers):
                    if j != k:
                        conn.send(("part", parts[j]))
                mine = parts[k]
                del parts
                message = conn.recv()
                if message[0] != "go":
                    return
                _, period, window, ledger = message
                own = [mine if j == k else _receive(conn, "part") for j in range(self.workers)]
                del mine
                t2 = time.perf_counter()
                result = self.match(own, period, window, ledger)
                conn.send(("result", (result, peak_rss_mb(), (t1 - t0, t2 - t1, time.perf_counter() - t2))))
        except BaseException:  # noqa: BLE001 - worker 0 re-raises it
            try:
                conn.send(("error", traceback.format_exc()))
            except OSError:
                pass
        finally:
            conn.close()


def _receive(conn, tag: str) -> Any:
    try:
        message = conn.recv()
    except EOFError:
        raise RuntimeError("a reconciliation worker ended without an answer") from None
    if message[0] == "error":
        raise RuntimeError(f"a reconciliation worker failed:\n{message[1]}")
    if message[0] != tag:
        raise RuntimeError(f"reconciliation worker protocol: expected {tag!r}, got {message[0]!r}")
    return message[1]


# -- partitions and their wire form ------------------------------------------------------------------

def _split(batch, workers: int, k: int) -> list:
    """``batch`` split by reference into ``workers`` parts; every part but ``k`` (the caller's own)
    packed for the pipe.

    The part of a reference is ``hash(reference) % workers``: every worker is forked from
    worker 0 and so shares its string hash seed, and the hash is computed once per string
    anyway (the matching's dicts reuse it), where CRC-32 (``engine.chunk_of``, which must be
    stable across machines for the Distributed Map) would cost a bytes object per line.
    Which part a reference lands in does not change the result, only that all its lines do."""
    if workers == 1:
        return [batch]
    ids = list(map(mod, map(hash, batch.reference), repeat(workers)))
    parts = []
    for j in range(workers):
        mask = ids if workers == 2 and j == 1 else list(map(eq, ids, repeat(j)))
        if j == k:
            parts.append(batch.take(mask=mask))
        else:
            parts.append(_pack(batch, mask))
    return parts


_LOW_CARDINALITY = {"currency", "day", "kind", "status", "provider", "orig_currency"}


def _pack(batch, mask: list) -> tuple:
    """The rows of ``batch`` where ``mask`` is true, as a few bytes objects per column (one
    ``bytes`` per column of strings, an ``array`` per column of ints, codes for repetitive
    columns): an order of magnitude cheaper to send and rebuild than a pickle of the objects."""
    is_provider = isinstance(batch, ProviderBatch)
    names = ("line",) + ProviderBatch.__slots__[3:] if is_provider else LedgerBatch.__slots__
    columns = {}
    for name in names:
        col = getattr(batch, name)
        columns[name] = None if col is None else _pack_column(name, col, mask)
    head = (batch.source, batch.provider) if is_provider else None
    return head, columns


def _pack_column(name: str, col, mask: list) -> tuple:
    n = len(col)
    if n and not isinstance(col, range) and col.count(col[0]) == n:
        return "const", col[0], sum(mask)
    if isinstance(col, range):
        col = list(compress(col, mask))
    else:
        col = list(compress(col, mask))
    if name in _LOW_CARDINALITY:
        values = list(set(col))
        if len(values) < 65536:
            codes = dict(zip(values, range(len(values))))
            return "codes", values, array("H", map(codes.__getitem__, col)).tobytes()
    first = col[0] if col else None
    if type(first) is int:
        try:
            return "int", array("q", col).tobytes()
        except (OverflowError, TypeError):
            pass
    elif type(first) is str:
        try:
            joined = "\x00".join(col)
        except TypeError:
            joined = None
        if joined is not None and joined.count("\x00") == len(col) - 1:
            return "str", joined.encode("utf-8", "surrogatepass"), len(col)
    return "pickle", pickle.dumps(col, protocol=pickle.HIGHEST_PROTOCOL)


def _unpack_column(packed: tuple) -> list:
    how = packed[0]
    if how == "const":
        return [packed[1]] * packed[2]
    if how == "codes":
        codes = array("H")
        codes.frombytes(packed[2])
        return list(map(packed[1].__getitem__, codes))
    if how == "int":
        values = array("q")
        values.frombytes(packed[1])
        return values.tolist()
    if how == "str":
        return packed[1].decode("utf-8", "surrogatepass").split("\x00") if packed[2] else []
    return pickle.loads(packed[1])


def _unpack(part):
    """A batch again, from ``_pack`` (a batch passes through unchanged)."""
    if part is None or isinstance(part, (ProviderBatch, LedgerBatch)):
        return part
    head, columns = part
    cols = {name: None if packed is None else _unpack_column(packed) for name, packed in columns.items()}
    if head is not None:
        return ProviderBatch(head[0], head[1], **cols)
    return LedgerBatch(**cols)
