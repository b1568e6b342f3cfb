"""``LedgerStore`` on DynamoDB: one ``TransactWriteItems`` per batch, zero reads.

Tables (defined once in ``infra/resources.base.json``):
  accounts  (account_id)            counters + maintained ``avail_c`` / ``avail_d``
  transfers (transfer_id)           immutable transfer; pending ones carry status/expires_at,
                                    and ``pending_open`` while they can still expire (sparse GSI);
                                    money that moved carries ``code_day`` = "<code>#<YYYY-MM-DD>"
                                    (sparse GSI ``by_code_day``: finance reads a day's movements by kind)
  entries   (account_id, seq)       one item per side of a transfer: the account's history

The invariants live in the condition expressions below, never in a read.
"""
from __future__ import annotations

import time
from typing import Iterable

from chalicelib import aws
from chalicelib.ledger.model import Account, AccountFlag, Entry, PendingStatus, Transfer, TransferKind, TransferRecord
from chalicelib.ledger.hashing import seal_day_key, transfer_hash
from chalicelib.sharding import Shards
from chalicelib.ledger.store import (
    AccountDelta,
    Batch,
    BatchContended,
    BatchRejected,
    ForeignWrite,
    PutEntry,
    PutTransfer,
    ResolvePending,
)

#: The sparse indexes' partition keys are split, as hot accounts are (``chalicelib/sharding.py``):
#: every pending transfer with a timeout is in ``open_pending``, and every posted payment, FX leg or
#: fee of a day in its ``<code>#<day>``; a transfer goes to the shard of its id (shard 0 is the
#: unsplit key), and a read queries every shard. ``make scale RATE=10000`` measures them.
INDEX_SHARDS = Shards({"": 8})
_OPEN = "1"

_CONTENDED = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "TransactionInProgress"}


def _s(value: str) -> dict:
    return {"S": value}


def _n(value: int) -> dict:
    return {"N": str(int(value))}


