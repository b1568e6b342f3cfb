"""Card disputes over HTTP on the sandbox: Stripe's simulator opens and closes them, its signed
webhooks reach the API, the real workflow holds, releases or ends the order."""
from __future__ import annotations

import json


def dispute(world, order: dict, reason: str = "product_not_received", **extra) -> dict:
    pi = order["payment"]["payment_intent_id"]
    reply = world.http.post(f"{world.sim}/sandbox/payments/{pi}/dispute", json={"reason": reason, **extra}, timeout=30)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert all(w["status"] == 200 for w in body["webhooks"]), body["webhooks"]
    return body


def close(world, dispute_id: str, outcome: str) -> dict:
    reply = world.http.post(f"{world.sim}/sandbox/disputes/{dispute_id}/close", json={"outcome": outcome}, timeout=30)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert all(w["status"] == 200 for w in body["webhooks"]), body["webhooks"]
    return body


def stripe_dispute(world, dispute_id: str) -> dict:
    return world.sim_get(f"/sandbox/disputes/{dispute_id}")


def mizani_dispute(world, dispute_id: str, role: str = "finance", sub: str = "fin-1"):
    return world.get(f"/v1/disputes/{dispute_id}", role, sub)


def wallet_total(world, msisdn: str, order_id: str) -> int:
    return sum(t["amount"]["amount"] for t in world.wallet_transfers(msisdn, order_id) if t["status"] == "SUCCESSFUL")


def test_a_dispute_before_release_holds_the_order_and_when_won_it_is_released_and_paid(world):
    seller = world.seller()
    order = world.shipped(seller)
    oid = order["order_id"]
    opened = dispute(world, order)
    dispute_id = opened["dispute_id"]
    held = world.wait_for(oid, {"disputed"})
    assert held["dispute"]["dispute_id"] == dispute_id
    assert world.account(f"escrow:{oid}")["balance"] == 0  # the card network took it
    # Evidence went to Stripe at once: carrier, tracking number, shipping date, product, customs.
    at_stripe = stripe_dispute(world, dispute_id)
    assert at_stripe["status"] == "under_review" and at_stripe["evidence_details"]["submission_count"] == 1
    assert at_stripe["evidence"]["shipping_tracking_number"] == order["shipment"]["tracking_number"]
    assert at_stripe["evidence"]["product_description"].startswith("1 kg Washed arabica")
    assert world.texted(seller["payout"]["msisdn"], "disputed")
    seen = world.ok(mizani_dispute(world, dispute_id))
    assert seen["evidence_submitted"] is True and seen["order_id"] == oid and seen["stage"] == "escrow"

    # Customs clears while disputed: recorded, nothing released.
    assert world.customs(order, "cleared").status_code == 200
    world.until(lambda: world.states_entered(oid, "AwaitDisputeBeforeRelease") == 1, "the workflow waiting")
    still = world.read(oid)
    assert still["status"] == "disputed" and still["customs"]["outcome"] == "cleared"
    assert world.balance(seller["seller_id"])["available"]["amount"] == 0

    close(world, dispute_id, "won")
    done = world.wait_for(oid, "settled")
    assert wallet_total(world, seller["payout"]["msisdn"], oid) == done["payout"]["amount"]
    assert world.ok(mizani_dispute(world, dispute_id))["status"] == "won"
    assert world.trial_balance()["balanced"]


def test_a_dispute_lost_before_release_charges_the_order_back_and_pays_nothing(world):
    seller = world.seller()
    order = world.shipped(seller)
    oid = order["order_id"]
    opened = dispute(world, order, reason="fraudulent")
    world.wait_for(oid, {"disputed"})
    assert world.customs(order, "cleared").status_code == 200
    world.until(lambda: world.states_entered(oid, "AwaitDisputeBeforeRelease") == 1, "the workflow waiting")
    close(world, opened["dispute_id"], "lost")
    lost = world.wait_for(oid, {"charged_back"})
    assert lost["dispute"]["status"] == "lost"
    world.until(lambda: world.states_entered(oid, "ChargedBack") == 1, "the workflow to end charged back")
    assert world.account(f"escrow:{oid}")["balance"] == 0
    assert world.wallet_transfers(seller["payout"]["msisdn"], oid) == []
    assert world.balance(seller["seller_id"])["available"]["amount"] == 0
    assert world.trial_balance()["balanced"]


