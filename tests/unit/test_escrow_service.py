"""The escrow journey against fakes: the rules a buyer, a seller and finance would notice."""
from decimal import Decimal

import pytest

from chalicelib.documents import MemoryDocuments
from chalicelib.errors import InvalidState, NotFound, ValidationError
from chalicelib.escrow.service import EscrowService, Principal
from chalicelib.fx import MemoryQuoteStore, QuoteService, SnapshotRateSource
from chalicelib.ledger import Ledger
from chalicelib.ledger.memory import MemoryLedgerStore
from chalicelib.money import Money
from chalicelib.payments.fake import FakeCardGateway
from chalicelib.settings import Settings
from chalicelib.workflow.engine import FakeWorkflow
from payout_world import BUYER as BUYER_P, COFFEE as COFFEE_P, SELLER as SELLER_P, World as PayoutWorld

ADMIN = Principal("ops", "admin")
BUYER = Principal("buyer-1", "buyer")
OTHER_BUYER = Principal("buyer-2", "buyer")
SELLER = Principal("coop-1", "seller")
OTHER_SELLER = Principal("coop-2", "seller")

COFFEE = [{"description": "Washed arabica, grade A", "hs_code": "090111", "quantity": "100", "unit": "kg",
           "unit_price": Money(1200, "USD")}]


@pytest.fixture
def world():
    ledger = Ledger(MemoryLedgerStore())
    for cur in ("CNY", "USD", "RWF", "KES"):
        for account, kind in (("psp:stripe:{}", "asset"), ("fx:{}", "asset"), ("revenue:fees:{}", "revenue"),
                              ("float:mtn_momo:{}", "asset")):
            ledger.create_account(account.format(cur), cur, kind)
    cards = FakeCardGateway()
    workflow = FakeWorkflow()
    quotes = QuoteService(SnapshotRateSource(), MemoryQuoteStore(), default_spread_bps=50)
    service = EscrowService(MemoryDocuments(), ledger, quotes, cards, workflow, Settings(fee_bps=150))
    service.register_seller(SELLER, "Kivu Hills Coffee Co-operative", "RW",
                            {"rail": "mtn_momo", "msisdn": "250788123456", "currency": "RWF"})
    return service, ledger, cards, workflow


def paid_order(service, key="k1"):
    order = service.create_order(BUYER, "coop-1", "CNY", COFFEE, key)
    pay = Money(order["pay"]["amount"], order["pay"]["currency"])
    service.cards.pay(order["payment"]["payment_intent_id"])
    service.payment_succeeded(order["payment"]["payment_intent_id"], pay)
    return service.order(order["order_id"])


def test_an_order_locks_what_the_buyer_pays_and_what_the_seller_gets(world):
    service, _, cards, _ = world
    order = service.create_order(BUYER, "coop-1", "CNY", COFFEE, "k1")
    assert order["status"] == "awaiting_payment"
    assert order["total"] == {"amount": 120000, "currency": "USD"}
    assert order["fee"] == {"amount": 1800, "currency": "USD"}  # 150 bps of 1,200.00 USD
    assert order["pay"]["currency"] == "CNY" and order["payout"]["currency"] == "RWF"
    assert order["tariff_free"] is True
    rates = SnapshotRateSource().latest().rates
    # The buyer pays at least the mid-market price; the seller gets at most it (the spread is the house's).
    assert Decimal(order["pay"]["amount"]) / 100 >= Decimal(1200) * rates["CNY"]
    assert Decimal(order["payout"]["amount"]) <= Decimal(1182) * rates["RWF"]
    assert cards.retrieve_payment_intent(order["payment"]["payment_intent_id"]).amount == Money(order["pay"]["amount"], "CNY")


def test_retrying_the_same_checkout_returns_the_same_order_and_payment_intent(world):
    service, _, cards, _ = world
    first = service.create_order(BUYER, "coop-1", "CNY", COFFEE, "same-key")
    again = service.create_order(BUYER, "coop-1", "CNY", COFFEE, "same-key")
    assert again["order_id"] == first["order_id"]
    assert len([c for c in cards.calls if c[0] == "create_payment_intent"]) == 1


