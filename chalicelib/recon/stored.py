"""Where a statement and its reconciliation are kept in the archive (``archive``'s adapters).

Keys: ``statements/<source>/<sha256>.txt`` (the file exactly as uploaded) and
``reconciliations/<id>.json`` (``Reconciliation.to_dict``). A statement's key is its
content hash, so uploading the same file twice stores it once. Large statements
(``distributed``) also keep their chunks and a status under ``reconciliations/<id>/``.

Shared by ``reconciliations.Reconciliations`` (submit, read back) and ``distributed.finish``
(which stores a large statement's result exactly where a small one's is).
"""
from __future__ import annotations

import hashlib
import json

from chalicelib.recon.engine import Reconciliation


def statement_key(source: str, content: str) -> str:
    return f"statements/{source}/{hashlib.sha256(content.encode()).hexdigest()}.txt"


def reconciliation_key(reconciliation_id: str) -> str:
    return f"reconciliations/{reconciliation_id}.json"


def save_reconciliation(archive, rec: Reconciliation) -> None:
    """Store a finished reconciliation where ``load_reconciliation`` reads it."""
    archive.put(reconciliation_key(rec.reconciliation_id), json.dumps(rec.to_dict()).encode(), "application/json")


def load_reconciliation(archive, reconciliation_id: str) -> Reconciliation | None:
    """The stored reconciliation, or ``None`` (no such id, or not one of ours: ids start ``rec_``)."""
    data = archive.get(reconciliation_key(reconciliation_id)) if reconciliation_id.startswith("rec_") else None
    return None if data is None else Reconciliation.from_dict(json.loads(data))


def count_breaks(rec: Reconciliation) -> None:
    """The ``ReconciliationBreaks`` metric of a finished reconciliation: its breaks by outcome."""
    from collections import Counter

    from chalicelib.observability import metrics

    metrics.reconciliation_breaks(rec.source, Counter(b.outcome for b in rec.breaks))
