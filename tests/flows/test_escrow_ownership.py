"""Roles and ownership over HTTP: someone else's object answers 404, a role the route does
not admit answers 403, no token answers 401 (API.md "Auth" and "Conventions")."""
from __future__ import annotations

import pytest


def code(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


@pytest.fixture(scope="module")
def paid(module_world):
    """A seller, its buyer, and a paid order between them (no test here changes it)."""
    seller = module_world.seller()
    buyer_id = module_world.buyer()
    order = module_world.paid(seller, buyer_id=buyer_id)
    return seller, buyer_id, order


def test_a_buyer_sees_its_own_order_and_another_buyers_order_is_not_found(world, paid):
    seller, buyer_id, order = paid
    path = f"/v1/orders/{order['order_id']}"
    assert world.ok(world.get(path, "buyer", buyer_id))["order_id"] == order["order_id"]
    assert code(world.get(path, "buyer", world.buyer())) == (404, "not_found")
    missing = world.get("/v1/orders/ord_00000000000000000000", "buyer", buyer_id)
    assert code(missing) == (404, "not_found") and missing.json()["error"]["message"] == \
        world.get(path, "buyer", world.buyer()).json()["error"]["message"]  # indistinguishable


def test_the_orders_seller_and_staff_see_it_another_seller_does_not(world, paid):
    seller, _, order = paid
    path = f"/v1/orders/{order['order_id']}"
    assert world.get(path, "seller", seller["seller_id"]).status_code == 200
    assert world.get(path, "admin", "ops").status_code == 200
    assert world.get(path, "finance", "fin-1").status_code == 200
    assert code(world.get(path, "seller", world.seller()["seller_id"])) == (404, "not_found")


@pytest.mark.parametrize("suffix", ["", "/balance", "/payouts"])
def test_another_sellers_record_balance_and_payouts_are_not_found(world, paid, suffix):
    seller, _, _ = paid
    path = f"/v1/sellers/{seller['seller_id']}{suffix}"
    assert world.get(path, "seller", seller["seller_id"]).status_code == 200
    assert world.get(path, "finance", "fin-1").status_code == 200
    assert code(world.get(path, "seller", world.seller()["seller_id"])) == (404, "not_found")


@pytest.mark.parametrize("suffix", ["", "/balance", "/payouts"])
def test_a_buyer_may_not_read_a_sellers_record_balance_or_payouts(world, paid, suffix):
    seller, buyer_id, _ = paid
    assert code(world.get(f"/v1/sellers/{seller['seller_id']}{suffix}", "buyer", buyer_id)) == (403, "forbidden")


def test_another_seller_cannot_record_the_shipment_of_an_order_it_does_not_own(world, paid):
    _, _, order = paid
    intruder = world.seller()
    assert code(world.ship(order, "seller", intruder["seller_id"])) == (404, "not_found")
    assert world.read(order["order_id"])["status"] == "paid"


def test_a_buyer_recording_a_shipment_is_refused_by_role(world, paid):
    # The shipment route admits only sellers: the buyer's role is refused before ownership is looked at.
    _, buyer_id, order = paid
    assert code(world.ship(order, "buyer", buyer_id)) == (403, "forbidden")
    assert world.read(order["order_id"])["status"] == "paid"


def test_a_shipment_is_recorded_only_from_paid(world):
    seller = world.seller()
    order = world.order(seller)
    assert code(world.ship(order)) == (409, "invalid_state")
    assert world.read(order["order_id"])["status"] == "awaiting_payment"


def test_another_seller_cannot_withdraw_from_a_sellers_balance(world, paid):
    seller, _, _ = paid
    intruder = world.seller()
    reply = world.post(f"/v1/sellers/{seller['seller_id']}/payouts", "seller", intruder["seller_id"],
                       {"amount": {"amount": 1000, "currency": "RWF"}})
    assert code(reply) == (404, "not_found")


def test_only_buyers_place_orders_and_only_staff_read_the_ledger(world, paid):
    seller, buyer_id, order = paid
    body = {"seller_id": seller["seller_id"], "pay_currency": "CNY",
            "lines": [{"description": "coffee", "hs_code": "0901.11", "quantity": "1", "unit": "kg",
                       "unit_price": {"amount": 1200, "currency": "USD"}}]}
    assert code(world.post("/v1/orders", "seller", seller["seller_id"], body)) == (403, "forbidden")
    for role, sub in (("buyer", buyer_id), ("seller", seller["seller_id"])):
        assert code(world.get(f"/v1/ledger/accounts/escrow:{order['order_id']}", role, sub)) == (403, "forbidden")
        assert code(world.get("/v1/ledger/trial-balance", role, sub)) == (403, "forbidden")


def test_no_token_is_401_on_every_protected_route(world, paid):
    seller, _, order = paid
    for path in (f"/v1/orders/{order['order_id']}", f"/v1/sellers/{seller['seller_id']}/balance",
                 "/v1/ledger/trial-balance"):
        assert code(world.request("GET", path)) == (401, "unauthorized")
