"""Sanctions screening over HTTP on the sandbox (the local stage screens against the shipped SAMPLE
list, which holds ``Sanctioned Test Person``): a hit is registered in review, its payouts wait, an
admin clears or blocks it."""
from __future__ import annotations

import random
import uuid

HIT = "Sanctioned Test Person"


def register(world, name: str) -> dict:
    seller_id = f"seller-scr-{uuid.uuid4().hex[:10]}"
    body = {"name": name, "country": "RW", "payout": {"rail": "mtn_momo", "msisdn": _msisdn(), "currency": "RWF"}}
    return world.ok(world.post("/v1/sellers", "seller", seller_id, body), 201)


def case_of(world, seller: dict) -> dict:
    return world.ok(world.get(f"/v1/screening/cases/{seller['screening']['case_id']}", "admin", "ops"))


def decide(world, case_id: str, decision: str, key: str | None = "auto"):
    return world.post(f"/v1/screening/cases/{case_id}/decision", "admin", "ops",
                      {"decision": decision, "note": "checked against the passport copy"}, key=key)


def test_a_hit_is_registered_in_review_and_its_payout_waits_until_an_admin_clears_it(world):
    seller = register(world, HIT)
    assert seller["status"] == "pending_review" and seller["screening"]["result"] == "possible_match"
    case = case_of(world, seller)
    assert case["status"] == "open" and case["reason"] == "registration"
    assert case["matches"][0]["entry_id"] == "ofac:9000001" and case["matches"][0]["list"] == "OFAC SDN"
    assert case["list_version"] == seller["screening"]["list_version"]
    listed = world.ok(world.get("/v1/screening/cases?status=open&limit=100", "admin", "ops"))["cases"]
    assert case["case_id"] in [c["case_id"] for c in listed]
    assert world.get("/v1/screening/cases", "finance", "fin-1").status_code == 403

    order = world.cleared(seller)
    world.wait_for(order["order_id"], "payout_pending")
    world.sweep()
    [held] = world.until(lambda: [p for p in world.payouts(seller["seller_id"]) if p.get("hold")], "the payout held")
    assert (held["status"], held["hold"]) == ("pending", "screening")
    assert world.wallet(seller["payout"]["msisdn"])["transactions"] == []  # nothing reached MTN

    decided = world.ok(decide(world, case["case_id"], "clear"))
    assert decided["status"] == "cleared" and decided["decision"]["decision"] == "clear"
    assert world.ok(world.get(f"/v1/sellers/{seller['seller_id']}", "admin", "ops"))["status"] == "active"
    settled = world.wait_for(order["order_id"], "settled")
    assert world.wallet(seller["payout"]["msisdn"])["balances"] == [settled["payout"]]


def test_a_blocked_party_is_refused_payouts_and_its_money_stays_in_the_balance(world):
    seller = register(world, HIT)
    case = case_of(world, seller)
    assert world.ok(decide(world, case["case_id"], "block"))["status"] == "blocked"
    assert world.ok(world.get(f"/v1/sellers/{seller['seller_id']}", "admin", "ops"))["status"] == "blocked"
    order = world.cleared(seller)
    world.wait_for(order["order_id"], "payout_pending")
    world.sweep()
    [held] = world.until(lambda: [p for p in world.payouts(seller["seller_id"]) if p.get("hold")], "the payout held")
    assert held["hold"] == "blocked"
    balance = world.balance(seller["seller_id"])
    assert balance["available"]["amount"] + balance["payout_pending"]["amount"] == order["payout"]["amount"]
    refused = world.post(f"/v1/sellers/{seller['seller_id']}/payouts", "seller", seller["seller_id"],
                         {"amount": {"amount": 1000, "currency": "RWF"}})
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "payee_blocked")
    assert world.wallet(seller["payout"]["msisdn"])["transactions"] == []


def test_a_decision_is_final_and_bad_decisions_are_refused(world):
    seller = register(world, HIT)
    case_id = case_of(world, seller)["case_id"]
    assert decide(world, case_id, "clear", key=None).status_code == 400  # Idempotency-Key required
    assert decide(world, "scr_nope", "clear").status_code == 404
    bad = world.post(f"/v1/screening/cases/{case_id}/decision", "admin", "ops", {"decision": "maybe", "note": "x"})
    assert bad.status_code == 400
    assert world.ok(decide(world, case_id, "clear", key="k-1"))["status"] == "cleared"
    assert world.ok(decide(world, case_id, "clear", key="k-1"))["status"] == "cleared"  # replayed
    closed = decide(world, case_id, "block")
    assert (closed.status_code, closed.json()["error"]["code"]) == (409, "invalid_state")
    assert decide(world, case_id, "clear").status_code == 200  # the same decision again changes nothing


def test_an_ordinary_name_is_clear_and_a_members_name_is_screened_too(world):
    seller = register(world, "Kivu Hills Coffee Co-operative")
    assert seller["status"] == "active" and seller["screening"]["result"] == "clear"
    member = world.ok(world.post(f"/v1/sellers/{seller['seller_id']}/members", "seller", seller["seller_id"],
                                 {"name": HIT, "payout": {"rail": "mtn_momo", "msisdn": _msisdn(), "currency": "RWF"}}),
                      201)
    assert member["status"] == "pending_review" and member["screening"]["result"] == "possible_match"
    case = world.ok(world.get(f"/v1/screening/cases/{member['screening']['case_id']}", "admin", "ops"))
    assert case["party"] == {"kind": "member", "seller_id": seller["seller_id"], "member_id": member["member_id"],
                             "name": HIT}


def _msisdn() -> str:
    return "25078" + "".join(random.choices("0123456789", k=7))
