"""A world of fakes for payout tests: escrow, ledger, quotes, cards, an MTN-like rail, a phone."""
from datetime import datetime, timezone

from chalicelib.documents import MemoryDocuments
from chalicelib.escrow.service import EscrowService, Principal
from chalicelib.fx import MemoryQuoteStore, QuoteService, SnapshotRateSource
from chalicelib.ledger import Ledger
from chalicelib.ledger.memory import MemoryLedgerStore
from chalicelib.money import Money
from chalicelib.notify.outbox import Outbox
from chalicelib.payments.fake import FakeCardGateway
from chalicelib.payouts.rails.fake import FakeRail
from chalicelib.payouts.service import PayoutService
from chalicelib.workflow.order_payouts import OrderPayouts
from chalicelib.settings import Settings
from chalicelib.workflow.engine import FakeWorkflow

SELLER = Principal("coop-1", "seller")
BUYER = Principal("buyer-1", "buyer")
WALLET = "250788123456"
COFFEE = [{"description": "Washed arabica", "hs_code": "090111", "quantity": "100", "unit": "kg",
           "unit_price": Money(1200, "USD")}]


class Phone:
    def __init__(self):
        self.messages = []

    def send(self, to, message):
        self.messages.append((to, message))
        return f"sms-{len(self.messages)}"


class World:
    def __init__(self):
        self.docs = MemoryDocuments()
        self.ledger = Ledger(MemoryLedgerStore())
        for cur in ("CNY", "USD", "RWF"):
            for name, kind in (("psp:stripe:{}", "asset"), ("fx:{}", "asset"), ("revenue:fees:{}", "revenue"),
                               ("float:mtn_momo:{}", "asset")):
                self.ledger.create_account(name.format(cur), cur, kind)
        self.cards = FakeCardGateway()
        self.rail = FakeRail("mtn_momo")
        self.phone = Phone()
        self.now = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
        outbox = Outbox(self.docs, lambda: self.phone)
        quotes = QuoteService(SnapshotRateSource(), MemoryQuoteStore())
        self.escrow = EscrowService(self.docs, self.ledger, quotes, self.cards, FakeWorkflow(), Settings(), outbox=outbox)
        self.payouts = PayoutService(self.docs, self.ledger, lambda name: self.rail, clock=lambda: self.now)
        self.order_payouts = OrderPayouts(self.escrow, self.payouts)
        self.seller = self.escrow.register_seller(SELLER, "Kivu Hills", "RW",
                                                  {"rail": "mtn_momo", "msisdn": WALLET, "currency": "RWF"})

    def released_order(self, key="k1"):
        order = self.escrow.create_order(BUYER, "coop-1", "CNY", COFFEE, key)
        oid = order["order_id"]
        self.cards.pay(order["payment"]["payment_intent_id"])
        self.escrow.payment_succeeded(order["payment"]["payment_intent_id"], Money(order["pay"]["amount"], "CNY"))
        self.escrow.record_shipment(SELLER, oid, "DHL", "1", "D1")
        self.escrow.customs_event(oid, "cleared", "D1", "Kigali", f"e-{key}")
        return self.escrow.release_escrow(oid)

    def balance_order(self, key="k1"):
        """A released order whose payout failed: its money is in the seller's available balance (a
        released order's own payout is held for it, not available)."""
        self.rail.script(WALLET, send="failed")
        try:
            oid = self.released_order(key)["order_id"]
            state = self.order_payouts.start_for_order(oid)
            return self.order_payouts.finish_for_order(oid, state)
        finally:
            self.rail.script(WALLET, send="succeeded")

    def seller_account(self):
        return self.ledger.get_account("seller:coop-1")
