"""DynamoQuoteStore on moto: creation and consumption are single conditional writes.

Uses the shared ``aws_env`` fixture (moto's server, tables from ``infra/``) when
tests/conftest.py provides it; otherwise an in-process ``moto.mock_aws()`` with the app
table created here from the same ``infra/`` definition (or, failing that, keys pk/sk).
There is no thread race here: in-process moto is not thread-safe, so a race would test moto,
not the condition; the race runs against MemoryQuoteStore, which enforces the same condition.
"""
from __future__ import annotations

from dataclasses import replace
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from chalicelib import aws, settings
from chalicelib.fx import (
    FixedRateSource,
    QuoteAlreadyUsed,
    QuoteExpired,
    QuoteIdConflict,
    QuoteNotFound,
    QuoteService,
    Rates,
)
from chalicelib.fx.dynamo_store import DynamoQuoteStore

T0 = datetime(2026, 11, 28, 9, 0, 0, tzinfo=timezone.utc)
RATES = Rates(
    "USD", datetime(2026, 11, 27, 16, 0, tzinfo=timezone.utc), "test desk", {"CNY": Decimal("7.10"), "RWF": Decimal("1450")}
)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _create_app_table(client, prefix: str) -> None:
    try:
        from infra.tables import create_table_kwargs

        kwargs = create_table_kwargs("app", prefix)
    except ImportError:  # pragma: no cover - infra/ not importable: the documented key schema
        kwargs = {
            "TableName": f"{prefix}-app",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "BillingMode": "PAY_PER_REQUEST",
        }
    client.create_table(**kwargs)


@pytest.fixture
def app_table(request, monkeypatch):
    """The physical name of a ready app table, on whichever moto the suite offers."""
    try:
        request.getfixturevalue("aws_env")
    except pytest.FixtureLookupError:
        pass
    else:
        yield settings.get().table("app")
        return

    from moto import mock_aws

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MIZANI_TABLE_PREFIX": "mizani-fxtest",
    }.items():
        monkeypatch.setenv(name, value)
    settings.get.cache_clear()
    aws.reset()
    with mock_aws():
        _create_app_table(aws.dynamodb(), "mizani-fxtest")
        yield settings.get().table("app")
    aws.reset()
    settings.get.cache_clear()


@pytest.fixture
def store(app_table) -> DynamoQuoteStore:
    return DynamoQuoteStore(settings.get().table("app"))  # the shared lazily built client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(store, clock) -> QuoteService:
    return QuoteService(FixedRateSource(RATES), store, clock, spreads={"USD/RWF": 120})


def qid(label: str) -> str:
    return f"q_{label}_{uuid.uuid4().hex[:12]}"  # unique even if the table is shared across tests


def test_the_store_defaults_to_the_app_table_from_settings(store, app_table):
    assert store.table_name == app_table and app_table.endswith("-app")


def test_a_quote_round_trips_exactly(service, store):
    quote = service.quote("CNY", "USD", to_amount=10000, quote_id=qid("rt"))
    assert len(quote.remainder.as_tuple().digits) > 20  # a long exact decimal survives as a string
    assert store.get(quote.quote_id) == quote


def test_the_item_keeps_amounts_as_numbers_and_rates_as_strings(service, app_table):
    quote = service.quote("USD", "RWF", from_amount=120000, quote_id=qid("shape"))
    item = aws.dynamodb().get_item(
        TableName=app_table, Key={"pk": {"S": f"quote#{quote.quote_id}"}, "sk": {"S": "quote"}}
    )["Item"]
    assert item["from_amount"] == {"N": "120000"} and item["to_amount"] == {"N": "1719120"}
    assert item["rate"] == {"S": "1432.600000"} and item["mid_rate"] == {"S": "1450.000000"}
    assert item["expires_at"] == {"N": str(int((T0 + timedelta(minutes=30)).timestamp()))}
    assert "consumed_by" not in item


def test_a_second_add_with_the_same_id_writes_nothing(service, store):
    quote = service.quote("USD", "RWF", from_amount=100, quote_id=qid("dup"))
    assert store.add(replace(quote, spread_bps=999)) is False
    assert store.get(quote.quote_id).spread_bps == 120


def test_the_same_explicit_id_replays_or_conflicts(service):
    quote_id = qid("ord")
    first = service.quote("USD", "RWF", from_amount=100, quote_id=quote_id)
    assert service.quote("USD", "RWF", from_amount=100, quote_id=quote_id) == first
    with pytest.raises(QuoteIdConflict):
        service.quote("USD", "RWF", from_amount=101, quote_id=quote_id)


def test_consume_is_at_most_once_and_idempotent_for_its_consumer(service, clock):
    quote = service.quote("USD", "RWF", from_amount=100, quote_id=qid("use"))
    clock.now = T0 + timedelta(minutes=5)
    consumed = service.consume(quote.quote_id, "order:o1")
    assert consumed.consumed_by == "order:o1" and consumed.consumed_at == clock.now
    clock.now = T0 + timedelta(days=1)
    assert service.consume(quote.quote_id, "order:o1") == consumed
    with pytest.raises(QuoteAlreadyUsed):
        service.consume(quote.quote_id, "order:o2")


def test_an_expired_quote_cannot_be_consumed_from_its_expiry_second(service, clock, store):
    early = service.quote("USD", "RWF", from_amount=100, quote_id=qid("early"))
    late = service.quote("USD", "RWF", from_amount=100, quote_id=qid("late"))
    clock.now = T0 + timedelta(minutes=29, seconds=59, microseconds=999_999)
    service.consume(early.quote_id, "order:o1")
    clock.now = T0 + timedelta(minutes=30)
    with pytest.raises(QuoteExpired):
        service.consume(late.quote_id, "order:o2")
    assert store.get(late.quote_id).consumed_by is None


def test_consuming_an_unknown_quote_is_not_found_and_creates_nothing(service, store, app_table):
    quote_id = qid("ghost")
    with pytest.raises(QuoteNotFound):
        service.consume(quote_id, "order:o1")
    found = aws.dynamodb().get_item(TableName=app_table, Key={"pk": {"S": f"quote#{quote_id}"}, "sk": {"S": "quote"}})
    assert "Item" not in found

