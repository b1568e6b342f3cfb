"""KYC tier limits over HTTP: a withdrawal beyond what the party's tier may be paid today is 422
limit_exceeded and moves nothing; a higher tier (set by an admin) may be paid more; an order's payout
beyond the tier waits for the next day, as it does for the wallet's daily limit."""
from __future__ import annotations

import json

MTN_FAILS = "46733123450"  # MTN's sandbox number that fails every transfer: the money comes back
LIMITS = json.dumps({"0:RWF": {"per_day": 100_000, "per_month": 300_000},
                     "1:RWF": {"per_day": 5_000_000, "per_month": 20_000_000}})


def withdraw(world, seller: dict, amount: int):
    return world.post(f"/v1/sellers/{seller['seller_id']}/payouts", "seller", seller["seller_id"],
                      {"amount": {"amount": amount, "currency": "RWF"}})


def test_a_withdrawal_beyond_the_tier_is_refused_until_an_admin_raises_the_tier(world):
    seller = world.seller(MTN_FAILS)  # its order's payout fails: the money waits in its balance
    order = world.cleared(seller, kg="20")
    world.wait_for(order["order_id"], "payout_failed")
    available = world.balance(seller["seller_id"])["available"]["amount"]
    assert available > 90_000 + 150_000
    with world.settings(MIZANI_TIER_LIMITS=LIMITS):
        refused = withdraw(world, seller, 150_000)
        assert (refused.status_code, refused.json()["error"]["code"]) == (422, "limit_exceeded")
        assert "KYC tier" in refused.json()["error"]["message"]
        assert world.balance(seller["seller_id"])["available"]["amount"] == available  # nothing moved
        assert world.ok(withdraw(world, seller, 90_000), 201)["amount"]["amount"] == 90_000  # within the day
        world.ok(world.request("PATCH", f"/v1/sellers/{seller['seller_id']}", "admin", "ops",
                               json_body={"kyc_tier": 1}))
        assert world.ok(world.get(f"/v1/sellers/{seller['seller_id']}", "admin", "ops"))["kyc_tier"] == 1
        assert world.ok(withdraw(world, seller, 150_000), 201)["amount"]["amount"] == 150_000
    assert world.trial_balance()["balanced"]


def test_an_orders_payout_beyond_the_tier_waits_for_the_next_day(world):
    with world.settings(MIZANI_TIER_LIMITS=LIMITS):
        seller = world.seller()
        order = world.cleared(seller, kg="10")  # about 170,000 RWF: more than tier 0's 100,000 a day
        world.wait_for(order["order_id"], "payout_pending")
        waiting = world.until(lambda: [p for p in world.payouts(seller["seller_id"]) if p.get("scheduled_for")],
                              "the payout to wait")
        assert waiting[0]["status"] == "pending" and waiting[0]["reason"] == "tier_daily_limit"
        assert world.wallet(seller["payout"]["msisdn"])["transactions"] == []
        assert world.balance(seller["seller_id"])["payout_pending"]["amount"] == order["payout"]["amount"]
