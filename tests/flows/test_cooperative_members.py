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
        assert world.texted(route["msisdn"], f"order {order['order_id'][-8:].upper()}")
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


MANY = 1000
PIN = "482916"


def register_in_bulk(world, coop: dict, wallets: list[tuple[str, str]]) -> list[dict]:
    """The co-operative registers its farmers ((rail, number) each) over HTTP, 100 a request (the bulk
    form), two requests at a time."""
    from concurrent.futures import ThreadPoolExecutor

    def batch(start: int) -> list[dict]:
        body = {"members": [{"name": f"Farmer {n[-4:]}", "payout": {"rail": rail, "msisdn": n, "currency": "RWF"}}
                            for rail, n in wallets[start:start + 100]]}
        return world.ok(world.post(f"/v1/sellers/{coop['seller_id']}/members/batch", "seller", coop["seller_id"], body),
                        201)["members"]

    with ThreadPoolExecutor(max_workers=2) as pool:
        return [m for page in pool.map(batch, range(0, len(wallets), 100)) for m in page]


def choose_language(world, msisdn: str, choice: str) -> str:
    """A farmer dials the USSD code, sets a PIN and picks a language (``choice``: its menu number)."""
    from ussd_world import Gateway

    def answer(body: str) -> str:
        reply = world.http.post(f"{world.api}/v1/ussd", data=body, timeout=30,
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert reply.status_code == 200, reply.text
        return reply.text

    return Gateway(answer, f"+{msisdn}").dial(PIN, PIN, "4", choice).last


def test_bulk_registration_refuses_a_batch_with_one_bad_entry_and_registers_none(world):
    coop, other = world.seller(), world.seller()
    taken = world.ok(add_member(world, other, "Stranger", fresh_msisdn()), 201)["payout"]["msisdn"]
    numbers = [fresh_msisdn() for _ in range(3)]

    def entries(*more):
        return {"members": [{"name": f"Farmer {i}", "payout": {"rail": "mtn_momo", "msisdn": n, "currency": "RWF"}}
                            for i, n in enumerate(numbers)] + list(more)}

    path = f"/v1/sellers/{coop['seller_id']}/members/batch"
    refused = world.post(path, "seller", coop["seller_id"],
                         entries({"name": "Copy", "payout": {"rail": "mtn_momo", "msisdn": taken, "currency": "RWF"}}))
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "msisdn_taken"
    assert refused.json()["error"]["fields"][0]["path"] == "members.3.payout.msisdn"
    twice = world.post(path, "seller", coop["seller_id"],
                       entries({"name": "Twin", "payout": {"rail": "mtn_momo", "msisdn": numbers[0], "currency": "RWF"}}))
    assert twice.status_code == 400 and twice.json()["error"]["fields"][0]["path"] == "members.3.payout.msisdn"
    assert world.post(path, "seller", coop["seller_id"], {"members": []}).status_code == 400
    too_many = {"members": [{"name": "F", "payout": {"rail": "mtn_momo", "msisdn": fresh_msisdn(), "currency": "RWF"}}] * 101}
    assert world.post(path, "seller", coop["seller_id"], too_many).status_code == 400
    assert world.post(path, "seller", other["seller_id"], entries()).status_code == 404  # another's co-operative
    listed = world.ok(world.get(f"/v1/sellers/{coop['seller_id']}/members", "seller", coop["seller_id"]))
    assert listed["members"] == []  # nothing was registered by the refused batches
    for n in numbers:  # and no number was claimed: each registers singly now
        assert add_member(world, coop, "Farmer", n).status_code == 201


def test_a_co_operative_of_1000_members_settles_each_paid_once_and_the_books_balance(world):
    """1,000 farmers on the sandbox, everything over HTTP: registered (the bulk form, 100 a request; one in
    ten on Airtel Money), three of them choosing their language over USSD, the order paid and allocated,
    customs cleared, release (42 share chains of 24) and every member's payout through the MTN and
    Airtel simulators."""
    from concurrent.futures import ThreadPoolExecutor

    from chalicelib.money import Money
    from chalicelib.notify.messages import compose
    from chalicelib.notify.sms_gateway import fit_one_sms

    coop = world.seller()
    numbers = sorted({(rwandan_airtel if i % 10 == 0 else fresh_msisdn)() for i in range(MANY + 50)})[:MANY]
    wallets = [("airtel_money" if n.startswith("25073") else "mtn_momo", n) for n in numbers]
    assert 50 < sum(rail == "airtel_money" for rail, _ in wallets) < 150
    farmers = register_in_bulk(world, coop, wallets)
    assert [f["payout"]["msisdn"] for f in farmers] == numbers and len({f["member_id"] for f in farmers}) == MANY
    listed, cursor = [], None
    while True:
        page = world.ok(world.get(f"/v1/sellers/{coop['seller_id']}/members?limit=100"
                                  + (f"&cursor={cursor}" if cursor else ""), "seller", coop["seller_id"]))
        listed += [m["member_id"] for m in page["members"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert sorted(listed) == sorted(f["member_id"] for f in farmers)
    languages = {numbers[1]: "rw", numbers[500]: "sw", numbers[-1]: "fr"}
    for msisdn, lang in languages.items():
        assert choose_language(world, msisdn, {"rw": "2", "sw": "3", "fr": "4"}[lang]).startswith("END ")

    order = world.paid(coop, kg="100")
    allocation = world.ok(allocate(world, coop, order, [(f["member_id"], 1 + i % 9) for i, f in enumerate(farmers)], 50))
    shares = {s["member_id"]: s["amount"]["amount"] for s in allocation["shares"]}
    assert min(shares.values()) >= 100  # each share at least MTN's smallest payout: every member is paid
    assert world.ship(order).status_code == 200
    assert world.customs(world.read(order["order_id"]), "cleared").status_code == 200
    world.wait_for(order["order_id"], "settled", timeout=1500)

    paid = [p for p in world.payouts(coop["seller_id"]) if p["order_id"] == order["order_id"]]
    assert sorted(p["member_id"] for p in paid) == sorted(shares)  # one payout each: each share fits one transfer
    assert all(p["status"] == "succeeded" for p in paid)
    reference = {p["member_id"]: p["provider_reference"] for p in paid}

    def member_seen(farmer: dict) -> tuple[int, list[dict] | None, dict]:
        route = farmer["payout"]
        on_mtn = route["rail"] == "mtn_momo"
        return (received(world, route["rail"], route["msisdn"]),
                world.wallet_transfers(route["msisdn"], order["order_id"]) if on_mtn else None,
                world.account(f"member:{farmer['member_id']}"))

    with ThreadPoolExecutor(max_workers=4) as pool:
        seen = list(pool.map(member_seen, farmers))
    for farmer, (got, sent, account) in zip(farmers, seen):
        share = shares[farmer["member_id"]]
        assert got == share, (farmer, got, share)  # its own (fresh) wallet received exactly its share
        if sent is not None:  # on MTN: in one transfer of this order
            assert [t["amount"]["amount"] for t in sent] == [share], (farmer, sent)
        assert (account["credits_posted"], account["debits_posted"], account["balance"]) == (share, share, 0), account
    assert world.account(f"allocation:{order['order_id']}")["balance"] == 0
    assert world.balance(coop["seller_id"])["available"]["amount"] == allocation["retained"]["amount"]
    assert world.trial_balance()["balanced"]

    ref = order["order_id"][-8:].upper()

    def texted() -> dict[str, list[str]] | None:
        """Every farmer's texts about this order, once each farmer has one (Settle sends them after the
        order is settled; the sweeper sends whatever is still queued)."""
        found: dict[str, list[str]] = {}
        for m in world.sim_get("/sandbox/sms")["messages"]:
            if ref in m["message"]:
                found.setdefault(m["to"].lstrip("+"), []).append(m["message"])
        if all(n in found for n in numbers):
            return found
        world.sweep()
        return None

    texts = world.until(texted, "an SMS to every farmer", timeout=600)
    for farmer in farmers:
        msisdn = farmer["payout"]["msisdn"]
        expected = fit_one_sms(compose("member_paid", order, Money(shares[farmer["member_id"]], "RWF"),
                                       reference[farmer["member_id"]], language=languages.get(msisdn, "en"),
                                       rail=farmer["payout"]["rail"], coop_name=coop["name"]))
        assert texts.get(msisdn) == [expected], (msisdn, texts.get(msisdn))  # one SMS, in the farmer's language
