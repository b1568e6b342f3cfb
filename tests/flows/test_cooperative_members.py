"""Co-operatives and their members over HTTP, against the sandbox (moto DynamoDB and Step Functions,
the MTN and Airtel simulators): what a co-operative and its farmers would notice.

Each farmer's share of an order reaches their own wallet once, on their own rail; the
co-operative keeps exactly what it retained; every farmer paid is texted; bad allocations
change nothing.
"""
from __future__ import annotations

import random
import uuid


def fresh_msisdn() -> str:
    """An ordinary Rwandan MTN number no other test uses: the simulator pays it."""
    return "25078" + "".join(random.choices("0123456789", k=7))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def rwandan_airtel() -> str:
    return "25073" + "".join(random.choices("0123456789", k=7))


def add_member(world, seller: dict, name: str, msisdn: str, rail: str = "mtn_momo"):
    body = {"name": name, "payout": {"rail": rail, "msisdn": msisdn, "currency": "RWF"}}
    return world.post(f"/v1/sellers/{seller['seller_id']}/members", "seller", seller["seller_id"], body)


def allocate(world, seller: dict, order: dict, shares, retain_bps: int = 0, sub: str | None = None):
    body = {"shares": [{"member_id": m, "quantity": q} for m, q in shares], "retain_bps": retain_bps}
    return world.request("PUT", f"/v1/orders/{order['order_id']}/allocation", "seller", sub or seller["seller_id"],
                         json_body=body)


def received(world, rail: str, msisdn: str) -> int:
    return sum(b["amount"] for b in world.sim_get(f"/sandbox/wallets/{rail}/{msisdn}")["balances"] if b["currency"] == "RWF")


def test_three_farmers_one_on_airtel_are_each_paid_their_share_and_texted(world):
    coop = world.seller()
    farmers = [world.ok(add_member(world, coop, "Mukamana Claudine", fresh_msisdn()), 201),
               world.ok(add_member(world, coop, "Habimana Jean-Baptiste", fresh_msisdn()), 201),
               world.ok(add_member(world, coop, "Uwase Françoise", rwandan_airtel(), rail="airtel_money"), 201)]
    assert [f["status"] for f in farmers] == ["active"] * 3
    order = world.paid(coop, kg="5")
    allocation = world.ok(allocate(world, coop, order, [(f["member_id"], kg) for f, kg in zip(farmers, (50, 30, 20))], 150))
    assert sum(s["amount"]["amount"] for s in allocation["shares"]) + allocation["retained"]["amount"] == order["payout"]["amount"]
    assert world.read(order["order_id"])["allocation"]["shares"] == allocation["shares"]
    assert world.ship(order).status_code == 200
    assert world.customs(world.read(order["order_id"]), "cleared").status_code == 200
    settled = world.wait_for(order["order_id"], "settled")
    assert settled["status"] == "settled"
    for farmer, share in zip(farmers, allocation["shares"]):
        route = farmer["payout"]
        assert received(world, route["rail"], route["msisdn"]) == share["amount"]["amount"] > 0
        view = world.ok(world.get(f"/v1/sellers/{coop['seller_id']}/members/{farmer['member_id']}", "seller", coop["seller_id"]))
        assert view["balance"]["available"]["amount"] == 0
        assert any(f"order {order['order_id'][-8:].upper()}" in m["message"] for m in world.sms(route["msisdn"]))
    assert received(world, "mtn_momo", coop["payout"]["msisdn"]) == 0  # the shares are not the co-operative's
    assert world.balance(coop["seller_id"])["available"]["amount"] == allocation["retained"]["amount"]
    paid = [p for p in world.payouts(coop["seller_id"]) if p["order_id"] == order["order_id"]]
    assert {p["member_id"] for p in paid} == {f["member_id"] for f in farmers}
    assert all(p["status"] == "succeeded" for p in paid)
    assert world.trial_balance()["balanced"]