def test_orders_of_a_million_dollars_or_more_are_not_tariff_free(world):
    service, *_ = world
    big = [{**COFFEE[0], "quantity": "100000", "unit_price": Money(1000, "USD")}]  # exactly 1,000,000.00 USD
    # A card payment tops out at 999,999.99 USD: an order this size is paid by bank transfer.
    assert service.create_order(BUYER, "coop-1", "USD", big, "big", "bank_transfer")["tariff_free"] is False
    small = [{**COFFEE[0], "quantity": "99999.999", "unit_price": Money(1000, "USD")}]
    # Another buyer: this one's 30 days already hold the million (tests/unit/test_ewtp.py).
    assert service.create_order(OTHER_BUYER, "coop-1", "USD", small, "small", "bank_transfer")["tariff_free"] is True


def test_payment_moves_the_money_into_escrow_once_and_starts_the_workflow_once(world):
    service, ledger, _, workflow = world
    order = paid_order(service)
    pay = Money(order["pay"]["amount"], "CNY")
    service.payment_succeeded(order["payment"]["payment_intent_id"], pay)  # duplicate webhook
    assert order["status"] == "paid"
    assert ledger.get_account(f"escrow:{order['order_id']}").balance == pay.minor
    assert list(workflow.started) == [order["order_id"]]
    assert ledger.trial_balance().balanced


def test_a_payment_that_differs_from_the_order_goes_to_manual_review_not_escrow(world):
    service, ledger, _, workflow = world
    order = service.create_order(BUYER, "coop-1", "CNY", COFFEE, "k1")
    service.payment_succeeded(order["payment"]["payment_intent_id"], Money(1, "CNY"))
    assert service.order(order["order_id"])["status"] == "manual_review"
    assert ledger.get_account(f"escrow:{order['order_id']}") is None
    assert workflow.started == {}


def test_a_declined_card_is_recorded_and_a_later_success_still_converges(world):
    service, *_ = world
    order = service.create_order(BUYER, "coop-1", "CNY", COFFEE, "k1")
    pi = order["payment"]["payment_intent_id"]
    service.payment_failed(pi, "card_declined")
    service.payment_succeeded(pi, Money(order["pay"]["amount"], "CNY"))
    service.payment_failed(pi, "card_declined")  # delivered late: changes nothing
    order = service.order(order["order_id"])
    assert order["status"] == "paid"
    assert [e["status"] for e in order["timeline"]] == ["awaiting_payment", "payment_failed", "paid"]


def test_release_pays_the_guaranteed_amount_and_empties_the_escrow(world):
    service, ledger, _, _ = world
    order = paid_order(service)
    oid = order["order_id"]
    service.record_shipment(SELLER, oid, "DHL", "JD0001", "RW-2026-0001")
    service.customs_event(oid, "cleared", "RW-2026-0001", "Kigali", "evt-1")
    service.release_escrow(oid)
    service.release_escrow(oid)  # a retried task
    assert service.order(oid)["status"] == "released"
    assert ledger.get_account(f"escrow:{oid}").balance == 0
    assert ledger.get_account("seller:coop-1").balance == order["payout"]["amount"]
    assert ledger.get_account("revenue:fees:CNY").balance > 0
    assert ledger.trial_balance().balanced


def test_refund_returns_the_buyers_money_and_never_twice(world):
    service, ledger, cards, _ = world
    order = paid_order(service)
    oid = order["order_id"]
    service.refund(oid, "customs rejected the shipment")
    service.refund(oid, "customs rejected the shipment")
    assert service.order(oid)["status"] == "refunded"
    assert ledger.get_account(f"escrow:{oid}").balance == 0
    assert len(cards.refunds) == 1


def test_no_refund_after_release(world):
    service, *_ = world
    oid = paid_order(service)["order_id"]
    service.record_shipment(SELLER, oid, "DHL", "JD0001", "RW-2026-0001")
    service.customs_event(oid, "cleared", "RW-2026-0001", "Kigali", "evt-1")
    service.release_escrow(oid)
    with pytest.raises(InvalidState):
        service.refund(oid, "too late")


