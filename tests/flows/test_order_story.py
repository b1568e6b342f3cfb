"""One order's whole story over HTTP on the sandbox: finance follows the money leg by leg."""
def story(world, order_id, role="finance", sub="fin-1"):
    return world.get(f"/v1/orders/{order_id}/story", role, sub)


def statement(world, source: str) -> str:
    reply = world.http.get(f"{world.sim}/sandbox/statements/{source}", timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.text


def test_a_settled_orders_story_has_every_transfer_with_its_legs_and_the_payout_reference(world, coffee):
    order = coffee.order
    found = world.ok(story(world, order["order_id"]))
    by_id = {t["transfer_id"]: t for t in found["transfers"]}
    oid = order["order_id"]
    assert by_id[f"pay:{oid}"]["code"] == "card_payment" and by_id[f"pay:{oid}"]["amount"] == order["pay"]
    assert {f"release:{oid}:fee", f"release:{oid}:fx-in", f"release:{oid}:fx-out"} <= set(by_id)
    fx_out = by_id[f"release:{oid}:fx-out"]
    assert [leg["account_id"] for leg in fx_out["legs"]] == ["fx:RWF", f"seller:{order['seller_id']}"]
    # The release held the payout for StartPayout, which took the hold over (payouts/lines.py).
    hold = by_id[f"hold:{oid}"]
    assert hold["status"] == "voided" and hold["step"] == "held for the payout"
    assert by_id[f"hold:{oid}:void"]["step"] == "hold taken over by the payouts' reservations"
    payouts = found["payouts"]
    assert payouts and all(p["status"] == "succeeded" for p in payouts)
    paid = sum(p["amount"]["amount"] for p in payouts)
    assert paid == order["payout"]["amount"]
    for p in payouts:  # each payout: reserved, then posted, and its provider reference among the references
        assert by_id[p["payout_id"]]["status"] == "posted" and by_id[f"{p['payout_id']}:post"]["kind"] == "post_pending"
        assert {"kind": "provider_reference", "provider": "mtn_momo", "reference": p["provider_reference"],
                "payout_id": p["payout_id"]} in found["references"]
    assert {"kind": "payment_intent_id", "provider": "stripe", "reference": order["payment"]["payment_intent_id"],
            "payout_id": None} in found["references"]
    # Internal movements have no provider; a provider's movement says whether a statement covered it.
    assert by_id[f"release:{oid}:fee"]["reconciliation"] is None
    assert found["fx"]["state"] == "released" and found["fx"]["realized_pnl"]["currency"] == "USD"
    assert [t["at"] for t in found["transfers"]] == sorted(t["at"] for t in found["transfers"])


def test_each_leg_shows_its_latest_reconciliation_outcome(world, coffee):
    oid = coffee.order["order_id"]
    for source in ("mtn_momo", "stripe_balance"):
        world.ok(world.post("/v1/reconciliations", "finance", "fin-1",
                            {"source": source, "content": statement(world, source)}), 201)
    found = world.ok(story(world, oid))
    by_id = {t["transfer_id"]: t for t in found["transfers"]}
    assert by_id[f"pay:{oid}"]["reconciliation"]["outcome"] == "matched"
    assert by_id[f"pay:{oid}"]["reconciliation"]["source"] == "stripe_balance"
    for p in found["payouts"]:
        outcome = by_id[f"{p['payout_id']}:post"]["reconciliation"]
        assert outcome["outcome"] == "matched" and outcome["source"] == "mtn_momo"
    runs = world.ok(world.get("/v1/reconciliations?limit=5", "finance", "fin-1"))["reconciliations"]
    assert {r["source"] for r in runs[:2]} == {"mtn_momo", "stripe_balance"}
    assert all(r["status"] in ("balanced", "breaks") for r in runs[:2])


def test_a_leg_the_provider_never_reported_is_a_break_in_its_story(world):
    order = world.paid(world.seller(), kg="2")
    pi = order["payment"]["payment_intent_id"]
    before = world.ok(world.get(f"/v1/orders/{order['order_id']}/story", "finance", "fin-1"))
    payment = next(t for t in before["transfers"] if t["code"] == "card_payment")
    assert payment["reconciliation"]["outcome"] == "not_reconciled"  # no statement has come since it was booked
    # Stripe's report of the day, less this payment's lines: the ledger's card payment is missing at the provider.
    content = "\n".join(row for row in statement(world, "stripe_balance").splitlines() if pi not in row) + "\n"
    world.ok(world.post("/v1/reconciliations", "finance", "fin-1", {"source": "stripe_balance", "content": content}), 201)
    after = world.ok(world.get(f"/v1/orders/{order['order_id']}/story", "finance", "fin-1"))
    payment = next(t for t in after["transfers"] if t["code"] == "card_payment")
    assert payment["reconciliation"]["outcome"] == "missing_at_provider"


def test_buyers_and_sellers_see_only_their_own_orders_story(world, coffee):
    oid = coffee.order["order_id"]
    mine = world.ok(story(world, oid, "buyer", coffee.buyer_id))
    assert all("msisdn" not in p or p["msisdn"] is None for p in mine["payouts"])
    assert all(t.get("reconciliation") is None for t in mine["transfers"])
    assert world.ok(story(world, oid, "seller", coffee.seller["seller_id"]))["payouts"][0]["msisdn"]
    for role, sub in (("buyer", "someone-else"), ("seller", "another-coop")):
        reply = story(world, oid, role, sub)
        assert reply.status_code == 404 and reply.json()["error"]["code"] == "not_found"
    assert story(world, "ord_does_not_exist").status_code == 404
    assert world.request("GET", f"/v1/orders/{oid}/story").status_code == 401