def test_a_dispute_after_the_payout_is_borne_by_the_platform_and_the_payout_stands(world):
    seller = world.seller()
    order = world.cleared(seller)
    oid = order["order_id"]
    settled = world.wait_for(oid, "settled")
    paid = wallet_total(world, seller["payout"]["msisdn"], oid)
    loss_before = _balance_or_zero(world, "loss:chargebacks:RWF")
    opened = dispute(world, settled)
    close(world, opened["dispute_id"], "lost")
    world.until(lambda: world.ok(mizani_dispute(world, opened["dispute_id"]))["status"] == "lost", "the dispute lost")
    seen = world.ok(mizani_dispute(world, opened["dispute_id"]))
    assert seen["stage"] == "released"
    assert seen["recovered"]["loss"]["amount"] == settled["payout"]["amount"]
    assert _balance_or_zero(world, "loss:chargebacks:RWF") - loss_before == settled["payout"]["amount"]
    assert wallet_total(world, seller["payout"]["msisdn"], oid) == paid  # never reversed
    assert world.read(oid)["status"] == "settled"
    assert world.trial_balance()["balanced"]


def test_duplicate_and_late_dispute_webhooks_change_nothing(world):
    seller = world.seller()
    order = world.shipped(seller)
    opened = dispute(world, order)
    close(world, opened["dispute_id"], "lost")
    world.wait_for(order["order_id"], {"charged_back"})
    events = world.stripe_events(order["payment"]["payment_intent_id"])
    created = next(e for e in events if e["type"] == "charge.dispute.created")
    withdrawn = next(e for e in events if e["type"] == "charge.dispute.funds_withdrawn")
    before = world.trial_balance()
    again = world.stripe_resend(created["id"])
    assert again["status"] == 200 and json.loads(again["response"])["duplicate"] is True
    assert world.stripe_resend(withdrawn["id"])["status"] == 200
    assert world.trial_balance() == before
    assert world.read(order["order_id"])["status"] == "charged_back"


def test_unknown_disputes_and_strangers_are_refused_or_acknowledged_and_move_nothing(world):
    assert world.get("/v1/disputes/du_nope", "finance", "fin-1").status_code == 404
    reply = world.http.post(f"{world.sim}/sandbox/disputes/du_nope/close", json={"outcome": "won"}, timeout=30)
    assert reply.status_code == 404
    before = world.trial_balance()
    stranger = {"id": "evt_stranger", "object": "event", "type": "charge.dispute.created", "created": 1_790_000_000,
                "data": {"object": {"id": "du_stranger", "object": "dispute", "amount": 100, "currency": "cny",
                                    "charge": "ch_x", "payment_intent": "pi_not_ours", "status": "needs_response",
                                    "reason": "general", "balance_transactions": []}}}
    reply = world.stripe_webhook(stranger)
    assert reply.status_code == 200 and reply.json()["duplicate"] is True
    assert world.stripe_webhook({**stranger, "id": "evt_bad", "data": {"object": {"object": "dispute"}}}).status_code == 400
    assert world.stripe_webhook(stranger, secret="whsec_wrong").status_code == 400
    assert world.trial_balance() == before


def test_a_seller_sees_its_own_disputes_only_and_finance_lists_them_by_status(world):
    seller, other = world.seller(), world.seller()
    order = world.shipped(seller)
    opened = dispute(world, order)
    assert world.ok(mizani_dispute(world, opened["dispute_id"], "seller", seller["seller_id"]))["order_id"] == order["order_id"]
    assert mizani_dispute(world, opened["dispute_id"], "seller", other["seller_id"]).status_code == 404
    assert mizani_dispute(world, opened["dispute_id"], "buyer", order["buyer_id"]).status_code == 403
    listed = world.ok(world.get("/v1/disputes?status=under_review&limit=100", "admin", "ops"))
    assert opened["dispute_id"] in [d["dispute_id"] for d in listed["disputes"]]
    assert all(d["status"] == "under_review" for d in listed["disputes"])
    assert world.get("/v1/disputes?status=sideways", "admin", "ops").status_code == 400


