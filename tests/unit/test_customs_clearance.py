"""Customs against eWTP's 24-hour promise, on fakes: the report finance reads and the seller's one SMS."""
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.customs_report import CustomsClearance, waiting_text
from chalicelib.escrow.service import EscrowService, Principal
from chalicelib.fx import MemoryQuoteStore, QuoteService, SnapshotRateSource
from chalicelib.i18n import LANGUAGES, is_gsm7, septets
from chalicelib.ledger import Ledger
from chalicelib.ledger.memory import MemoryLedgerStore
from chalicelib.money import Money
from chalicelib.notify.outbox import Outbox
from chalicelib.order_index import IndexedMemoryDocuments, OrderIndex
from chalicelib.payments.fake import FakeCardGateway
from chalicelib.settings import Settings
from chalicelib.workflow.engine import FakeWorkflow

BUYER = Principal("buyer-1", "buyer")
SELLER = Principal("coop-1", "seller")
WALLET = "250788123456"
START = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)


class Sent:
    def __init__(self):
        self.messages = []

    def send(self, to, message):
        from chalicelib.notify.sms_gateway import SmsReceipt

        self.messages.append((to, message))
        return SmsReceipt(message_id=f"ATX{len(self.messages)}", status="Success", status_code=101)


class World:
    def __init__(self):
        self.now = START
        clock = lambda: self.now  # noqa: E731
        self.docs = IndexedMemoryDocuments()
        ledger = Ledger(MemoryLedgerStore())
        for cur in ("CNY", "USD", "RWF"):
            for account, kind in (("psp:stripe:{}", "asset"), ("fx:{}", "asset"), ("revenue:fees:{}", "revenue")):
                ledger.create_account(account.format(cur), cur, kind)
        self.cards = FakeCardGateway()
        quotes = QuoteService(SnapshotRateSource(), MemoryQuoteStore())
        self.phone = Sent()
        self.outbox = Outbox(self.docs, lambda: self.phone, clock=clock)
        self.escrow = EscrowService(self.docs, ledger, quotes, self.cards, FakeWorkflow(), Settings(), clock=clock)
        self.escrow.register_seller(SELLER, "Kivu Hills", "RW", {"rail": "mtn_momo", "msisdn": WALLET, "currency": "RWF"})
        self.index = OrderIndex(self.docs)
        self.customs = CustomsClearance(self.index, self.escrow, self.outbox, clock=clock)
        self._n = 0

    def shipped(self, office="Kigali International Airport"):
        self._n += 1
        lines = [{"description": "Coffee", "hs_code": "090111", "quantity": "10", "unit": "kg", "unit_price": Money(1200, "USD")}]
        order = self.escrow.create_order(BUYER, "coop-1", "CNY", lines, f"k{self._n}")
        self.cards.pay(order["payment"]["payment_intent_id"])
        self.escrow.payment_succeeded(order["payment"]["payment_intent_id"], Money(order["pay"]["amount"], "CNY"))
        self.escrow.record_shipment(SELLER, order["order_id"], "DHL", f"JD{self._n}", f"RW-{self._n}",
                                    customs_office=office)
        return order["order_id"]

    def decide(self, order_id, outcome, office="Kigali International Airport"):
        n = order_id[-4:]
        ref = self.escrow.order(order_id)["shipment"]["customs_declaration_ref"]
        self.escrow.customs_event(order_id, outcome, ref, office, f"evt-{n}")

    def later(self, hours):
        self.now += timedelta(hours=hours)


def test_the_report_gives_each_office_its_decisions_median_and_p90_and_the_orders_late_now():
    w = World()
    fast, middle, slow, late = w.shipped(), w.shipped(), w.shipped(), w.shipped()
    w.shipped(office="Mombasa")  # shipped with the others, decided within the hour
    w.later(1)
    w.decide(sorted(o["order_id"] for o in w.index.by_status("shipped")[0] if o["office"] == "Mombasa")[0],
             "cleared", "Mombasa")
    w.later(9)
    w.decide(fast, "cleared")  # 10 h
    w.later(10)
    w.decide(middle, "rejected")  # 20 h: a rejection is a decision too
    w.later(10)
    w.decide(slow, "cleared")  # 30 h
    report = w.customs.report()
    kigali = next(o for o in report["offices"] if o["office"] == "Kigali International Airport")
    assert (kigali["decided"], kigali["median_hours"], kigali["p90_hours"]) == (3, 20.0, 30.0)
    assert kigali["waiting_over_24h"] == 1 and kigali["within_promise"] == 2
    mombasa = next(o for o in report["offices"] if o["office"] == "Mombasa")
    assert (mombasa["decided"], mombasa["median_hours"], mombasa["waiting_over_24h"]) == (1, 1.0, 0)
    assert report["waiting"] == [{"order_id": late, "office": "Kigali International Airport", "hours": 30.0}]


def test_an_order_past_24_hours_at_customs_is_texted_to_its_seller_once():
    w = World()
    order_id = w.shipped()
    w.later(23)
    assert w.customs.remind() == 0  # within the promise: nothing
    w.later(3)
    assert w.customs.remind() == 1
    w.outbox.drain()
    w.later(5)
    assert w.customs.remind() == 0  # already texted: never again for this order
    w.outbox.drain()
    texts = [m for to, m in w.phone.messages if to == "+" + WALLET and "customs" in m]
    assert len(texts) == 1
    assert order_id[-8:].upper() in texts[0] and "Kigali International Airport" in texts[0] and "26 h" in texts[0]


def test_a_decided_order_is_neither_waiting_nor_texted():
    w = World()
    order_id = w.shipped()
    w.later(2)
    w.decide(order_id, "rejected")  # the refund comes later: the order stays shipped meanwhile
    w.later(30)
    assert w.customs.report()["waiting"] == [] and w.customs.remind() == 0


def test_orders_are_listed_by_their_current_status_only():
    w = World()
    a, b = w.shipped(), w.shipped()
    w.later(1)
    w.decide(a, "cleared")
    shipped = [o["order_id"] for o in w.index.by_status("shipped")[0]]
    cleared = [o["order_id"] for o in w.index.by_status("customs_cleared")[0]]
    assert shipped == [b] and cleared == [a]
    assert w.index.by_status("paid")[0] == []


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_the_customs_sms_is_one_gsm7_part_in_every_language_even_for_a_long_office_name(lang):
    for office in ("Kigali", "Jomo Kenyatta International Airport Cargo Terminal, Nairobi" * 2, None):
        text = waiting_text("ord_0123456789abcdef", office, 26, lang)
        assert is_gsm7(text) and septets(text) <= 160, (lang, text)
        assert "26" in text and "89ABCDEF" in text
