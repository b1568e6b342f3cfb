"""A co-operative shares an order's payout among its members (in-memory world, fake rail).

What a farmer would notice: their share reaches their own wallet once, whatever crashes or
retries happen on the way; the co-operative keeps exactly what it retained; a co-operative
of 1,000 members is paid in full.
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from chalicelib.errors import BusinessRuleViolation, Conflict, InvalidState, ValidationError
from chalicelib.escrow.service import SHARES_PER_CHAIN, Principal
from chalicelib.members.allocation import allocate
from chalicelib.members.cooperatives import Cooperatives
from chalicelib.members.service import MemberService
from chalicelib.money import Money
from chalicelib.settings import Settings
from payout_world import COFFEE, SELLER, World

ADMIN = Principal("ops", "admin")


@given(
    payout=st.integers(min_value=0, max_value=10**12),
    quantities=st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=60),
    retain_bps=st.integers(min_value=0, max_value=10_000),
    step=st.sampled_from([1, 100]),
)
@hsettings(max_examples=300, deadline=None)
def test_shares_plus_retained_are_the_payout_and_no_share_exceeds_its_pro_rata_part(payout, quantities, retain_bps, step):
    members = [(f"m{i}", q) for i, q in enumerate(quantities)]
    shared = allocate(payout, members, retain_bps, {m: step for m, _ in members})
    assert shared.total == payout
    assert shared.retained >= 0
    total_q = sum(quantities)
    distributable = payout * (10_000 - retain_bps) / 10_000
    for share in shared.shares:
        assert 0 <= share.amount <= distributable * share.quantity / total_q
        assert share.amount % step == 0
        # rounded down by less than one step plus one unit: nobody loses more than rounding
        assert distributable * share.quantity / total_q - share.amount < step + 1


def test_a_share_is_split_by_kilograms_and_the_remainder_is_retained():
    shared = allocate(1_000_000, [("a", 50), ("b", 30), ("c", 20)], 200)
    assert [s.amount for s in shared.shares] == [490_000, 294_000, 196_000]
    assert shared.retained == 20_000


class CoopWorld(World):
    """The payout world with members: the co-operative coop-1 and its farmers."""

    def __init__(self):
        super().__init__()
        self.members = MemberService(self.docs, self.ledger, Settings(), payee_rails=lambda name: self.rail)
        self.coops = Cooperatives(self.escrow, self.members)

    @staticmethod
    def entry(i: int, name: str | None = None) -> tuple[str, dict]:
        return name or f"Farmer {i}", {"rail": "mtn_momo", "msisdn": f"2507881{i:05d}", "currency": "RWF"}

    def members_in_bulk(self, indices, seller: Principal = SELLER, seller_id: str = "coop-1") -> list[dict]:
        return self.coops.register_members(seller, seller_id, [self.entry(i) for i in indices])

    def member(self, i: int, name: str | None = None) -> dict:
        return self.coops.register_member(SELLER, "coop-1", name or f"Farmer {i}",
                                          {"rail": "mtn_momo", "msisdn": f"2507881{i:05d}", "currency": "RWF"})

    def allocated_order(self, members: list[dict], key: str = "k1", retain_bps: int = 0, kg=None):
        order = self.escrow.create_order(SELLER_BUYER, "coop-1", "CNY", COFFEE_1000, key)
        oid = order["order_id"]
        self.cards.pay(order["payment"]["payment_intent_id"])
        self.escrow.payment_succeeded(order["payment"]["payment_intent_id"], Money(order["pay"]["amount"], "CNY"))
        shares = [(m["member_id"], (kg or (lambda i: i + 1))(i)) for i, m in enumerate(members)]
        allocation = self.coops.allocate(SELLER, oid, shares, retain_bps)
        self.escrow.record_shipment(SELLER, oid, "DHL", "1", "D1")
        self.escrow.customs_event(oid, "cleared", "D1", "Kigali", f"e-{key}")
        return oid, allocation

    def settle(self, oid: str) -> dict:
        self.escrow.release_escrow(oid)
        state = self.order_payouts.start_for_order(oid)
        for _ in range(100):
            if state != "pending":
                break
            state = self.order_payouts.check_for_order(oid)
        assert state != "pending", "the payouts did not finish"
        return self.order_payouts.finish_for_order(oid, state)

    def received(self, msisdn: str) -> int:
        return sum(m.minor for m in self.rail.credited(msisdn))


SELLER_BUYER = Principal("buyer-1", "buyer")
COFFEE_1000 = COFFEE  # 100 kg at 12 USD: about 1.7 million RWF, within each wallet's daily limit


@pytest.fixture
def world():
    return CoopWorld()


def test_each_member_is_paid_their_share_once_and_the_co_operative_keeps_what_it_retained(world):
    farmers = [world.member(i) for i in range(3)]
    oid, allocation = world.allocated_order(farmers, retain_bps=150, kg=lambda i: [50, 30, 20][i])
    order = world.settle(oid)
    assert order["status"] == "settled"
    for farmer, share in zip(farmers, allocation["shares"]):
        assert world.received(farmer["payout"]["msisdn"]) == share["amount"]["amount"] > 0
        assert world.members.with_balance(farmer)["balance"]["available"]["amount"] == 0
    assert world.received("250788123456") == 0  # the co-operative's own wallet is not paid the shares
    assert world.seller_account().available == allocation["retained"]["amount"]
    assert sum(s["amount"]["amount"] for s in allocation["shares"]) + allocation["retained"]["amount"] == order["payout"]["amount"]
    texts = {to: m for to, m in world.phone.messages}
    for farmer, share in zip(farmers, allocation["shares"]):
        assert f"{Money(share['amount']['amount'], 'RWF')}" in texts["+" + farmer["payout"]["msisdn"]]
    assert world.ledger.trial_balance().balanced


def test_a_co_operative_of_1000_members_is_paid_in_full_each_member_once(world):
    farmers = [world.member(i) for i in range(1000)]
    oid, allocation = world.allocated_order(farmers, kg=lambda i: 1 + i % 7)
    order = world.settle(oid)
    assert order["status"] == "settled"
    paid = {f["payout"]["msisdn"]: world.received(f["payout"]["msisdn"]) for f in farmers}
    expected = {f["payout"]["msisdn"]: s["amount"]["amount"] for f, s in zip(farmers, allocation["shares"])}
    assert paid == expected
    assert len(world.rail.payments) == sum(1 for v in expected.values() if v)  # one payment each, no repeats
    assert world.seller_account().available == allocation["retained"]["amount"]
    assert world.ledger.trial_balance().balanced


def test_a_crash_between_two_share_chains_loses_and_doubles_nothing(world):
    farmers = [world.member(i) for i in range(SHARES_PER_CHAIN * 2 + 5)]
    oid, allocation = world.allocated_order(farmers)
    real_transfer, chains = world.ledger.transfer, []

    def crash_after_first_share_chain(*chain, **kw):
        result = real_transfer(*chain, **kw)
        if chain[0].transfer_id.startswith("share:"):
            chains.append(chain)
            if len(chains) == 1:
                raise RuntimeError("the Lambda died after its first share chain")
        return result

    world.ledger.transfer = crash_after_first_share_chain
    with pytest.raises(RuntimeError):
        world.escrow.release_escrow(oid)
    world.ledger.transfer = real_transfer
    world.escrow.release_escrow(oid)  # the task's retry
    world.escrow.release_escrow(oid)  # and a duplicate delivery of it
    for farmer, share in zip(farmers, allocation["shares"]):
        assert world.ledger.get_account(f"member:{farmer['member_id']}").credits_posted == share["amount"]["amount"]
    assert world.ledger.get_account(f"allocation:{oid}").balance == 0
    order = world.settle(oid)
    assert order["status"] == "settled"
    assert all(world.received(f["payout"]["msisdn"]) == s["amount"]["amount"] for f, s in zip(farmers, allocation["shares"]))


def test_an_allocation_is_refused_once_the_order_is_released_and_the_paid_one_is_the_frozen_one(world):
    farmers = [world.member(i) for i in range(2)]
    oid, first = world.allocated_order(farmers)
    world.escrow.release_escrow(oid)
    with pytest.raises(InvalidState):
        world.coops.allocate(SELLER, oid, [(farmers[0]["member_id"], 1)], 0)
    assert world.escrow.get_order(ADMIN, oid)["allocation"]["shares"] == first["shares"]


def test_an_allocation_naming_another_co_operatives_member_or_one_twice_changes_nothing(world):
    farmer = world.member(1)
    world.escrow.register_seller(Principal("coop-2", "seller"), "Other", "RW",
                                 {"rail": "mtn_momo", "msisdn": "250788999999", "currency": "RWF"})
    stranger = world.coops.register_member(Principal("coop-2", "seller"), "coop-2", "Stranger",
                                           {"rail": "mtn_momo", "msisdn": "250788777777", "currency": "RWF"})
    order = world.escrow.create_order(SELLER_BUYER, "coop-1", "CNY", COFFEE_1000, "k9")
    with pytest.raises(ValidationError) as other:
        world.coops.allocate(SELLER, order["order_id"], [(farmer["member_id"], 1), (stranger["member_id"], 1)], 0)
    assert other.value.code == "unknown_member"
    with pytest.raises(ValidationError):
        world.coops.allocate(SELLER, order["order_id"], [(farmer["member_id"], 1), (farmer["member_id"], 2)], 0)
    assert world.escrow.get_order(ADMIN, order["order_id"])["allocation"] is None


def test_a_wallet_number_belongs_to_one_party(world):
    world.member(1)
    with pytest.raises(Conflict) as taken:
        world.coops.register_member(SELLER, "coop-1", "Someone else",
                                    {"rail": "mtn_momo", "msisdn": "250788100001", "currency": "RWF"})
    assert taken.value.code == "msisdn_taken"
    with pytest.raises(Conflict):  # the co-operative's own number
        world.coops.register_member(SELLER, "coop-1", "Chair", {"rail": "mtn_momo", "msisdn": "250788123456", "currency": "RWF"})
    assert world.member(1)["name"] == "Farmer 1"  # the same registration again is the same member


def test_a_member_whose_payout_failed_keeps_the_money_and_can_withdraw_it(world):
    farmers = [world.member(i) for i in range(2)]
    world.rail.script(farmers[1]["payout"]["msisdn"], send="failed")
    oid, allocation = world.allocated_order(farmers)
    order = world.settle(oid)
    assert order["status"] == "payout_failed"
    unpaid = allocation["shares"][1]["amount"]["amount"]
    member = world.members.get("coop-1", farmers[1]["member_id"])
    assert world.members.with_balance(member)["balance"]["available"]["amount"] == unpaid
    assert world.received(farmers[0]["payout"]["msisdn"]) == allocation["shares"][0]["amount"]["amount"]
    world.rail.script(farmers[1]["payout"]["msisdn"], send="succeeded")
    world.payouts.withdraw(member, Money(unpaid, "RWF"), "ussd-1")
    assert world.received(farmers[1]["payout"]["msisdn"]) == unpaid
    assert world.members.with_balance(member)["balance"]["available"]["amount"] == 0
    with pytest.raises(BusinessRuleViolation) as refused:
        world.payouts.withdraw(member, Money(100, "RWF"), "ussd-2")
    assert refused.value.code == "insufficient_funds"


def test_a_share_below_the_wallets_smallest_payout_stays_in_the_members_balance(world):
    farmers = [world.member(i) for i in range(2)]
    oid, allocation = world.allocated_order(farmers, kg=lambda i: [100_000, 1][i])
    tiny = allocation["shares"][1]["amount"]["amount"]
    assert 0 < tiny < 100  # MTN pays at least 100 RWF
    order = world.settle(oid)
    assert order["status"] == "settled"
    assert world.received(farmers[1]["payout"]["msisdn"]) == 0
    member = world.members.get("coop-1", farmers[1]["member_id"])
    assert world.members.with_balance(member)["balance"]["available"]["amount"] == tiny
    assert world.received(farmers[0]["payout"]["msisdn"]) == allocation["shares"][0]["amount"]["amount"]


# -- registering members in bulk ---------------------------------------------------------------


def test_members_registered_in_bulk_are_the_members_registered_one_by_one(world):
    alone = CoopWorld()
    singly = [alone.member(i) for i in range(5)]
    bulk = world.members_in_bulk(range(5))
    same = ("member_id", "seller_id", "name", "payout", "status", "kyc_tier")
    assert [{k: m[k] for k in same} for m in bulk] == [{k: m[k] for k in same} for m in singly]
    for member in bulk:  # each with its ledger account and its wallet number, as one registered alone
        assert world.ledger.get_account(f"member:{member['member_id']}").currency == "RWF"
        assert world.members.wallets.owner(member["payout"]["msisdn"]).member_id == member["member_id"]
    listed, _ = world.members.page("coop-1", 10)
    assert [m["member_id"] for m in listed] == [m["member_id"] for m in bulk]  # in the order sent
    assert world.members_in_bulk(range(5)) == bulk  # the same batch again: the same members, nothing new
    oid, allocation = world.allocated_order(bulk)
    assert world.settle(oid)["status"] == "settled"
    assert all(world.received(m["payout"]["msisdn"]) == s["amount"]["amount"] for m, s in zip(bulk, allocation["shares"]))


def test_a_bulk_registration_with_one_bad_entry_registers_none_and_names_the_entry(world):
    taken = world.member(3)  # registered before, by the co-operative, as Farmer 3
    world.rail.holders["250788100007"] = None  # the rail says this wallet is inactive
    cases = [
        ([world.entry(0), world.entry(3, "Someone else")], Conflict, "msisdn_taken", "members.1.payout.msisdn"),
        ([world.entry(0), world.entry(1), world.entry(0, "Twin")], ValidationError, "validation_error", "members.2.payout.msisdn"),
        ([world.entry(0), ("Farmer", {"rail": "mtn_momo", "msisdn": "254712345678", "currency": "RWF"})],
         ValidationError, "validation_error", "members.1.payout.msisdn"),
        ([world.entry(0), ("Farmer", {"rail": "mtn_momo", "msisdn": "250788100009", "currency": "KES"})],
         ValidationError, "validation_error", "members.1.payout.currency"),
        ([world.entry(0), world.entry(7)], BusinessRuleViolation, "payee_invalid", "members.1.payout.msisdn"),
        ([world.entry(0), ("Chair", {"rail": "mtn_momo", "msisdn": "250788123456", "currency": "RWF"})],
         Conflict, "msisdn_taken", "members.1.payout.msisdn"),
    ]
    before = dict(world.docs.items)
    accounts = set(world.ledger.store.accounts)
    for entries, kind, code, path in cases:
        with pytest.raises(kind) as refused:
            world.coops.register_members(SELLER, "coop-1", entries)
        assert refused.value.code == code, entries
        where = getattr(refused.value, "path", None) or refused.value.detail["fields"][0]["path"]
        assert where == path, (entries, where)
    assert world.docs.items == before  # nothing written: no member, no wallet claim, no screening record
    assert set(world.ledger.store.accounts) == accounts
    assert [m["member_id"] for m in world.members.page("coop-1", 10)[0]] == [taken["member_id"]]


def test_a_bulk_registration_is_only_for_the_co_operative_itself(world):
    from chalicelib.errors import NotFound

    with pytest.raises(NotFound):
        world.members_in_bulk(range(2), seller=Principal("coop-2", "seller"))
    assert world.members.page("coop-1", 10)[0] == []


def test_a_co_operative_of_1000_members_registered_in_bulk_is_paid_in_full(world):
    farmers = [m for start in range(0, 1000, 100) for m in world.members_in_bulk(range(start, start + 100))]
    assert len({f["member_id"] for f in farmers}) == 1000
    oid, allocation = world.allocated_order(farmers, kg=lambda i: 1 + i % 7)
    assert world.settle(oid)["status"] == "settled"
    paid = {f["payout"]["msisdn"]: world.received(f["payout"]["msisdn"]) for f in farmers}
    assert paid == {f["payout"]["msisdn"]: s["amount"]["amount"] for f, s in zip(farmers, allocation["shares"])}
    texted = {to for to, _ in world.phone.messages}
    assert all("+" + f["payout"]["msisdn"] in texted for f, s in zip(farmers, allocation["shares"]) if s["amount"]["amount"])
    assert world.ledger.trial_balance().balanced


def test_a_member_withdrawing_between_the_release_and_the_payout_cannot_take_their_share_twice(world):
    """A farmer dialling *withdraw* while their share is on its way: the share is held for the
    order's payout from the moment it is shared out, so it reaches the wallet once, by the payout."""
    farmers = [world.member(i) for i in range(2)]
    oid, allocation = world.allocated_order(farmers)
    world.escrow.release_escrow(oid)
    member = world.members.get("coop-1", farmers[0]["member_id"])
    share = allocation["shares"][0]["amount"]["amount"]
    assert world.members.with_balance(member)["balance"]["available"]["amount"] == 0
    assert world.members.with_balance(member)["balance"]["payout_pending"]["amount"] == share
    with pytest.raises(BusinessRuleViolation) as refused:
        world.payouts.withdraw(member, Money(share, "RWF"), "ussd-between")
    assert refused.value.code == "insufficient_funds"
    order = world.settle(oid)
    assert order["status"] == "settled"
    for farmer, s in zip(farmers, allocation["shares"]):
        assert world.received(farmer["payout"]["msisdn"]) == s["amount"]["amount"]


