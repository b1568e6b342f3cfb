"""Customs against the 24-hour promise over HTTP on the sandbox: finance's report and the seller's one SMS."""
import time
import uuid


def tick(world) -> None:
    """The ``customs_reminders`` schedule fires, as EventBridge would call it."""
    world.sb.invoke("customs_reminders", {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/customs_reminders"], "detail": {},
    })


def ship_at(world, order, office):
    body = {"carrier": "RwandAir Cargo", "tracking_number": f"WB{order['order_id'][-8:]}",
            "customs_declaration_ref": "RW-KGL-" + order["order_id"][-10:], "customs_office": office}
    return world.ok(world.post(f"/v1/orders/{order['order_id']}/shipment", "seller", order["seller_id"], body))


def test_an_order_past_the_promise_is_in_the_report_and_texted_to_its_seller_once(world):
    seller = world.seller()
    order = ship_at(world, world.paid(seller), "Kigali International Airport")
    listed = world.ok(world.get("/v1/orders?status=shipped&limit=100", "finance", "fin-1"))["orders"]
    mine = [o for o in listed if o["order_id"] == order["order_id"]]
    assert mine and mine[0]["office"] == "Kigali International Airport" and mine[0]["shipped_at"]
    with world.settings(MIZANI_CUSTOMS_PROMISE_SECONDS="0"):  # every waiting order is past the promise
        report = world.ok(world.get("/v1/customs/clearance", "finance", "fin-1"))
        waiting = [w for w in report["waiting"] if w["order_id"] == order["order_id"]]
        assert waiting and waiting[0]["office"] == "Kigali International Airport" and waiting[0]["hours"] >= 0
        office = next(o for o in report["offices"] if o["office"] == "Kigali International Airport")
        assert office["waiting_over_24h"] >= 1
        tick(world)
        tick(world)  # a second tick texts nobody twice
        world.sweep()
    msisdn = seller["payout"]["msisdn"]
    # The outbox sends up to 50 messages a sweep, oldest first: on a sandbox that other tests filled
    # with waiting orders, this one's text goes out a few sweeps later, as the every-minute sweeper would.
    def texted():
        world.sweep()
        return [m for m in world.sms(msisdn) if "still at customs" in m["message"]]

    texts = world.until(texted, "the customs SMS")
    assert len(texts) == 1 and "Kigali International Airport" in texts[0]["message"]
    assert world.customs(order, "cleared").status_code == 200
    report = world.ok(world.get("/v1/customs/clearance?days=1", "admin", "ops"))
    assert all(w["order_id"] != order["order_id"] for w in report["waiting"])
    office = next(o for o in report["offices"] if o["office"] == "Kigali International Airport")
    assert office["decided"] >= 1 and office["median_hours"] is not None


def test_the_report_and_the_orders_list_are_for_finance_and_admin_only_and_refuse_bad_input(world):
    assert world.get("/v1/customs/clearance", "seller", "s-1").status_code == 403
    assert world.get("/v1/orders?status=shipped", "buyer", "b-1").status_code == 403
    for bad in ("/v1/customs/clearance?days=0", "/v1/customs/clearance?days=abc", "/v1/orders",
                "/v1/orders?status=lost", "/v1/orders?status=paid&limit=101", "/v1/orders?status=paid&cursor=zz"):
        reply = world.get(bad, "finance", "fin-1")
        assert reply.status_code == 400, (bad, reply.text)
        assert reply.json()["error"]["code"] in ("validation_error", "invalid_cursor")
