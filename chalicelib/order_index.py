"""Orders by status, and customs decisions, kept beside the order documents in the same write.

The order document (``order#<id>``) is indexed by its seller only. Finance asks other questions:
which orders are ``shipped`` and still waiting for customs, how long each office took to decide.
So every write of an order document also writes, in the same ``TransactWriteItems``, its small
*projections* (app table, gsi1)::

    orderidx#<id>     gsi1 ``orders#<status>``, sorted by the order's ``updated_at``: one per order,
                      moved to its new status on every change (the console's orders by status)
    customsdec#<id>   gsi1 ``customs#decided``, sorted by when customs decided: written once a
                      decision (cleared or rejected) is on the order, with the office and the hours
                      from ``shipped`` to the decision

The projections are written by the documents adapter (``IndexedDynamoDocuments``, and its twin
``IndexedMemoryDocuments``), so no service that changes an order has to remember them and a crash
cannot leave one behind the order: the order's version condition and the projection puts commit
together or not at all. ``OrderIndex`` reads them.
"""
from __future__ import annotations

import json
import re
from datetime import datetime

from chalicelib.documents import (
    DocumentExists,
    DynamoDocuments,
    MemoryDocuments,
    decode_cursor,
    encode_cursor,
    is_sharded,
    key_condition,
    new_item,
    stored_index,
)
from chalicelib.errors import Conflict

ORDER_PREFIX = "order#"
STATUS_INDEX = "orders#{status}"
DECIDED_INDEX = "customs#decided"
DECISIONS = {"customs_cleared": "cleared", "customs_rejected": "rejected"}
_OFFICE_IN_DETAIL = re.compile(r"^customs \w+ at (.+) \([^()]*\)$")


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def hours_between(start: str, end: str) -> float:
    return round((_parse(end) - _parse(start)).total_seconds() / 3600, 2)


def customs_facts(order: dict) -> dict:
    """When the order was shipped, which office has it, and when customs decided (from its timeline)."""
    shipped_at = decided_at = office = None
    for entry in order.get("timeline") or []:
        if entry.get("status") == "shipped":
            shipped_at = entry["at"]
        elif entry.get("status") in DECISIONS and decided_at is None:
            decided_at = entry["at"]
        found = _OFFICE_IN_DETAIL.match(entry.get("detail") or "") if entry.get("status", "").startswith("customs") else None
        if found:
            office = found.group(1)
    customs = order.get("customs") or {}
    office = customs.get("office") or office or (order.get("shipment") or {}).get("customs_office")
    return {"shipped_at": shipped_at, "decided_at": decided_at if customs.get("outcome") else None,
            "office": office, "outcome": customs.get("outcome")}


def summary(order: dict) -> dict:
    """What the index keeps of an order: enough for a list row and the customs report."""
    return {
        "order_id": order["order_id"], "status": order["status"], "seller_id": order.get("seller_id"),
        "buyer_id": order.get("buyer_id"), "pay": order.get("pay"), "payout": order.get("payout"),
        "created_at": order.get("created_at"), "updated_at": order.get("updated_at"), **customs_facts(order),
    }


def projections(order: dict) -> list[tuple[str, tuple[str, str], dict]]:
    """(pk, (gsi1pk, gsi1sk), body) of every projection of ``order`` (see the module docstring)."""
    row = summary(order)
    oid = order["order_id"]
    found = [(f"orderidx#{oid}", (STATUS_INDEX.format(status=row["status"]), f"{row['updated_at']}#{oid}"), row)]
    if row["decided_at"] and row["shipped_at"]:
        decision = {"order_id": oid, "office": row["office"], "outcome": row["outcome"], "shipped_at": row["shipped_at"],
                    "decided_at": row["decided_at"], "hours": hours_between(row["shipped_at"], row["decided_at"]),
                    "seller_id": row["seller_id"]}
        found.append((f"customsdec#{oid}", (DECIDED_INDEX, f"{row['decided_at']}#{oid}"), decision))
    return found


