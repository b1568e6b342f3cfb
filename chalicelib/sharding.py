"""Hot keys split into shards: one logical key stored under N physical keys, chosen by a hash.

Shard 0 of a key is the key itself and shard ``s`` is ``<key>/<s>``, so a key that gains shards
keeps what it already holds, and a reader of all N shards sees it. Used by the ledger for hot
accounts (``chalicelib/ledger/shards.py``) and by the app table for constant index keys
(``chalicelib/documents.py``: ``INDEX_SHARDS``).
"""
from __future__ import annotations

import hashlib

SEPARATOR = "/"


def _hash(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


class Shards:
    """How many shards each key has: the longest matching prefix decides (default 1)."""

    def __init__(self, counts: dict[str, int] | None = None):
        self.counts = {prefix: int(n) for prefix, n in (counts or {}).items() if int(n) > 1}
        if any(int(n) < 1 for n in (counts or {}).values()):
            raise ValueError("a shard count is at least 1")

    def count(self, key: str) -> int:
        best, n = -1, 1
        for prefix, shards in self.counts.items():
            if key.startswith(prefix) and len(prefix) > best:
                best, n = len(prefix), shards
        return n

    def physical(self, key: str, shard: int) -> str:
        return key if shard == 0 else f"{key}{SEPARATOR}{shard}"

    def physical_ids(self, key: str) -> list[str]:
        return [self.physical(key, s) for s in range(self.count(key))]

    def shard_of(self, key: str, by: str) -> int:
        """The shard of ``key`` that what is identified by ``by`` goes to."""
        n = self.count(key)
        return 0 if n == 1 else _hash(f"{key}|{by}") % n
