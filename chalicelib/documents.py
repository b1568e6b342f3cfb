"""Versioned documents in the app table: orders, sellers, payouts, events.

A document is a JSON object stored under (pk, sk) with a ``version``. Updates
are optimistic: read, apply a pure function, write with ``version = :seen``;
on a lost race, re-read and re-apply (the function re-checks its own rules,
e.g. an order's allowed status transitions). Balances never live here: money
is only in the ledger.

``DynamoDocuments`` is the adapter, ``MemoryDocuments`` its fake twin.
"""
from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from typing import Callable, Protocol

from chalicelib import aws
from chalicelib.errors import Conflict, ValidationError
from chalicelib.sharding import Shards

Mutation = Callable[[dict], dict | None]  # returns the new document, or None for "no change"

#: Constant index keys that every order, payout or message writes to, each split into N index
#: partitions (``payouts#open``, ``payouts#open/1``, ...): an item goes to the one its own pk
#: hashes to, and a read of the key merges them all. A GSI partition takes 1,000 WCU/s, as a
#: table's does, and at 10,000 money movements/s ``payouts#open`` alone took 22,477
#: (``make scale RATE=10000``). Writers and readers must agree: a count is only ever raised
#: (shard 0 is the key itself, so the items written before are still read).
INDEX_SHARDS = Shards({"payouts#open": 32, "outbox#pending": 32, "customs#decided": 16, "orders#": 16})


def is_sharded(gsi1pk: str) -> bool:
    return INDEX_SHARDS.count(gsi1pk) > 1


def stored_index(pk: str, index: tuple[str, str] | None) -> tuple[str, str] | None:
    """The (gsi1pk, gsi1sk) an item is stored under: its index key's shard for ``pk``."""
    if index is None or not is_sharded(index[0]):
        return index
    return INDEX_SHARDS.physical(index[0], INDEX_SHARDS.shard_of(index[0], pk)), index[1]


class ShardedIndexReads:
    """Reads of a sharded index key (``INDEX_SHARDS``): each shard's partition read in order and
    merged. An adapter provides ``_index_rows``. Sort keys of a sharded index are unique (each
    ends with its item's id), so a cursor is a position in every shard's partition at once."""

    def _index_rows(self, keys: list[str], lo: str | None, hi: str | None, newest_first: bool,
                    limit: int) -> list[tuple[str, str, str, dict]]:
        """(gsi1sk, pk, sk, doc) of up to ``limit`` items of each key with lo <= gsi1sk <= hi."""
        raise NotImplementedError

    def _merged(self, gsi1pk: str, limit: int, newest_first: bool, start: str | None = None,
                end: str | None = None, cursor: str | None = None) -> tuple[list[dict], str | None]:
        mark = None
        lo, hi = start, end  # end is exclusive: filtered below
        if cursor is not None:
            at = decode_cursor(cursor, gsi1pk)
            mark = (at["gsi1sk"]["S"], at["pk"]["S"], at["sk"]["S"])
            if newest_first:
                hi = mark[0] if hi is None else min(hi, mark[0])
            else:
                lo = mark[0] if lo is None else max(lo, mark[0])
        rows = [] if lo is not None and hi is not None and lo > hi else \
            self._index_rows(INDEX_SHARDS.physical_ids(gsi1pk), lo, hi, newest_first, limit + 2)
        # limit + 2 per shard: one to tell whether more follow, one for the cursor's own row.
        rows = [r for r in rows if (end is None or r[0] < end)
                and (mark is None or (r[:3] < mark if newest_first else r[:3] > mark))]
        rows.sort(key=lambda r: r[:3], reverse=newest_first)
        page = rows[:limit]
        return [r[3] for r in page], (row_cursor(gsi1pk, page[-1]) if len(rows) > limit else None)


class DocumentExists(Exception):
    """A document with that key already exists."""


@dataclass(frozen=True)
class Versioned:
    """A document as read, with the version a conditional write of it names (``update(current=...)``)."""

    doc: dict
    version: int


class WriteRefused(Exception):
    """A prepared write's condition failed (the document changed since it was read): nothing was written."""


class WriteContended(Exception):
    """A prepared write met throttling or a concurrent transaction: nothing was written, a retry may succeed."""