def test_fifty_members_are_shared_out_in_several_chains_and_each_paid_once(world):
    coop = world.seller()
    farmers = [world.ok(add_member(world, coop, f"Farmer {i}", fresh_msisdn()), 201) for i in range(50)]
    order = world.paid(coop, kg="5")
    allocation = world.ok(allocate(world, coop, order, [(f["member_id"], 1 + i % 4) for i, f in enumerate(farmers)]))
    assert world.ship(order).status_code == 200
    assert world.customs(world.read(order["order_id"]), "cleared").status_code == 200
    world.wait_for(order["order_id"], "settled", timeout=180)
    for farmer, share in zip(farmers, allocation["shares"]):
        assert received(world, "mtn_momo", farmer["payout"]["msisdn"]) == share["amount"]["amount"]
        assert len(world.wallet_transfers(farmer["payout"]["msisdn"], order["order_id"])) == 1
    assert world.account(f"allocation:{order['order_id']}")["balance"] == 0
    assert world.balance(coop["seller_id"])["available"]["amount"] == allocation["retained"]["amount"]


def test_members_are_listed_page_by_page_and_only_to_their_co_operative(world):
    coop, other = world.seller(), world.seller()
    ids = [world.ok(add_member(world, coop, f"Farmer {i}", fresh_msisdn()), 201)["member_id"] for i in range(3)]
    first = world.ok(world.get(f"/v1/sellers/{coop['seller_id']}/members?limit=2", "seller", coop["seller_id"]))
    assert first["has_more"] and len(first["members"]) == 2
    rest = world.ok(world.get(f"/v1/sellers/{coop['seller_id']}/members?limit=2&cursor={first['next_cursor']}",
                              "seller", coop["seller_id"]))
    assert not rest["has_more"] and rest["next_cursor"] is None
    assert [m["member_id"] for m in first["members"] + rest["members"]] == ids
    assert world.get(f"/v1/sellers/{coop['seller_id']}/members", "seller", other["seller_id"]).status_code == 404
    assert world.get(f"/v1/sellers/{other['seller_id']}/members/{ids[0]}", "seller", other["seller_id"]).status_code == 404
    bogus = world.get(f"/v1/sellers/{coop['seller_id']}/members?cursor=bm90LW91cnM", "seller", coop["seller_id"])
    assert bogus.status_code == 400 and bogus.json()["error"]["code"] == "invalid_cursor"
    stolen = world.get(f"/v1/sellers/{other['seller_id']}/members?cursor={first['next_cursor']}", "seller", other["seller_id"])
    assert stolen.status_code == 400  # a cursor is for the list it came from


def test_a_wallet_number_already_registered_is_msisdn_taken(world):
    coop, other = world.seller(), world.seller()
    number = fresh_msisdn()
    assert add_member(world, coop, "Farmer", number).status_code == 201
    for party, name in ((other, "Someone"), (coop, "Someone else")):
        taken = add_member(world, party, name, number)
        assert taken.status_code == 409 and taken.json()["error"]["code"] == "msisdn_taken"
    mine = add_member(world, coop, "Chair", coop["payout"]["msisdn"])
    assert mine.status_code == 409 and mine.json()["error"]["code"] == "msisdn_taken"
    body = {"name": "Copycat", "country": "RW", "payout": {"rail": "mtn_momo", "msisdn": number, "currency": "RWF"}}
    seller = world.post("/v1/sellers", "seller", unique("seller"), body)
    assert seller.status_code == 409 and seller.json()["error"]["code"] == "msisdn_taken"


def test_bad_allocations_are_refused_and_change_nothing(world):
    coop, other = world.seller(), world.seller()
    mine = world.ok(add_member(world, coop, "Farmer", fresh_msisdn()), 201)["member_id"]
    theirs = world.ok(add_member(world, other, "Stranger", fresh_msisdn()), 201)["member_id"]
    order = world.paid(coop, kg="1")
    cases = [
        ([(mine, 1), (theirs, 1)], 0, 400, "unknown_member"),
        ([(mine, 1), (mine, 2)], 0, 400, "validation_error"),
        ([(mine, 0)], 0, 400, "validation_error"),
        ([(mine, 1)], 10_001, 400, "validation_error"),
        ([], 0, 400, "validation_error"),
    ]
    for shares, bps, status, code in cases:
        reply = allocate(world, coop, order, shares, bps)
        assert (reply.status_code, reply.json()["error"]["code"]) == (status, code), (shares, reply.text)
    assert allocate(world, coop, order, [(mine, 1)], sub=other["seller_id"]).status_code == 404
    assert world.read(order["order_id"])["allocation"] is None
    unknown_field = world.request("PUT", f"/v1/orders/{order['order_id']}/allocation", "seller", coop["seller_id"],
                                  json_body={"shares": [{"member_id": mine, "quantity": 1, "kg": 2}]})
    assert unknown_field.status_code == 400


