"""FX exposure over HTTP on the sandbox: finance sees the guarantee, its limit refuses a checkout."""


def test_finance_sees_an_orders_guarantee_until_release_then_its_realized_pnl(world):
    seller = world.seller()
    order = world.order(seller, kg="3")
    exposure = world.ok(world.get("/v1/treasury/exposure", "finance", "fin-1"))
    assert exposure["currencies"]["RWF"]["guaranteed"]["amount"] >= order["payout"]["amount"]
    assert exposure["unrealized_pnl"]["currency"] == "USD"
    world.pay(order)
    world.ok(world.ship(world.wait_for(order["order_id"], "paid")))
    assert world.customs(world.read(order["order_id"]), "cleared").status_code == 200
    world.wait_for(order["order_id"], "settled")
    page = world.ok(world.get("/v1/treasury/positions?limit=100", "admin", "ops"))
    mine = [p for p in page["positions"] if p["order_id"] == order["order_id"]]
    assert mine and mine[0]["state"] == "released" and mine[0]["realized_pnl"]["currency"] == "USD"
    # Rates do not move in the sandbox: the realized P&L is the spread, a gain.
    assert mine[0]["realized_pnl"]["amount"] > 0


def test_only_finance_and_admin_see_the_exposure(world):
    assert world.get("/v1/treasury/exposure", "buyer", "b-1").status_code == 403
    assert world.get("/v1/treasury/exposure", "seller", "s-1").status_code == 403
    assert world.request("GET", "/v1/treasury/exposure").status_code == 401


def test_a_checkout_past_the_currencys_limit_answers_422_fx_capacity_exceeded(world):
    seller = world.seller()
    with world.settings(MIZANI_FX_EXPOSURE_LIMITS='{"RWF": 1000}'):
        body = {"seller_id": seller["seller_id"], "pay_currency": "CNY",
                "lines": [{"description": "Coffee", "hs_code": "0901.11", "quantity": "1", "unit": "kg",
                           "unit_price": {"amount": 1200, "currency": "USD"}}]}
        reply = world.post("/v1/orders", "buyer", world.buyer(), body)
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["code"] == "fx_capacity_exceeded"
