"""Quotes: spread against the client, rounding in the house's favour, expiry, consumed at most once."""
from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st

from chalicelib import settings as app_settings
from chalicelib.bootstrap import build_quote_service, build_rate_source
from chalicelib.errors import BusinessRuleViolation, Conflict, NotFound, ProviderUnavailable, ValidationError
from chalicelib.fx import (
    FixedRateSource,
    MemoryQuoteStore,
    QuoteAlreadyUsed,
    QuoteExpired,
    QuoteIdConflict,
    QuoteNotFound,
    QuoteService,
    Rates,
    SnapshotRateSource,
)
from chalicelib.fx.http_source import HttpRateSource
from chalicelib.money import MAX_MINOR, SUPPORTED_CURRENCIES, exponent

T0 = datetime(2026, 11, 28, 9, 0, 0, tzinfo=timezone.utc)


class FakeClock:
    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


RATES = Rates(
    "USD",
    datetime(2026, 11, 27, 16, 0, tzinfo=timezone.utc),
    "test desk",
    {"CNY": Decimal("7.10"), "RWF": Decimal("1450"), "KES": Decimal("129"), "UGX": Decimal("3600")},
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(clock) -> QuoteService:
    return QuoteService(
        FixedRateSource(RATES), MemoryQuoteStore(), clock, spreads={"USD/RWF": 120}, default_spread_bps=50
    )


def exact_minor(amount_minor: int, from_cur: str, to_cur: str, rate: Decimal) -> Fraction:
    """from minor units -> exact to minor units at ``rate``, as a fraction (no rounding at all)."""
    return Fraction(amount_minor) / 10 ** exponent(from_cur) * Fraction(rate) * 10 ** exponent(to_cur)


# -- pricing ---------------------------------------------------------------------


def test_a_payout_side_quote_rounds_down_and_records_what_the_house_keeps(service):
    # 1,200.00 USD -> RWF at 1450 less 120 bps = 1432.6 RWF/USD; 1,719,120 RWF exactly (RWF has no minor unit)
    quote = service.quote("USD", "RWF", from_amount=120000)
    assert quote.mid_rate == Decimal("1450")
    assert quote.rate == Decimal("1432.6")
    assert quote.spread_bps == 120
    assert quote.to_money.minor == 1719120 and quote.to_money.currency == "RWF"
    assert quote.fixed == "from" and quote.remainder == 0 and quote.remainder_currency == "RWF"


def test_a_fractional_payout_is_rounded_down_with_a_positive_remainder(service):
    quote = service.quote("USD", "RWF", from_amount=12345)  # 123.45 USD * 1432.6 = 176854.47 RWF
    assert quote.to_money.minor == 176854
    assert quote.remainder == Decimal("0.47")


def test_a_collection_side_quote_rounds_up_and_records_what_the_house_collects_extra(service):
    # the buyer must deliver 100.00 USD; 1 CNY = 1/7.10 USD less 50 bps
    quote = service.quote("CNY", "USD", to_amount=10000)
    exact_from = Fraction(100) / Fraction(quote.rate)  # CNY, major units
    assert quote.from_money.minor == -(-exact_from * 100 // 1)  # ceiling, in fen
    assert quote.fixed == "to" and quote.remainder_currency == "CNY"
    assert quote.remainder < 0  # exact - rounded: the house collects the difference
    assert abs(Fraction(quote.remainder) - (exact_from - Fraction(quote.from_money.minor, 100))) < Fraction(1, 10**30)


def test_the_client_always_gets_a_worse_rate_than_mid(service):
    for pair in [("USD", "RWF"), ("RWF", "USD"), ("CNY", "KES"), ("UGX", "CNY")]:
        quote = service.quote(*pair, from_amount=10**6)
        assert quote.rate < quote.mid_rate


def test_a_pair_configured_one_way_prices_both_ways_and_others_use_the_default(service):
    assert service.quote("RWF", "USD", from_amount=10**6).spread_bps == 120
    assert service.quote("CNY", "KES", from_amount=10**6).spread_bps == 50


def test_a_zero_spread_prices_at_mid(clock):
    svc = QuoteService(FixedRateSource(RATES), MemoryQuoteStore(), clock, default_spread_bps=0)
    quote = svc.quote("USD", "KES", from_amount=100)
    assert quote.rate == quote.mid_rate == Decimal("129")
    assert quote.to_money.minor == 12900


def test_rates_are_cut_to_ten_significant_digits_and_the_amounts_follow_from_the_shown_rate(service):
    quote = service.quote("CNY", "RWF", from_amount=123456)  # mid 1450/7.10 = 204.2253521126...
    assert quote.mid_rate == Decimal("204.2253521")
    assert len(quote.rate.as_tuple().digits) == 10
    assert Fraction(quote.to_money.minor) <= exact_minor(123456, "CNY", "RWF", quote.rate) < quote.to_money.minor + 1


def test_the_quote_records_which_rates_priced_it_and_expires_after_the_ttl(service, clock):
    quote = service.quote("USD", "KES", from_amount=100)
    assert quote.rates_as_of == RATES.as_of and quote.rates_source == "test desk"
    assert quote.created_at == T0
    assert quote.expires_at == T0 + timedelta(minutes=30)
    assert quote.consumed_by is None


def test_the_json_shape_is_the_public_contract(service):
    body = service.quote("USD", "RWF", from_amount=120000).to_json()
    assert set(body) == {"quote_id", "from", "to", "rate", "mid_rate", "spread_bps", "created_at", "expires_at"}
    assert body["from"] == {"amount": 120000, "currency": "USD"}
    assert body["to"] == {"amount": 1719120, "currency": "RWF"}
    assert isinstance(body["rate"], str) and isinstance(body["mid_rate"], str)
    assert body["expires_at"] == "2026-11-28T09:30:00Z"
    assert body["quote_id"].startswith("q_")


# -- property: rounding always favours the house, by less than one minor unit ------

PAIRS = st.tuples(st.sampled_from(sorted(SUPPORTED_CURRENCIES)), st.sampled_from(sorted(SUPPORTED_CURRENCIES))).filter(
    lambda p: p[0] != p[1]
)


@hyp_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pair=PAIRS, amount=st.integers(min_value=1, max_value=10**13), spread=st.integers(0, 500), side=st.sampled_from(["from", "to"]))
def test_buyers_never_pay_less_and_sellers_never_get_more_than_exact(pair, amount, spread, side):
    svc = QuoteService(SnapshotRateSource(), MemoryQuoteStore(), FakeClock(), default_spread_bps=spread)
    from_cur, to_cur = pair
    try:
        quote = svc.quote(from_cur, to_cur, **{f"{side}_amount": amount})
    except ValidationError as exc:
        # Only legitimate refusals: the other side rounds to nothing, or is beyond MAX_MINOR.
        assert exc.code in {"amount_too_small", "amount_too_large"}
        assert exc.path == f"{side}_amount"
        return
    assert quote.rate <= quote.mid_rate
    if spread:
        assert quote.rate < quote.mid_rate
    if side == "from":
        exact_payout = exact_minor(amount, from_cur, to_cur, quote.rate)
        assert quote.to_money.minor <= exact_payout < quote.to_money.minor + 1
        assert Fraction(quote.remainder) * 10 ** exponent(to_cur) == exact_payout - quote.to_money.minor
    else:
        exact_collect = Fraction(amount) / 10 ** exponent(to_cur) / Fraction(quote.rate) * 10 ** exponent(from_cur)
        assert quote.from_money.minor - 1 < exact_collect <= quote.from_money.minor
        assert quote.remainder <= 0
    assert 0 < quote.from_money.minor <= MAX_MINOR and 0 < quote.to_money.minor <= MAX_MINOR


# -- validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    "amounts, code, path",
    [
        ({}, "exactly_one_amount", "from_amount"),
        ({"from_amount": 100, "to_amount": 100}, "exactly_one_amount", "from_amount"),
        ({"from_amount": 0}, "invalid_amount", "from_amount"),
        ({"to_amount": -5}, "invalid_amount", "to_amount"),
        ({"from_amount": 10.5}, "invalid_amount", "from_amount"),
        ({"from_amount": "100"}, "invalid_amount", "from_amount"),
        ({"from_amount": True}, "invalid_amount", "from_amount"),
        ({"to_amount": MAX_MINOR + 1}, "amount_too_large", "to_amount"),
    ],
)
def test_exactly_one_positive_integer_amount_is_required(service, amounts, code, path):
    with pytest.raises(ValidationError) as err:
        service.quote("USD", "RWF", **amounts)
    assert (err.value.code, err.value.path) == (code, path)


