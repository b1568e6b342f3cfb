"""A world of fakes for dispute tests: escrow, payouts, disputes, reserves over one in-memory ledger.

``World.event(kind, order, ...)`` builds a Stripe ``charge.dispute.*`` event dict as Stripe sends it
(the Dispute object with its balance transactions), parsed by the same ``parse_dispute_event``
the webhook uses; ``World.deliver(event)`` is the webhook's work after verification.
"""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from chalicelib.disputes.events import parse_dispute_event
from chalicelib.disputes.gateway import FakeDisputeGateway
from chalicelib.disputes.reserve import ReserveService
from chalicelib.disputes.service import DisputeService
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
from chalicelib.settings import Settings
from chalicelib.workflow.engine import FakeWorkflow
from chalicelib.workflow.order_payouts import OrderPayouts

SELLER = Principal("coop-1", "seller")
BUYER = Principal("buyer-1", "buyer")
ADMIN = Principal("ops", "admin")
WALLET = "250788123456"
DISPUTE_FEE = 1500  # minor units, in the charge's currency (the simulator's figure)


def coffee(kg: str = "100", price: int = 1200) -> list[dict]:
    return [{"description": "Washed arabica", "hs_code": "090111", "quantity": kg, "unit": "kg",
             "unit_price": Money(price, "USD")}]


class Phone:
    def __init__(self):
        self.messages = []

    def send(self, to, message):
        self.messages.append((to, message))
        return f"sms-{len(self.messages)}"