class DynamoLedgerStore:
    def __init__(self, table_prefix: str, client=None):
        prefix = table_prefix
        self._client = client
        self.accounts_table = f"{prefix}-accounts"
        self.transfers_table = f"{prefix}-transfers"
        self.entries_table = f"{prefix}-entries"

    client = aws.LazyDynamoClient()

    # -- write path --------------------------------------------------------
    def commit(self, batch: Batch) -> None:
        items, owner = [], []  # owner[i]: the index in batch.ops of TransactItems[i]
        for index, op in enumerate(batch.ops):
            if isinstance(op, ForeignWrite):
                if not op.write.items:
                    raise TypeError("an in-memory document write cannot ride in a DynamoDB transaction")
                found = op.write.items  # the app table's items (same account and region): one transaction
            else:
                found = [self._item(op)]
            items.extend(found)
            owner.extend([index] * len(found))
        try:
            self.client.transact_write_items(TransactItems=items)
        except self.client.exceptions.TransactionCanceledException as error:
            reasons = error.response.get("CancellationReasons") or []
            codes = [(r or {}).get("Code", "None") for r in reasons]
            if any(c in _CONTENDED for c in codes):
                raise BatchContended() from error
            failed = sorted({owner[i] for i, c in enumerate(codes) if c == "ConditionalCheckFailed" and i < len(owner)})
            raise BatchRejected(failed or None) from error
        except self.client.exceptions.TransactionInProgressException as error:
            raise BatchContended() from error

    def _item(self, op) -> dict:
        if isinstance(op, PutTransfer):
            return {
                "Put": {
                    "TableName": self.transfers_table,
                    "Item": _transfer_item(op.record),
                    # The transfer id is the idempotency key: a second write of the id fails here.
                    "ConditionExpression": "attribute_not_exists(transfer_id)",
                }
            }
        if isinstance(op, ResolvePending):
            if op.require_expired:
                condition = "#st = :pending AND expires_at > :zero AND expires_at <= :now"
            else:
                condition = "#st = :pending AND (expires_at = :zero OR expires_at > :now)"
            return {
                "Update": {
                    "TableName": self.transfers_table,
                    "Key": {"transfer_id": _s(op.pending_id)},
                    "UpdateExpression": "SET #st = :new, resolved_by = :by REMOVE pending_open",
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {"#st": "status"},
                    "ExpressionAttributeValues": {
                        ":pending": _s(PendingStatus.PENDING.value),
                        ":new": _s(op.new_status.value),
                        ":by": _s(op.resolved_by),
                        ":zero": _n(0),
                        ":now": _n(op.now_s),
                    },
                }
            }
        if isinstance(op, AccountDelta):
            values = {":cur": _s(op.currency)}
            adds = []
            for name in ("debits_pending", "debits_posted", "credits_pending", "credits_posted", "avail_c", "avail_d"):
                amount = getattr(op, name)
                if amount:
                    adds.append(f"{name} :{name}")
                    values[f":{name}"] = _n(amount)
            # "currency = :cur" fails for a missing account too: existence and same ledger in one check.
            condition = "currency = :cur"
            # Balance rules: DynamoDB conditions cannot add, so the counter is maintained
            # and compared with the net decrease this batch makes (pre-batch value).
            if op.need_c:
                condition += " AND (attribute_not_exists(dmnec) OR avail_c >= :need_c)"
                values[":need_c"] = _n(op.need_c)
            if op.need_d:
                condition += " AND (attribute_not_exists(cmned) OR avail_d >= :need_d)"
                values[":need_d"] = _n(op.need_d)
            update = {
                "TableName": self.accounts_table,
                "Key": {"account_id": _s(op.account_id)},
                "ConditionExpression": condition,
                "ExpressionAttributeValues": values,
            }
            if adds:
                update["UpdateExpression"] = "ADD " + ", ".join(adds)
                return {"Update": update}
            # A chain that nets to zero on this account still checks it exists in this currency.
            return {"ConditionCheck": {k: v for k, v in update.items()}}
        if isinstance(op, PutEntry):
            return {"Put": {"TableName": self.entries_table, "Item": _entry_item(op.entry, op.key)}}
        raise TypeError(op)

    # -- accounts ------------------------------------------------------------
    def put_account_if_absent(self, account: Account) -> bool:
        try:
            self.client.put_item(
                TableName=self.accounts_table,
                Item=_account_item(account),
                ConditionExpression="attribute_not_exists(account_id)",
            )
            return True
        except self.client.exceptions.ConditionalCheckFailedException:
            return False

    def get_accounts(self, account_ids: Iterable[str]) -> dict[str, Account]:
        items = self._batch_get(self.accounts_table, "account_id", account_ids)
        return {i["account_id"]["S"]: _account_from(i) for i in items}

    def scan_accounts(self) -> Iterable[Account]:
        paginator = self.client.get_paginator("scan")
        for page in paginator.paginate(TableName=self.accounts_table, ConsistentRead=True):
            for item in page.get("Items", []):
                yield _account_from(item)

    # -- transfers and history -------------------------------------------------
    def get_transfers(self, transfer_ids: Iterable[str]) -> dict[str, TransferRecord]:
        items = self._batch_get(self.transfers_table, "transfer_id", transfer_ids)
        return {i["transfer_id"]["S"]: _transfer_from(i) for i in items}

    def query_entries(self, partition: str, limit: int, cursor: str | None) -> tuple[list[Entry], str | None]:
        kwargs = {
            "TableName": self.entries_table,
            "KeyConditionExpression": "account_id = :a",
            "ExpressionAttributeValues": {":a": _s(partition)},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:  # a seq: also a bound for a shard's partition that never held that entry
            kwargs["KeyConditionExpression"] += " AND seq < :c"
            kwargs["ExpressionAttributeValues"][":c"] = _s(cursor)
        page = self.client.query(**kwargs)
        entries = [_entry_from(i) for i in page.get("Items", [])]
        last = page.get("LastEvaluatedKey")
        return entries, (last["seq"]["S"] if last else None)

    def query_expired_pending(self, now_s: int, limit: int) -> list[TransferRecord]:
        """The ``limit`` pending transfers that expired first (each shard's first ``limit``, merged)."""
        found = []
        for key in INDEX_SHARDS.physical_ids(_OPEN):
            page = self.client.query(
                TableName=self.transfers_table,
                IndexName="open_pending",
                KeyConditionExpression="pending_open = :open AND expires_at <= :now",
                ExpressionAttributeValues={":open": _s(key), ":now": _n(now_s)},
                Limit=limit,
            )
            found += [_transfer_from(i) for i in page.get("Items", [])]
        return sorted(found, key=lambda r: (r.expires_at, r.transfer.transfer_id))[:limit]

    def query_code_day(self, code: str, day: str) -> Iterable[TransferRecord]:
        """Transfers that moved money with ``code`` on ``day`` (UTC), for reconciliation."""
        paginator = self.client.get_paginator("query")
        for key in INDEX_SHARDS.physical_ids(f"{code}#{day}"):
            for page in paginator.paginate(
                TableName=self.transfers_table,
                IndexName="by_code_day",
                KeyConditionExpression="code_day = :k",
                ExpressionAttributeValues={":k": _s(key)},
            ):
                for item in page.get("Items", []):
                    yield _transfer_from(item)

    def _batch_get(self, table: str, key: str, ids: Iterable[str]) -> list[dict]:
        return aws.batch_get(self.client, table, [{key: _s(i)} for i in dict.fromkeys(ids)])


# -- item codecs ----------------------------------------------------------------
def _account_item(a: Account) -> dict:
    item = {
        "account_id": _s(a.account_id),
        "currency": _s(a.currency),
        "kind": _s(a.kind),
        "debits_pending": _n(a.debits_pending),
        "debits_posted": _n(a.debits_posted),
        "credits_pending": _n(a.credits_pending),
        "credits_posted": _n(a.credits_posted),
        "avail_c": _n(a.credits_posted - a.debits_posted - a.debits_pending),
        "avail_d": _n(a.debits_posted - a.credits_posted - a.credits_pending),
        "created_at": _n(a.created_at),
    }
    if AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS.value in a.flags:
        item["dmnec"] = {"BOOL": True}
    if AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS.value in a.flags:
        item["cmned"] = {"BOOL": True}
    return item


def _account_from(item: dict) -> Account:
    flags = set()
    if "dmnec" in item:
        flags.add(AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS.value)
    if "cmned" in item:
        flags.add(AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS.value)
    n = lambda k: int(item.get(k, {"N": "0"})["N"])  # noqa: E731
    return Account(
        account_id=item["account_id"]["S"],
        currency=item["currency"]["S"],
        kind=item.get("kind", {"S": "asset"})["S"],
        flags=frozenset(flags),
        debits_pending=n("debits_pending"),
        debits_posted=n("debits_posted"),
        credits_pending=n("credits_pending"),
        credits_posted=n("credits_posted"),
        created_at=n("created_at"),
    )


def _transfer_item(r: TransferRecord) -> dict:
    t = r.transfer
    item = {
        "transfer_id": _s(t.transfer_id),
        "debit_account_id": _s(t.debit_account_id),
        "credit_account_id": _s(t.credit_account_id),
        "amount": _n(t.amount),
        "currency": _s(t.currency),
        "kind": _s(TransferKind(t.kind).value),
        "timeout_seconds": _n(t.timeout_seconds),
        "timestamp": _n(t.timestamp),
    }
    for name in ("pending_id", "code", "reference"):
        if getattr(t, name):
            item[name] = _s(getattr(t, name))
    if t.meta:
        item["meta"] = {"M": {k: _s(str(v)) for k, v in t.meta.items()}}
    if t.code and TransferKind(t.kind) in (TransferKind.POSTED, TransferKind.POST_PENDING):
        day = time.strftime("%Y-%m-%d", time.gmtime(t.timestamp // 1_000_000_000))
        item["code_day"] = _s(_index_key(f"{t.code}#{day}", t.transfer_id))
    # Sealed books (ledger/seal.py): the transfer's own hash, and its day's shard of the by_seal_day index.
    item["hash"] = _s(transfer_hash(t))
    item["seal_day"] = _s(seal_day_key(t))
    if r.status is not None:
        item["status"] = _s(r.status.value)
        item["expires_at"] = _n(r.expires_at)
        if r.expires_at:
            item["pending_open"] = _s(_index_key(_OPEN, t.transfer_id))
    return item


def _index_key(key: str, transfer_id: str) -> str:
    return INDEX_SHARDS.physical(key, INDEX_SHARDS.shard_of(key, transfer_id))


def _transfer_from(item: dict) -> TransferRecord:
    s = lambda k: item.get(k, {"S": ""})["S"]  # noqa: E731
    n = lambda k: int(item.get(k, {"N": "0"})["N"])  # noqa: E731
    transfer = Transfer(
        transfer_id=s("transfer_id"),
        debit_account_id=s("debit_account_id"),
        credit_account_id=s("credit_account_id"),
        amount=n("amount"),
        currency=s("currency"),
        kind=TransferKind(s("kind")),
        pending_id=s("pending_id"),
        timeout_seconds=n("timeout_seconds"),
        code=s("code"),
        reference=s("reference"),
        timestamp=n("timestamp"),
        meta={k: v["S"] for k, v in item.get("meta", {"M": {}})["M"].items()},
    )
    status = PendingStatus(s("status")) if "status" in item else None
    return TransferRecord(transfer, status, n("expires_at"), s("resolved_by"), hash=s("hash"))


def _entry_item(e: Entry, partition: str) -> dict:
    item = {
        "account_id": _s(partition),
        "seq": _s(e.seq),
        "transfer_id": _s(e.transfer_id),
        "side": _s(e.side),
        "amount": _n(e.amount),
        "currency": _s(e.currency),
        "kind": _s(e.kind),
        "timestamp": _n(e.timestamp),
        "counterparty": _s(e.counterparty),
    }
    if e.code:
        item["code"] = _s(e.code)
    if e.reference:
        item["reference"] = _s(e.reference)
    return item


def _entry_from(item: dict) -> Entry:
    s = lambda k: item.get(k, {"S": ""})["S"]  # noqa: E731
    return Entry(
        account_id=s("account_id"),
        transfer_id=s("transfer_id"),
        side=s("side"),
        amount=int(item["amount"]["N"]),
        currency=s("currency"),
        kind=s("kind"),
        code=s("code"),
        reference=s("reference"),
        timestamp=int(item["timestamp"]["N"]),
        counterparty=s("counterparty"),
    )
