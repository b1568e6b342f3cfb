"""``PositionStore`` in the app table: positions, capacity counters and the realized total.

Items (``pk``, ``sk``)::

    fxpos#<order_id>, doc     the position (``doc`` JSON, ``state``); gsi1 ``fxpos#open`` while open,
                              ``fxpos#closed`` (sorted by when it closed) after
    fxcap#<CUR>, counter      ``used``: what open positions guarantee in CUR
    fxpnl#USD, counter        ``realized``: the released positions' P&L, USD cents

Opening and closing are each one ``TransactWriteItems``: the position's own condition (absent;
still open) and the counter's change commit together or not at all, and the limit is the
counter's condition (``used <= limit - payout``), so two checkouts can never both take the last
room. A hot currency's counter is one item (about 500 transactional updates a second); sharding
it means splitting the limit among the shards.
"""
from __future__ import annotations

import json
import random
import time
from typing import Iterable

from chalicelib import aws
from chalicelib.documents import decode_cursor, encode_cursor
from chalicelib.errors import Conflict
from chalicelib.treasury.positions import OPEN, Position

OPEN_INDEX = "fxpos#open"
CLOSED_INDEX = "fxpos#closed"
_CONTENDED = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
_ATTEMPTS = 6


def _key(order_id: str) -> dict:
    return {"pk": {"S": f"fxpos#{order_id}"}, "sk": {"S": "doc"}}


class DynamoPositionStore:
    def __init__(self, table: str, client=None):
        self.table = table
        self._client = client

    client = aws.LazyDynamoClient()

    def _transact(self, items: list[dict]) -> list[str] | None:
        """Commit; ``None`` when it did, else each item's cancellation code. Contention is retried."""
        for attempt in range(_ATTEMPTS):
            try:
                self.client.transact_write_items(TransactItems=items)
                return None
            except self.client.exceptions.TransactionCanceledException as error:
                codes = [(r or {}).get("Code", "None") for r in error.response.get("CancellationReasons") or []]
                if not any(c in _CONTENDED for c in codes):
                    return codes
            except self.client.exceptions.TransactionInProgressException:
                pass
            time.sleep(min(0.2, 0.005 * 2 ** attempt) * random.random())
        raise Conflict("request_in_progress", "the FX capacity counter is busy; retry")

    def open(self, position: Position, limit_minor: int | None) -> bool:
        counter = {
            "TableName": self.table,
            "Key": {"pk": {"S": f"fxcap#{position.payout_currency}"}, "sk": {"S": "counter"}},
            "UpdateExpression": "ADD used :amt",
            "ExpressionAttributeValues": {":amt": {"N": str(position.payout_minor)}},
        }
        if limit_minor is not None:
            # The limit, as the counter's own condition: what is already guaranteed leaves room for this payout.
            counter["ConditionExpression"] = "attribute_not_exists(used) OR used <= :room"
            counter["ExpressionAttributeValues"][":room"] = {"N": str(limit_minor - position.payout_minor)}
        item = {
            **_key(position.order_id), "state": {"S": OPEN}, "version": {"N": "1"},
            "doc": {"S": json.dumps(position.to_dict())},
            "gsi1pk": {"S": OPEN_INDEX}, "gsi1sk": {"S": f"{position.opened_at}#{position.order_id}"},
        }
        codes = self._transact([
            # One position per order: a retried checkout finds it and counts nothing again.
            {"Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Update": counter},
        ])
        if codes is None:
            return "opened"  # truthy, as "exists" is: counted (now)
        return "exists" if codes[0] == "ConditionalCheckFailed" else False  # already open (or closed): counted once, earlier

    def close(self, order_id, state, closed_at, release_mid, realized_pnl_minor, found=None):
        given = found  # the caller's own read, just now: spared once (the state condition decides a race)
        for _ in range(_ATTEMPTS):
            found, given = (given if given is not None else self.get(order_id)), None
            if found is None or found.state != OPEN:
                return found
            closed = Position.from_dict({**found.to_dict(), "state": state, "closed_at": closed_at,
                                         "release_mid": release_mid, "realized_pnl_minor": realized_pnl_minor})
            items = [
                {"Update": {
                    "TableName": self.table, "Key": _key(order_id),
                    "UpdateExpression": "SET #st = :new, doc = :doc, gsi1pk = :idx, gsi1sk = :sort ADD version :one",
                    # Closed once: of two racing closes (a retried task), one commits, the other re-reads.
                    "ConditionExpression": "#st = :open",
                    "ExpressionAttributeNames": {"#st": "state"},
                    "ExpressionAttributeValues": {
                        ":new": {"S": state}, ":open": {"S": OPEN}, ":doc": {"S": json.dumps(closed.to_dict())},
                        ":idx": {"S": CLOSED_INDEX}, ":sort": {"S": f"{closed_at}#{order_id}"}, ":one": {"N": "1"},
                    },
                }},
                {"Update": {
                    "TableName": self.table,
                    "Key": {"pk": {"S": f"fxcap#{found.payout_currency}"}, "sk": {"S": "counter"}},
                    "UpdateExpression": "ADD used :neg",
                    "ExpressionAttributeValues": {":neg": {"N": str(-found.payout_minor)}},
                }},
            ]
            if realized_pnl_minor:
                items.append({"Update": {
                    "TableName": self.table, "Key": {"pk": {"S": "fxpnl#USD"}, "sk": {"S": "counter"}},
                    "UpdateExpression": "ADD realized :pnl",
                    "ExpressionAttributeValues": {":pnl": {"N": str(realized_pnl_minor)}},
                }})
            if self._transact(items) is None:
                return closed
        return self.get(order_id)

    def get(self, order_id):
        item = self.client.get_item(TableName=self.table, Key=_key(order_id), ConsistentRead=True).get("Item")
        return Position.from_dict(json.loads(item["doc"]["S"])) if item else None

    def _query(self, index: str, newest_first: bool, limit: int | None = None, cursor: str | None = None):
        request = {"TableName": self.table, "IndexName": "gsi1", "KeyConditionExpression": "gsi1pk = :p",
                   "ExpressionAttributeValues": {":p": {"S": index}}, "ScanIndexForward": not newest_first}
        if limit:
            request["Limit"] = limit
        if cursor:
            request["ExclusiveStartKey"] = decode_cursor(cursor, index)
        return request

    def open_positions(self) -> Iterable[Position]:
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(**self._query(OPEN_INDEX, newest_first=False)):
            for item in page.get("Items", []):
                yield Position.from_dict(json.loads(item["doc"]["S"]))

    def closed_page(self, limit, cursor):
        reply = self.client.query(**self._query(CLOSED_INDEX, True, limit, cursor))
        found = [Position.from_dict(json.loads(i["doc"]["S"])) for i in reply.get("Items", [])]
        last = reply.get("LastEvaluatedKey")
        return found, (encode_cursor(last) if last else None)

    def counters(self, currencies):
        currencies = list(currencies)
        keys = [{"pk": {"S": f"fxcap#{c}"}, "sk": {"S": "counter"}} for c in currencies]
        found = {item["pk"]["S"].split("#", 1)[1]: int(item.get("used", {"N": "0"})["N"])
                 for item in aws.batch_get(self.client, self.table, keys)}
        return {c: found.get(c, 0) for c in currencies}

    def realized_total(self):
        item = self.client.get_item(TableName=self.table, Key={"pk": {"S": "fxpnl#USD"}, "sk": {"S": "counter"}},
                                    ConsistentRead=True).get("Item") or {}
        return int(item.get("realized", {"N": "0"})["N"])