def test_a_same_currency_quote_is_refused(service):
    with pytest.raises(ValidationError) as err:
        service.quote("USD", "USD", from_amount=100)
    assert (err.value.code, err.value.path) == ("same_currency", "to_currency")


@pytest.mark.parametrize("cur, code", [("JPY", "unsupported_currency"), ("usd", "unknown_currency"), ("XXX", "unknown_currency")])
def test_currencies_are_checked_on_their_own_field(service, cur, code):
    with pytest.raises(ValidationError) as err:
        service.quote(cur, "RWF", from_amount=100)
    assert (err.value.code, err.value.path) == (code, "from_currency")
    with pytest.raises(ValidationError) as err:
        service.quote("RWF", cur, from_amount=100)
    assert err.value.path == "to_currency"


def test_an_amount_that_converts_to_nothing_is_too_small(service):
    with pytest.raises(ValidationError) as err:
        service.quote("RWF", "USD", from_amount=5)  # 5 RWF is a third of a US cent
    assert (err.value.code, err.value.path) == ("amount_too_small", "from_amount")


def test_a_converted_amount_beyond_the_platform_maximum_is_refused(service):
    with pytest.raises(ValidationError) as err:
        service.quote("USD", "UGX", from_amount=10**14)  # 1e12 USD is 3.6e15 UGX
    assert (err.value.code, err.value.path) == ("amount_too_large", "from_amount")


