"""Sealed books: each transfer carries the hash of its own fields, and each UTC day's transfers are
sealed by a Merkle root signed with a key. There is no chain through every transfer, so no item
that every write must touch: a transfer's hash is computed from the transfer alone, at its write.

- ``transfer_hash``: SHA-256 over the canonical JSON of the immutable fields (id, accounts, amount,
  currency, kind, pending id, timeout, code, reference, timestamp, meta); stored as ``hash`` on the
  transfer item. A pending transfer's status changes later and is not part of it.
- ``seal_day_key``: ``<YYYY-MM-DD>#<shard>``, one of ``SHARDS`` keys per day (by the transfer id's
  hash) of the transfers table's ``by_seal_day`` index, so a day's transfers are read without a
  scan and written without a hot index partition.
- ``Sealer.seal(day)`` (the scheduled ``seal_books``, for yesterday): every transfer of the day, its
  leaf ``sha256(transfer_id + ":" + hash)``, ordered by transfer id; the Merkle root of the leaves
  (pairs hashed up, an odd one carried up as it is); the root signed (``HmacSigner`` with
  ``MIZANI_SEAL_SECRET`` locally, ``KmsSigner`` with a KMS HMAC key, ``MIZANI_SEAL_KMS_KEY_ID``, in
  AWS); the seal ``seal#<day>`` in the app table, the leaves (``<transfer_id> <hash>`` a line) in
  the statements bucket under ``seals/<day>.txt``. Sealing a day already sealed returns that seal.
- ``Sealer.verify(day)``: the signature over the sealed root; the sealed leaves against their root;
  then every transfer of the day now: its fields against its stored hash and against the sealed
  one. It names each transfer altered (fields changed, or hash changed), added or removed since.

``python -m chalicelib.ledger.seal verify 2026-11-30`` (or ``seal``) runs it against the stage's
tables; exit 0 intact, 1 something altered, 2 no seal.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import sys
import time
from dataclasses import dataclass, field

from chalicelib import aws
from chalicelib.ledger.hashing import SHARDS, day_of, seal_day_key, transfer_hash  # noqa: F401
from chalicelib.secrets import secret_of

ALGORITHM = "sha256-merkle-v1"


def leaf(transfer_id: str, digest: str) -> str:
    return hashlib.sha256(f"{transfer_id}:{digest}".encode("utf-8")).hexdigest()


def merkle_root(leaves: list[str]) -> str:
    """The root of ``leaves`` (hex), in the order given; the empty day's root is sha256(b"")."""
    if not leaves:
        return hashlib.sha256(b"").hexdigest()
    level = [bytes.fromhex(x) for x in leaves]
    while len(level) > 1:
        paired = [hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])  # an odd one is carried up as it is
        level = paired
    return level[0].hex()


# -- signing ---------------------------------------------------------------------------------------
class HmacSigner:
    """HMAC-SHA256 with a secret (the local stage; ``MIZANI_SEAL_SECRET``)."""

    def __init__(self, secret: str, key_id: str = "local"):
        self._secret = secret.encode("utf-8")
        self.name = f"hmac-sha256:{key_id}"

    def sign(self, message: bytes) -> str:
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def verify(self, message: bytes, signature: str) -> bool:
        return hmac.compare_digest(self.sign(message), signature or "")


class KmsSigner:
    """A KMS HMAC key (``GenerateMac``/``VerifyMac``, ``HMAC_SHA_256``): the key never leaves KMS."""

    def __init__(self, key_id: str, client=None):
        self.key_id = key_id
        self._client = client
        self.name = f"kms-hmac-sha256:{key_id}"

    @property
    def client(self):
        if self._client is None:
            self._client = aws.client("kms")
        return self._client

    def sign(self, message: bytes) -> str:
        return self.client.generate_mac(KeyId=self.key_id, Message=message, MacAlgorithm="HMAC_SHA_256")["Mac"].hex()

    def verify(self, message: bytes, signature: str) -> bool:
        try:
            return bool(self.client.verify_mac(KeyId=self.key_id, Message=message, MacAlgorithm="HMAC_SHA_256",
                                               Mac=bytes.fromhex(signature))["MacValid"])
        except (ValueError, self.client.exceptions.KMSInvalidMacException):
            return False


# -- a day's transfers -------------------------------------------------------------------------------
class MemoryDaySource:
    """The day's transfers of a ``MemoryLedgerStore``."""

    def __init__(self, store):
        self.store = store

    def transfers_of(self, day: str):
        return [r for r in list(self.store.transfers.values()) if day_of(r.transfer) == day]


class DynamoDaySource:
    """The day's transfers from the transfers table's ``by_seal_day`` index (``SHARDS`` queries)."""

    def __init__(self, table_prefix: str, client=None):
        self.table = f"{table_prefix}-transfers"
        self._client = client

    client = aws.LazyDynamoClient()

    def transfers_of(self, day: str):
        from chalicelib.ledger.dynamo import _transfer_from  # the store's own codec

        paginator = self.client.get_paginator("query")
        for shard in range(SHARDS):
            for page in paginator.paginate(TableName=self.table, IndexName="by_seal_day",
                                           KeyConditionExpression="seal_day = :d",
                                           ExpressionAttributeValues={":d": {"S": f"{day}#{shard:02d}"}}):
                for item in page.get("Items", []):
                    yield _transfer_from(item)


