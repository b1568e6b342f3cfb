"""Request schemas are strict; response schemas are built from domain objects."""
from datetime import datetime, timezone
from decimal import Decimal

import pydantic
import pytest

from chalicelib.api.routing import validate
from chalicelib.api.schemas import Money, QuoteRequest, QuoteResponse, RatesQuery, TrialBalanceResponse
from chalicelib.errors import ValidationError
from chalicelib.fx.quotes import Quote
from chalicelib.money import MAX_MINOR
from chalicelib.money import Money as DomainMoney


def fields_of(model, data) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        validate(model, data)
    assert caught.value.code == "validation_error"
    return {f["path"]: f["message"] for f in caught.value.detail["fields"]}


QUOTE = {"from_currency": "USD", "to_currency": "RWF", "from_amount": 120000}


def test_a_quote_request_takes_exactly_one_amount():
    assert validate(QuoteRequest, QUOTE).from_amount == 120000
    assert validate(QuoteRequest, {**QUOTE, "from_amount": None, "to_amount": 5}).to_amount == 5
    assert "body" in fields_of(QuoteRequest, {"from_currency": "USD", "to_currency": "RWF"})
    assert "body" in fields_of(QuoteRequest, {**QUOTE, "to_amount": 5})


def test_a_quote_between_one_currency_and_itself_is_refused():
    assert "body" in fields_of(QuoteRequest, {**QUOTE, "to_currency": "USD"})


@pytest.mark.parametrize("amount", [120000.0, 1.5, "120000", True, 0, -5, MAX_MINOR + 1])
def test_amounts_are_positive_integers_of_minor_units_within_bounds(amount):
    assert "from_amount" in fields_of(QuoteRequest, {**QUOTE, "from_amount": amount})


def test_the_largest_amount_is_accepted():
    assert validate(QuoteRequest, {**QUOTE, "from_amount": MAX_MINOR}).from_amount == MAX_MINOR


@pytest.mark.parametrize("currency, reason", [("JPY", "does not trade"), ("XYZ", "ISO 4217"), ("usd", "pattern"), (840, "string")])
def test_currencies_must_be_supported_iso_4217_codes(currency, reason):
    message = fields_of(QuoteRequest, {**QUOTE, "to_currency": currency})["to_currency"]
    assert reason in message


def test_unknown_fields_are_rejected_by_name():
    assert "spread_bps" in fields_of(QuoteRequest, {**QUOTE, "spread_bps": 0})


def test_money_has_no_room_for_extra_fields_or_floats():
    assert set(fields_of(Money, {"amount": 1.0, "currency": "USD", "scale": 2})) == {"amount", "scale"}
    assert Money.of(DomainMoney(1500000, "RWF")).to_money() == DomainMoney(1500000, "RWF")


def test_rates_default_to_a_usd_base_and_check_it():
    assert validate(RatesQuery, {}).base == "USD"
    assert "query.base" in {f["path"] for f in _query_fields({"base": "JPY"})}


def _query_fields(data):
    with pytest.raises(ValidationError) as caught:
        validate(RatesQuery, data, where="query")
    return caught.value.detail["fields"]


def test_a_quote_response_uses_from_on_the_wire_and_decimal_strings_for_rates():
    at = datetime(2026, 11, 27, 16, 0, tzinfo=timezone.utc)
    quote = Quote(
        quote_id="q_1",
        from_money=DomainMoney(120000, "USD"),
        to_money=DomainMoney(1_702_000, "RWF"),
        rate=Decimal("1418.3333"),
        mid_rate=Decimal("1425.46"),
        spread_bps=50,
        fixed="from",
        remainder=Decimal("0.4"),
        remainder_currency="RWF",
        created_at=at,
        expires_at=at.replace(minute=30),
        rates_as_of=at,
        rates_source="test",
    )
    wire = QuoteResponse.of(quote).model_dump(mode="json", by_alias=True)
    assert wire == {
        "quote_id": "q_1",
        "from": {"amount": 120000, "currency": "USD"},
        "to": {"amount": 1702000, "currency": "RWF"},
        "rate": "1418.3333",
        "mid_rate": "1425.46",
        "spread_bps": 50,
        "created_at": "2026-11-27T16:00:00Z",
        "expires_at": "2026-11-27T16:30:00Z",
    }


def test_a_trial_balance_is_balanced_only_when_every_currency_is():
    even = {"USD": {"debits": 10, "credits": 10}, "RWF": {"debits": 0, "credits": 0}}
    assert TrialBalanceResponse.of(even).balanced is True
    uneven = {**even, "KES": {"debits": 5, "credits": 4}}
    assert TrialBalanceResponse.of(uneven).balanced is False
    pending_uneven = {"USD": {"debits": 1, "credits": 1, "debits_pending": 3, "credits_pending": 0}}
    assert TrialBalanceResponse.of(pending_uneven).balanced is False


def test_response_models_refuse_fields_they_do_not_declare():
    with pytest.raises(pydantic.ValidationError):
        TrialBalanceResponse.model_validate({"currencies": {}, "balanced": True, "extra": 1})