class DocWrite:
    """A conditional write of one document (version = the one read), prepared to ride in another
    store's atomic commit: the ledger's ``TransactWriteItems`` carries ``items`` (the order's status
    and the money it moves commit together or not at all). A store that is not DynamoDB calls
    ``commit()``, which writes all of it or nothing (``WriteRefused``, ``WriteContended``).

    ``doc`` is the document as the write leaves it, ``version`` its version then."""

    def __init__(self, doc: dict, items: list[dict] | None, commit: Callable[[], None], version: int = 0):
        self.doc = doc
        self.items = items
        self.version = version
        self._commit = commit

    def committed(self) -> "Versioned":
        """The document as this write left it (after it committed, here or in another store's transaction)."""
        return Versioned(self.doc, self.version)

    def commit(self) -> None:
        self._commit()


class Documents(Protocol):
    def get(self, pk: str, sk: str = "doc") -> dict | None: ...

    def put_new(self, pk: str, doc: dict, sk: str = "doc", index: tuple[str, str] | None = None) -> None:
        """Create; raise DocumentExists if the key is taken. ``index`` = (gsi1pk, gsi1sk)."""

    def put_new_all(self, docs: list[tuple[str, dict, str, tuple[str, str] | None]]) -> None:
        """Create every (pk, doc, sk, index) of ``docs`` in one atomic write (each at version 1), or
        none: ``DocumentExists`` if any key is taken."""

    def read(self, pk: str, sk: str = "doc") -> Versioned | None:
        """The document and its version (for ``update``/``prepare_update`` with ``current``)."""

    def update(self, pk: str, mutate: Mutation, sk: str = "doc", current: Versioned | None = None) -> dict:
        """Apply ``mutate`` to the current document atomically (optimistic, retried); returns the result.

        ``current``: the document as the caller just read it (``read``), so the first attempt spares a
        read; if it is stale, the version condition refuses the write and the next attempt reads."""

    def prepare_update(self, pk: str, mutate: Mutation, sk: str = "doc",
                       current: Versioned | None = None) -> tuple[Versioned, DocWrite | None]:
        """The document now and the write ``mutate`` makes of it (``None``: no change), not yet
        committed: another store's transaction commits it (``DocWrite``). ``KeyError`` if absent."""

    def commit_with(self, write: DocWrite, put_new: list[tuple[str, dict, str, tuple[str, str] | None]] = (),
                    delete: list[tuple[str, str]] = ()) -> None:
        """``write`` (a ``prepare_update``) together with creating each (pk, doc, sk, index) of ``put_new``
        (only where its key is free) and deleting each (pk, sk) of ``delete``, in one atomic write: all of
        it or nothing. ``WriteRefused``: the document changed since it was read, or a key to create is
        taken; ``WriteContended``: throttled or held by another transaction. Either way nothing changed."""

    def prepare_new(self, docs: list[tuple[str, dict, str, tuple[str, str] | None]]) -> DocWrite:
        """``put_new_all`` prepared to ride in another store's atomic commit (each key must be free, or
        nothing of it, nor of that commit, is written)."""
        ...

    def also_deleting(self, write: DocWrite, keys: list[tuple[str, str]]) -> DocWrite:
        """``write`` that also deletes each (pk, sk) of ``keys`` when it commits, wherever it commits (alone,
        or riding in the ledger's transaction): a payout's ``succeeded`` and its leaving the open list."""

    def query_index(self, gsi1pk: str, limit: int = 100, newest_first: bool = True) -> list[dict]: ...

    def query_page(self, gsi1pk: str, limit: int, cursor: str | None = None,
                   newest_first: bool = True) -> tuple[list[dict], str | None]:
        """One page of ``query_index`` and an opaque cursor for the next (``None``: the last page).
        A cursor that is not one of ours raises ``ValidationError`` (``invalid_cursor``)."""

    def claim(self, pk: str, sk: str = "claim") -> bool:
        """Record a marker once; False if it was already there (event de-duplication)."""

    def delete(self, pk: str, sk: str = "doc") -> None: ...

    def add_within(self, pk: str, member: str, amount: int, maximum: int) -> bool:
        """Add ``amount`` to the counter at ``pk`` once per ``member``, only while the total
        stays within ``maximum``; True if counted (now or by an earlier call for ``member``)."""

    def add_all_within(self, pk: str, members: dict[str, int], maximum: int) -> bool:
        """``add_within`` for several members at once, all or none: True if every member is
        counted (now, or all of them by an earlier call), False if the total would not fit."""


