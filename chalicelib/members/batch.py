"""Many documents in few requests: what registering a co-operative's members in bulk needs.

``get_many`` reads documents with ``BatchGetItem`` (100 keys a request, consistent reads; ``read_many``
with their versions);
``put_all_new`` creates documents with ``TransactWriteItems`` (``TRANSACTION_ITEMS`` a request),
each under ``attribute_not_exists(pk)`` exactly as ``Documents.put_new``: a transaction writes
all of its documents or none. Where a transaction is refused because some of its keys are
taken, those are reported as existing and the rest are written again without them, so the
outcome per document is the same as ``put_new``'s, one by one.

On DynamoDB the items are laid out as ``DynamoDocuments.put_new`` lays them out (``pk``,
``sk``, ``version`` 1, the JSON ``doc``, ``gsi1pk``/``gsi1sk``), so every other reader sees the
same documents; any other ``Documents`` (the in-memory one) gets the per-document calls.
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib import aws
from chalicelib.documents import DocumentExists, DynamoDocuments, Versioned, doc_of, new_item, versioned_of
from chalicelib.errors import Conflict

#: DynamoDB's limit of actions per TransactWriteItems.
TRANSACTION_ITEMS = 100
#: Members one bulk registration may name: their wallet numbers are claimed in one transaction.
MAX_MEMBERS = TRANSACTION_ITEMS


@dataclass(frozen=True)
class NewDocument:
    """A document to create (``put_new``'s arguments)."""

    pk: str
    doc: dict
    sk: str = "doc"
    index: tuple[str, str] | None = None


def _dynamo(docs) -> DynamoDocuments | None:
    return docs if isinstance(docs, DynamoDocuments) else None


def _raw_items(store: DynamoDocuments, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """The stored items among ``keys`` (consistent reads), by (pk, sk)."""
    items = aws.batch_get(store.client, store.table, [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in keys])
    return {(item["pk"]["S"], item["sk"]["S"]): item for item in items}


def get_many(docs, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """The documents that exist among ``keys`` ((pk, sk) pairs), by key."""
    unique = list(dict.fromkeys(keys))
    store = _dynamo(docs)
    if store is None:
        found = {key: docs.get(*key) for key in unique}
        return {key: doc for key, doc in found.items() if doc is not None}
    return {key: doc_of(item) for key, item in _raw_items(store, unique).items()}


def read_many(docs, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Versioned]:
    """``Documents.read`` of many keys, in ``BatchGetItem`` requests on DynamoDB: the documents that
    exist among ``keys``, each with its version (to hand to ``update(current=...)``), by key."""
    unique = list(dict.fromkeys(keys))
    store = _dynamo(docs)
    if store is None:
        found = {key: docs.read(*key) for key in unique}
        return {key: read for key, read in found.items() if read is not None}
    return {key: versioned_of(item) for key, item in _raw_items(store, unique).items()}


def _item(new: NewDocument) -> dict:
    return new_item(new.pk, new.doc, new.sk, new.index)


def put_all_new(docs, new: list[NewDocument], on_taken=None) -> list[bool]:
    """Create each document unless its key is taken; per document, ``True`` if this call wrote it
    (``False``: it existed, as ``put_new`` would have raised ``DocumentExists``).

    ``on_taken(documents)``: called with the documents whose keys were found taken before any other
    document of their transaction is written again; raising there leaves that transaction's
    documents unwritten (on DynamoDB: all of them, for at most ``TRANSACTION_ITEMS``)."""
    store = _dynamo(docs)
    if store is None:
        written = []
        for one in new:
            try:
                docs.put_new(one.pk, one.doc, one.sk, one.index)
                written.append(True)
            except DocumentExists:
                if on_taken is not None:
                    on_taken([one])
                written.append(False)
        return written
    if len({(n.pk, n.sk) for n in new}) != len(new):
        raise ValueError("a key is named twice")  # one transaction may not touch an item twice
    outcome: dict[int, bool] = {}
    for start in range(0, len(new), TRANSACTION_ITEMS):
        pending = list(range(start, min(start + TRANSACTION_ITEMS, len(new))))
        while pending:
            items = [_item(new[i]) for i in pending]
            try:
                store.client.transact_write_items(TransactItems=[
                    {"Put": {"TableName": store.table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}
                    for item in items])
            except store.client.exceptions.TransactionCanceledException as error:
                reasons = [(r or {}).get("Code") for r in error.response.get("CancellationReasons") or []]
                taken = [i for i, code in zip(pending, reasons) if code == "ConditionalCheckFailed"]
                if not taken:
                    # Another transaction held one of these items (a concurrent registration of the same
                    # members) or DynamoDB throttled it: nothing of this one was written; retrying is safe.
                    busy = Conflict("request_in_progress", "these documents are being written by another request; retry")
                    busy.retryable = True
                    raise busy from None
                written = _already_ours(store, [new[i] for i in taken])
                if on_taken is not None and not all(written):
                    on_taken([new[i] for i, ours in zip(taken, written) if not ours])
                for i, ours in zip(taken, written):
                    # An item exactly as this call would write it is ours (a retry after a lost reply).
                    outcome[i] = ours
                pending = [i for i in pending if i not in outcome]
                continue
            for i in pending:
                outcome[i] = True
            pending = []
    return [outcome[i] for i in range(len(new))]


def _already_ours(store: DynamoDocuments, taken: list[NewDocument]) -> list[bool]:
    """For documents whose key was taken: is the stored item exactly this write (our own earlier
    attempt, its reply lost)? ``put_new`` answers such a write as written, and so does this."""
    found = _raw_items(store, [(n.pk, n.sk) for n in taken])
    return [found.get((n.pk, n.sk)) == _item(n) for n in taken]
