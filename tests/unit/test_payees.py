"""Payee checks before money moves: wallet numbers per rail, the rail's account check, name review, holds."""
from datetime import timedelta

import pytest

from chalicelib import payees, phones
from chalicelib.errors import BusinessRuleViolation, ValidationError
from chalicelib.escrow.service import Principal
from chalicelib.money import Money
from chalicelib.payouts.rails.port import PayeeCheck, RailStatus
from chalicelib.rails import RAILS
from payout_world import WALLET, World

ADMIN = Principal("ops", "admin")


@pytest.fixture
def world():
    w = World()
    w.escrow.payee_rails = lambda name: w.rail
    w.escrow.clock = lambda: w.now
    w.payouts.payees = payees.PayeeGate(w.docs, lambda name: w.rail, lambda: w.now)
    return w


def register(world, seller_id, name, msisdn, rail="mtn_momo", currency="RWF"):
    return world.escrow.register_seller(Principal(seller_id, "seller"), name, "RW",
                                        {"rail": rail, "msisdn": msisdn, "currency": currency})


# -- wallet numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize("msisdn, rail, currency", [
    ("250788123456", "mtn_momo", "RWF"), ("+256772123456", "mtn_momo", "UGX"), ("254712345678", "mpesa", "KES"),
    ("256700123456", "airtel_money", "UGX"), ("250730000001", "airtel_money", "RWF"),
])
def test_a_wallet_of_a_country_and_network_the_rail_serves_is_stored_in_e164(msisdn, rail, currency):
    wallet = phones.wallet_for_rail(msisdn, RAILS[rail], currency, local_stage=False)
    assert wallet.e164 == msisdn.lstrip("+")


@pytest.mark.parametrize("msisdn, rail, currency, why", [
    ("250730000001", "mtn_momo", "RWF", "an Airtel number is not MTN"),
    ("254712345678", "airtel_money", "KES", "a Safaricom number is not Airtel"),
    ("250788123456", "mtn_momo", "UGX", "MTN pays Rwandan wallets in RWF"),
    ("254712345678", "mpesa", "RWF", "M-Pesa does not pay RWF"),
    ("250252123456", "mtn_momo", "RWF", "a landline"),
    ("25078812345", "mtn_momo", "RWF", "too short"),
    ("46733123450", "mtn_momo", "EUR", "MTN's sandbox numbers outside the local stage"),
])
def test_a_wallet_the_rail_cannot_pay_is_a_validation_error(msisdn, rail, currency, why):
    with pytest.raises(ValidationError):
        phones.wallet_for_rail(msisdn, RAILS[rail], currency, local_stage=False)


def test_mtns_sandbox_numbers_are_valid_wallets_in_the_local_stage():
    assert phones.wallet_for_rail("46733123450", RAILS["mtn_momo"], "RWF", local_stage=True).e164 == "46733123450"


# -- registration ----------------------------------------------------------------------------------


def test_an_inactive_wallet_is_refused_with_payee_invalid_and_nothing_is_registered(world):
    world.rail.holders["250788000001"] = None
    with pytest.raises(BusinessRuleViolation) as refused:
        register(world, "coop-x", "Nyungwe Growers", "250788000001")
    assert refused.value.code == "payee_invalid"
    assert world.docs.get("seller#coop-x") is None and world.ledger.get_account("seller:coop-x") is None


def test_a_matching_holder_name_registers_an_active_seller(world):
    world.rail.holders["250788000002"] = "NYUNGWE GROWERS CO-OP"
    seller = register(world, "coop-y", "Nyungwe Growers Co-op", "250788000002")
    assert seller["status"] == "active" and seller["name_check"]["score"] >= payees.NAME_MATCH_THRESHOLD


def test_a_holder_name_that_does_not_match_puts_the_seller_in_review_and_its_payouts_wait(world):
    world.rail.holders["250788000003"] = "Jean Mugabo"
    seller = register(world, "coop-z", "Nyungwe Growers", "250788000003")
    assert seller["status"] == "pending_review"
    assert seller["name_check"]["provider_name"] == "Jean Mugabo" and seller["name_check"]["score"] < 85
    fund(world, "coop-z", 50_000)
    with pytest.raises(BusinessRuleViolation) as refused:
        world.payouts.withdraw(seller, Money(20_000, "RWF"), "w1")
    assert refused.value.code == "payee_in_review" and world.rail.send_calls == []
    assert world.ledger.get_account("seller:coop-z").available == 50_000  # nothing reserved

    world.escrow.set_seller_status(ADMIN, "coop-z", "active")
    paid = world.payouts.withdraw(world.escrow.get_seller(ADMIN, "coop-z"), Money(20_000, "RWF"), "w2")
    assert paid["status"] == "succeeded"
    assert sum(m.minor for m in world.rail.credited("250788000003")) == 20_000