def order_links(order: dict) -> list[tuple[str, tuple[str, str] | None]]:
    """(pk, index) of the documents that find an order from elsewhere, each ``{"order_id": ...}``:
    its buyer's list (gsi1 ``buyer#<buyer>``) and its PaymentIntent's link (the card webhook's way
    to the order). Written with the order's creation, in the same transaction, by the indexed
    adapters (``links_orders``); ``EscrowService`` writes them itself on any other adapter."""
    links = []
    if order.get("buyer_id") and order.get("created_at"):
        links.append((f"buyerorder#{order['order_id']}",
                      (f"buyer#{order['buyer_id']}", f"{order['created_at']}#{order['order_id']}")))
    if (order.get("payment") or {}).get("payment_intent_id"):
        links.append((f"pi#{order['payment']['payment_intent_id']}", None))
    return links


def _is_order(pk: str, sk: str) -> bool:
    return pk.startswith(ORDER_PREFIX) and sk == "doc"


class IndexedDynamoDocuments(DynamoDocuments):
    """``DynamoDocuments`` whose order writes carry their projections in the same transaction, and
    whose order creation carries the order's links (``order_links``)."""

    links_orders = True  # put_new of an order writes its links (EscrowService need not)

    def _link_puts(self, order: dict) -> list[dict]:
        puts = []
        for pk, index in order_links(order):
            # Unconditional: a link's body is the order's id, the same whoever writes it (a retry, or
            # EscrowService's own write of a missing link).
            item = {"pk": {"S": pk}, "sk": {"S": "doc"}, "version": {"N": "1"},
                    "doc": {"S": json.dumps({"order_id": order["order_id"]})}}
            index = stored_index(pk, index)
            if index:
                item["gsi1pk"], item["gsi1sk"] = {"S": index[0]}, {"S": index[1]}
            puts.append({"Put": {"TableName": self.table, "Item": item}})
        return puts

    def _projection_puts(self, order: dict, before: set | None = None) -> list[dict]:
        """The puts of the order's projections; with ``before`` (``_snapshot`` of the order as
        stored, which the same transaction's version condition pins), only those that changed."""
        puts = []
        for pk, index, body in projections(order):
            if before and (pk, index, json.dumps(body, sort_keys=True)) in before:
                continue
            ipk, isk = stored_index(pk, index)
            puts.append({"Put": {"TableName": self.table, "Item": {
                "pk": {"S": pk}, "sk": {"S": "doc"}, "version": {"N": "1"}, "doc": {"S": json.dumps(body)},
                "gsi1pk": {"S": ipk}, "gsi1sk": {"S": isk}}}})
        return puts

    def put_new(self, pk, doc, sk="doc", index=None):
        if not _is_order(pk, sk):
            return super().put_new(pk, doc, sk, index)
        item = new_item(pk, doc, sk, index)
        try:
            self.client.transact_write_items(TransactItems=[
                {"Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}},
                *self._projection_puts(doc),
                *self._link_puts(doc),
            ])
        except self.client.exceptions.TransactionCanceledException as error:
            codes = [(r or {}).get("Code") for r in error.response.get("CancellationReasons") or []]
            if codes and codes[0] == "ConditionalCheckFailed":
                raise DocumentExists(pk) from None
            raise

    def _snapshot(self, pk, sk, doc):
        if not _is_order(pk, sk):
            return None
        return {(ppk, index, json.dumps(body, sort_keys=True)) for ppk, index, body in projections(doc)}

    def _update_items(self, pk, sk, seen, new, before=None):
        items = super()._update_items(pk, sk, seen, new, before)
        # The order's projections ride in the same commit (also when the ledger's transaction carries
        # it); one that the update does not change is not written again.
        return items + self._projection_puts(new, before) if _is_order(pk, sk) else items

    def update(self, pk, mutate, sk="doc", current=None):
        if not _is_order(pk, sk):
            return super().update(pk, mutate, sk, current=current)
        key = {"pk": {"S": pk}, "sk": {"S": sk}}
        for _ in range(self.max_attempts):
            if current is None:
                item = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
                if item is None:
                    raise KeyError(pk)
                seen, doc = int(item["version"]["N"]), json.loads(item["doc"]["S"])
            else:  # the caller's own read, just now: spared once (a stale one fails the version condition)
                seen, doc, current = current.version, current.doc, None
            before = self._snapshot(pk, sk, doc)
            new = mutate(doc)
            if new is None:
                return doc
            try:
                # Optimistic concurrency, as DynamoDocuments.update; the projections ride in the same commit.
                self.client.transact_write_items(TransactItems=self._update_items(pk, sk, seen, new, before))
                return new
            except self.client.exceptions.TransactionCanceledException:
                continue  # someone wrote since we read (or a transaction held the item): read again
        raise Conflict("request_in_progress", "the object is being changed by another request; retry")

    # -- reads the index needs (a range on the sort key) --------------------------------------------
    def query_range(self, gsi1pk: str, start: str | None, end: str | None, limit: int, cursor: str | None = None,
                    newest_first: bool = False) -> tuple[list[dict], str | None]:
        if is_sharded(gsi1pk):
            return self._merged(gsi1pk, limit, newest_first, start, end, cursor)
        condition, values = key_condition(gsi1pk, start, end, hi_inclusive=False)
        request = {"TableName": self.table, "IndexName": "gsi1", "KeyConditionExpression": condition,
                   "ExpressionAttributeValues": values, "ScanIndexForward": not newest_first, "Limit": limit}
        if cursor:
            request["ExclusiveStartKey"] = decode_cursor(cursor, gsi1pk)
        reply = self.client.query(**request)
        last = reply.get("LastEvaluatedKey")
        return [json.loads(i["doc"]["S"]) for i in reply.get("Items", [])], (encode_cursor(last) if last else None)


class IndexedMemoryDocuments(MemoryDocuments):
    """The in-memory twin of ``IndexedDynamoDocuments``."""

    links_orders = True

    def _project(self, order: dict) -> None:
        with self._lock:
            for pk, index, body in projections(order):
                self.items[(pk, "doc")] = (1, json.dumps(body), stored_index(pk, index))

    def put_new(self, pk, doc, sk="doc", index=None):
        super().put_new(pk, doc, sk, index)
        if _is_order(pk, sk):
            with self._lock:  # the order's links, as the transaction writes them with it
                for link, link_index in order_links(doc):
                    self.items[(link, "doc")] = (1, json.dumps({"order_id": doc["order_id"]}), stored_index(link, link_index))
            self._project(doc)

    def _written(self, pk, sk, doc):
        if _is_order(pk, sk):
            self._project(doc)

    def query_range(self, gsi1pk, start, end, limit, cursor=None, newest_first=False):
        if is_sharded(gsi1pk):
            return self._merged(gsi1pk, limit, newest_first, start, end, cursor)
        with self._lock:
            rows = sorted(((i[1], raw) for (_, raw, i) in self.items.values() if i and i[0] == gsi1pk),
                          reverse=newest_first)
        rows = [r for r in rows if (start is None or r[0] >= start) and (end is None or r[0] < end)]
        offset = int(cursor) if cursor and cursor.isdigit() else 0
        page = rows[offset:offset + limit]
        return [json.loads(raw) for _, raw in page], (str(offset + limit) if offset + limit < len(rows) else None)


class OrderIndex:
    """Reads of the projections: orders by status, customs decisions in a window, shipped orders waiting."""

    def __init__(self, docs):
        self.docs = docs  # IndexedDynamoDocuments | IndexedMemoryDocuments

    def by_status(self, status: str, limit: int = 20, cursor: str | None = None) -> tuple[list[dict], str | None]:
        """Orders in ``status``, the latest changed first."""
        return self.docs.query_page(STATUS_INDEX.format(status=status), limit, cursor)

    def shipped(self, before: str | None = None, page_size: int = 500):
        """Every order in ``shipped`` (oldest change first), optionally only those unchanged since ``before``."""
        cursor = None
        while True:
            rows, cursor = self.docs.query_range(STATUS_INDEX.format(status="shipped"), None, before, page_size, cursor)
            yield from rows
            if cursor is None:
                return

    def decided(self, since: str, page_size: int = 500):
        """Every customs decision taken at or after ``since`` (RFC 3339)."""
        cursor = None
        while True:
            rows, cursor = self.docs.query_range(DECIDED_INDEX, since, None, page_size, cursor)
            yield from rows
            if cursor is None:
                return
