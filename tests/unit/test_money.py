"""Money: integer minor units, ISO 4217 exponents, named rounding."""
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.errors import ValidationError
from chalicelib.money import MAX_MINOR, Money, Rounding, check_currency, exponent


def test_exponents_come_from_iso_4217():
    assert (exponent("USD"), exponent("RWF"), exponent("UGX"), exponent("KES"), exponent("XOF")) == (2, 0, 0, 2, 0)


@pytest.mark.parametrize(
    "text,currency,minor",
    [("1200.00", "USD", 120000), ("1200", "USD", 120000), ("0.5", "USD", 50), ("1500000", "RWF", 1500000), ("12.3", "KES", 1230)],
)
def test_parses_decimal_strings_exactly(text, currency, minor):
    assert Money.parse(text, currency) == Money(minor, currency)


@pytest.mark.parametrize("text,currency", [("1.001", "USD"), ("10.5", "RWF"), ("1.1", "UGX")])
def test_more_decimals_than_the_currency_has_is_refused(text, currency):
    with pytest.raises(ValidationError) as e:
        Money.parse(text, currency)
    assert e.value.code == "too_many_decimals"


@pytest.mark.parametrize("bad", ["1e3", "abc", "", "1,000", " ", "0x10", "NaN", "inf"])
def test_non_decimal_strings_are_refused(bad):
    with pytest.raises(ValidationError):
        Money.parse(bad, "USD")


def test_floats_never_become_money():
    with pytest.raises(ValidationError):
        Money(12.5, "USD")
    with pytest.raises(ValidationError):
        Money(True, "USD")
    with pytest.raises(ValidationError):
        Money.from_decimal(12.5, "USD", Rounding.UP)


@pytest.mark.parametrize("code", ["XXX", "ABC", "usd", "US", "XAU"])
def test_unknown_or_untradable_currencies_are_refused(code):
    with pytest.raises(ValidationError):
        Money(1, code)


def test_valid_but_unsupported_currency_is_named_as_such():
    with pytest.raises(ValidationError) as e:
        check_currency("JPY")
    assert e.value.code == "unsupported_currency"


def test_positive_amounts_are_required_where_asked():
    with pytest.raises(ValidationError):
        Money.of(0, "USD")
    with pytest.raises(ValidationError):
        Money.of(-5, "USD")
    assert Money.of(5, "USD").minor == 5


def test_amounts_above_ten_to_the_fifteen_are_refused():
    Money(MAX_MINOR, "USD")
    with pytest.raises(ValidationError) as e:
        Money(MAX_MINOR + 1, "USD")
    assert e.value.code == "amount_too_large"


def test_formats_for_people():
    assert Money(120000, "USD").format() == "1,200.00 USD"
    assert Money(1500000, "RWF").format() == "1,500,000 RWF"


def test_arithmetic_refuses_mixed_currencies():
    assert Money(5, "USD") + Money(7, "USD") == Money(12, "USD")
    with pytest.raises(ValidationError):
        Money(5, "USD") + Money(5, "EUR")


decimals = st.decimals(min_value=Decimal("0"), max_value=Decimal("1000000000"), places=6, allow_nan=False)
currencies = st.sampled_from(["USD", "RWF", "KES", "CNY", "XOF", "UGX"])


@given(decimals, currencies)
def test_collecting_rounds_up_and_paying_rounds_down_within_one_minor_unit(value, currency):
    up = Money.from_decimal(value, currency, Rounding.UP)
    down = Money.from_decimal(value, currency, Rounding.DOWN)
    assert down.to_decimal() <= value <= up.to_decimal()
    assert 0 <= up.minor - down.minor <= 1
    assert (up.minor == down.minor) == (value == up.to_decimal())


@given(st.integers(min_value=-MAX_MINOR, max_value=MAX_MINOR), currencies)
def test_format_and_parse_round_trip(minor, currency):
    money = Money(minor, currency)
    assert Money.parse(str(money.to_decimal()), currency) == money
