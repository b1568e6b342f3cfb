"""Ledger invariants with payouts and provider faults (Hypothesis state machine, fakes).

Random orders are released and paid out while the rail answers succeeded, failed,
unknown-then-final, or loses the request; withdrawals race the order payouts; checks
are repeated as a retried Lambda would. After every step: the ledger balances, no
seller balance is negative, and what the wallet received equals what the ledger says
was paid out — each payout paid at most once.
"""
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from chalicelib.errors import BusinessRuleViolation
from chalicelib.money import Money
from payout_world import WALLET, World

OUTCOMES = st.sampled_from(["succeeded", "failed", "unknown_then_succeeded", "unknown_then_failed", "lost"])


class PayoutMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.world = World()
        self.orders: list[str] = []
        self.keys = 0

    def _script(self, outcome: str) -> None:
        rail = self.world.rail
        if outcome == "succeeded":
            rail.script(WALLET, send="succeeded")
        elif outcome == "failed":
            rail.script(WALLET, send="failed", reason="PAYEE_NOT_FOUND")
        elif outcome == "unknown_then_succeeded":
            rail.script(WALLET, send="unknown", statuses=["pending", "succeeded"])
        elif outcome == "unknown_then_failed":
            rail.script(WALLET, send="unknown", statuses=["failed"])
        else:
            rail.script(WALLET, send="unknown", recorded=False)

    @rule(outcome=OUTCOMES)
    def release_and_pay_an_order(self, outcome):
        self.keys += 1
        self._script(outcome)
        oid = self.world.released_order(f"k{self.keys}")["order_id"]
        self.world.order_payouts.start_for_order(oid)
        self.orders.append(oid)

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), outcome=OUTCOMES)
    def poll_an_order(self, data, outcome):
        """A CheckPayout run (possibly retried); the provider may have changed its script."""
        self._script(outcome)
        oid = data.draw(st.sampled_from(self.orders))
        self.world.order_payouts.check_for_order(oid)
        self.world.order_payouts.check_for_order(oid)

    @rule(amount=st.integers(100, 3_000_000), outcome=OUTCOMES)
    def withdraw(self, amount, outcome):
        self.keys += 1
        self._script(outcome)
        try:
            self.world.payouts.withdraw(self.world.seller, Money(amount, "RWF"), f"w{self.keys}")
        except BusinessRuleViolation as refused:
            assert refused.code in ("insufficient_funds", "limit_exceeded")

    @rule(data=st.data())
    def a_forged_or_early_callback(self, data):
        """A callback naming a payout (predictable ids, sent or not yet sent) is only a hint."""
        order_id = data.draw(st.sampled_from(self.orders)) if self.orders and data.draw(st.booleans()) else "ord_guess"
        payout_id = f"po_{order_id}_{data.draw(st.integers(1, 3))}"
        before = self.world.docs.get(f"payout#{payout_id}")
        after = self.world.payouts.on_provider_callback(payout_id)
        if before is None or before["status"] != "pending":
            assert after is None and self.world.docs.get(f"payout#{payout_id}") == before

    @rule()
    def sweep_open_payouts(self):
        self.world.payouts.poll_open()

    @invariant()
    def the_ledger_balances(self):
        assert self.world.ledger.trial_balance().balanced

    @invariant()
    def no_seller_balance_is_negative(self):
        seller = self.world.seller_account()
        assert seller.available >= 0 and seller.balance >= 0

    @rule()
    def every_payout_reaches_a_final_state(self):
        """The provider ends up answering; once every payout is final, the books agree exactly."""
        self.world.rail.script(WALLET, send="succeeded")
        for _ in range(4):
            for oid in self.orders:
                self.world.order_payouts.check_for_order(oid)
            self.world.payouts.poll_open()
        payouts = self.world.payouts.list_for_seller("coop-1")
        assert all(p["status"] in ("succeeded", "failed") for p in payouts if "scheduled_for" not in p)
        if all(p["status"] in ("succeeded", "failed") for p in payouts):
            float_account = self.world.ledger.get_account("float:mtn_momo:RWF")
            assert self._credited() == float_account.credits_posted
            assert float_account.credits_pending == 0

    def _credited(self) -> int:
        return sum(m.minor for m in self.world.rail.credited(WALLET))

    @invariant()
    def the_wallet_never_gets_more_than_the_ledger_reserved_or_paid(self):
        float_account = self.world.ledger.get_account("float:mtn_momo:RWF")
        assert self._credited() <= float_account.credits_posted + float_account.credits_pending

    @invariant()
    def every_payout_marked_succeeded_was_received(self):
        succeeded = [p for p in self.world.payouts.list_for_seller("coop-1") if p["status"] == "succeeded"]
        assert self._credited() >= sum(p["amount"]["amount"] for p in succeeded)


PayoutMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=12, deadline=None)
TestPayoutInvariants = PayoutMachine.TestCase