def test_a_currency_the_source_cannot_price_is_a_provider_problem(service):
    with pytest.raises(ProviderUnavailable) as err:
        service.quote("USD", "ZAR", from_amount=100)
    assert err.value.code == "rate_unavailable"


def test_a_malformed_explicit_id_is_refused(service):
    with pytest.raises(ValidationError) as err:
        service.quote("USD", "RWF", from_amount=100, quote_id="has space")
    assert err.value.code == "invalid_quote_id"


@pytest.mark.parametrize(
    "kwargs",
    [{"default_spread_bps": -1}, {"default_spread_bps": 10_000}, {"spreads": {"USDRWF": 10}}, {"spreads": {"USD/RWF": 1.5}}, {"ttl_seconds": 0}],
)
def test_a_misconfigured_service_fails_at_construction(kwargs):
    with pytest.raises(ValueError):
        QuoteService(FixedRateSource(RATES), MemoryQuoteStore(), FakeClock(), **kwargs)


def test_a_naive_clock_is_refused(clock):
    svc = QuoteService(FixedRateSource(RATES), MemoryQuoteStore(), lambda: datetime(2026, 11, 28, 9, 0))
    with pytest.raises(ValueError):
        svc.quote("USD", "RWF", from_amount=100)


# -- explicit ids: the order derives them --------------------------------------------


def test_asking_again_under_the_same_id_returns_the_first_quote_even_after_rates_move(clock):
    source = FixedRateSource(RATES)
    svc = QuoteService(source, MemoryQuoteStore(), clock)
    first = svc.quote("USD", "RWF", from_amount=120000, quote_id="q_ord1_payout")
    source.rates = replace(RATES, rates={**RATES.rates, "RWF": Decimal("1500")})
    clock.advance(minutes=5)
    again = svc.quote("USD", "RWF", from_amount=120000, quote_id="q_ord1_payout")
    assert again == first


def test_the_same_id_for_a_different_conversion_is_a_conflict(service):
    service.quote("USD", "RWF", from_amount=120000, quote_id="q_ord1_payout")
    for other in [
        dict(from_currency="USD", to_currency="RWF", from_amount=120001),
        dict(from_currency="USD", to_currency="KES", from_amount=120000),
        dict(from_currency="USD", to_currency="RWF", to_amount=120000),
    ]:
        with pytest.raises(QuoteIdConflict) as err:
            service.quote(quote_id="q_ord1_payout", **other)
        assert isinstance(err.value, Conflict) and err.value.code == "quote_exists_with_different_fields"


# -- expiry and consumption ------------------------------------------------------------


def test_get_returns_a_stored_quote_and_unknown_ids_are_not_found(service):
    quote = service.quote("USD", "RWF", from_amount=100)
    assert service.get(quote.quote_id) == quote
    with pytest.raises(NotFound):
        service.get("q_nope")


def test_consuming_locks_the_quote_for_its_consumer(service, clock):
    quote = service.quote("USD", "RWF", from_amount=100)
    clock.advance(minutes=10)
    consumed = service.consume(quote.quote_id, "order:o1")
    assert consumed.consumed_by == "order:o1" and consumed.consumed_at == T0 + timedelta(minutes=10)
    assert service.get(quote.quote_id).consumed_by == "order:o1"


def test_a_retry_by_the_same_consumer_returns_the_same_lock_even_after_expiry(service, clock):
    quote = service.quote("USD", "RWF", from_amount=100)
    first = service.consume(quote.quote_id, "order:o1")
    clock.advance(hours=2)
    assert service.consume(quote.quote_id, "order:o1") == first


def test_a_quote_is_consumed_at_most_once(service):
    quote = service.quote("USD", "RWF", from_amount=100)
    service.consume(quote.quote_id, "order:o1")
    with pytest.raises(QuoteAlreadyUsed) as err:
        service.consume(quote.quote_id, "order:o2")
    assert isinstance(err.value, BusinessRuleViolation) and err.value.code == "quote_already_used"
    assert service.get(quote.quote_id).consumed_by == "order:o1"


def test_a_quote_can_be_consumed_up_to_the_last_second_but_not_at_expiry(service, clock):
    early = service.quote("USD", "RWF", from_amount=100)
    late = service.quote("USD", "RWF", from_amount=200)
    clock.advance(minutes=30, seconds=-1)
    service.consume(early.quote_id, "order:o1")
    clock.advance(seconds=1)
    with pytest.raises(QuoteExpired) as err:
        service.consume(late.quote_id, "order:o2")
    assert err.value.code == "quote_expired" and err.value.detail["expires_at"] == "2026-11-28T09:30:00Z"
    assert service.get(late.quote_id).consumed_by is None