def test_a_smallest_payout_configured_anew_between_release_and_payout_changes_nobodys_share(world, monkeypatch):
    """A share held at release that a smallest payout raised before StartPayout no longer allows is let
    go into the member's balance (to withdraw later), as a share too small at release is; the others
    are paid, and no hold is left behind."""
    farmers = [world.member(i) for i in range(2)]
    oid, allocation = world.allocated_order(farmers, kg=lambda i: [100_000, 10][i])
    small = allocation["shares"][1]["amount"]["amount"]
    assert 100 <= small < 1_000  # sent at MTN's 100 RWF minimum
    world.escrow.release_escrow(oid)
    order = settled_with_limits(world, oid, monkeypatch,
                                {"mtn_momo:RWF": {"min": 1_000, "max_per_tx": 1_000_000, "max_per_day": 5_000_000}})
    assert order["status"] == "settled"
    assert world.received(farmers[0]["payout"]["msisdn"]) == allocation["shares"][0]["amount"]["amount"]
    assert world.received(farmers[1]["payout"]["msisdn"]) == 0
    member = world.members.get("coop-1", farmers[1]["member_id"])
    assert world.members.with_balance(member)["balance"]["available"]["amount"] == small
    for farmer in farmers:
        assert world.ledger.get_transfer(f"hold:{oid}:{farmer['member_id']}").status.value == "voided"


