"""The list of reconciliation runs, and which run last looked at a ledger line.

A run is recorded when a statement is submitted (``Reconciliations.submit``): its id, source,
provider, status and summary, and the days its statement covered (the settlement rows' first and
last day). ``GET /v1/reconciliations`` pages through them, latest first; a run still ``running``
(a large statement in the Distributed Map) is shown as its stored result says now.

``latest_outcome`` answers, for one ledger line (a card payment, a refund, a payout posted), what
the latest finished run of its provider covering its day concluded: the line's own break if it
has one, else ``matched``. That follows from the engine's rules: a ledger line dated inside the
statement's period either pairs with a provider line or is reported (``missing_at_provider``,
``amount_mismatch``, ...), never silently dropped. A line no run has covered yet has no outcome.

Documents (app table): ``reconrun#<reconciliation_id>`` with gsi1 ``reconruns`` (by first submission).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from chalicelib.documents import DocumentExists, Documents
from chalicelib.recon.engine import Reconciliation
from chalicelib.recon.model import MATCHED, SOURCES

INDEX = "reconruns"
#: How many recent runs ``latest_outcome`` looks through (a provider's statements are daily: months of them).
SEARCH_DEPTH = 500
FINISHED = ("balanced", "breaks")


def _now() -> str:
    """RFC 3339 UTC with microseconds, one width: the strings sort as the moments do."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LegOutcome:
    """What reconciliation said about one ledger line."""

    reconciliation_id: str
    source: str
    outcome: str  # matched | amount_mismatch | missing_at_provider | duplicate | ...
    classification: str | None
    reconciled_at: str

    def to_json(self) -> dict:
        return {"reconciliation_id": self.reconciliation_id, "source": self.source, "outcome": self.outcome,
                "classification": self.classification, "reconciled_at": self.reconciled_at}


def run_summary(rec: Reconciliation, submitted_at: str) -> dict:
    days = sorted(row.day for row in rec.settlement)
    return {
        "reconciliation_id": rec.reconciliation_id, "source": rec.source, "provider": rec.provider,
        "status": rec.status, "summary": rec.summary, "breaks": len(rec.breaks),
        "first_day": days[0].isoformat() if days else None, "last_day": days[-1].isoformat() if days else None,
        "submitted_at": submitted_at,
    }


class ReconciliationRuns:
    """Runs recorded in the app table; ``load(id)`` reads a stored reconciliation (``Reconciliations.load``)."""

    def __init__(self, docs: Documents, load=None, clock=_now):
        self.docs = docs
        self.load = load  # reconciliation id -> Reconciliation (the archive), set by the composition root
        self.clock = clock

    def record(self, reply: dict, rec: Reconciliation | None = None) -> None:
        """Record the run behind a submission's ``reply`` (``rec``: the finished result, when at hand)."""
        now = self.clock()
        if rec is not None:
            doc = run_summary(rec, now)
        else:
            doc = {"reconciliation_id": reply["reconciliation_id"], "source": reply.get("source"),
                   "provider": SOURCES.get(reply.get("source", ""), ""), "status": reply.get("status"),
                   "summary": reply.get("summary"), "breaks": None, "first_day": None, "last_day": None,
                   "submitted_at": now}
        key = f"reconrun#{doc['reconciliation_id']}"
        try:
            self.docs.put_new(key, doc, index=(INDEX, f"{now}#{doc['reconciliation_id']}"))
        except DocumentExists:  # the same statement again: the latest result and submission time
            self.docs.update(key, lambda old: {**old, **doc})

    def page(self, limit: int = 20, cursor: str | None = None) -> dict:
        found, following = self.docs.query_page(INDEX, limit, cursor)
        return {"reconciliations": [self._current(r) for r in found], "has_more": following is not None,
                "next_cursor": following}

    def _current(self, run: dict) -> dict:
        """A run as recorded; one recorded while running is read again from its stored result."""
        if run.get("status") in FINISHED or self.load is None:
            return run
        try:
            rec = self.load(run["reconciliation_id"])
        except Exception:  # noqa: BLE001 - still running (or failed): shown as recorded
            return run
        return {**run_summary(rec, run["submitted_at"])}

    def latest_outcome(self, provider: str, kind: str, reference: str, transfer_id: str, day: date,
                       booked_at: str = "", cache: dict | None = None) -> LegOutcome | None:
        """The latest finished run of ``provider`` covering ``day`` and submitted after the line was
        booked (``booked_at``, RFC 3339: a run before it could not have seen it): this line's break,
        else matched."""
        cache = {} if cache is None else cache
        runs = cache.get("_runs")
        if runs is None:
            runs = cache["_runs"] = [self._current(r) for r in self.docs.query_index(INDEX, limit=SEARCH_DEPTH)]
        covering = [r for r in runs if r.get("provider") == provider and r.get("status") in FINISHED
                    and r.get("first_day") and r["first_day"] <= day.isoformat() <= r["last_day"]
                    and r["submitted_at"] >= booked_at]
        if not covering or self.load is None:
            return None
        run = max(covering, key=lambda r: r["submitted_at"])
        rec = cache.get(run["reconciliation_id"])
        if rec is None:
            rec = cache[run["reconciliation_id"]] = self.load(run["reconciliation_id"])
        for b in rec.breaks:
            if b.transfer_id == transfer_id or (not b.transfer_id and b.reference == reference and b.kind == kind):
                return LegOutcome(run["reconciliation_id"], run["source"], b.outcome, b.classification or None,
                                  run["submitted_at"])
        return LegOutcome(run["reconciliation_id"], run["source"], MATCHED, None, run["submitted_at"])