def test_the_ttl_comes_from_the_service(clock):
    svc = QuoteService(FixedRateSource(RATES), MemoryQuoteStore(), clock, ttl_seconds=60)
    quote = svc.quote("USD", "RWF", from_amount=100)
    clock.advance(seconds=61)
    with pytest.raises(QuoteExpired):
        svc.consume(quote.quote_id, "order:o1")


def test_consuming_an_unknown_quote_is_not_found(service):
    with pytest.raises(QuoteNotFound) as err:
        service.consume("q_missing", "order:o1")
    assert err.value.code == "not_found"


def test_a_consumer_id_is_required(service):
    quote = service.quote("USD", "RWF", from_amount=100)
    with pytest.raises(ValidationError):
        service.consume(quote.quote_id, "")


def test_concurrent_consumers_race_and_exactly_one_wins(service):
    quote = service.quote("USD", "RWF", from_amount=100)
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def attempt(n: int) -> None:
        barrier.wait()
        try:
            service.consume(quote.quote_id, f"order:o{n}")
            outcomes.append("won")
        except QuoteAlreadyUsed:
            outcomes.append("lost")

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]


# -- wiring from settings -------------------------------------------------------------------


def test_the_factory_uses_the_snapshot_spreads_and_ttl_from_settings(monkeypatch, clock):
    monkeypatch.setenv("MIZANI_FX_SOURCE", "snapshot")
    monkeypatch.setenv("MIZANI_FX_SPREADS", '{"USD/RWF": 120}')
    monkeypatch.setenv("MIZANI_FX_SPREAD_BPS", "75")
    monkeypatch.setenv("MIZANI_QUOTE_TTL_SECONDS", "600")
    cfg = app_settings.load()
    svc = build_quote_service(cfg, store=MemoryQuoteStore(), clock=clock)
    assert isinstance(svc.rate_source, SnapshotRateSource)
    assert svc.spread_bps("USD", "RWF") == 120 and svc.spread_bps("USD", "KES") == 75
    assert svc.quote("USD", "KES", from_amount=100).expires_at == T0 + timedelta(minutes=10)


def test_the_factory_builds_the_http_source_and_refuses_a_half_configuration(monkeypatch):
    cfg = replace(app_settings.load(), fx_source="http", fx_url="http://127.0.0.1:9/rates.json")
    assert isinstance(build_rate_source(cfg), HttpRateSource)
    with pytest.raises(ValueError):
        build_rate_source(replace(cfg, fx_url=""))
    with pytest.raises(ValueError):
        build_rate_source(replace(cfg, fx_source="carrier-pigeon"))


def test_the_factory_stores_quotes_in_the_app_table_by_default():
    from chalicelib.fx.dynamo_store import DynamoQuoteStore

    cfg = replace(app_settings.load(), table_prefix="mizani-test")
    svc = build_quote_service(cfg)
    assert isinstance(svc.store, DynamoQuoteStore) and svc.store.table_name == "mizani-test-app"


@pytest.mark.parametrize("bad_id", ["", "x" * 201, "quote with spaces", None])
def test_an_id_that_could_never_be_issued_is_simply_not_found(service, bad_id):
    with pytest.raises(QuoteNotFound):
        service.get(bad_id)
    with pytest.raises(QuoteNotFound):
        service.consume(bad_id, "order:o1")


# -- a quote born consumed (an order's checkout: one write instead of get + put + consume) ------------------
def test_a_quote_born_consumed_is_locked_for_its_consumer_in_the_same_write(service, clock):
    store = service.store
    writes = []
    original = store.add
    store.add = lambda quote: writes.append(quote) or original(quote)
    quote = service.quote("USD", "RWF", from_amount=10_000, quote_id="q_o1_payout", consumer_id="o1")
    assert quote.consumed_by == "o1" and len(writes) == 1
    assert store.get("q_o1_payout").consumed_by == "o1"
    clock.advance(hours=2)  # a retried checkout, long after expiry: the lock was taken in time
    again = service.quote("USD", "RWF", from_amount=10_000, quote_id="q_o1_payout", consumer_id="o1")
    assert (again.rate, again.to_money) == (quote.rate, quote.to_money)
    with pytest.raises(QuoteAlreadyUsed):
        service.quote("USD", "RWF", from_amount=10_000, quote_id="q_o1_payout", consumer_id="o2")
    with pytest.raises(QuoteIdConflict):
        service.quote("USD", "RWF", from_amount=20_000, quote_id="q_o1_payout", consumer_id="o1")