class World:
    def __init__(self, currencies=("CNY", "USD", "RWF")):
        self.docs = MemoryDocuments()
        self.ledger = Ledger(MemoryLedgerStore())
        for cur in currencies:
            for name, kind in (("psp:stripe:{}", "asset"), ("fx:{}", "asset"), ("revenue:fees:{}", "revenue"),
                               ("float:mtn_momo:{}", "asset")):
                self.ledger.create_account(name.format(cur), cur, kind)
        self.now = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
        clock = lambda: self.now  # noqa: E731
        self.cards = FakeCardGateway()
        self.rail = FakeRail("mtn_momo")
        self.phone = Phone()
        self.workflow = FakeWorkflow()
        self.outbox = Outbox(self.docs, lambda: self.phone)
        quotes = QuoteService(SnapshotRateSource(), MemoryQuoteStore())
        self.escrow = EscrowService(self.docs, self.ledger, quotes, self.cards, self.workflow, Settings(), outbox=self.outbox,
                                    clock=clock)
        self.payouts = PayoutService(self.docs, self.ledger, lambda name: self.rail, clock=clock)
        self.order_payouts = OrderPayouts(self.escrow, self.payouts)
        self.gateway = FakeDisputeGateway()
        self.reserves = ReserveService(self.docs, self.ledger, days=120, clock=clock)
        self.disputes = DisputeService(self.docs, self.ledger, self.escrow, self.gateway, reserves=self.reserves,
                                       outbox=self.outbox, clock=clock)
        self.seller = self.escrow.register_seller(SELLER, "Kivu Hills", "RW",
                                                  {"rail": "mtn_momo", "msisdn": WALLET, "currency": "RWF"})
        self._ids = itertools.count(1)
        self._keys = itertools.count(1)

    def set_reserve(self, bps: int) -> None:
        """An admin's ``PATCH /v1/sellers/coop-1 {"reserve_bps"}``."""
        self.docs.update("seller#coop-1", lambda doc: {**doc, "reserve_bps": bps})

    # -- orders ------------------------------------------------------------------------------
    def paid_order(self, kg: str = "100") -> dict:
        order = self.escrow.create_order(BUYER, "coop-1", "CNY", coffee(kg), f"k{next(self._keys)}")
        self.cards.pay(order["payment"]["payment_intent_id"])
        self.escrow.payment_succeeded(order["payment"]["payment_intent_id"], Money(order["pay"]["amount"], "CNY"))
        return self.escrow.order(order["order_id"])

    def shipped_order(self, kg: str = "100") -> dict:
        order = self.paid_order(kg)
        return self.escrow.record_shipment(SELLER, order["order_id"], "DHL", f"JD{order['order_id'][-6:]}",
                                           f"RW-{order['order_id'][-6:]}")

    def customs(self, order: dict, outcome: str = "cleared") -> dict:
        oid = order["order_id"]
        return self.escrow.customs_event(oid, outcome, f"RW-{oid[-6:]}", "Kigali", f"cust-{oid}-{outcome}")

    def released_order(self, kg: str = "100") -> dict:
        order = self.shipped_order(kg)
        self.customs(order)
        return self.escrow.release_escrow(order["order_id"])

    def balance_order(self, kg: str = "100") -> dict:
        """An order whose payout failed: its money is in the seller's available balance."""
        self.rail.script(WALLET, send="failed")
        try:
            return self.settled_order(kg)
        finally:
            self.rail.script(WALLET, send="succeeded")

    def settled_order(self, kg: str = "100") -> dict:
        order = self.released_order(kg)
        state = self.order_payouts.start_for_order(order["order_id"])
        self.order_payouts.finish_for_order(order["order_id"], state)
        return self.escrow.order(order["order_id"])

    # -- Stripe's dispute events ---------------------------------------------------------------
    def dispute_object(self, order: dict, dispute_id: str, status: str, *, amount: int | None = None,
                       withdrawn: bool = False, reinstated: bool = False, reason: str = "product_not_received",
                       created: int = 1_790_000_000, submissions: int = 0) -> dict:
        amount = order["pay"]["amount"] if amount is None else amount
        currency = order["pay"]["currency"].lower()
        txns = []
        if withdrawn or reinstated:
            txns.append({"id": f"txn_{dispute_id}_w", "object": "balance_transaction", "amount": -amount,
                         "fee": DISPUTE_FEE, "currency": currency, "reporting_category": "dispute"})
        if reinstated:
            txns.append({"id": f"txn_{dispute_id}_r", "object": "balance_transaction", "amount": amount, "fee": 0,
                         "currency": currency, "reporting_category": "dispute_reversal"})
        return {
            "id": dispute_id, "object": "dispute", "amount": amount, "currency": currency,
            "charge": f"ch_{order['order_id'][-8:]}", "payment_intent": order["payment"]["payment_intent_id"],
            "reason": reason, "status": status, "created": created, "balance_transactions": txns,
            "evidence_details": {"due_by": created + 7 * 86400, "has_evidence": submissions > 0, "past_due": False,
                                 "submission_count": submissions},
            "is_charge_refundable": False, "livemode": False, "metadata": {},
        }

    def event(self, event_type: str, order: dict, dispute_id: str, status: str, *, created: int | None = None,
              **kwargs) -> dict:
        n = next(self._ids)
        created = created if created is not None else 1_790_000_000 + n
        return {"id": f"evt_{dispute_id}_{n}", "object": "event", "type": f"charge.dispute.{event_type}",
                "created": created, "livemode": False,
                "data": {"object": self.dispute_object(order, dispute_id, status, **kwargs)}}

    def lifecycle(self, order: dict, dispute_id: str, outcome: str, amount: int | None = None) -> list[dict]:
        """The events of a dispute from opening to ``outcome`` (won or lost), in Stripe's order."""
        events = [
            self.event("created", order, dispute_id, "needs_response", amount=amount, withdrawn=True),
            self.event("funds_withdrawn", order, dispute_id, "needs_response", amount=amount, withdrawn=True),
            self.event("updated", order, dispute_id, "under_review", amount=amount, withdrawn=True, submissions=1),
        ]
        if outcome == "won":
            events.append(self.event("closed", order, dispute_id, "won", amount=amount, reinstated=True, submissions=1))
            events.append(self.event("funds_reinstated", order, dispute_id, "won", amount=amount, reinstated=True,
                                     submissions=1))
        else:
            events.append(self.event("closed", order, dispute_id, "lost", amount=amount, withdrawn=True, submissions=1))
        return events

    def deliver(self, event: dict):
        return self.disputes.handle(parse_dispute_event(event))

    # -- the books -----------------------------------------------------------------------------
    def balance(self, account_id: str) -> int:
        account = self.ledger.get_account(account_id)
        return account.balance if account else 0

    def available(self, account_id: str) -> int:
        account = self.ledger.get_account(account_id)
        return account.available if account else 0

    def tomorrow(self) -> None:
        self.now += timedelta(days=1)
