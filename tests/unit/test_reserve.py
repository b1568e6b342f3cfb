"""The chargeback reserve against fakes: held at release, released 120 days after the card payment,
and the first to pay for a chargeback."""
from datetime import timedelta

import pytest

from chalicelib.disputes.reserve import reserve_amount
from dispute_world import ADMIN, World


@pytest.fixture
def world():
    w = World()
    w.set_reserve(1000)  # 10 % of each payout
    return w


def test_release_holds_the_reserve_and_pays_the_rest_to_the_wallet(world):
    order = world.settled_order()
    payout = order["payout"]["amount"]
    reserve = order["reserve"]["amount"]
    assert reserve == -(-payout // 10)
    assert world.balance("reserve:coop-1") == reserve
    assert sum(m.minor for m in world.rail.credited("250788123456")) == payout - reserve
    balance = world.escrow.seller_balance(ADMIN, "coop-1")
    assert balance["reserved"] == {"amount": reserve, "currency": "RWF"}
    assert balance["available"]["amount"] == 0
    assert world.ledger.trial_balance().balanced


def test_the_reserve_is_released_to_the_balance_120_days_after_the_card_payment(world):
    order = world.settled_order()
    reserve = order["reserve"]["amount"]
    world.now += timedelta(days=119, hours=23)
    assert world.reserves.release_due() == 0
    world.now += timedelta(hours=2)
    assert world.reserves.release_due() == 1
    assert world.balance("reserve:coop-1") == 0
    assert world.available("seller:coop-1") == reserve
    assert world.reserves.release_due() == 0  # released once
    assert world.ledger.trial_balance().balanced


def test_a_chargeback_after_release_comes_from_the_reserve_first(world):
    order = world.settled_order()
    reserve = order["reserve"]["amount"]
    tenth = order["pay"]["amount"] // 20  # a dispute of 5 % of the payment: the reserve covers it
    events = world.lifecycle(order, "du_1", "lost", amount=tenth)
    for event in events:
        world.deliver(event)
    owed = -(-order["payout"]["amount"] * tenth // order["pay"]["amount"])
    assert world.balance("reserve:coop-1") == reserve - owed
    assert world.balance("loss:chargebacks:RWF") == 0
    # 120 days on, what is left of the reserve goes back to the seller.
    world.now += timedelta(days=121)
    world.reserves.release_due()
    assert world.available("seller:coop-1") == reserve - owed
    assert world.ledger.trial_balance().balanced


def test_a_chargeback_larger_than_the_reserve_takes_the_balance_then_the_platform(world):
    order = world.settled_order()
    for event in world.lifecycle(order, "du_1", "lost"):
        world.deliver(event)
    recovery = world.docs.get("dispute#du_1")["recovery"]
    assert recovery["reserve"]["amount"] == order["reserve"]["amount"]
    assert recovery["balance"]["amount"] == 0
    assert recovery["loss"]["amount"] == order["payout"]["amount"] - order["reserve"]["amount"]
    assert world.balance("reserve:coop-1") == 0


def test_a_won_dispute_puts_the_reserve_back_and_it_is_released_on_time(world):
    order = world.settled_order()
    reserve = order["reserve"]["amount"]
    for event in world.lifecycle(order, "du_1", "won"):
        world.deliver(event)
    assert world.balance("reserve:coop-1") == reserve
    world.now += timedelta(days=121)
    world.reserves.release_due()
    assert world.balance("reserve:coop-1") == 0
    assert world.available("seller:coop-1") == reserve
    assert world.ledger.trial_balance().balanced


def test_no_reserve_bps_holds_nothing():
    world = World()
    order = world.settled_order()
    assert order["reserve"] is None
    assert world.balance("reserve:coop-1") == 0


def test_the_reserve_rounds_up_to_the_rails_step_and_never_exceeds_the_payout():
    assert reserve_amount(1_000_001, 1000) == 100_001
    assert reserve_amount(1_000_000, 1000, step=100) == 100_000
    assert reserve_amount(1_000_050, 1000, step=100) == 100_100
    assert reserve_amount(500, 10_000) == 500
    assert reserve_amount(500, 0) == 0