def test_only_the_seller_ships_and_only_from_paid(world):
    service, *_ = world
    order = service.create_order(BUYER, "coop-1", "CNY", COFFEE, "k1")
    with pytest.raises(InvalidState):
        service.record_shipment(SELLER, order["order_id"], "DHL", "1", "D1")
    oid = paid_order(service, "k2")["order_id"]
    with pytest.raises(NotFound):
        service.record_shipment(BUYER, oid, "DHL", "1", "D1")
    with pytest.raises(NotFound):
        service.record_shipment(OTHER_SELLER, oid, "DHL", "1", "D1")


def test_other_parties_orders_and_balances_look_missing(world):
    service, *_ = world
    oid = service.create_order(BUYER, "coop-1", "CNY", COFFEE, "k1")["order_id"]
    assert service.get_order(SELLER, oid)["order_id"] == oid
    for stranger in (OTHER_BUYER, OTHER_SELLER):
        with pytest.raises(NotFound):
            service.get_order(stranger, oid)
    with pytest.raises(NotFound):
        service.seller_balance(OTHER_SELLER, "coop-1")


def test_customs_answers_once_and_only_for_shipped_orders(world):
    service, _, _, workflow = world
    oid = paid_order(service)["order_id"]
    with pytest.raises(InvalidState):
        service.customs_event(oid, "cleared", "RW-1", "Kigali", "e1")
    service.record_shipment(SELLER, oid, "DHL", "JD0001", "RW-1")
    service.customs_wait(oid, "token-1")
    service.customs_event(oid, "inspection", "RW-1", "Kigali", "e0")
    service.customs_event(oid, "rejected", "RW-1", "Kigali", "e1")
    assert workflow.answers == [("failure", "token-1", "CustomsRejected")]
    with pytest.raises(InvalidState):
        service.customs_event(oid, "cleared", "RW-1", "Kigali", "e2")


def test_a_customs_answer_before_the_workflow_waits_is_delivered_when_it_does(world):
    service, _, _, workflow = world
    oid = paid_order(service)["order_id"]
    service.record_shipment(SELLER, oid, "DHL", "JD0001", "RW-1")
    service.customs_event(oid, "cleared", "RW-1", "Kigali", "e1")
    assert workflow.answers == []
    service.customs_wait(oid, "token-9")
    assert workflow.answers == [("success", "token-9", {"customs": "cleared"})]


def test_sellers_register_for_a_rail_that_pays_their_currency(world):
    service, *_ = world
    with pytest.raises(ValidationError):
        service.register_seller(Principal("x", "seller"), "X", "KE", {"rail": "mpesa", "msisdn": "254700000000", "currency": "RWF"})


def test_order_ids_cannot_collide_across_buyers_whose_sub_and_key_join_alike(world):
    service, _, _, _ = world
    first = service.create_order(Principal("X", "buyer"), "coop-1", "CNY", COFFEE, "cart|42")
    second = service.create_order(Principal("X|cart", "buyer"), "coop-1", "CNY", COFFEE, "42")
    assert first["order_id"] != second["order_id"]
    assert first["payment"]["payment_intent_id"] != second["payment"]["payment_intent_id"]
    assert second["buyer_id"] == "X|cart"


def test_only_the_buyer_sees_the_cards_client_secret(world):
    service, _, _, _ = world
    order = service.create_order(BUYER, "coop-1", "CNY", COFFEE, "k1")
    assert order["payment"]["client_secret"]
    assert service.get_order(BUYER, order["order_id"])["payment"]["client_secret"] == order["payment"]["client_secret"]
    for viewer in (SELLER, ADMIN, Principal("fin-1", "finance")):
        payment = service.get_order(viewer, order["order_id"])["payment"]
        assert "client_secret" not in payment and payment["payment_intent_id"] == order["payment"]["payment_intent_id"]


def test_an_order_under_manual_review_still_shows_its_money_as_held(world):
    service, _, _, _ = world
    order = paid_order(service)
    service.manual_review(order["order_id"], "an operator looks")
    balance = service.seller_balance(SELLER, "coop-1")
    assert balance["in_escrow"] == [order["pay"]]


