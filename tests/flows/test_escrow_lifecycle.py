"""The escrow journey end to end over HTTP: the real ASL on moto, the simulators, the ledger.

Happy path (the coffee story), customs rejected, customs never answering.
"""
from __future__ import annotations

#: Every status of a settled order, in order (API.md).
HAPPY_STATUSES = ["awaiting_payment", "paid", "shipped", "customs_cleared", "released", "payout_pending", "settled"]


def statuses(order: dict) -> list[str]:
    return [entry["status"] for entry in order["timeline"]]


# -- happy path ------------------------------------------------------------------------------


def test_the_coffee_order_is_priced_in_cny_for_the_buyer_and_guaranteed_in_rwf_to_the_seller(coffee):
    order = coffee.order
    assert order["total"] == {"amount": 120000, "currency": "USD"}
    assert order["pay"]["currency"] == "CNY" and order["pay"]["amount"] > 0
    assert order["fee"] == {"amount": 1800, "currency": "USD"}  # 150 bps of 1,200.00 USD
    assert order["payout"]["currency"] == "RWF" and order["payout"]["amount"] > 1_000_000
    assert order["tariff_free"] is True
    assert order["buyer_id"] == coffee.buyer_id and order["seller_id"] == coffee.seller["seller_id"]


def test_a_cleared_order_settles_with_every_status_on_its_timeline_in_order(coffee):
    order = coffee.order
    assert order["status"] == "settled"
    assert statuses(order) == HAPPY_STATUSES
    times = [entry["at"] for entry in order["timeline"]]
    assert times == sorted(times)
    assert order["customs"]["outcome"] == "cleared"


def test_the_sellers_wallet_is_credited_exactly_the_guaranteed_payout(world, coffee):
    wallet = world.wallet(coffee.msisdn)
    assert wallet["balances"] == [coffee.order["payout"]]
    assert all(t["status"] == "SUCCESSFUL" for t in wallet["transactions"])


def test_after_settlement_the_escrow_is_empty_and_nothing_is_owed_or_pending(world, coffee):
    order_id = coffee.order["order_id"]
    escrow = world.account(f"escrow:{order_id}")
    assert escrow["balance"] == 0
    assert escrow["credits_posted"] == coffee.order["pay"]["amount"] == escrow["debits_posted"]
    seller = world.account(f"seller:{coffee.seller['seller_id']}")
    assert seller["credits_posted"] == coffee.order["payout"]["amount"] == seller["debits_posted"]
    assert (seller["debits_pending"], seller["credits_pending"]) == (0, 0)
    balance = world.balance(coffee.seller["seller_id"])
    assert balance == {"available": {"amount": 0, "currency": "RWF"}, "in_escrow": [],
                       "payout_pending": {"amount": 0, "currency": "RWF"}, "reserved": {"amount": 0, "currency": "RWF"}}


def test_the_trial_balance_is_balanced_after_the_story(world, coffee):
    trial = world.trial_balance()
    assert trial["balanced"] is True
    for currency, row in trial["currencies"].items():
        assert row["debits"] == row["credits"], currency
    assert trial["currencies"]["CNY"]["debits"] >= coffee.order["pay"]["amount"]
    assert trial["currencies"]["RWF"]["debits"] >= coffee.order["payout"]["amount"]


def test_the_sellers_balance_shows_the_money_in_escrow_until_customs_answers(world):
    seller = world.seller()
    order = world.paid(seller)
    balance = world.balance(seller["seller_id"])
    assert balance["in_escrow"] == [order["pay"]]
    assert balance["available"] == {"amount": 0, "currency": "RWF"}
    assert world.account(f"escrow:{order['order_id']}")["balance"] == order["pay"]["amount"]


# -- customs rejects ---------------------------------------------------------------------------


def test_customs_rejection_refunds_the_buyer_once_in_full_and_empties_the_escrow(world):
    seller = world.seller()
    order = world.shipped(seller)
    assert world.customs(order, "rejected").status_code == 200

    done = world.wait_for(order["order_id"], "refunded")
    assert statuses(done) == ["awaiting_payment", "paid", "shipped", "customs_rejected", "refunded"]
    pi = order["payment"]["payment_intent_id"]
    refunds = world.stripe_events(pi, "refund.created")
    assert len(refunds) == 1
    refund = world.stripe_api(f"/v1/events/{refunds[0]['id']}")["data"]["object"]
    assert (refund["amount"], refund["currency"].upper()) == (order["pay"]["amount"], order["pay"]["currency"])
    charge = world.stripe_api(f"/v1/charges/{world.stripe_api(f'/v1/payment_intents/{pi}')['latest_charge']}")
    assert charge["refunded"] is True and charge["amount_refunded"] == order["pay"]["amount"]

    escrow = world.account(f"escrow:{order['order_id']}")
    assert escrow["balance"] == 0 and escrow["debits_posted"] == order["pay"]["amount"]
    assert world.account(f"seller:{seller['seller_id']}")["credits_posted"] == 0  # the seller got nothing
    assert world.wallet(seller["payout"]["msisdn"])["transactions"] == []
    assert world.trial_balance()["balanced"] is True


# -- customs never answers ------------------------------------------------------------------------


def test_customs_silence_past_the_timeout_refunds_the_buyer(world):
    seller = world.seller()
    # The timeout travels in the execution input, taken from settings when the payment arrives.
    with world.settings(MIZANI_CUSTOMS_TIMEOUT_SECONDS="2"):
        order = world.shipped(seller)
    done = world.wait_for(order["order_id"], "refunded")
    # The timeout is recorded as customs' decision (the first decision wins), then the refund.
    assert statuses(done) == ["awaiting_payment", "paid", "shipped", "customs_timeout", "refunded"]
    assert "did not answer in time" in done["timeline"][-1]["detail"]
    assert len(world.stripe_events(order["payment"]["payment_intent_id"], "refund.created")) == 1
    assert world.account(f"escrow:{order['order_id']}")["balance"] == 0
    # customs answering after the refund changes nothing
    late = world.customs(done, "cleared")
    assert (late.status_code, late.json()["error"]["code"]) == (409, "invalid_state")
    assert world.read(order["order_id"])["status"] == "refunded"
