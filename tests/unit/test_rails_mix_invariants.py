"""Ledger and wallet invariants with three rails at once (Hypothesis state machine, fakes).

Three sellers, one per rail of the registry — MTN MoMo in Rwanda (RWF), M-Pesa in Kenya
(KES, whole units only) and Airtel Money in Uganda (UGX, whole units only) — each paid by
its own ``FakeRail``. Buyers pay in CNY. Random orders are released and paid out while the
seller's rail answers succeeded, failed, unknown-then-final, or loses the request;
workflow checks are repeated as a retried Lambda would; withdrawals (within the balance
or above it, in the rail's steps) race the order payouts; the sweeper runs; callbacks are
forged for predictable payout ids (``po_<order>_<n>``), early or late.

After every step, per rail and wallet: the ledger balances, no seller balance is negative,
what the wallet received never exceeds what the rail's float account was credited (posted
or pending), every payout marked succeeded was received, and no payout marked failed was.
When every provider finally answers succeeded, each wallet holds exactly what its float
account posted, with nothing left pending (unless a payout waits for tomorrow's limit).
"""
from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from chalicelib import rails
from chalicelib.documents import MemoryDocuments
from chalicelib.errors import BusinessRuleViolation
from chalicelib.escrow.service import EscrowService, Principal
from chalicelib.fx import MemoryQuoteStore, QuoteService, SnapshotRateSource
from chalicelib.ledger import Ledger
from chalicelib.ledger.memory import MemoryLedgerStore
from chalicelib.money import Money
from chalicelib.notify.outbox import Outbox
from chalicelib.payments.fake import FakeCardGateway
from chalicelib.payouts.limits import limits_for
from chalicelib.payouts.rails.fake import FakeRail
from chalicelib.payouts.service import PayoutService
from chalicelib.settings import Settings
from chalicelib.workflow.engine import FakeWorkflow
from chalicelib.workflow.order_payouts import OrderPayouts
from payout_world import BUYER, COFFEE, Phone

CURRENCIES = ("CNY", "USD", "RWF", "KES", "UGX")
#: seller id -> (name, country, rail, wallet of that rail's network, payout currency, customs office)
SELLERS = {
    "coop-rw": ("Kivu Hills", "RW", "mtn_momo", "250788123456", "RWF", "Kigali"),
    "coop-ke": ("Kericho Tea", "KE", "mpesa", "254712345678", "KES", "Mombasa"),
    "coop-ug": ("Bugisu Growers", "UG", "airtel_money", "256701234567", "UGX", "Entebbe"),
}
SELLER_IDS = st.sampled_from(sorted(SELLERS))
OUTCOMES = st.sampled_from(["succeeded", "failed", "unknown_then_succeeded", "unknown_then_failed", "lost"])
FINAL = ("succeeded", "failed")


