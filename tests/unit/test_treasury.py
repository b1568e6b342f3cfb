"""FX exposure and its limits against fakes: what a treasurer and a buyer at checkout would notice."""
from dataclasses import replace
from decimal import Decimal

import pytest

from chalicelib.documents import MemoryDocuments
from chalicelib.errors import BusinessRuleViolation, ValidationError
from chalicelib.escrow.service import EscrowService, Principal
from chalicelib.fx import FixedRateSource, MemoryQuoteStore, QuoteService, SnapshotRateSource
from chalicelib.ledger import Ledger
from chalicelib.ledger.memory import MemoryLedgerStore
from chalicelib.money import Money, Rounding
from chalicelib.payments.fake import FakeCardGateway
from chalicelib.settings import Settings
from chalicelib.treasury.positions import MemoryPositionStore
from chalicelib.treasury.service import Treasury
from chalicelib.workflow.engine import FakeWorkflow

BUYER = Principal("buyer-1", "buyer")
SELLER = Principal("coop-1", "seller")
COFFEE = [{"description": "Washed arabica", "hs_code": "090111", "quantity": "100", "unit": "kg",
           "unit_price": Money(1200, "USD")}]


class World:
    def __init__(self, limits=None):
        self.rates = FixedRateSource(SnapshotRateSource().latest())
        self.ledger = Ledger(MemoryLedgerStore())
        for cur in ("CNY", "USD", "RWF", "KES"):
            for account, kind in (("psp:stripe:{}", "asset"), ("fx:{}", "asset"), ("revenue:fees:{}", "revenue"),
                                  ("float:mtn_momo:{}", "asset")):
                self.ledger.create_account(account.format(cur), cur, kind)
        self.cards = FakeCardGateway()
        self.store = MemoryPositionStore()
        self.treasury = Treasury(self.store, self.rates, self.ledger, limits=limits)
        quotes = QuoteService(self.rates, MemoryQuoteStore(), default_spread_bps=50)
        self.escrow = EscrowService(MemoryDocuments(), self.ledger, quotes, self.cards, FakeWorkflow(), Settings(fee_bps=150))
        self.escrow.fx_positions = self.treasury
        self.escrow.register_seller(SELLER, "Kivu Hills", "RW", {"rail": "mtn_momo", "msisdn": "250788123456",
                                                                 "currency": "RWF"})

    def order(self, key="k1", kg="100", seller="coop-1", pay="CNY"):
        lines = [{**COFFEE[0], "quantity": kg}]
        return self.escrow.create_order(BUYER, seller, pay, lines, key)

    def pay(self, order):
        self.cards.pay(order["payment"]["payment_intent_id"])
        self.escrow.payment_succeeded(order["payment"]["payment_intent_id"], Money(order["pay"]["amount"], order["pay"]["currency"]))

    def clear(self, order):
        oid = order["order_id"]
        self.escrow.record_shipment(SELLER, oid, "DHL", "JD1", "RW-1")
        self.escrow.customs_event(oid, "cleared", "RW-1", "Kigali", f"evt-{oid}")

    def move_rates(self, **per_usd):
        """Rates move: ``RWF="1600"`` is 1 USD = 1600 RWF from now on."""
        current = self.rates.latest()
        self.rates.rates = replace(current, rates={**current.rates, **{k: Decimal(v) for k, v in per_usd.items()}})


def mid(world, currency):
    return Decimal(1) / world.rates.latest().rates[currency]


def usd(value: Decimal) -> int:
    return Money.from_decimal(value, "USD", Rounding.HALF_EVEN).minor


def test_a_checkout_guarantees_the_payout_and_nothing_is_held_until_the_buyer_pays():
    w = World()
    order = w.order()
    exposure = w.treasury.exposure()
    rwf, cny = exposure["currencies"]["RWF"], exposure["currencies"]["CNY"]
    assert rwf["guaranteed"] == order["payout"] and rwf["orders"] == 1 and rwf["limit"] is None
    assert cny["held"] == {"amount": 0, "currency": "CNY"}
    w.pay(order)
    assert w.treasury.exposure()["currencies"]["CNY"]["held"] == order["pay"]


def test_unrealized_pnl_is_the_sum_of_the_marks_and_is_the_spread_while_rates_stand_still():
    w = World()
    w.pay(w.order("a"))
    w.pay(w.order("b", kg="7"))
    exposure = w.treasury.exposure()
    marks = sum(c["mark_to_market"]["amount"] for c in exposure["currencies"].values())
    assert exposure["unrealized_pnl"] == {"amount": marks, "currency": "USD"}
    # Two quotes at 50 bps each, plus the house's roundings: the platform earns about 1 % of what it converts.
    converted_usd = sum(p.convert.to_decimal() * mid(w, "CNY") for p in w.store.open_positions())
    assert Decimal("0.009") * converted_usd < Decimal(marks) / 100 < Decimal("0.011") * converted_usd


def test_a_stronger_payout_currency_costs_the_platform_what_the_guarantee_gained_in_value():
    w = World()
    order = w.order()
    w.pay(order)
    before = w.treasury.exposure()["unrealized_pnl"]["amount"]
    w.move_rates(RWF="1300")  # was 1451.80 RWF per USD: the RWF the platform owes now costs more dollars
    after = w.treasury.exposure()
    payout = Money(order["payout"]["amount"], "RWF").to_decimal()
    owed_before, owed_after = payout / Decimal("1451.80"), payout / Decimal("1300")
    assert after["unrealized_pnl"]["amount"] < before
    assert abs((before - after["unrealized_pnl"]["amount"]) - usd(owed_after - owed_before)) <= 1
    assert after["currencies"]["RWF"]["mark_to_market"]["amount"] == -usd(owed_after)