def test_forty_held_shares_on_two_rails_all_let_go_fit_their_commits(world, monkeypatch):
    """The swap's chains are cut by what each transfer can cost of a commit (with the floats of two
    rails sharded four ways): forty holds let go at once, no chain over DynamoDB's 100 items."""
    from chalicelib.ledger.shards import Shards
    from chalicelib.settings import DEFAULT_LEDGER_SHARDS

    world.ledger.shards = Shards(DEFAULT_LEDGER_SHARDS)
    world.ledger.create_account("float:airtel_money:RWF", "RWF", "asset")
    farmers = [world.member(i) if i % 2 == 0 else world.coops.register_member(
        SELLER, "coop-1", f"Airtel farmer {i}", {"rail": "airtel_money", "msisdn": f"2507300{i:05d}", "currency": "RWF"})
        for i in range(40)]
    oid, allocation = world.allocated_order(farmers, kg=lambda i: 10)
    world.escrow.release_escrow(oid)
    limits = {"min": 100_000, "max_per_tx": 1_000_000, "max_per_day": 5_000_000}
    order = settled_with_limits(world, oid, monkeypatch, {"mtn_momo:RWF": limits, "airtel_money:RWF": limits})
    assert order["status"] == "settled"
    for farmer, share in zip(farmers, allocation["shares"]):
        member = world.members.get("coop-1", farmer["member_id"])
        assert world.members.with_balance(member)["balance"]["available"]["amount"] == share["amount"]["amount"] > 0
        assert world.received(farmer["payout"]["msisdn"]) == 0


def settled_with_limits(world, oid: str, monkeypatch, limits: dict) -> dict:
    """The order's payout run to its end with ``MIZANI_PAYOUT_LIMITS`` configured anew after its release."""
    import json

    from chalicelib import settings

    monkeypatch.setenv("MIZANI_PAYOUT_LIMITS", json.dumps(limits))
    settings.get.cache_clear()
    try:
        return world.settle(oid)
    finally:
        settings.get.cache_clear()