# -- sealing and verifying -----------------------------------------------------------------------------
@dataclass
class Verification:
    day: str
    sealed: bool
    signature_ok: bool = False
    root_ok: bool = False
    altered: list[str] = field(default_factory=list)  # fields no longer match their hash, or the hash changed
    added: list[str] = field(default_factory=list)  # in the ledger now, not in the seal
    removed: list[str] = field(default_factory=list)  # in the seal, not in the ledger now
    transfers: int = 0

    @property
    def intact(self) -> bool:
        return self.sealed and self.signature_ok and self.root_ok and not (self.altered or self.added or self.removed)

    def to_json(self) -> dict:
        return {"day": self.day, "sealed": self.sealed, "intact": self.intact, "signature_ok": self.signature_ok,
                "root_ok": self.root_ok, "transfers": self.transfers, "altered": self.altered, "added": self.added,
                "removed": self.removed}


class Sealer:
    """Seals and verifies days (see the module doc). ``docs``: the app table; ``archive``: the
    statements bucket (``put(key, bytes, content_type)``, ``get(key)``)."""

    def __init__(self, source, docs, archive, signer, clock=time.time):
        self.source = source
        self.docs = docs
        self.archive = archive
        self.signer = signer
        self.clock = clock

    @staticmethod
    def _message(day: str, root: str, count: int) -> bytes:
        return f"{ALGORITHM}|{day}|{count}|{root}".encode("utf-8")

    def seal(self, day: str) -> dict:
        from chalicelib.documents import DocumentExists

        existing = self.docs.get(f"seal#{day}")
        if existing:
            return existing
        rows = sorted((r.transfer.transfer_id, r.hash or transfer_hash(r.transfer)) for r in self.source.transfers_of(day))
        root = merkle_root([leaf(tid, digest) for tid, digest in rows])
        leaves_key = f"seals/{day}.txt"
        self.archive.put(leaves_key, "".join(f"{tid} {digest}\n" for tid, digest in rows).encode("utf-8"), "text/plain")
        doc = {"day": day, "algorithm": ALGORITHM, "root": root, "count": len(rows), "leaves_key": leaves_key,
               "signer": self.signer.name, "signature": self.signer.sign(self._message(day, root, len(rows))),
               "sealed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock()))}
        try:
            self.docs.put_new(f"seal#{day}", doc)
        except DocumentExists:
            return self.docs.get(f"seal#{day}")
        return doc

    def verify(self, day: str) -> Verification:
        seal = self.docs.get(f"seal#{day}")
        result = Verification(day, sealed=bool(seal))
        if not seal:
            return result
        result.signature_ok = self.signer.verify(self._message(day, seal["root"], seal["count"]), seal["signature"])
        raw = self.archive.get(seal["leaves_key"]) or b""
        sealed = dict(line.split(" ", 1) for line in raw.decode("utf-8").splitlines() if line)
        result.root_ok = merkle_root([leaf(tid, sealed[tid]) for tid in sorted(sealed)]) == seal["root"] \
            and len(sealed) == seal["count"]
        now = {}
        for record in self.source.transfers_of(day):
            t = record.transfer
            computed = transfer_hash(t)
            now[t.transfer_id] = computed
            if record.hash != computed or (t.transfer_id in sealed and sealed[t.transfer_id] != computed):
                result.altered.append(t.transfer_id)
        result.added = sorted(set(now) - set(sealed))
        result.removed = sorted(set(sealed) - set(now))
        result.altered.sort()
        result.transfers = len(now)
        return result


def build_sealer(settings=None) -> Sealer:
    """The stage's sealer: the transfers table's index, the app table, the statements bucket, the key."""
    from chalicelib import settings as settings_module
    from chalicelib.documents import DynamoDocuments
    from chalicelib.recon.archive import S3Archive

    cfg = settings or settings_module.get()
    if cfg.seal_kms_key_id:
        signer = KmsSigner(cfg.seal_kms_key_id)
    else:
        if not cfg.is_local and secret_of(cfg, "seal_secret") == settings_module.LOCAL_SEAL_SECRET:
            raise ValueError("outside the local stage the seal needs MIZANI_SEAL_KMS_KEY_ID (or MIZANI_SEAL_SECRET)")
        signer = HmacSigner(secret_of(cfg, "seal_secret"))  # a value, or an SSM/Secrets Manager ARN
    return Sealer(DynamoDaySource(cfg.table_prefix), DynamoDocuments(cfg.table("app")), S3Archive(cfg.statements_bucket),
                  signer)


def yesterday(now: float | None = None) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime((now if now is not None else time.time()) - 86400))


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m chalicelib.ledger.seal",
                                     description="Seal a day's transfers, or verify a sealed day.")
    parser.add_argument("command", choices=["seal", "verify"])
    parser.add_argument("day", help="YYYY-MM-DD (UTC)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    sealer = build_sealer()
    if args.command == "seal":
        doc = sealer.seal(args.day)
        print(json.dumps(doc, indent=2) if args.json else f"{args.day}: {doc['count']} transfers, root {doc['root']}")
        return 0
    result = sealer.verify(args.day)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    elif not result.sealed:
        print(f"{args.day}: not sealed")
    else:
        print(f"{args.day}: {result.transfers} transfers; signature {'ok' if result.signature_ok else 'WRONG'}; "
              f"sealed root {'ok' if result.root_ok else 'WRONG'}")
        for name, ids in (("altered", result.altered), ("added since the seal", result.added),
                          ("removed since the seal", result.removed)):
            for tid in ids:
                print(f"  {name}: {tid}")
        print("  intact" if result.intact else "  NOT intact")
    if not result.sealed:
        return 2
    return 0 if result.intact else 1


if __name__ == "__main__":
    sys.exit(main())
