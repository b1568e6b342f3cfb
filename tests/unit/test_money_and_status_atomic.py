"""An order's status and the money it moves are one atomic write (issue 12, item 4).

What a buyer, a seller or finance would notice: there is no moment (a crash, a race, a refused
write) at which the escrow holds the buyer's money and the order still awaits its payment, or the
order says released while the money is still in escrow; a retry or a race is decided by the
order's version condition, and finishes without moving anything twice.
"""
import pytest

from chalicelib.documents import MemoryDocuments, WriteRefused
from chalicelib.errors import Conflict
from chalicelib.ledger import Ledger, Transfer, WritesNotApplied
from chalicelib.ledger.memory import MemoryLedgerStore
from chalicelib.money import Money
from tests.unit.test_escrow_service import BUYER, COFFEE, SELLER, paid_order, world  # noqa: F401 (the fixture)


def funded_ledger():
    ledger = Ledger(MemoryLedgerStore())
    ledger.create_account("a", "USD")
    ledger.create_account("b", "USD")
    return ledger


def flip(doc):
    return {**doc, "status": "paid"}


def test_a_chain_and_a_document_write_commit_together():
    ledger, docs = funded_ledger(), MemoryDocuments()
    docs.put_new("order#o1", {"status": "awaiting_payment"})
    _, write = docs.prepare_update("order#o1", flip)
    ledger.transfer(Transfer("t1", "a", "b", 100, "USD"), writes=[write])
    assert docs.get("order#o1") == {"status": "paid"}
    assert ledger.get_account("b").credits_posted == 100


def test_a_stale_document_moves_no_money_and_says_so():
    ledger, docs = funded_ledger(), MemoryDocuments()
    docs.put_new("order#o1", {"status": "awaiting_payment"})
    _, write = docs.prepare_update("order#o1", flip)
    docs.update("order#o1", lambda d: {**d, "note": "a concurrent change"})
    with pytest.raises(WritesNotApplied) as refused:
        ledger.transfer(Transfer("t1", "a", "b", 100, "USD"), writes=[write])
    assert refused.value.replayed is False
    assert ledger.get_account("b").credits_posted == 0 and ledger.get_transfer("t1") is None
    assert ledger.history("b").entries == []
    assert docs.get("order#o1")["status"] == "awaiting_payment"


def test_a_chain_committed_before_is_a_replay_and_writes_nothing():
    ledger, docs = funded_ledger(), MemoryDocuments()
    docs.put_new("order#o1", {"status": "awaiting_payment"})
    ledger.transfer(Transfer("t1", "a", "b", 100, "USD"))
    _, write = docs.prepare_update("order#o1", flip)
    with pytest.raises(WritesNotApplied) as refused:
        ledger.transfer(Transfer("t1", "a", "b", 100, "USD"), writes=[write])
    assert refused.value.replayed is True
    assert docs.get("order#o1")["status"] == "awaiting_payment"
    assert ledger.get_account("b").credits_posted == 100


class RefusingDocuments(MemoryDocuments):
    """Every prepared write of an order is refused at commit (another writer always got there first)."""

    def prepare_update(self, pk, mutate, sk="doc", current=None):
        current, write = super().prepare_update(pk, mutate, sk, current)
        if write is not None and pk.startswith("order#"):
            def refuse():
                raise WriteRefused(pk)
            write._commit = refuse
        return current, write


def test_a_payment_whose_status_write_never_lands_moves_no_money(world):  # noqa: F811
    service, ledger, cards, workflow = world
    order = service.create_order(BUYER, "coop-1", "CNY", COFFEE, "k-refused")
    refusing = RefusingDocuments()
    refusing.items = service.docs.items  # the same table, its writes of orders refused
    service.docs = refusing
    cards.pay(order["payment"]["payment_intent_id"])
    with pytest.raises(Conflict):
        service.payment_succeeded(order["payment"]["payment_intent_id"], Money(order["pay"]["amount"], "CNY"))
    # Before money and status were one write, the escrow was funded here and the order still awaited payment.
    assert ledger.get_account(f"escrow:{order['order_id']}").balance == 0
    assert service.order(order["order_id"])["status"] == "awaiting_payment"
    assert workflow.started == {}


