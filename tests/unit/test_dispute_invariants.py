"""Orders, payouts, withdrawals, reserves and disputes mixed at random (Hypothesis state machine, fakes).

Disputes open on orders at any stage, partly or wholly, and their Stripe events arrive in any
order, some twice. After every step: the books balance per currency, no constrained account is
below zero, nothing a wallet received is ever taken back, and the platform's loss account moves
only when what should pay first (the order's escrow before release; the seller's reserve and
available balance after) is exhausted.
"""
from hypothesis import event as note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from chalicelib.errors import BusinessRuleViolation, InvalidState, MizaniError
from chalicelib.money import Money
from dispute_world import SELLER, WALLET, World

LOSSES = ("loss:chargebacks:CNY", "loss:chargebacks:RWF")


class DisputeMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.world = World()
        self.orders: list[str] = []
        self.pending: dict[str, list[dict]] = {}  # dispute id -> its events not delivered yet
        self.delivered: dict[str, list[dict]] = {}
        self.disputed: set[str] = set()
        self.received = 0
        self.keys = 0

    @initialize()
    def orders_at_every_stage(self):
        """A shipped order, a released one (its payout in the balance) and a settled one."""
        self.orders += [self.world.shipped_order("10")["order_id"], self.world.released_order("10")["order_id"],
                        self.world.settled_order("10")["order_id"]]
        self.received = sum(m.minor for m in self.world.rail.credited(WALLET))

    # -- orders and payouts ------------------------------------------------------------------
    @rule(kg=st.sampled_from(["1", "10", "100"]))
    def an_order_is_paid_and_shipped(self, kg):
        self.orders.append(self.world.shipped_order(kg)["order_id"])

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), outcome=st.sampled_from(["cleared", "rejected"]))
    def customs_decides_and_the_workflow_moves(self, data, outcome):
        oid = data.draw(st.sampled_from(self.orders))
        order = self.world.escrow.order(oid)
        try:
            self.world.customs(order, outcome)
        except MizaniError:
            return  # decided already, or not shipped
        try:
            if outcome == "cleared":
                self.world.escrow.release_escrow(oid)
            else:
                self.world.escrow.refund(oid, "customs rejected")
        except InvalidState as error:
            assert error.code == "disputed"  # the workflow waits for the dispute

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), paid=st.booleans())
    def a_released_order_is_paid_out(self, data, paid):
        oid = data.draw(st.sampled_from(self.orders))
        if self.world.escrow.order(oid)["status"] != "released":
            return
        self.world.rail.script(WALLET, send="succeeded" if paid else "failed", reason="PAYEE_NOT_FOUND")
        state = self.world.order_payouts.start_for_order(oid)
        self.world.order_payouts.finish_for_order(oid, state)

    @rule(amount=st.integers(100, 3_000_000), ok=st.booleans())
    def the_seller_withdraws(self, amount, ok):
        self.keys += 1
        self.world.rail.script(WALLET, send="succeeded" if ok else "failed", reason="PAYEE_NOT_FOUND")
        seller = self.world.escrow.get_seller(SELLER, "coop-1")
        try:
            self.world.payouts.withdraw(seller, Money(amount, "RWF"), f"w{self.keys}")
        except BusinessRuleViolation:
            pass  # more than the balance, or over the daily limit: nothing moved

    @rule()
    def a_day_passes(self):
        self.world.tomorrow()

    @rule(bps=st.sampled_from([0, 500, 2000, 10_000]))
    def an_admin_sets_the_reserve(self, bps):
        self.world.set_reserve(bps)

    @rule()
    def reserves_fall_due(self):
        from datetime import timedelta

        self.world.now += timedelta(days=121)
        self.world.reserves.release_due()

    # -- disputes ------------------------------------------------------------------------------
    @precondition(lambda self: set(self.orders) - self.disputed)
    @rule(data=st.data(), outcome=st.sampled_from(["won", "lost"]), share=st.sampled_from([1, 2, 4]))
    def the_buyer_disputes(self, data, outcome, share):
        oid = data.draw(st.sampled_from(sorted(set(self.orders) - self.disputed)))
        order = self.world.escrow.order(oid)
        dispute_id = f"du_{len(self.disputed) + 1}"
        self.disputed.add(oid)
        self.pending[dispute_id] = self.world.lifecycle(order, dispute_id, outcome,
                                                        amount=order["pay"]["amount"] // share)
        self.delivered[dispute_id] = []

    @precondition(lambda self: any(self.pending.values()) or any(self.delivered.values()))
    @rule(data=st.data(), again=st.booleans())
    def stripe_delivers_an_event(self, data, again):
        candidates = [d for d, events in (self.delivered if again else self.pending).items() if events]
        if not candidates:
            return
        dispute_id = data.draw(st.sampled_from(sorted(candidates)))
        events = (self.delivered if again else self.pending)[dispute_id]
        event = events[data.draw(st.integers(0, len(events) - 1))]
        seller_id = "coop-1"
        before = {a: self.world.balance(a) for a in LOSSES}
        self.world.deliver(event)
        if not again:
            self.pending[dispute_id].remove(event)
            self.delivered[dispute_id].append(event)
        doc = self.world.docs.get(f"dispute#{dispute_id}")
        grew = {a for a in LOSSES if self.world.balance(a) > before[a]}
        note(f"dispute event delivered at stage {doc['stage']}" + (", the platform's loss grew" if grew else ""))
        if grew and doc["stage"] == "released":
            # The platform pays only once the reserve and the available balance are both used up.
            assert self.world.available(f"reserve:{seller_id}") == 0
            assert self.world.available(f"seller:{seller_id}") == 0
        if grew and doc["stage"] == "escrow":
            assert self.world.available(f"escrow:{doc['order_id']}") == 0

    # -- invariants ----------------------------------------------------------------------------
    @invariant()
    def the_books_balance(self):
        assert self.world.ledger.trial_balance().balanced

    @invariant()
    def no_constrained_account_is_below_zero(self):
        for account in self.world.ledger.store.scan_accounts():
            if account.flags:
                assert account.available >= 0, account

    @invariant()
    def what_a_wallet_received_is_never_taken_back(self):
        received = sum(m.minor for m in self.world.rail.credited(WALLET))
        assert received >= self.received
        self.received = received

    @invariant()
    def a_closed_dispute_leaves_its_order_where_the_rules_say(self):
        for dispute_id, events in self.pending.items():
            if events:
                continue
            doc = self.world.docs.get(f"dispute#{dispute_id}")
            order = self.world.escrow.order(doc["order_id"])
            if doc["stage"] == "escrow" and doc["booked"].get("closed") and order.get("status_before_dispute"):
                assert order["status"] != "disputed"
                if doc["status"] == "lost":
                    assert order["status"] == "charged_back"


TestDisputeMachine = DisputeMachine.TestCase
TestDisputeMachine.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
