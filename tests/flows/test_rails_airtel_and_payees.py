"""Airtel Money payouts and payee checks, over HTTP against the sandbox (Airtel, MTN and M-Pesa simulators).

What a co-operative would notice: its Airtel wallet receives the guaranteed payout once,
whatever the provider does; a wallet the rail calls inactive cannot be registered; a name
that does not match the wallet's holder holds the payouts until an admin clears it.
"""
from __future__ import annotations

import random

import pytest

AIRTEL_FAILS, AIRTEL_TIMES_OUT, AIRTEL_PENDING, AIRTEL_AMBIGUOUS = "256700000010", "256700000011", "256700000012", "256700000013"
AIRTEL_INACTIVE = "250730000001"
MTN_INACTIVE = "46733123455"


def ugandan_airtel() -> str:
    return "25670" + "".join(random.choices("123456789", k=1)) + "".join(random.choices("0123456789", k=6))


def airtel_seller(world, msisdn: str | None = None, name: str | None = None) -> dict:
    return world.seller(msisdn or ugandan_airtel(), rail="airtel_money", currency="UGX", country="UG")


def airtel_received(world, msisdn: str) -> int:
    balances = world.sim_get(f"/sandbox/wallets/airtel_money/{msisdn}")["balances"]
    return sum(b["amount"] for b in balances if b["currency"] == "UGX")


def register(world, seller_id: str, name: str, rail: str, msisdn: str, currency: str, country: str):
    body = {"name": name, "country": country, "payout": {"rail": rail, "msisdn": msisdn, "currency": currency}}
    return world.post("/v1/sellers", "seller", seller_id, body)


def name_wallet(world, rail: str, msisdn: str, name: str) -> None:
    reply = world.http.post(f"{world.sim}/sandbox/wallets/{rail}/{msisdn}", json={"name": name}, timeout=30)
    assert reply.status_code == 200, reply.text


# -- Airtel Money payouts ------------------------------------------------------------------------------


def test_an_airtel_co_operative_in_uganda_is_paid_its_guaranteed_ugx_once(world):
    seller = airtel_seller(world)
    msisdn = seller["payout"]["msisdn"]
    order = world.cleared(seller, kg="5")
    settled = world.wait_for(order["order_id"], "settled")
    assert settled["payout"]["currency"] == "UGX"
    assert airtel_received(world, msisdn) == settled["payout"]["amount"]
    [payout] = [p for p in world.payouts(seller["seller_id"]) if p["order_id"] == order["order_id"]]
    assert payout["status"] == "succeeded" and payout["rail"] == "airtel_money" and payout["provider_reference"]
    assert world.balance(seller["seller_id"])["available"]["amount"] == 0
    assert world.texted(msisdn, "Airtel Money")


@pytest.mark.parametrize("msisdn", [AIRTEL_TIMES_OUT, AIRTEL_AMBIGUOUS])
def test_a_timed_out_or_ambiguous_airtel_answer_is_asked_again_and_paid_once(world, msisdn):
    seller = airtel_seller(world, msisdn)
    before = airtel_received(world, msisdn)
    order = world.cleared(seller)
    settled = world.wait_for(order["order_id"], "settled")
    assert airtel_received(world, msisdn) - before == settled["payout"]["amount"]


def test_an_airtel_failure_puts_the_money_back_in_the_balance(world):
    seller = airtel_seller(world, AIRTEL_FAILS)
    order = world.cleared(seller)
    failed = world.wait_for(order["order_id"], "payout_failed")
    assert world.balance(seller["seller_id"])["available"] == failed["payout"]


def test_an_airtel_payout_pending_at_the_provider_settles_when_airtel_says_so(world):
    seller = airtel_seller(world, AIRTEL_PENDING)
    order = world.cleared(seller)
    world.wait_for(order["order_id"], "payout_pending")
    payout_id = f"po_{order['order_id']}_1"
    # "pending" to the seller includes a payout not sent yet: settle it at Airtel once Airtel has it.
    world.until(lambda: world.http.post(f"{world.sim}/sandbox/airtel/transactions/{payout_id}/settle",
                                        json={"status": "TS"}, timeout=30).status_code == 200,
                "the Airtel payout to reach Airtel")
    world.wait_for(order["order_id"], "settled")


def test_an_airtel_callback_claiming_success_for_a_pending_payout_changes_nothing(world):
    seller = airtel_seller(world, AIRTEL_PENDING)
    order = world.cleared(seller)
    world.wait_for(order["order_id"], "payout_pending")
    payout_id = f"po_{order['order_id']}_1"
    body = {"transaction": {"id": payout_id, "status_code": "TS", "airtel_money_id": "FORGED", "message": "paid"}}
    assert world.request("POST", "/v1/webhooks/rails/airtel_money", json_body=body, key=None).status_code == 200
    assert world.read(order["order_id"])["status"] == "payout_pending"  # Airtel, asked, still says TIP
    assert world.balance(seller["seller_id"])["payout_pending"]["amount"] > 0