def test_a_second_customs_decision_is_refused_and_changes_nothing(world):
    service, _, _, _ = world
    order = paid_order(service)
    service.record_shipment(SELLER, order["order_id"], "DHL", "1", "D1")
    service.customs_event(order["order_id"], "rejected", "D1", "Kigali", "e-1")
    for status, event_id in (("cleared", "e-2"), ("rejected", "e-3")):
        with pytest.raises(InvalidState):
            service.customs_event(order["order_id"], status, "D1", "Kigali", event_id)
    after = service.order(order["order_id"])
    assert after["customs"]["event_id"] == "e-1" and after["status"] == "shipped"
    assert [e["status"] for e in after["timeline"]].count("customs_rejected") == 1


def test_a_registration_retried_after_the_ledger_failed_still_gets_its_account(world):
    service, ledger, _, _ = world
    from chalicelib.errors import ProviderUnavailable

    real = ledger.create_account
    calls = []

    def flaky(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 1:
            raise ProviderUnavailable("provider_unavailable", "DynamoDB throttled")
        return real(*args, **kwargs)

    ledger.create_account = flaky
    route = {"rail": "mtn_momo", "msisdn": "250788000042", "currency": "RWF"}
    with pytest.raises(ProviderUnavailable):
        service.register_seller(Principal("coop-9", "seller"), "Nyamasheke Growers", "RW", dict(route))
    service.register_seller(Principal("coop-9", "seller"), "Nyamasheke Growers", "RW", dict(route))
    assert ledger.get_account("seller:coop-9") is not None


def test_a_customs_clearance_recorded_just_before_the_timeout_is_released_not_refunded(monkeypatch):
    """Found by the 1,000,000-order simulation: customs cleared the shipment, its answer to the task
    token arrived after AwaitCustoms' timeout, and the workflow refunded a cleared order. The timeout is
    a decision too: the first one recorded wins, so Refund hands a cleared order to ReleaseEscrow."""
    from chalicelib.workflow import tasks

    world, order = shipped_world("late-1")
    oid = order["order_id"]
    world.escrow.customs_event(oid, "cleared", "D1", "Kigali", "e-late")  # the token answer is lost or late
    monkeypatch.setattr(tasks, "_escrow", lambda: world.escrow)
    with pytest.raises(tasks.CustomsClearedLate):
        tasks.refund({"order_id": oid, "error": {"Error": "States.Timeout", "Cause": "timed out"}})
    assert world.escrow.order(oid)["status"] == "customs_cleared"
    assert world.cards.refunded(order["payment"]["payment_intent_id"]).minor == 0
    assert world.escrow.release_escrow(oid)["status"] == "released"  # where the Catch goes


def test_a_customs_decision_after_the_timeout_was_recorded_is_refused_and_the_buyer_refunded(monkeypatch):
    from chalicelib.workflow import tasks

    world, order = shipped_world("late-2")
    oid = order["order_id"]
    monkeypatch.setattr(tasks, "_escrow", lambda: world.escrow)
    assert tasks.refund({"order_id": oid, "error": {"Error": "States.Timeout"}})["status"] == "refunded"
    with pytest.raises(InvalidState):
        world.escrow.customs_event(oid, "cleared", "D1", "Kigali", "e-too-late")
    assert world.escrow.order(oid)["status"] == "refunded"
    assert world.cards.refunded(order["payment"]["payment_intent_id"]).minor == order["pay"]["amount"]


def shipped_world(key: str):
    """The payout world with one order paid by card and shipped, awaiting customs."""
    world = PayoutWorld()
    order = world.escrow.create_order(BUYER_P, "coop-1", "CNY", COFFEE_P, key)
    world.cards.pay(order["payment"]["payment_intent_id"])
    world.escrow.payment_succeeded(order["payment"]["payment_intent_id"], Money(order["pay"]["amount"], "CNY"))
    world.escrow.record_shipment(SELLER_P, order["order_id"], "DHL", "1", "D1")
    return world, order
