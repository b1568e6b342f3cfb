"""Hot accounts split into shards, so no single DynamoDB item takes every platform movement.

A sharded account (``psp:*``, ``fx:*``, ``float:*``, ``revenue:*``... by id prefix, N per prefix
in settings) is stored as N items: shard 0 under the account's own id, shard ``s`` under
``<id>/<s>``. A transfer touches one shard of each sharded side, chosen by a hash of its id
(of the pending transfer's id for a post, void or expiry, so the reservation is released
where it was made). Everything above the store sees one logical account: balances, the
trial balance and history sum or ignore the shards.

A constrained account (a balance rule) may be sharded too: a debit that its hashed shard
cannot cover, while the shards together can, is spread over the shards that have room (the
spread of a pending transfer is kept on it, in ``meta``, for its post or void).
"""
from __future__ import annotations

import hashlib

SEPARATOR = "/"


def _hash(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


class Shards:
    """How many shards each account has: the longest matching id prefix decides (default 1)."""

    def __init__(self, counts: dict[str, int] | None = None):
        self.counts = {prefix: int(n) for prefix, n in (counts or {}).items() if int(n) > 1}
        if any(int(n) < 1 for n in (counts or {}).values()):
            raise ValueError("a shard count is at least 1")

    def count(self, account_id: str) -> int:
        best, n = -1, 1
        for prefix, shards in self.counts.items():
            if account_id.startswith(prefix) and len(prefix) > best:
                best, n = len(prefix), shards
        return n

    def physical(self, account_id: str, shard: int) -> str:
        return account_id if shard == 0 else f"{account_id}{SEPARATOR}{shard}"

    def physical_ids(self, account_id: str) -> list[str]:
        return [self.physical(account_id, s) for s in range(self.count(account_id))]

    def shard_of(self, account_id: str, key: str) -> int:
        n = self.count(account_id)
        return 0 if n == 1 else _hash(f"{account_id}|{key}") % n


def encode_spread(spread: dict[int, int]) -> str:
    return ",".join(f"{shard}:{amount}" for shard, amount in sorted(spread.items()))


def decode_spread(text: str) -> dict[int, int]:
    spread = {}
    for part in text.split(","):
        shard, amount = part.split(":")
        spread[int(shard)] = int(amount)
    return spread
