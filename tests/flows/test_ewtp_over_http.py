"""eWTP's 30-day rule over HTTP: a buyer who splits a large purchase from one seller into eight
orders is tariff-free only while their sum stays under 1,000,000 USD, and each order says why."""

ORDER_USD = {"amount": 1200_00, "currency": "USD"}  # 125 kg at 1,200.00 USD/kg: 150,000.00 USD an order


def test_eight_orders_from_one_seller_lose_tariff_freedom_once_they_reach_a_million(world):
    seller = world.seller()
    buyer = world.buyer()
    orders = [world.order(seller, buyer, kg="125", pay_currency="USD", unit_price=ORDER_USD) for _ in range(8)]
    assert [o["tariff_free"] for o in orders] == [True] * 6 + [False, False]
    assert orders[0]["tariff_reason"].startswith("under 1,000,000.00 USD")
    assert "900,000.00 USD" in orders[6]["tariff_reason"] and "1,050,000.00 USD" in orders[6]["tariff_reason"]
    # A ninth order, however small, is not tariff-free: the 30 days already hold a million.
    ninth = world.order(seller, buyer, kg="1", pay_currency="USD", unit_price=ORDER_USD)
    assert ninth["tariff_free"] is False
    seen = world.ok(world.get(f"/v1/orders/{orders[3]['order_id']}", "buyer", buyer))
    assert seen["tariff_free"] is True and seen["tariff_reason"] == orders[3]["tariff_reason"]


def test_another_buyer_of_the_same_seller_has_its_own_thirty_days(world):
    seller = world.seller()
    first, second = world.buyer(), world.buyer()
    for _ in range(7):
        world.order(seller, first, kg="125", pay_currency="USD", unit_price=ORDER_USD)
    other = world.order(seller, second, kg="125", pay_currency="USD", unit_price=ORDER_USD)
    assert other["tariff_free"] is True


def test_a_retried_checkout_is_counted_once(world):
    seller = world.seller()
    buyer = world.buyer()
    body = {"seller_id": seller["seller_id"], "pay_currency": "USD",
            "lines": [{"description": "Washed arabica", "hs_code": "0901.11", "quantity": "500", "unit": "kg",
                       "unit_price": ORDER_USD}]}  # 600,000.00 USD
    first = world.ok(world.post("/v1/orders", "buyer", buyer, body, key="same-key"), 201)
    again = world.ok(world.post("/v1/orders", "buyer", buyer, body, key="same-key"), 201)
    assert first["order_id"] == again["order_id"] and first["tariff_free"] is again["tariff_free"] is True
    other = world.ok(world.post("/v1/orders", "buyer", buyer, {**body, "lines": [{**body["lines"][0], "quantity": "300"}]}), 201)
    assert other["tariff_free"] is True  # 600,000 + 360,000: counted once, the retry added nothing
