"""eWTP's tariff-free threshold over 30 days: a buyer cannot stay under 1,000,000 USD by splitting.

Every order between the same buyer and seller counts, in USD at the rate locked at checkout, in a
bucket per UTC day: ``ewtp#<buyer>#<seller>#<YYYY-MM-DD>`` (app table, sort key ``bucket``), with
``used`` (the day's sum in US cents), ``members`` (the orders counted) and ``free_orders`` (those of them
that were tariff-free). An order is tariff-free when the 29 days before today plus today, itself
included, stay under the threshold.

The decision is one conditional write on today's bucket, never read-then-write: ``ADD used :amt,
members :order, free_orders :order`` only if ``used`` leaves room for it (the room is the threshold less
what the 29 earlier days hold, which no longer change); if there is no room, the order is counted
anyway, without ``free_orders``. Of two orders placed at the same
moment, the one whose write DynamoDB applies first takes the room left; the other sees it taken
and is not tariff-free. A retried checkout (the same order id) is counted once and reads back the
decision stored with the count, so its answer never changes.

"Last 30 days" is today and the 29 UTC days before it; an order is counted when it is placed,
whether or not it is paid later.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, timedelta

from chalicelib import aws
from chalicelib.money import Money

#: eWTP: orders (and 30-day sums) under this many US cents are tariff-free.
THRESHOLD_USD_MINOR = 1_000_000 * 100
WINDOW_DAYS = 30


@dataclass(frozen=True)
class EwtpDecision:
    tariff_free: bool
    reason: str
    window_total: Money  # the 30 days' sum, this order included (at the moment of the decision)

    def fields(self) -> dict:
        return {"tariff_free": self.tariff_free, "tariff_reason": self.reason, "ewtp_window_usd": self.window_total.to_json()}


def bucket_key(buyer_id: str, seller_id: str, day: date) -> str:
    return f"ewtp#{buyer_id}#{seller_id}#{day.isoformat()}"


def decide(buckets, buyer_id: str, seller_id: str, order_id: str, total_usd: Money, today: date) -> EwtpDecision:
    """Count the order and decide whether it is tariff-free (see the module doc)."""
    assert total_usd.currency == "USD"
    earlier = buckets.sums([bucket_key(buyer_id, seller_id, today - timedelta(days=n)) for n in range(1, WINDOW_DAYS)])
    room = THRESHOLD_USD_MINOR - 1 - earlier  # the most today's bucket may hold, this order included
    free, today_total = buckets.count(bucket_key(buyer_id, seller_id, today), order_id, total_usd.minor, room)
    window = Money(earlier + today_total, "USD")
    others = Money(window.minor - total_usd.minor, "USD")
    if free:
        reason = (f"under 1,000,000.00 USD: this order ({total_usd}) and the buyer's other orders from this seller in "
                  f"the last 30 days ({others}) total {window}")
    elif total_usd.minor >= THRESHOLD_USD_MINOR:
        reason = f"this order alone is {total_usd}, at or above eWTP's 1,000,000.00 USD"
    else:
        reason = (f"with the buyer's other orders from this seller in the last 30 days ({others}) this order "
                  f"({total_usd}) takes the total to {window}, at or above eWTP's 1,000,000.00 USD")
    return EwtpDecision(free, reason, window)


class MemoryEwtpBuckets:
    """The in-memory twin of ``DynamoEwtpBuckets`` (the same conditions, under one lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.buckets: dict[str, dict] = {}

    def sums(self, keys: list[str]) -> int:
        with self._lock:
            return sum(self.buckets.get(k, {}).get("used", 0) for k in keys)

    def count(self, key: str, order_id: str, amount: int, room: int) -> tuple[bool, int]:
        with self._lock:
            bucket = self.buckets.setdefault(key, {"used": 0, "decisions": {}})
            if order_id not in bucket["decisions"]:
                bucket["decisions"][order_id] = bucket["used"] + amount <= room
                bucket["used"] += amount
            return bucket["decisions"][order_id], bucket["used"]


class DynamoEwtpBuckets:
    """The buckets in the app table; every decision is in a condition expression."""

    def __init__(self, table: str, client=None):
        self.table = table
        self._client = client

    client = aws.LazyDynamoClient()

    def sums(self, keys: list[str]) -> int:
        items = aws.batch_get(self.client, self.table, [{"pk": {"S": k}, "sk": {"S": "bucket"}} for k in keys],
                              ProjectionExpression="used")
        return sum(int(i["used"]["N"]) for i in items if "used" in i)

    def count(self, key: str, order_id: str, amount: int, room: int) -> tuple[bool, int]:
        item_key = {"pk": {"S": key}, "sk": {"S": "bucket"}}
        values = {":amt": {"N": str(amount)}, ":m": {"SS": [order_id]}, ":oid": {"S": order_id}}
        attempts = []
        if amount <= room:  # with room for it: counted and tariff-free, in one write (``free_orders`` holds it)
            attempts.append((True, "ADD used :amt, members :m, free_orders :m",
                             "(attribute_not_exists(used) OR used <= :room) AND NOT contains(members, :oid)",
                             {":room": {"N": str(room - amount)}}))
        attempts.append((False, "ADD used :amt, members :m", "NOT contains(members, :oid)", {}))
        for free, update, condition, extra in attempts:
            try:
                reply = self.client.update_item(TableName=self.table, Key=item_key, UpdateExpression=update,
                                                ConditionExpression=condition,
                                                ExpressionAttributeValues={**values, **extra}, ReturnValues="ALL_NEW")
                return free, int(reply["Attributes"]["used"]["N"])
            except self.client.exceptions.ConditionalCheckFailedException:
                continue
        # Counted before (a retried checkout): the decision it was counted with.
        item = self.client.get_item(TableName=self.table, Key=item_key, ConsistentRead=True)["Item"]
        return order_id in item.get("free_orders", {}).get("SS", []), int(item["used"]["N"])


def buckets_for(docs):
    """The buckets beside a ``Documents`` adapter: its DynamoDB table when it speaks to DynamoDB through
    boto3; memory beside the fake documents (and beside a client that only knows the documents'
    own expressions, as the simulator's)."""
    client = getattr(docs, "client", None) if hasattr(docs, "table") else None
    if client is not None and hasattr(client, "meta"):
        return DynamoEwtpBuckets(docs.table, client=client)
    return MemoryEwtpBuckets()


class EwtpChecks:
    """Mixed into ``EscrowService``: the order's eWTP decision at checkout (its buckets beside its documents)."""

    _ewtp_buckets = None

    @property
    def ewtp_buckets(self):
        if self._ewtp_buckets is None:
            self._ewtp_buckets = buckets_for(self.docs)
        return self._ewtp_buckets

    def ewtp_fields(self, buyer_id: str, seller_id: str, order_id: str, total_usd: Money) -> dict:
        """``tariff_free``, ``tariff_reason`` and ``ewtp_window_usd`` for a new order (counted once)."""
        from datetime import timezone

        today = self.clock().astimezone(timezone.utc).date()
        return decide(self.ewtp_buckets, buyer_id, seller_id, order_id, total_usd, today).fields()