def test_a_payout_held_for_review_keeps_its_money_reserved_and_is_sent_once_cleared(world):
    seller = register(world, "coop-h", "Nyungwe Growers", "250788000007")
    fund(world, "coop-h", 50_000)
    world.now += timedelta(days=payees.RECHECK_DAYS + 1)
    world.rail.holders["250788000007"] = "Someone Else"  # the wallet changed hands meanwhile
    held = world.payouts.withdraw(seller, Money(20_000, "RWF"), "w1")
    assert (held["status"], held["hold"]) == ("pending", "review") and world.rail.send_calls == []
    assert world.ledger.get_account("seller:coop-h").debits_pending == 20_000  # reserved, never lost
    world.escrow.set_seller_status(ADMIN, "coop-h", "active")
    world.payouts.poll_open()
    assert [p["status"] for p in world.payouts.list_for_seller("coop-h")] == ["succeeded"]
    assert sum(m.minor for m in world.rail.credited("250788000007")) == 20_000


def test_a_held_withdrawal_counts_against_the_limit_of_the_day_it_is_sent(world):
    seller = register(world, "coop-d", "Nyungwe Growers", "250788000008")
    fund(world, "coop-d", 9_000_000)
    world.now += timedelta(days=payees.RECHECK_DAYS + 1)
    world.rail.holders["250788000008"] = "Someone Else"
    for key in ("a1", "a2", "a3", "a4", "a5"):  # the whole day's 5,000,000, admitted and held
        assert world.payouts.withdraw(seller, Money(1_000_000, "RWF"), key)["hold"] == "review"
    world.now += timedelta(days=1)
    world.escrow.set_seller_status(ADMIN, "coop-d", "active")
    for key in ("b1", "b2", "b3"):  # today's own withdrawals first
        world.payouts.withdraw(world.escrow.get_seller(ADMIN, "coop-d"), Money(1_000_000, "RWF"), key)
    world.payouts.poll_open()
    sent_today = sum(p["amount"]["amount"] for p in world.payouts.list_for_seller("coop-d") if p["status"] == "succeeded")
    assert sent_today <= 5_000_000  # the held ones did not bring yesterday's room with them
    assert world.ledger.get_account("seller:coop-d").available + sent_today + \
        world.ledger.get_account("seller:coop-d").debits_pending == 9_000_000


def test_a_blocked_seller_cannot_withdraw(world):
    seller = register(world, "coop-b", "Nyungwe Growers", "250788000004")
    world.escrow.set_seller_status(ADMIN, "coop-b", "blocked")
    with pytest.raises(BusinessRuleViolation) as refused:
        world.payouts.withdraw(world.escrow.get_seller(ADMIN, "coop-b"), Money(100, "RWF"), "w1")
    assert refused.value.code == "payee_blocked"


def test_a_check_older_than_thirty_days_is_repeated_before_a_payout(world):
    seller = register(world, "coop-o", "Nyungwe Growers", "250788000005")
    fund(world, "coop-o", 50_000)
    world.now += timedelta(days=payees.RECHECK_DAYS + 1)
    world.rail.holders["250788000005"] = None  # the wallet was closed meanwhile
    held = world.payouts.withdraw(seller, Money(10_000, "RWF"), "w1")
    assert held["hold"] == "review" and world.rail.send_calls == []
    assert world.docs.get("seller#coop-o")["status"] == "pending_review"
    assert world.ledger.get_account("seller:coop-o").debits_pending == 10_000


def test_m_pesa_names_the_payee_only_after_the_first_payment_and_a_mismatch_goes_to_review(world):
    seller = register(world, "coop-k", "Kericho Tea", "250788000006")
    fund(world, "coop-k", 90_000)
    real_status = world.rail.status

    def status_with_name(reference, **wallet):
        found = real_status(reference, **wallet)
        return RailStatus(found.state, found.provider_reference, found.reason, found.raw, payee_name="Someone Else")

    world.rail.status = status_with_name
    world.rail.script("250788000006", send="unknown", statuses=["succeeded"])
    world.payouts.withdraw(seller, Money(10_000, "RWF"), "w1")
    world.payouts.poll_open()
    after = world.docs.get("seller#coop-k")
    assert after["status"] == "pending_review" and after["name_check"]["provider_name"] == "Someone Else"
    with pytest.raises(BusinessRuleViolation) as refused:
        world.payouts.withdraw(after, Money(10_000, "RWF"), "w2")
    assert refused.value.code == "payee_in_review"


def test_an_unchecked_rail_registers_without_a_name_check(world):
    world.escrow.payee_rails = lambda name: type("NoCheck", (), {"check_payee": lambda self, m, c: PayeeCheck(checked=False)})()
    seller = register(world, "coop-m", "Kericho Tea", "254712345678", rail="mpesa", currency="KES")
    assert seller["status"] == "active" and seller["name_check"] is None


def fund(world, seller_id: str, amount: int) -> None:
    """Money in the seller's available balance, as if an order's release had credited it."""
    from chalicelib.ledger import Transfer

    world.ledger.transfer(Transfer(f"fund:{seller_id}", "fx:RWF", f"seller:{seller_id}", amount, "RWF", code="test_funding"))
