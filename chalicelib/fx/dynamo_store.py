"""``DynamoQuoteStore``: quotes in the single "app" table, through the low-level client.

Item: ``pk = "quote#<quote_id>"``, ``sk = "quote"``; amounts and epoch seconds are numbers
(``from_amount``, ``to_amount``, ``spread_bps``, ``created_at``, ``expires_at``,
``consumed_at``); rates and the remainder are strings (exact decimals, never floats);
``rates_as_of`` is ISO 8601 text. No read is ever used to decide a write: creation and
consumption are single conditional writes.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from chalicelib import aws
from chalicelib.fx.quotes import Quote
from chalicelib.money import Money

SK = "quote"


def _pk(quote_id: str) -> str:
    return f"quote#{quote_id}"


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _from_epoch(value: str) -> datetime:
    return datetime.fromtimestamp(int(value), tz=timezone.utc)


def to_item(quote: Quote) -> dict:
    item = {
        "pk": {"S": _pk(quote.quote_id)},
        "sk": {"S": SK},
        "quote_id": {"S": quote.quote_id},
        "from_amount": {"N": str(quote.from_money.minor)},
        "from_currency": {"S": quote.from_currency},
        "to_amount": {"N": str(quote.to_money.minor)},
        "to_currency": {"S": quote.to_currency},
        "rate": {"S": format(quote.rate, "f")},
        "mid_rate": {"S": format(quote.mid_rate, "f")},
        "spread_bps": {"N": str(quote.spread_bps)},
        "fixed": {"S": quote.fixed},
        "remainder": {"S": format(quote.remainder, "f")},
        "remainder_currency": {"S": quote.remainder_currency},
        "created_at": {"N": str(_epoch(quote.created_at))},
        "expires_at": {"N": str(_epoch(quote.expires_at))},
        "rates_as_of": {"S": quote.rates_as_of.astimezone(timezone.utc).isoformat()},
        "rates_source": {"S": quote.rates_source},
    }
    if quote.consumed_by is not None:
        item["consumed_by"] = {"S": quote.consumed_by}
    if quote.consumed_at is not None:
        item["consumed_at"] = {"N": str(_epoch(quote.consumed_at))}
    return item


def from_item(item: dict) -> Quote:
    return Quote(
        quote_id=item["quote_id"]["S"],
        from_money=Money(int(item["from_amount"]["N"]), item["from_currency"]["S"]),
        to_money=Money(int(item["to_amount"]["N"]), item["to_currency"]["S"]),
        rate=Decimal(item["rate"]["S"]),
        mid_rate=Decimal(item["mid_rate"]["S"]),
        spread_bps=int(item["spread_bps"]["N"]),
        fixed=item["fixed"]["S"],
        remainder=Decimal(item["remainder"]["S"]),
        remainder_currency=item["remainder_currency"]["S"],
        created_at=_from_epoch(item["created_at"]["N"]),
        expires_at=_from_epoch(item["expires_at"]["N"]),
        rates_as_of=datetime.fromisoformat(item["rates_as_of"]["S"]),
        rates_source=item["rates_source"]["S"],
        consumed_by=item["consumed_by"]["S"] if "consumed_by" in item else None,
        consumed_at=_from_epoch(item["consumed_at"]["N"]) if "consumed_at" in item else None,
    )


class DynamoQuoteStore:
    """``QuoteStore`` on DynamoDB, in the table it is given (the app table: see ``bootstrap``)."""

    def __init__(self, table_name: str, client=None):
        self.table_name = table_name
        self._client = client

    client = aws.LazyDynamoClient()

    def add(self, quote: Quote) -> bool:
        try:
            # Never overwrite: a quote id is written once; a second writer learns it lost.
            self.client.put_item(
                TableName=self.table_name,
                Item=to_item(quote),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def get(self, quote_id: str) -> Quote | None:
        found = self.client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": _pk(quote_id)}, "sk": {"S": SK}},
            ConsistentRead=True,  # consume() decides on what it reads after a failed condition
        ).get("Item")
        return from_item(found) if found else None

    def mark_consumed(self, quote_id: str, consumer_id: str, now: datetime) -> tuple[bool, Quote | None]:
        # expires_at is a whole epoch second E, so "now < E" is exactly "floor(now) < E".
        now_s = int(now.timestamp() // 1)
        try:
            answer = self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": _pk(quote_id)}, "sk": {"S": SK}},
                UpdateExpression="SET consumed_by = :consumer, consumed_at = :now",
                # attribute_exists(pk): without it UpdateItem would create a stub item for an unknown id.
                # attribute_not_exists(consumed_by): at most once, whoever asks.
                # expires_at > :now: an expired quote cannot be locked.
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(consumed_by) AND expires_at > :now",
                ExpressionAttributeValues={":consumer": {"S": consumer_id}, ":now": {"N": str(now_s)}},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            old = exc.response.get("Item")
            if old is None:  # not returned (unknown id, or an emulator that omits it): read it
                return False, self.get(quote_id)
            return False, from_item(old)
        return True, from_item(answer["Attributes"])