class ChangedOnce(MemoryDocuments):
    """Another request changes the order once, between this call's read and its commit."""

    def __init__(self, items, change):
        super().__init__()
        self.items = items
        self.change = change

    def prepare_update(self, pk, mutate, sk="doc", current=None):
        found = super().prepare_update(pk, mutate, sk, current)
        if self.change is not None and pk.startswith("order#"):
            change, self.change = self.change, None
            self.update(pk, change)
        return found


def test_a_race_between_read_and_commit_is_decided_by_the_condition_and_the_payment_lands_once(world):  # noqa: F811
    service, ledger, cards, workflow = world
    order = service.create_order(BUYER, "coop-1", "CNY", COFFEE, "k-race")
    note = {"status": "payment_failed", "at": "2026-12-01T00:00:00Z", "detail": "an earlier card was declined"}
    service.docs = ChangedOnce(service.docs.items, lambda d: {**d, "timeline": d["timeline"] + [note]})
    pay = Money(order["pay"]["amount"], "CNY")
    service.payment_succeeded(order["payment"]["payment_intent_id"], pay)
    stored = service.order(order["order_id"])
    assert stored["status"] == "paid"
    assert [e["status"] for e in stored["timeline"]] == ["awaiting_payment", "payment_failed", "paid"]  # both kept
    assert ledger.get_account(f"escrow:{order['order_id']}").balance == pay.minor
    assert list(workflow.started) == [order["order_id"]]


class CrashAfterCommit(MemoryLedgerStore):
    """The invocation dies right after its next batch committed (the caller never hears back)."""

    armed = False

    def commit(self, batch):
        super().commit(batch)
        if self.armed:
            self.armed = False
            raise TimeoutError("the Lambda died after the commit")


def test_a_release_that_crashed_after_its_commit_is_finished_by_the_retry_without_paying_twice(world):  # noqa: F811
    service, ledger, _, _ = world
    store = CrashAfterCommit()
    store.accounts, store.transfers, store.entries = ledger.store.accounts, ledger.store.transfers, ledger.store.entries
    ledger.store = store
    order = paid_order(service)
    oid = order["order_id"]
    service.record_shipment(SELLER, oid, "DHL", "JD0001", "RW-2026-0001")
    service.customs_event(oid, "cleared", "RW-2026-0001", "Kigali", "evt-1")
    store.armed = True
    with pytest.raises(TimeoutError):
        service.release_escrow(oid)
    # Committed together: released, and the money is out of escrow (never one without the other).
    assert service.order(oid)["status"] == "released"
    assert ledger.get_account(f"escrow:{oid}").balance == 0
    seller = ledger.get_account("seller:coop-1").balance
    service.release_escrow(oid)  # the task's retry
    assert ledger.get_account("seller:coop-1").balance == seller == order["payout"]["amount"]
    assert ledger.trial_balance().balanced



# -- an order's payout: the reservation and its mark, the post and "succeeded", one write each ------------------
def test_a_payout_is_never_reserved_or_paid_without_its_document_saying_so():
    from tests.payout_world import World

    w = World()
    oid = w.released_order()["order_id"]
    store = CrashAfterCommit()
    store.accounts, store.transfers, store.entries = w.ledger.store.accounts, w.ledger.store.transfers, w.ledger.store.entries
    w.ledger.store = store
    w.escrow.begin_payout(oid)
    store.armed = True  # dies right after the first payout's reservation committed
    with pytest.raises(TimeoutError):
        w.order_payouts.start_for_order(oid)
    first = w.docs.get(f"payout#po_{oid}_1")
    assert first["reserved"] is True and w.ledger.get_transfer(f"po_{oid}_1") is not None  # together
    assert w.order_payouts.start_for_order(oid) == "succeeded"  # the task's retry
    payouts = w.payouts.for_order(oid)
    assert all(p["status"] == "succeeded" for p in payouts)
    assert w.ledger.get_transfer(f"po_{oid}_1:post").transfer.amount == first["amount"]["amount"]
    assert w.seller_account().balance == 0 and len(w.rail.payments) == len(payouts)  # each paid once
    assert sum(m.minor for m in w.rail.credited("250788123456")) == sum(p["amount"]["amount"] for p in payouts)
    assert w.ledger.trial_balance().balanced
