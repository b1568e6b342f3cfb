"""A transfer's own hash and its day's shard key (``chalicelib/ledger/seal.py`` seals and verifies days).

Kept apart from ``seal.py`` so that the stores (``dynamo.py``, ``memory.py``), which write the hash
with each transfer, do not depend on the sealing machinery.
"""
from __future__ import annotations

import hashlib
import json
import time

from chalicelib.ledger.model import Transfer, TransferKind

#: Keys per day of the ``by_seal_day`` index (a transfer's by the hash of its id): no hot index partition.
SHARDS = 32


def transfer_hash(t: Transfer) -> str:
    """The hex SHA-256 of the transfer's immutable fields (canonical JSON)."""
    fields = [t.transfer_id, t.debit_account_id, t.credit_account_id, int(t.amount), t.currency,
              TransferKind(t.kind).value, t.pending_id, int(t.timeout_seconds), t.code, t.reference, int(t.timestamp),
              {k: str(v) for k, v in sorted((t.meta or {}).items())}]
    return hashlib.sha256(json.dumps(fields, separators=(",", ":"), sort_keys=True).encode("utf-8")).hexdigest()


def day_of(t: Transfer) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(t.timestamp // 1_000_000_000))


def seal_day_key(t: Transfer) -> str:
    shard = int(hashlib.sha256(t.transfer_id.encode("utf-8")).hexdigest()[:4], 16) % SHARDS
    return f"{day_of(t)}#{shard:02d}"
