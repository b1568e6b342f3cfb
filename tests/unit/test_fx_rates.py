"""Rates: cross rates through USD, rebasing for GET /v1/fx/rates, strict payloads, the shipped snapshot."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from chalicelib.errors import ValidationError
from chalicelib.fx import InvalidRates, RateUnavailable, Rates, SnapshotRateSource, parse_rates, rate, rates_view, rebase
from chalicelib.fx.rates import DISPLAY_SIGNIFICANT_DIGITS, FX_CONTEXT, to_significant
from chalicelib.fx.snapshot import SNAPSHOT_PATH
from chalicelib.money import SUPPORTED_CURRENCIES

AS_OF = datetime(2026, 11, 27, 16, 0, tzinfo=timezone.utc)


def usd_rates(**rates: str) -> Rates:
    return Rates("USD", AS_OF, "test desk", {cur: Decimal(v) for cur, v in rates.items()})


RATES = usd_rates(CNY="7.10", RWF="1450", KES="129", EUR="0.80")


def payload(**overrides) -> dict:
    body = {"base": "USD", "as_of": "2026-11-27T16:00:00Z", "source": "test desk", "rates": {"CNY": "7.10", "RWF": "1450"}}
    body.update(overrides)
    return body


# -- cross rates ---------------------------------------------------------------


def test_a_direct_pair_from_the_base_is_read_as_published():
    assert rate(RATES, "USD", "RWF") == Decimal("1450")


def test_a_pair_into_the_base_is_the_inverse():
    assert rate(RATES, "RWF", "USD") == FX_CONTEXT.divide(1, 1450)  # 50 significant digits


def test_a_pair_without_usd_is_crossed_through_usd():
    # 1 CNY = 1450 / 7.10 RWF
    assert rate(RATES, "CNY", "RWF") == FX_CONTEXT.divide(Decimal("1450"), Decimal("7.10"))
    assert rate(RATES, "EUR", "KES") == Decimal("161.25")


def test_crossing_there_and_back_is_one_within_fifty_digits():
    there = rate(RATES, "KES", "CNY")
    back = rate(RATES, "CNY", "KES")
    assert abs(there * back - 1) < Decimal("1e-45")


def test_a_currency_to_itself_is_one():
    assert rate(RATES, "KES", "KES") == 1


def test_a_currency_the_source_does_not_price_is_rate_unavailable():
    with pytest.raises(RateUnavailable) as err:
        rate(RATES, "USD", "UGX")
    assert err.value.code == "rate_unavailable"


def test_a_source_with_another_base_crosses_the_same_way():
    eur_based = Rates("EUR", AS_OF, "ecb-like", {"USD": Decimal("1.25"), "RWF": Decimal("1812.5")})
    assert rate(eur_based, "USD", "RWF") == Decimal("1450")


# -- rebasing ------------------------------------------------------------------


def test_rebasing_lists_every_other_currency_seen_from_the_new_base():
    rebased = rebase(RATES, "RWF")
    assert rebased.base == "RWF"
    assert set(rebased.rates) == {"USD", "CNY", "KES", "EUR"}
    assert rebased.rates["USD"] == FX_CONTEXT.divide(1, 1450)
    assert rebased.as_of == AS_OF and rebased.source == "test desk"


def test_rates_view_keeps_date_and_source_and_shows_eight_significant_digits_half_even():
    view = rates_view(RATES, "RWF")
    assert view["base"] == "RWF"
    assert view["as_of"] == "2026-11-27T16:00:00Z"
    assert view["source"] == "test desk"
    assert "RWF" not in view["rates"]
    # 1/1450 = 0.000689655172413... -> 8 significant digits
    assert view["rates"]["USD"] == "0.00068965517"
    # 7.10/1450 = 0.00489655172413... ; 129/1450 = 0.0889655172413...
    assert view["rates"]["CNY"] == "0.0048965517"
    assert view["rates"]["KES"] == "0.088965517"
    for text in view["rates"].values():
        assert isinstance(text, str) and "E" not in text
        assert len(text.replace(".", "").lstrip("0")) == DISPLAY_SIGNIFICANT_DIGITS


def test_rates_view_defaults_to_the_source_base_and_pads_to_fixed_digits():
    view = rates_view(RATES)
    assert view["base"] == "USD"
    assert view["rates"]["CNY"] == "7.1000000"
    assert view["rates"]["RWF"] == "1450.0000"


def test_rates_view_refuses_an_unsupported_base_on_the_base_field():
    with pytest.raises(ValidationError) as err:
        rates_view(RATES, "JPY")
    assert err.value.code == "unsupported_currency" and err.value.path == "base"
    with pytest.raises(ValidationError) as err:
        rates_view(RATES, "usd")
    assert err.value.code == "unknown_currency"


def test_significant_digit_rounding_that_carries_keeps_the_digit_count():
    assert to_significant(Decimal("9.9999999999"), 8) == Decimal("10.000000")
    assert to_significant(Decimal("0.000123456785"), 8) == Decimal("0.00012345678")  # half-even
    assert to_significant(Decimal("0.000123456775"), 8) == Decimal("0.00012345678")


# -- strict payloads -----------------------------------------------------------


def test_a_valid_payload_parses_to_decimals_in_utc():
    parsed = parse_rates(payload(as_of="2026-11-27T18:00:00+02:00"))
    assert parsed.rates == {"CNY": Decimal("7.10"), "RWF": Decimal("1450")}
    assert parsed.as_of == AS_OF


@pytest.mark.parametrize(
    "bad_rate",
    [7.1, 7, True, None, "-7.10", "0", "0.000", "7,10", "1e3", "NaN", "Infinity", " 7.1", ""],
)
def test_a_rate_that_is_not_a_positive_decimal_string_rejects_the_payload(bad_rate):
    with pytest.raises(InvalidRates) as err:
        parse_rates(payload(rates={"CNY": bad_rate, "RWF": "1450"}))
    assert err.value.code == "invalid_rates"


@pytest.mark.parametrize(
    "overrides",
    [
        {"as_of": "2026-11-27T16:00:00"},  # naive
        {"as_of": "yesterday"},
        {"as_of": 1795708800},
        {"source": ""},
        {"base": "JPY"},
        {"rates": {}},
        {"rates": ["CNY", "7.1"]},
        {"rates": {"cny": "7.1"}},
        {"rates": {"USD": "2", "CNY": "7.1"}},  # the base must be 1
        {"rates": {"JPY": "150.1"}},  # nothing the platform trades
    ],
)
def test_a_malformed_payload_is_refused(overrides):
    with pytest.raises(InvalidRates):
        parse_rates(payload(**overrides))


def test_missing_fields_are_named():
    with pytest.raises(InvalidRates) as err:
        parse_rates({"base": "USD", "rates": {"CNY": "7.1"}})
    assert err.value.detail["missing"] == ["as_of", "source"]


def test_currencies_the_platform_does_not_trade_are_skipped_and_the_base_may_be_listed_as_one():
    parsed = parse_rates(payload(rates={"USD": "1", "JPY": "150.12", "CNY": "7.10"}))
    assert parsed.rates == {"CNY": Decimal("7.10")}


# -- the shipped snapshot ------------------------------------------------------


def test_the_snapshot_states_its_date_and_where_its_figures_come_from():
    raw = json.loads(SNAPSHOT_PATH.read_text())
    assert raw["as_of"].startswith("2026-11-27T")
    rates = SnapshotRateSource().latest()
    assert rates.as_of.date().isoformat() == "2026-11-27"
    assert "snapshot" in rates.source and "Not live market data" in rates.source


def test_the_snapshot_prices_every_supported_currency_from_strings():
    raw = json.loads(SNAPSHOT_PATH.read_text())
    assert all(isinstance(v, str) for v in raw["rates"].values())
    rates = SnapshotRateSource().latest()
    assert rates.currencies() == SUPPORTED_CURRENCIES


def test_the_snapshot_is_at_plausible_late_2026_levels():
    rates = SnapshotRateSource().latest().rates
    assert Decimal("6.5") < rates["CNY"] < Decimal("7.8")
    assert Decimal("1300") < rates["RWF"] < Decimal("1600")
    assert Decimal("110") < rates["KES"] < Decimal("150")
    assert Decimal("0.7") < rates["EUR"] < Decimal("1")


def test_the_snapshot_keeps_the_cfa_franc_at_its_euro_parity():
    # XOF is pegged: 1 EUR = 655.957 XOF. The snapshot must agree to a few parts per million.
    eur_xof = rate(SnapshotRateSource().latest(), "EUR", "XOF")
    assert abs(eur_xof - Decimal("655.957")) / Decimal("655.957") < Decimal("0.00001")


def test_a_malformed_snapshot_file_is_an_error_not_a_price(tmp_path):
    bad = tmp_path / "rates.json"
    bad.write_text(json.dumps(payload(rates={"CNY": 7.1})))
    with pytest.raises(InvalidRates):
        SnapshotRateSource(bad).latest()
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(InvalidRates):
        SnapshotRateSource(tmp_path / "broken.json").latest()
    with pytest.raises(InvalidRates):
        SnapshotRateSource(tmp_path / "absent.json").latest()