def test_an_allocation_after_release_is_invalid_state(world):
    coop = world.seller()
    mine = world.ok(add_member(world, coop, "Farmer", fresh_msisdn()), 201)["member_id"]
    order = world.cleared(coop, kg="1")
    world.wait_for(order["order_id"], "settled")
    late = allocate(world, coop, order, [(mine, 1)])
    assert late.status_code == 409 and late.json()["error"]["code"] == "invalid_state"
    assert world.read(order["order_id"])["allocation"] is None
    assert world.balance(coop["seller_id"])["available"]["amount"] == 0  # all of it went to the co-operative's wallet


def test_a_blocked_member_is_not_paid_and_keeps_the_share_in_its_balance(world):
    coop = world.seller()
    farmers = [world.ok(add_member(world, coop, f"Farmer {i}", fresh_msisdn()), 201) for i in range(2)]
    path = f"/v1/sellers/{coop['seller_id']}/members/{farmers[1]['member_id']}"
    assert world.request("PATCH", path, "seller", coop["seller_id"], json_body={"status": "blocked"}).status_code == 403
    assert world.ok(world.request("PATCH", path, "admin", "ops", json_body={"status": "blocked"}))["status"] == "blocked"
    order = world.paid(coop, kg="1")
    allocation = world.ok(allocate(world, coop, order, [(f["member_id"], 1) for f in farmers]))
    assert world.ship(order).status_code == 200
    assert world.customs(world.read(order["order_id"]), "cleared").status_code == 200
    world.until(lambda: received(world, "mtn_momo", farmers[0]["payout"]["msisdn"]) == allocation["shares"][0]["amount"]["amount"],
                "the active member is paid")
    assert received(world, "mtn_momo", farmers[1]["payout"]["msisdn"]) == 0
    held = world.ok(world.get(path, "seller", coop["seller_id"]))
    assert held["balance"]["payout_pending"]["amount"] == allocation["shares"][1]["amount"]["amount"]
    assert world.read(order["order_id"])["status"] == "payout_pending"


MANY = 250


def test_a_co_operative_of_250_members_settles_each_paid_once_and_the_books_balance(world):
    """250 farmers on the sandbox (11 share chains, 5 payout steps; 1,000 run in memory in
    tests/unit/test_cooperative_members.py): registered through the service, in parallel, to keep the
    test short; the order, allocation, customs and every payout over HTTP, moto and the MTN simulator."""
    from concurrent.futures import ThreadPoolExecutor

    from chalicelib import bootstrap
    from chalicelib.escrow.service import Principal

    coop = world.seller()
    owner = Principal(coop["seller_id"], "seller")
    numbers = sorted({fresh_msisdn() for _ in range(300)})[:MANY]
    with ThreadPoolExecutor(max_workers=8) as pool:
        farmers = list(pool.map(lambda n: bootstrap.cooperatives().register_member(
            owner, coop["seller_id"], f"Farmer {n[-4:]}", {"rail": "mtn_momo", "msisdn": n, "currency": "RWF"}), numbers))
    order = world.paid(coop, kg="100")
    allocation = world.ok(allocate(world, coop, order, [(f["member_id"], 1 + i % 9) for i, f in enumerate(farmers)]))
    assert world.ship(order).status_code == 200
    assert world.customs(world.read(order["order_id"]), "cleared").status_code == 200
    world.wait_for(order["order_id"], "settled", timeout=600)
    paid = {p["member_id"]: p for p in world.payouts(coop["seller_id"]) if p["order_id"] == order["order_id"]}
    assert len(paid) == MANY and all(p["status"] == "succeeded" for p in paid.values())
    transfers = {n: world.wallet_transfers(n, order["order_id"]) for n in numbers}
    for farmer, share in zip(farmers, allocation["shares"]):
        sent = transfers[farmer["payout"]["msisdn"]]
        assert len(sent) == 1 and sent[0]["amount"]["amount"] == share["amount"]["amount"], (farmer, sent)
    assert world.account(f"allocation:{order['order_id']}")["balance"] == 0
    assert world.balance(coop["seller_id"])["available"]["amount"] == allocation["retained"]["amount"]
    assert world.trial_balance()["balanced"]