def matching_page(docs, gsi1pk: str, limit: int, cursor: str | None, keep, newest_first: bool = True,
                  max_read: int = 1000) -> tuple[list[dict], str | None]:
    """Up to ``limit`` documents of an index that ``keep`` accepts, and the cursor after the last one read.

    Reads on past the ones it leaves out, so a filtered list is not short because its first page
    of the index held other rows; it stops after ``max_read`` rows read and then hands back a cursor
    (``has_more``) rather than reading a whole index in one request. Each read asks for no more rows
    than are still wanted, so the cursor never skips a match it did not return.
    """
    kept: list[dict] = []
    read = 0
    while True:
        found, cursor = docs.query_page(gsi1pk, limit - len(kept), cursor, newest_first=newest_first)
        read += len(found)
        kept.extend(d for d in found if keep(d))
        if cursor is None or len(kept) >= limit or read >= max_read:
            return kept, cursor


def key_condition(gsi1pk: str, lo: str | None, hi: str | None, hi_inclusive: bool = True) -> tuple[str, dict]:
    """The KeyConditionExpression and its values of a gsi1 query for ``gsi1pk``, lo <= gsi1sk <= hi
    (``hi_inclusive`` False: < hi; BETWEEN is inclusive, so a range with both bounds includes hi)."""
    condition, values = "gsi1pk = :p", {":p": {"S": gsi1pk}}
    if lo is not None and hi is not None:
        condition += " AND gsi1sk BETWEEN :a AND :b"
        values.update({":a": {"S": lo}, ":b": {"S": hi}})
    elif lo is not None:
        condition += " AND gsi1sk >= :a"
        values[":a"] = {"S": lo}
    elif hi is not None:
        condition += " AND gsi1sk " + ("<=" if hi_inclusive else "<") + " :b"
        values[":b"] = {"S": hi}
    return condition, values


def row_cursor(gsi1pk: str, row: tuple) -> str:
    """The cursor after an index row (gsi1sk, pk, sk, ...) of the list ``gsi1pk``."""
    return encode_cursor({"pk": {"S": row[1]}, "sk": {"S": row[2]}, "gsi1pk": {"S": gsi1pk}, "gsi1sk": {"S": row[0]}})