def _balance_or_zero(world, account_id: str) -> int:
    reply = world.get(f"/v1/ledger/accounts/{account_id}", "finance", "fin-1")
    return reply.json()["balance"] if reply.status_code == 200 else 0


def scheduled_event(world, rule: str) -> dict:
    """The event EventBridge delivers for a scheduled rule."""
    import time
    import uuid

    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": "us-east-1",
            "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{world.sb.table_prefix}-{rule}"], "detail": {}}


def _set_reserve(world, seller: dict, bps: int) -> dict:
    reply = world.request("PATCH", f"/v1/sellers/{seller['seller_id']}", "admin", "ops", json_body={"reserve_bps": bps})
    return world.ok(reply)


def test_with_a_reserve_a_dispute_after_release_is_paid_from_the_reserve_first(world):
    seller = world.seller()
    assert _set_reserve(world, seller, 2000)["reserve_bps"] == 2000
    order = world.wait_for(world.cleared(seller)["order_id"], "settled")
    reserve = order["reserve"]["amount"]
    assert reserve == -(-order["payout"]["amount"] * 2000 // 10_000)
    assert wallet_total(world, seller["payout"]["msisdn"], order["order_id"]) == order["payout"]["amount"] - reserve
    assert world.balance(seller["seller_id"])["reserved"]["amount"] == reserve
    loss_before = _balance_or_zero(world, "loss:chargebacks:RWF")
    disputed = order["pay"]["amount"] // 10  # 10 % of the payment: the reserve (20 %) covers it
    opened = dispute(world, order, amount=disputed)
    close(world, opened["dispute_id"], "lost")
    world.until(lambda: world.ok(mizani_dispute(world, opened["dispute_id"]))["status"] == "lost", "the dispute lost")
    owed = -(-order["payout"]["amount"] * disputed // order["pay"]["amount"])
    seen = world.ok(mizani_dispute(world, opened["dispute_id"]))
    assert seen["recovered"]["reserve"]["amount"] == owed and seen["recovered"]["loss"]["amount"] == 0
    assert world.balance(seller["seller_id"])["reserved"]["amount"] == reserve - owed
    assert _balance_or_zero(world, "loss:chargebacks:RWF") == loss_before
    assert world.trial_balance()["balanced"]


def test_the_schedule_releases_a_reserve_once_its_days_have_passed(world):
    with world.settings(MIZANI_RESERVE_DAYS="0"):  # the 120 days, shortened to none
        seller = world.seller()
        _set_reserve(world, seller, 1000)
        order = world.wait_for(world.cleared(seller)["order_id"], "settled")
        reserve = order["reserve"]["amount"]
        assert world.balance(seller["seller_id"])["reserved"]["amount"] == reserve
        world.sb.invoke("release_reserves", scheduled_event(world, "release_reserves"))
        balance = world.balance(seller["seller_id"])
        assert balance["reserved"]["amount"] == 0 and balance["available"]["amount"] == reserve
    assert world.trial_balance()["balanced"]


def test_a_reserve_is_set_by_an_admin_only_and_within_bounds(world):
    seller = world.seller()
    path = f"/v1/sellers/{seller['seller_id']}"
    assert world.request("PATCH", path, "seller", seller["seller_id"], json_body={"reserve_bps": 100}).status_code == 403
    assert world.request("PATCH", path, "admin", "ops", json_body={"reserve_bps": 10_001}).status_code == 400
    assert world.request("PATCH", path, "admin", "ops", json_body={"reserve_bps": "100"}).status_code == 400
    assert world.request("PATCH", path, "admin", "ops", json_body={}).status_code == 400