class RailsMixWorld:
    """Escrow, ledger, quotes and cards in memory; one ``FakeRail`` per rail of the registry."""

    def __init__(self):
        self.docs = MemoryDocuments()
        self.ledger = Ledger(MemoryLedgerStore())
        for cur in CURRENCIES:
            for name, kind in (("psp:stripe:{}", "asset"), ("fx:{}", "asset"), ("revenue:fees:{}", "revenue")):
                self.ledger.create_account(name.format(cur), cur, kind)
            for rail_name in rails.RAIL_NAMES:
                self.ledger.create_account(f"float:{rail_name}:{cur}", cur, "asset")
        self.rails = {name: FakeRail(name) for name in rails.RAIL_NAMES}
        self.cards = FakeCardGateway()
        self.phone = Phone()
        self.now = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
        outbox = Outbox(self.docs, lambda: self.phone)
        quotes = QuoteService(SnapshotRateSource(), MemoryQuoteStore())
        self.escrow = EscrowService(self.docs, self.ledger, quotes, self.cards, FakeWorkflow(), Settings(), outbox=outbox)
        self.payouts = PayoutService(self.docs, self.ledger, lambda name: self.rails[name], clock=lambda: self.now)
        self.order_payouts = OrderPayouts(self.escrow, self.payouts)
        self.sellers = {
            seller_id: self.escrow.register_seller(Principal(seller_id, "seller"), name, country,
                                                   {"rail": rail, "msisdn": wallet, "currency": currency})
            for seller_id, (name, country, rail, wallet, currency, _office) in SELLERS.items()
        }

    # -- a seller's side ---------------------------------------------------------------
    def rail_of(self, seller_id: str) -> FakeRail:
        return self.rails[self.sellers[seller_id]["payout"]["rail"]]

    def wallet_of(self, seller_id: str) -> str:
        return self.sellers[seller_id]["payout"]["msisdn"]

    def float_of(self, seller_id: str):
        route = self.sellers[seller_id]["payout"]
        return self.ledger.get_account(f"float:{route['rail']}:{route['currency']}")

    def seller_account(self, seller_id: str):
        return self.ledger.get_account(f"seller:{seller_id}")

    def credited(self, seller_id: str) -> int:
        return sum(m.minor for m in self.rail_of(seller_id).credited(self.wallet_of(seller_id)))

    def payouts_of(self, seller_id: str) -> list[dict]:
        return self.payouts.list_for_seller(seller_id)

    # -- orders ----------------------------------------------------------------------
    def checkout(self, seller_id: str, key: str) -> str:
        return self.escrow.create_order(BUYER, seller_id, "CNY", COFFEE, key)["order_id"]

    def release(self, seller_id: str, order_id: str) -> None:
        order = self.escrow.order(order_id)
        self.cards.pay(order["payment"]["payment_intent_id"])
        self.escrow.payment_succeeded(order["payment"]["payment_intent_id"], Money(order["pay"]["amount"], "CNY"))
        self.escrow.record_shipment(Principal(seller_id, "seller"), order_id, "DHL", "1", "D1")
        self.escrow.customs_event(order_id, "cleared", "D1", SELLERS[seller_id][5], f"e-{order_id}")
        self.escrow.release_escrow(order_id)


class RailsMixMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.world = RailsMixWorld()
        self.orders: dict[str, str] = {}  # order id -> seller id (released and started)
        self.unreleased: list[tuple[str, str]] = []  # (order id, seller id): checked out, not paid yet
        self.keys = 0

    def _script(self, seller_id: str, outcome: str) -> None:
        """What the seller's wallet on the seller's rail answers from now on."""
        rail, wallet = self.world.rail_of(seller_id), self.world.wallet_of(seller_id)
        if outcome == "succeeded":
            rail.script(wallet, send="succeeded")
        elif outcome == "failed":
            rail.script(wallet, send="failed", reason="PAYEE_NOT_FOUND")
        elif outcome == "unknown_then_succeeded":
            rail.script(wallet, send="unknown", statuses=["pending", "succeeded"])
        elif outcome == "unknown_then_failed":
            rail.script(wallet, send="unknown", statuses=["failed"])
        else:
            rail.script(wallet, send="unknown", recorded=False)

    def _release_and_pay(self, seller_id: str, outcome: str) -> None:
        self._script(seller_id, outcome)
        waiting = [i for i, (_, s) in enumerate(self.unreleased) if s == seller_id]
        if waiting:
            order_id = self.unreleased.pop(waiting[0])[0]
        else:
            self.keys += 1
            order_id = self.world.checkout(seller_id, f"k{self.keys}")
        self.world.release(seller_id, order_id)
        self.orders[order_id] = seller_id
        self.world.order_payouts.start_for_order(order_id)

    # -- rules -------------------------------------------------------------------------
    @initialize(outcomes=st.tuples(OUTCOMES, OUTCOMES, OUTCOMES))
    def every_rail_has_an_order_in_flight(self, outcomes):
        """Each example starts with one order paid out on each rail, under its own fault."""
        for seller_id, outcome in zip(sorted(SELLERS), outcomes):
            self._release_and_pay(seller_id, outcome)

    @rule(seller_id=SELLER_IDS)
    def a_buyer_checks_out(self, seller_id):
        """An order exists (its payout ids are predictable) but is not paid yet."""
        self.keys += 1
        self.unreleased.append((self.world.checkout(seller_id, f"u{self.keys}"), seller_id))

    @rule(seller_id=SELLER_IDS, outcome=OUTCOMES)
    def release_and_pay_an_order(self, seller_id, outcome):
        self._release_and_pay(seller_id, outcome)

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), outcome=OUTCOMES)
    def the_workflow_checks_an_order(self, data, outcome):
        """A CheckPayout run, retried; the provider may have changed its script meanwhile."""
        order_id = data.draw(st.sampled_from(sorted(self.orders)))
        self._script(self.orders[order_id], outcome)
        self.world.order_payouts.check_for_order(order_id)
        self.world.order_payouts.check_for_order(order_id)

    def _units(self, seller_id: str) -> tuple[str, int, int, int]:
        """(currency, the rail's step, the smallest payout and the available balance, in steps)."""
        route = self.world.sellers[seller_id]["payout"]
        step = rails.rail(route["rail"]).step(route["currency"])
        smallest = -(-limits_for(route["rail"], route["currency"]).min_per_tx // step)
        return route["currency"], step, smallest, self.world.seller_account(seller_id).available // step

    def _withdraw(self, seller_id: str, amount: Money) -> None:
        self.keys += 1
        try:
            self.world.payouts.withdraw(self.world.sellers[seller_id], amount, f"w{self.keys}")
        except BusinessRuleViolation as refused:
            assert refused.code in ("insufficient_funds", "limit_exceeded"), refused.code

    def _can_withdraw(self) -> list[str]:
        return [s for s in sorted(SELLERS) if self._units(s)[3] >= self._units(s)[2]]

    @precondition(lambda self: self._can_withdraw())
    @rule(data=st.data(), outcome=OUTCOMES)
    def a_seller_withdraws_within_the_balance(self, data, outcome):
        """A seller whose failed payouts came back withdraws part or all of it, in the rail's steps."""
        seller_id = data.draw(st.sampled_from(self._can_withdraw()), label="seller")
        self._script(seller_id, outcome)
        currency, step, smallest, units = self._units(seller_id)
        self._withdraw(seller_id, Money(data.draw(st.integers(smallest, units), label="units") * step, currency))

    @rule(data=st.data(), seller_id=SELLER_IDS, outcome=OUTCOMES)
    def a_seller_withdraws_more_than_the_balance(self, data, seller_id, outcome):
        """Refused (``insufficient_funds``, or ``limit_exceeded`` above the rail's limits), never paid."""
        self._script(seller_id, outcome)
        currency, step, _smallest, units = self._units(seller_id)
        extra = data.draw(st.integers(1, 2_000_000), label="units above the balance")
        self._withdraw(seller_id, Money((units + extra) * step, currency))

    @rule()
    def the_sweeper_runs(self):
        self.world.payouts.poll_open()

    def _in_flight(self) -> list[tuple[str, str]]:
        return [(name, ref) for name, rail in sorted(self.world.rails.items()) for ref, payment in sorted(rail.payments.items())
                if payment.current().state not in FINAL]

    @precondition(lambda self: self._in_flight())
    @rule(data=st.data())
    def a_provider_moves_a_payment_on(self, data):
        """Time passes at a provider: a payment in flight takes its next scripted state (the money may
        reach the wallet before we ask). ``FakeRail`` moves a payment on with each status query."""
        name, reference = data.draw(st.sampled_from(self._in_flight()), label="payment")
        self.world.rails[name].status(reference)

    @rule(data=st.data())
    def a_forged_or_early_callback(self, data):
        """A callback naming a payout (predictable ids, sent or not yet sent) is only a hint."""
        known = sorted(self.orders) + [o for o, _ in self.unreleased]
        guess = data.draw(st.integers(0, 3), label="guess") == 0
        order_id = "ord_guess" if guess else data.draw(st.sampled_from(known), label="order")
        payout_id = f"po_{order_id}_{data.draw(st.integers(1, 3), label='part')}"
        before = self.world.docs.get(f"payout#{payout_id}")
        sends_before = {name: len(rail.send_calls) for name, rail in self.world.rails.items()}
        pending_before = {name: self._float_totals(name) for name in self.world.rails}
        after = self.world.payouts.on_provider_callback(payout_id)
        if before is None or before["status"] != "pending":
            assert after is None
            assert self.world.docs.get(f"payout#{payout_id}") == before
            assert {name: len(rail.send_calls) for name, rail in self.world.rails.items()} == sends_before
            assert {name: self._float_totals(name) for name in self.world.rails} == pending_before

    @precondition(lambda self: len(self.orders) >= 4)
    @rule()
    def every_payout_reaches_a_final_state(self):
        self._drive_everything_to_final()

    def teardown(self):
        self._drive_everything_to_final()

    # -- the end of the story ---------------------------------------------------------------
    def _drive_everything_to_final(self):
        """Every provider ends up answering succeeded; once every payout is final, the books agree exactly."""
        for seller_id in SELLERS:
            self._script(seller_id, "succeeded")
        for rail in self.world.rails.values():  # every payment in flight reaches its final state at the provider
            for reference, payment in rail.payments.items():
                for _ in payment.script.statuses:
                    rail.status(reference)
        for _ in range(6):
            for order_id in sorted(self.orders):
                self.world.order_payouts.check_for_order(order_id)
            self.world.payouts.poll_open(limit=1000)
            if all(p["status"] in FINAL or "scheduled_for" in p
                   for seller_id in SELLERS for p in self.world.payouts_of(seller_id)):
                break
        for seller_id in SELLERS:
            payouts = self.world.payouts_of(seller_id)
            assert all(p["status"] in FINAL for p in payouts if "scheduled_for" not in p), payouts
            if any("scheduled_for" in p for p in payouts):
                continue  # a part waits for tomorrow's daily limit: reserved, rightly not yet paid
            float_account = self.world.float_of(seller_id)
            assert float_account.credits_pending == 0, (seller_id, float_account)
            assert self.world.credited(seller_id) == float_account.credits_posted, seller_id

    def _float_totals(self, rail_name: str) -> tuple:
        accounts = [self.world.ledger.get_account(f"float:{rail_name}:{cur}") for cur in CURRENCIES]
        return tuple((a.credits_posted, a.credits_pending) for a in accounts)

    # -- invariants ----------------------------------------------------------------------------
    @invariant()
    def the_ledger_balances(self):
        assert self.world.ledger.trial_balance().balanced

    @invariant()
    def no_seller_balance_is_negative(self):
        for seller_id in SELLERS:
            account = self.world.seller_account(seller_id)
            assert account.available >= 0 and account.balance >= 0, seller_id

    @invariant()
    def no_wallet_gets_more_than_its_float_reserved_or_paid(self):
        for seller_id in SELLERS:
            float_account = self.world.float_of(seller_id)
            assert self.world.credited(seller_id) <= float_account.credits_posted + float_account.credits_pending, seller_id

    @invariant()
    def every_payout_marked_succeeded_was_received(self):
        for seller_id in SELLERS:
            rail = self.world.rail_of(seller_id)
            for payout in self.world.payouts_of(seller_id):
                if payout["status"] == "succeeded":
                    sent = rail.payments.get(payout["payout_id"])
                    assert sent is not None and sent.current().state == "succeeded", payout
                    assert sent.amount == Money(payout["amount"]["amount"], payout["amount"]["currency"]), payout

    @invariant()
    def no_payout_marked_failed_was_received(self):
        for seller_id in SELLERS:
            rail = self.world.rail_of(seller_id)
            for payout in self.world.payouts_of(seller_id):
                if payout["status"] == "failed":
                    sent = rail.payments.get(payout["payout_id"])
                    assert sent is None or sent.current().state != "succeeded", payout

    @invariant()
    def each_rail_pays_only_its_own_sellers_in_its_steps(self):
        for seller_id in SELLERS:
            route = self.world.sellers[seller_id]["payout"]
            step = rails.rail(route["rail"]).step(route["currency"])
            for reference, amount, wallet, _note in self.world.rail_of(seller_id).send_calls:
                assert amount.currency == route["currency"] and amount.minor % step == 0, (reference, amount)
                assert wallet == self.world.wallet_of(seller_id).lstrip("+"), (reference, wallet)


RailsMixMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=12, deadline=None)
TestRailsMixInvariants = RailsMixMachine.TestCase
