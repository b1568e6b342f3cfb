"""Hot accounts split into shards, so no single DynamoDB item takes every platform movement.

A sharded account (``psp:*``, ``fx:*``, ``float:*``, ``revenue:*``... by id prefix, N per prefix
in settings) is stored as N items: shard 0 under the account's own id, shard ``s`` under
``<id>/<s>``. A transfer touches one shard of each sharded side, chosen by a hash of its id
(of the pending transfer's id for a post, void or expiry, so the reservation is released
where it was made). Everything above the store sees one logical account: balances and the
trial balance sum the shards; the account's history is kept in one partition per shard (an
entry in the shard its own transfer id hashes to) and read back merged, newest first.

A constrained account (a balance rule) may be sharded too: a debit that its hashed shard
cannot cover, while the shards together can, is spread over the shards that have room (the
spread of a pending transfer is kept on it, in ``meta``, for its post or void).
"""
from __future__ import annotations

from chalicelib.sharding import SEPARATOR, Shards  # noqa: F401 (the ledger's names for them)


def encode_spread(spread: dict[int, int]) -> str:
    return ",".join(f"{shard}:{amount}" for shard, amount in sorted(spread.items()))


def decode_spread(text: str) -> dict[int, int]:
    spread = {}
    for part in text.split(","):
        shard, amount = part.split(":")
        spread[int(shard)] = int(amount)
    return spread