# -- payee checks at registration ------------------------------------------------------------------------


@pytest.mark.parametrize("rail, msisdn, currency, country", [
    ("airtel_money", AIRTEL_INACTIVE, "RWF", "RW"), ("mtn_momo", MTN_INACTIVE, "RWF", "RW"),
])
def test_a_wallet_the_rail_calls_inactive_cannot_be_registered(world, rail, msisdn, currency, country):
    seller_id = f"seller-inactive-{random.randrange(10**9)}"
    reply = register(world, seller_id, "Nyabihu Potato Growers", rail, msisdn, currency, country)
    assert (reply.status_code, reply.json()["error"]["code"]) == (422, "payee_invalid")
    assert world.get(f"/v1/sellers/{seller_id}", "admin", "ops").status_code == 404


@pytest.mark.parametrize("msisdn, rail, currency, country", [
    ("250730000002", "mtn_momo", "RWF", "RW"),  # an Airtel Rwanda number on MTN
    ("250788123456", "mtn_momo", "UGX", "RW"),  # MTN Rwanda pays RWF
    ("254712345678", "airtel_money", "KES", "KE"),  # a Safaricom number on Airtel
])
def test_a_number_of_another_network_or_currency_is_a_validation_error(world, msisdn, rail, currency, country):
    reply = register(world, f"seller-x-{random.randrange(10**9)}", "Growers", rail, msisdn, currency, country)
    assert (reply.status_code, reply.json()["error"]["code"]) == (400, "validation_error")


def test_a_holder_name_that_does_not_match_holds_payouts_until_an_admin_clears_the_seller(world):
    msisdn = "25078" + "".join(random.choices("0123456789", k=7))
    name_wallet(world, "mtn_momo", msisdn, "Jean-Claude Habimana")
    seller_id = f"seller-review-{random.randrange(10**9)}"
    seller = world.ok(register(world, seller_id, "Gakenke Coffee Co-operative", "mtn_momo", msisdn, "RWF", "RW"), 201)
    assert seller["status"] == "pending_review"
    assert seller["name_check"]["provider_name"] == "Jean-Claude Habimana" and seller["name_check"]["score"] < 85

    order = world.cleared(seller)
    world.wait_for(order["order_id"], "payout_pending")
    world.sweep()
    [held] = world.until(lambda: [p for p in world.payouts(seller_id) if p.get("hold")], "the payout to be held")
    assert (held["status"], held["hold"]) == ("pending", "review")
    assert world.wallet(msisdn)["transactions"] == []  # nothing reached MTN
    assert world.balance(seller_id)["payout_pending"] == order["payout"] or world.balance(seller_id)["payout_pending"]["amount"] > 0

    assert world.request("PATCH", f"/v1/sellers/{seller_id}", "seller", seller_id, json_body={"status": "active"}).status_code == 403
    cleared = world.ok(world.request("PATCH", f"/v1/sellers/{seller_id}", "admin", "ops", json_body={"status": "active"}))
    assert cleared["status"] == "active"
    settled = world.wait_for(order["order_id"], "settled")
    world.sweep()
    assert world.wallet(msisdn)["balances"] == [settled["payout"]]


def test_a_matching_holder_name_registers_an_active_seller(world):
    msisdn = "25078" + "".join(random.choices("0123456789", k=7))
    name_wallet(world, "mtn_momo", msisdn, "GAKENKE COFFEE COOPERATIVE")
    seller = world.ok(register(world, f"seller-ok-{random.randrange(10**9)}", "Gakenke Coffee Co-operative", "mtn_momo",
                               msisdn, "RWF", "RW"), 201)
    assert seller["status"] == "active" and seller["name_check"]["score"] >= 85


def test_m_pesa_names_the_wallet_only_with_the_first_payment_and_a_mismatch_goes_to_review(world):
    msisdn = "25471" + "".join(random.choices("0123456789", k=7))
    name_wallet(world, "mpesa", msisdn, "Wanjiru Kamau")
    seller_id = f"seller-mpesa-{random.randrange(10**9)}"
    seller = world.ok(register(world, seller_id, "Kericho Highlands Tea Growers", "mpesa", msisdn, "KES", "KE"), 201)
    assert seller["status"] == "active" and seller["name_check"] is None  # Daraja has no check before paying
    order = world.cleared(seller)
    world.wait_for(order["order_id"], "settled")  # the money was already on its way: it is paid
    after = world.until(lambda: (s := world.ok(world.get(f"/v1/sellers/{seller_id}", "admin", "ops")))
                        ["status"] == "pending_review" and s, "the seller to go to review")
    assert after["name_check"]["provider_name"] == "Wanjiru Kamau" and after["name_check"]["score"] < 85