def test_release_realizes_the_locked_rate_against_the_rate_at_release_and_frees_the_capacity():
    w = World()
    order = w.order()
    w.pay(order)
    w.clear(order)
    w.move_rates(RWF="1500", CNY="7.2")
    w.escrow.release_escrow(order["order_id"])
    position = w.treasury.position(order["order_id"])
    assert position.state == "released"
    fx_in = w.ledger.get_transfer(f"release:{order['order_id']}:fx-in").transfer
    assert (fx_in.amount, fx_in.currency) == (position.convert_minor, "CNY")  # what the ledger converted
    expected = usd(position.convert.to_decimal() / Decimal("7.2") - position.payout.to_decimal() / Decimal("1500"))
    assert position.realized_pnl == Money(expected, "USD")
    exposure = w.treasury.exposure()
    assert exposure["realized_pnl"] == {"amount": expected, "currency": "USD"}
    assert exposure["open_orders"] == 0 and exposure["unrealized_pnl"]["amount"] == 0
    assert exposure["currencies"]["RWF"]["capacity_used"]["amount"] == 0
    assert exposure["currencies"]["RWF"]["fx_account"]["amount"] == -order["payout"]["amount"]  # paid out of fx:RWF
    # A retried release task realizes nothing twice.
    w.escrow.release_escrow(order["order_id"])
    assert w.treasury.exposure()["realized_pnl"]["amount"] == expected
    page = w.treasury.closed_page()
    assert [p["order_id"] for p in page["positions"]] == [order["order_id"]] and page["has_more"] is False


def test_a_refund_closes_the_position_without_pnl():
    w = World()
    order = w.order()
    w.pay(order)
    w.escrow.refund(order["order_id"], "customs rejected the shipment")
    assert w.treasury.position(order["order_id"]).state == "cancelled"
    exposure = w.treasury.exposure()
    assert exposure["realized_pnl"]["amount"] == 0 and exposure["open_orders"] == 0
    assert "RWF" not in exposure["currencies"]  # nothing owed, held or converted in RWF any more


def test_an_order_that_would_cross_the_currencys_limit_is_refused_before_any_payment_exists():
    w = World()
    first = w.order("a")
    payout = first["payout"]["amount"]
    w = World(limits={"RWF": payout + payout // 2})
    first = w.order("a")
    intents = len(w.cards.calls)
    with pytest.raises(BusinessRuleViolation) as refused:
        w.order("b")
    assert refused.value.code == "fx_capacity_exceeded"
    assert len(w.cards.calls) == intents  # no PaymentIntent for the refused order
    assert w.treasury.exposure()["currencies"]["RWF"]["guaranteed"]["amount"] == payout
    w.order("small", kg="10")  # a smaller order still fits
    w.pay(first)
    w.clear(first)
    w.escrow.release_escrow(first["order_id"])
    w.order("b")  # the first order's release gave its room back


def test_a_single_order_larger_than_the_limit_is_refused_and_a_retried_checkout_counts_once():
    w = World(limits={"RWF": 10})
    with pytest.raises(BusinessRuleViolation, match="over its limit"):
        w.order("big")
    w = World(limits={"RWF": 10**12})
    first = w.order("same")
    assert w.order("same")["order_id"] == first["order_id"]
    w.treasury.reserve(first["order_id"], Money(first["pay"]["amount"], "CNY"), Money(first["payout"]["amount"], "RWF"),
                       Money(1, "CNY"))  # the workflow or a client retries: still one position
    assert w.store.counters(["RWF"]) == {"RWF": first["payout"]["amount"]}


def test_orders_paid_and_paid_out_in_one_currency_carry_no_fx_position():
    w = World(limits={"RWF": 1})
    order = w.order("rwf", pay="RWF")  # listed in USD, but the buyer pays RWF and the seller is paid RWF
    assert w.treasury.position(order["order_id"]) is None
    assert w.treasury.exposure()["open_orders"] == 0


def test_a_cursor_that_the_list_did_not_give_is_a_validation_error():
    with pytest.raises(ValidationError):
        World().treasury.closed_page(cursor="not-ours")


def test_a_limit_setting_that_is_not_minor_units_is_a_deploy_error(monkeypatch):
    from chalicelib import settings

    monkeypatch.setenv("MIZANI_FX_EXPOSURE_LIMITS", '{"RWF": 1.5}')
    with pytest.raises(ValueError):
        settings.load()
    monkeypatch.setenv("MIZANI_FX_EXPOSURE_LIMITS", '{"RWF": 5000000}')
    assert settings.load().fx_exposure_limits == {"RWF": 5000000}


def test_a_dispute_lost_before_release_takes_the_guarantee_off_the_fx_capacity():
    w = World(limits={"RWF": 10**12})
    order = w.order()
    w.pay(order)
    assert w.escrow.hold_for_dispute(order["order_id"], "du_1", "needs_response")[0] == "held"
    w.escrow.dispute_closed(order["order_id"], "du_1", kept=False, status="lost")
    w.escrow.dispute_closed(order["order_id"], "du_1", kept=False, status="lost")  # Stripe repeats the webhook
    assert w.escrow.order(order["order_id"])["status"] == "charged_back"
    assert w.treasury.position(order["order_id"]).state == "cancelled"
    assert w.store.counters(["RWF"]) == {"RWF": 0}