def encode_cursor(position: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, gsi1pk: str) -> dict:
    """The position a cursor names, checked to belong to the same list (a cursor is not a key to others' rows)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)
        if not isinstance(position, dict) or position.get("gsi1pk", {}).get("S") != gsi1pk:
            raise ValueError(cursor)
        if set(position) != {"pk", "sk", "gsi1pk", "gsi1sk"} or not all(
            isinstance(v, dict) and isinstance(v.get("S"), str) for v in position.values()
        ):
            raise ValueError(cursor)
        return position
    except (ValueError, TypeError, AttributeError, RecursionError):  # RecursionError: a cursor of "[[[[..."
        raise ValidationError("invalid_cursor", "the cursor is not one this list gave", path="cursor") from None


class MemoryDocuments(ShardedIndexReads):
    def __init__(self) -> None:
        self._lock = threading.RLock()  # re-entrant: ``commit_with`` commits a prepared write under it
        self.items: dict[tuple[str, str], tuple[int, str, tuple[str, str] | None]] = {}

    def get(self, pk, sk="doc"):
        with self._lock:
            found = self.items.get((pk, sk))
        return json.loads(found[1]) if found else None

    def put_new(self, pk, doc, sk="doc", index=None):
        with self._lock:
            if (pk, sk) in self.items:
                raise DocumentExists(pk)
            self.items[(pk, sk)] = (1, json.dumps(doc), stored_index(pk, index))

    def put_new_all(self, docs):
        with self._lock:
            taken = [pk for pk, _, sk, _ in docs if (pk, sk) in self.items]
            if taken:
                raise DocumentExists(taken[0])
            for pk, doc, sk, index in docs:
                self.items[(pk, sk)] = (1, json.dumps(doc), stored_index(pk, index))

    def read(self, pk, sk="doc"):
        with self._lock:
            found = self.items.get((pk, sk))
        return Versioned(json.loads(found[1]), found[0]) if found else None

    def update(self, pk, mutate, sk="doc", current=None):
        with self._lock:  # under the lock the document cannot be stale: ``current`` is not needed
            version, raw, index = self.items[(pk, sk)]
            new = mutate(json.loads(raw))
            if new is None:
                return json.loads(raw)
            self.items[(pk, sk)] = (version + 1, json.dumps(new), index)
        self._written(pk, sk, new)
        return new

    def prepare_update(self, pk, mutate, sk="doc", current=None):
        current = current or self.read(pk, sk)
        if current is None:
            raise KeyError(pk)
        new = mutate(current.doc)
        if new is None:
            return current, None
        payload = json.dumps(new)

        def commit() -> None:
            with self._lock:
                found = self.items.get((pk, sk))
                if found is None or found[0] != current.version:
                    raise WriteRefused(pk)
                self.items[(pk, sk)] = (current.version + 1, payload, found[2])
            self._written(pk, sk, json.loads(payload))

        return current, DocWrite(new, None, commit, current.version + 1)

    def commit_with(self, write, put_new=(), delete=()):
        with self._lock:
            if any((pk, sk) in self.items for pk, _, sk, _ in put_new):
                raise WriteRefused(next(pk for pk, _, sk, _ in put_new if (pk, sk) in self.items))
            write.commit()  # WriteRefused if the document moved on: nothing else written either
            for pk, doc, sk, index in put_new:
                self.items[(pk, sk)] = (1, json.dumps(doc), stored_index(pk, index))
            for pk, sk in delete:
                self.items.pop((pk, sk), None)

    def prepare_new(self, docs):
        def commit() -> None:
            try:
                self.put_new_all(docs)
            except DocumentExists as taken:
                raise WriteRefused(str(taken)) from None

        return DocWrite(None, None, commit, 1)

    def also_deleting(self, write, keys):
        def commit() -> None:
            with self._lock:
                write.commit()
                for pk, sk in keys:
                    self.items.pop((pk, sk), None)

        return DocWrite(write.doc, None, commit, write.version)

    def _written(self, pk, sk, doc) -> None:
        """After a document's update (``IndexedMemoryDocuments`` keeps an order's projections here)."""

    def _index_rows(self, keys, lo, hi, newest_first, limit):
        wanted = set(keys)
        with self._lock:
            found = [(i[0], (i[1], pk, sk, raw)) for (pk, sk), (_, raw, i) in self.items.items()
                     if i and i[0] in wanted and (lo is None or i[1] >= lo) and (hi is None or i[1] <= hi)]
        rows = []
        for key in keys:
            mine = sorted((r for k, r in found if k == key), reverse=newest_first)[:limit]
            rows += [(a, b, c, json.loads(raw)) for a, b, c, raw in mine]
        return rows

    def query_index(self, gsi1pk, limit=100, newest_first=True):
        if is_sharded(gsi1pk):
            return self._merged(gsi1pk, limit, newest_first)[0]
        with self._lock:
            rows = [(i[1], json.loads(raw)) for (_, raw, i) in self.items.values() if i and i[0] == gsi1pk]
        rows.sort(key=lambda r: r[0], reverse=newest_first)
        return [doc for _, doc in rows[:limit]]

    def query_page(self, gsi1pk, limit, cursor=None, newest_first=True):
        if is_sharded(gsi1pk):
            return self._merged(gsi1pk, limit, newest_first, cursor=cursor)
        with self._lock:
            rows = sorted(((i[1], pk, sk, raw) for (pk, sk), (_, raw, i) in self.items.items() if i and i[0] == gsi1pk),
                          reverse=newest_first)
        if cursor is not None:
            at = decode_cursor(cursor, gsi1pk)
            mark = (at["gsi1sk"]["S"], at["pk"]["S"], at["sk"]["S"])
            rows = [r for r in rows if (r[:3] < mark if newest_first else r[:3] > mark)]
        page = rows[:limit]
        return [json.loads(r[3]) for r in page], (row_cursor(gsi1pk, page[-1]) if len(rows) > limit else None)

    def claim(self, pk, sk="claim"):
        with self._lock:
            if (pk, sk) in self.items:
                return False
            self.items[(pk, sk)] = (1, "{}", None)
            return True


    def delete(self, pk, sk="doc"):
        with self._lock:
            self.items.pop((pk, sk), None)

    def add_within(self, pk, member, amount, maximum):
        return self.add_all_within(pk, {member: amount}, maximum)

    def add_all_within(self, pk, members, maximum):
        with self._lock:
            _, raw, _ = self.items.get((pk, "counter"), (0, '{"used": 0, "members": []}', None))
            counter = json.loads(raw)
            present = [m for m in members if m in counter["members"]]
            if present:
                return len(present) == len(members)
            total = sum(members.values())
            if counter["used"] + total > maximum:
                return False
            counter = {"used": counter["used"] + total, "members": counter["members"] + list(members)}
            self.items[(pk, "counter")] = (1, json.dumps(counter), None)
            return True

    def remove_from(self, pk, member, amount):
        with self._lock:
            found = self.items.get((pk, "counter"))
            if not found:
                return
            counter = json.loads(found[1])
            if member in counter["members"]:
                counter = {"used": counter["used"] - amount, "members": [m for m in counter["members"] if m != member]}
                self.items[(pk, "counter")] = (1, json.dumps(counter), None)


def new_item(pk: str, doc: dict, sk: str = "doc", index: tuple[str, str] | None = None) -> dict:
    """A new document as the app table stores it (version 1; ``index`` = (gsi1pk, gsi1sk))."""
    item = {"pk": {"S": pk}, "sk": {"S": sk}, "version": {"N": "1"}, "doc": {"S": json.dumps(doc)}}
    index = stored_index(pk, index)
    if index:
        item["gsi1pk"], item["gsi1sk"] = {"S": index[0]}, {"S": index[1]}
    return item


def doc_of(item: dict) -> dict:
    """The document a stored item holds (a claim marker has no body: it exists, and that is all it says)."""
    return json.loads(item["doc"]["S"]) if "doc" in item else {}


def versioned_of(item: dict) -> Versioned:
    return Versioned(doc_of(item), int(item.get("version", {"N": "0"})["N"]))


class DynamoDocuments(ShardedIndexReads):
    def __init__(self, table: str, client=None, max_attempts: int = 8):
        self._client = client
        self.table = table
        self.max_attempts = max_attempts

    client = aws.LazyDynamoClient()

    def _put_new_element(self, pk: str, doc: dict, sk: str, index) -> dict:
        """A TransactWriteItems element creating a document only where its key is free."""
        return {"Put": {"TableName": self.table, "Item": new_item(pk, doc, sk, index),
                        "ConditionExpression": "attribute_not_exists(pk)"}}

    def _delete_element(self, pk: str, sk: str) -> dict:
        return {"Delete": {"TableName": self.table, "Key": {"pk": {"S": pk}, "sk": {"S": sk}}}}

    def get(self, pk, sk="doc"):
        item = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        return doc_of(item)

    def put_new(self, pk, doc, sk="doc", index=None):
        item = new_item(pk, doc, sk, index)
        try:
            self.client.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except self.client.exceptions.ConditionalCheckFailedException:
            # botocore sends a request again when its reply was lost (a 500 or a timeout after the write):
            # the retry then fails this condition on the item its first attempt wrote. That item, still
            # exactly ours, is our write; anything else is another's document.
            found = self.client.get_item(TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": sk}},
                                         ConsistentRead=True).get("Item")
            if found != item:
                raise DocumentExists(pk) from None

    def put_new_all(self, docs):
        items = []
        for pk, doc, sk, index in docs:
            items.append(self._put_new_element(pk, doc, sk, index))
        for attempt in range(self.max_attempts):
            try:
                # botocore sends TransactWriteItems with a ClientRequestToken: a retry of a lost reply is
                # answered as the first request was, never refused by the items its first attempt wrote.
                self.client.transact_write_items(TransactItems=items)
                return
            except self.client.exceptions.TransactionCanceledException as error:
                codes = [(r or {}).get("Code") for r in error.response.get("CancellationReasons") or []]
                if "ConditionalCheckFailed" in codes:
                    raise DocumentExists(docs[codes.index("ConditionalCheckFailed")][0]) from None
                if attempt == self.max_attempts - 1:
                    raise  # throttled or held by other transactions throughout: nothing written, retryable

    def read(self, pk, sk="doc"):
        item = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        return versioned_of(item)

    def _snapshot(self, pk: str, sk: str, doc: dict):
        """What ``_update_items`` may want of the document as stored, taken before a mutation runs
        (which may change its argument in place). None here: nothing."""
        return None

    def _update_items(self, pk: str, sk: str, seen: int, new: dict, before=None) -> list[dict]:
        """The TransactWriteItems elements of a version-conditioned update of (pk, sk) to ``new``
        (``before``: the ``_snapshot`` of the document at version ``seen``, when taken)."""
        return [{"Update": {
            "TableName": self.table, "Key": {"pk": {"S": pk}, "sk": {"S": sk}},
            "UpdateExpression": "SET doc = :doc, version = version + :one",
            "ConditionExpression": "version = :seen",
            "ExpressionAttributeValues": {":doc": {"S": json.dumps(new)}, ":one": {"N": "1"}, ":seen": {"N": str(seen)}},
        }}]

    def prepare_update(self, pk, mutate, sk="doc", current=None):
        current = current or self.read(pk, sk)
        if current is None:
            raise KeyError(pk)
        before = self._snapshot(pk, sk, current.doc)
        new = mutate(current.doc)
        if new is None:
            return current, None
        items = self._update_items(pk, sk, current.version, new, before)
        return current, DocWrite(new, items, lambda: self._commit_items(items), current.version + 1)

    def _commit_items(self, items: list[dict]) -> None:
        """One TransactWriteItems of prepared items, alone (when the store carrying them is not DynamoDB)."""
        try:
            self.client.transact_write_items(TransactItems=items)
        except self.client.exceptions.TransactionCanceledException as error:
            codes = [(r or {}).get("Code") for r in error.response.get("CancellationReasons") or []]
            if "ConditionalCheckFailed" in codes:
                raise WriteRefused(items[0]) from None
            raise WriteContended(items[0]) from None

    def commit_with(self, write, put_new=(), delete=()):
        items = list(write.items)
        for pk, doc, sk, index in put_new:
            items.append(self._put_new_element(pk, doc, sk, index))
        items += [self._delete_element(pk, sk) for pk, sk in delete]
        self._commit_items(items)

    def prepare_new(self, docs):
        items = [self._put_new_element(pk, doc, sk, index) for pk, doc, sk, index in docs]
        return DocWrite(None, items, lambda: self._commit_items(items), 1)

    def also_deleting(self, write, keys):
        items = list(write.items) + [self._delete_element(pk, sk) for pk, sk in keys]
        return DocWrite(write.doc, items, lambda: self._commit_items(items), write.version)

    def update(self, pk, mutate, sk="doc", current=None):
        key = {"pk": {"S": pk}, "sk": {"S": sk}}
        refused = None  # (version, doc) our last refused write would have left
        given, current = current, None
        for _ in range(self.max_attempts):
            if given is not None:  # the caller's own read of it, just now: spared once
                item = {"version": {"N": str(given.version)}, "doc": {"S": json.dumps(given.doc)}}
                given = None
            else:
                item = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
            if item is None:
                raise KeyError(pk)
            if refused is not None and (item["version"]["N"], item["doc"]["S"]) == refused[:2]:
                # The refused write is in the table: it landed, its reply was lost, and botocore's retry
                # of the same request failed the version condition our own write had moved on. It is
                # done: applying the mutation again would see its own result (and refuse, or repeat it).
                return refused[2]
            current = json.loads(item["doc"]["S"])
            new = mutate(current)
            if new is None:
                return current
            version = item["version"]["N"]
            payload = json.dumps(new)
            try:
                # Optimistic concurrency: only if nobody wrote since we read.
                self.client.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression="SET doc = :doc, version = version + :one",
                    ConditionExpression="version = :seen",
                    ExpressionAttributeValues={
                        ":doc": {"S": payload},
                        ":one": {"N": "1"},
                        ":seen": {"N": version},
                    },
                )
                return new
            except self.client.exceptions.ConditionalCheckFailedException:
                refused = (str(int(version) + 1), payload, new)
                continue
        raise Conflict("request_in_progress", "the object is being changed by another request; retry")

    def _index_rows(self, keys, lo, hi, newest_first, limit):
        rows = []
        for key in keys:
            condition, values = key_condition(key, lo, hi)
            reply = self.client.query(TableName=self.table, IndexName="gsi1", KeyConditionExpression=condition,
                                      ExpressionAttributeValues=values, ScanIndexForward=not newest_first, Limit=limit)
            rows += [(i["gsi1sk"]["S"], i["pk"]["S"], i["sk"]["S"], json.loads(i["doc"]["S"]))
                     for i in reply.get("Items", []) if "doc" in i]
        return rows

    def query_index(self, gsi1pk, limit=100, newest_first=True):
        if is_sharded(gsi1pk):
            return self._merged(gsi1pk, limit, newest_first)[0]
        condition, values = key_condition(gsi1pk, None, None)
        reply = self.client.query(TableName=self.table, IndexName="gsi1", KeyConditionExpression=condition,
                                  ExpressionAttributeValues=values, ScanIndexForward=not newest_first, Limit=limit)
        return [json.loads(i["doc"]["S"]) for i in reply.get("Items", []) if "doc" in i]

    def query_page(self, gsi1pk, limit, cursor=None, newest_first=True):
        if is_sharded(gsi1pk):
            return self._merged(gsi1pk, limit, newest_first, cursor=cursor)
        condition, values = key_condition(gsi1pk, None, None)
        request = {"TableName": self.table, "IndexName": "gsi1", "KeyConditionExpression": condition,
                   "ExpressionAttributeValues": values, "ScanIndexForward": not newest_first, "Limit": limit}
        if cursor is not None:
            request["ExclusiveStartKey"] = decode_cursor(cursor, gsi1pk)
        reply = self.client.query(**request)
        docs = [json.loads(i["doc"]["S"]) for i in reply.get("Items", []) if "doc" in i]
        last = reply.get("LastEvaluatedKey")
        following = encode_cursor(last) if last else None
        if following is not None:
            # DynamoDB names a last key whenever the page is full; look one row ahead so that a
            # page ending exactly at the end says so (``has_more`` false, no empty page after it).
            request["ExclusiveStartKey"], request["Limit"] = last, 1
            if not self.client.query(**request).get("Items"):
                following = None
        return docs, following

    def claim(self, pk, sk="claim"):
        try:
            self.client.put_item(
                TableName=self.table,
                Item={"pk": {"S": pk}, "sk": {"S": sk}, "doc": {"S": "{}"}},  # as MemoryDocuments stores it
                ConditionExpression="attribute_not_exists(pk)",
            )
            return True
        except self.client.exceptions.ConditionalCheckFailedException:
            return False

    def delete(self, pk, sk="doc"):
        self.client.delete_item(TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": sk}})

    def add_within(self, pk, member, amount, maximum):
        return self.add_all_within(pk, {member: amount}, maximum)

    def add_all_within(self, pk, members, maximum):
        key = {"pk": {"S": pk}, "sk": {"S": "counter"}}
        names = list(members)
        total = sum(members.values())

        def all_counted() -> bool:
            item = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item") or {}
            counted = set(item.get("members", {}).get("SS", []))
            return all(name in counted for name in names)

        if total > maximum:
            # Never fits, even on a fresh counter (where the condition below has no ``used`` to
            # compare); only an earlier call may have counted these members (under another maximum).
            return all_counted()
        absent = " AND ".join(f"NOT contains(members, :id{i})" for i in range(len(names)))
        try:
            # One conditional ADD: every member counted once, together, never past the maximum.
            self.client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="ADD used :amt, members :m",
                ConditionExpression=f"(attribute_not_exists(used) OR used <= :room) AND {absent}",
                ExpressionAttributeValues={
                    ":amt": {"N": str(total)},
                    ":m": {"SS": names},
                    ":room": {"N": str(maximum - total)},
                    **{f":id{i}": {"S": name} for i, name in enumerate(names)},
                },
            )
            return True
        except self.client.exceptions.ConditionalCheckFailedException:
            return all_counted()

    def remove_from(self, pk, member, amount):
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": pk}, "sk": {"S": "counter"}},
                UpdateExpression="ADD used :neg DELETE members :m",
                ConditionExpression="contains(members, :id)",
                ExpressionAttributeValues={":neg": {"N": str(-amount)}, ":m": {"SS": [member]}, ":id": {"S": member}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            pass  # not counted (or already released)
