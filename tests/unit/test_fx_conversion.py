"""Conversion: two linked transfers through the fx:<CUR> liquidity accounts (TigerBeetle's recipe)."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from chalicelib.errors import InvalidState, ValidationError
from chalicelib.fx import FixedRateSource, MemoryQuoteStore, QuoteService, Rates, conversion_transfers, fx_account_id
from chalicelib.ledger import AccountFlag, Ledger, LedgerRejected, TransferKind
from chalicelib.ledger.memory import MemoryLedgerStore

RATES = Rates(
    "USD", datetime(2026, 11, 27, 16, 0, tzinfo=timezone.utc), "test desk", {"CNY": Decimal("7.10"), "RWF": Decimal("1450")}
)


@pytest.fixture
def quotes() -> QuoteService:
    clock = lambda: datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)  # noqa: E731
    return QuoteService(FixedRateSource(RATES), MemoryQuoteStore(), clock, default_spread_bps=100)


@pytest.fixture
def locked_quote(quotes):
    quote = quotes.quote("CNY", "RWF", from_amount=852000, quote_id="q_o1_payout")  # 8,520.00 CNY
    return quotes.consume(quote.quote_id, "order:o1")


def test_the_liquidity_account_of_a_currency_is_fx_colon_code():
    assert fx_account_id("RWF") == "fx:RWF"
    with pytest.raises(ValidationError):
        fx_account_id("JPY")


def test_a_conversion_is_money_in_on_one_ledger_and_money_out_on_the_other(locked_quote):
    fx_in, fx_out = conversion_transfers(locked_quote, "escrow:o1", "seller:s1", "o1:release", reference="o1")

    assert fx_in.transfer_id == "o1:release:fx-in"
    assert (fx_in.debit_account_id, fx_in.credit_account_id) == ("escrow:o1", "fx:CNY")
    assert (fx_in.amount, fx_in.currency) == (locked_quote.from_money.minor, "CNY")

    assert fx_out.transfer_id == "o1:release:fx-out"
    assert (fx_out.debit_account_id, fx_out.credit_account_id) == ("fx:RWF", "seller:s1")
    assert (fx_out.amount, fx_out.currency) == (locked_quote.to_money.minor, "RWF")

    for leg in (fx_in, fx_out):
        assert leg.kind == TransferKind.POSTED and leg.code == "fx_leg" and leg.reference == "o1"
        assert leg.meta["quote_id"] == "q_o1_payout"


def test_money_only_converts_at_a_locked_quote(quotes):
    unlocked = quotes.quote("CNY", "RWF", from_amount=852000)
    with pytest.raises(InvalidState) as err:
        conversion_transfers(unlocked, "escrow:o1", "seller:s1", "o1:release")
    assert err.value.code == "quote_not_consumed"


def _ledger_with_accounts() -> Ledger:
    ledger = Ledger(MemoryLedgerStore())
    ledger.create_account("escrow:o1", "CNY", kind="liability", flags=[AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS])
    ledger.create_account("psp:stripe:CNY", "CNY")
    ledger.create_account("fx:CNY", "CNY")
    ledger.create_account("fx:RWF", "RWF")
    ledger.create_account("seller:s1", "RWF", kind="liability")
    return ledger


def test_the_ledger_commits_both_legs_and_every_currency_stays_balanced(locked_quote):
    ledger = _ledger_with_accounts()
    ledger.transfer(_fund("psp:stripe:CNY", "escrow:o1", locked_quote.from_money.minor))

    ledger.transfer(*conversion_transfers(locked_quote, "escrow:o1", "seller:s1", "o1:release", reference="o1"))

    assert ledger.get_account("escrow:o1").balance == 0
    assert ledger.get_account("seller:s1").balance == locked_quote.to_money.minor
    assert ledger.get_account("fx:CNY").credits_posted == locked_quote.from_money.minor
    assert ledger.get_account("fx:RWF").debits_posted == locked_quote.to_money.minor
    assert ledger.trial_balance().balanced


def test_a_replayed_conversion_moves_nothing_twice(locked_quote):
    ledger = _ledger_with_accounts()
    ledger.transfer(_fund("psp:stripe:CNY", "escrow:o1", locked_quote.from_money.minor))
    legs = conversion_transfers(locked_quote, "escrow:o1", "seller:s1", "o1:release")
    ledger.transfer(*legs)
    ledger.transfer(*conversion_transfers(locked_quote, "escrow:o1", "seller:s1", "o1:release"))
    assert ledger.get_account("seller:s1").balance == locked_quote.to_money.minor


def test_when_the_source_cannot_pay_neither_leg_is_written(locked_quote):
    ledger = _ledger_with_accounts()  # escrow:o1 was never funded
    with pytest.raises(LedgerRejected):
        ledger.transfer(*conversion_transfers(locked_quote, "escrow:o1", "seller:s1", "o1:release"))
    assert ledger.get_account("fx:RWF").debits_posted == 0
    assert ledger.get_account("seller:s1").balance == 0


def _fund(debit: str, credit: str, amount: int):
    from chalicelib.ledger import Transfer

    return Transfer("o1:pay", debit, credit, amount, "CNY", code="escrow_in", reference="o1")
