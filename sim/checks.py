"""The invariants, checked after every step and when each order ends.

Every step (cheap, from what the step touched):

* each committed ledger batch balances per currency (posted debits = posted credits, pending
  likewise), and the running totals agree with a full scan at the end;
* no constrained account (``debits_must_not_exceed_credits`` and its mirror) is below zero;
* per payout reference, the provider and the ledger agree: a payment reaches the provider only for
  a reservation of the same amount to the same wallet, at most once; the ledger posts only what the
  provider paid and never voids (or lets expire) what the provider paid or may still pay;
* per wallet, what the ledger posted <= what the wallet received <= posted + still reserved
  (equal once nothing is reserved): never paid twice, checked per wallet, not only in the trial balance;
* an order that has ended never changes status again;
* a workflow step never asks the ledger to move money a second time (a step that is retried or
  delivered twice must replay, so a refusal for funds in a task means it was not idempotent);
* the workflow never times out waiting for customs when the order already holds customs' decision.

When an order's execution ends (``order_ended``): the execution's end and the order's one terminal
status agree (Settled/settled, Refunded/refunded, PayoutNotDelivered/payout_failed,
AwaitingOperator/manual_review); the buyer's money went exactly one way (escrow empty and the
buyer refunded exactly once, or released: the guaranteed payout credited exactly once to the
seller, or shared out to its members, and for ``settled`` every part reached the wallet, for
``payout_failed`` what failed is back in the balance); the card processor refunded exactly what
the ledger booked. An order must end within ``bound_s`` of its checkout (``order_deadline``).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from chalicelib.ledger.model import AccountFlag, PendingStatus, TransferKind
from chalicelib.ledger.store import AccountDelta, PutTransfer, ResolvePending
from sim.known import KNOWN_BUGS

TERMINAL = frozenset({"settled", "refunded", "payout_failed", "manual_review", "charged_back"})
END_TO_STATUS = {"Settled": "settled", "Refunded": "refunded", "PayoutNotDelivered": "payout_failed",
                 "AwaitingOperator": "manual_review", "ChargedBack": "charged_back"}
DMNEC = AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS.value
CMNED = AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS.value
#: Ledger refusals that a replayed workflow step must never meet.
NOT_IDEMPOTENT = ("exceeds_credits", "exists_with_different_fields", "insufficient_funds")


@dataclass(frozen=True)
class Violation:
    """An invariant that broke: at which step, and how."""

    step: int
    message: str
    tag: str | None = None  # the known bug (sim/known.py) it is an instance of, if any


class Checker:
    """Holds what the invariants need between steps; ``violations`` lists what broke, ``known`` the
    instances of known bugs (counted as violations only when ``strict``)."""

    def __init__(self, world, stop_on_first: bool = True, strict: bool = False):
        self.world = world
        self.stop_on_first = stop_on_first
        self.strict = strict
        self.violations: list[Violation] = []
        self.known: dict[str, int] = defaultdict(int)
        self.known_examples: dict[str, Violation] = {}
        self.decided_before_timeout = 0  # AwaitCustoms timeouts that found customs' decision recorded
        self.given_up: set[str] = set()  # orders whose end was already reported (not again at the deadline)
        self.step = 0
        self.totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # dp, dpost, cp, cpost per currency
        self.archived: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # counters of forgotten accounts
        self.touched_accounts: set[str] = set()
        self.touched_wallets: set[str] = set()
        self.by_reference: dict[str, list] = defaultdict(list)  # reference -> transfers committed under it
        self.wallet_of_account: dict[str, str] = {}
        self.paid: dict[str, int] = defaultdict(int)  # wallet -> payout minor units the ledger posted
        self.reserved: dict[str, int] = defaultdict(int)  # wallet -> payout minor units reserved, unresolved
        self.ended: dict[str, str] = {}  # order id -> its terminal status
        self.operator_cases: list[str] = []  # money safe but needing a person (counted, not violations)

    # -- reporting ------------------------------------------------------------------------
    def violate(self, message: str, tag: str | None = None) -> None:
        violation = Violation(self.step, message, tag)
        if tag in KNOWN_BUGS and not self.strict:
            self.known[tag] += 1
            self.known_examples.setdefault(tag, violation)
            self.world.trace(f"KNOWN {tag}: {message}")
            return
        self.violations.append(violation)
        self.world.trace(f"VIOLATION {message}")

    @property
    def failed(self) -> bool:
        return bool(self.violations)

    # -- hooks --------------------------------------------------------------------------------
    def on_commit(self, batch) -> None:
        """Every committed ledger batch (called by the store proxy)."""
        per_currency: dict[str, list[int]] = {}
        for op in batch.ops:
            if isinstance(op, AccountDelta):
                row = per_currency.setdefault(op.currency, [0, 0, 0, 0])
                row[0] += op.debits_pending
                row[1] += op.debits_posted
                row[2] += op.credits_pending
                row[3] += op.credits_posted
                self.touched_accounts.add(op.account_id)
            elif isinstance(op, PutTransfer):
                transfer = op.record.transfer
                self.by_reference[transfer.reference].append(transfer)
                if transfer.code == "payout" and TransferKind(transfer.kind) is TransferKind.PENDING:
                    wallet = self._wallet(transfer.debit_account_id)
                    self.reserved[wallet] += transfer.amount
                    self.touched_wallets.add(wallet)
            elif isinstance(op, ResolvePending):
                self._resolved(op, batch)
        for currency, (dp, dpost, cp, cpost) in per_currency.items():
            if dp != cp or dpost != cpost:
                self.violate(f"a ledger batch does not balance in {currency}: debits {dpost}+{dp} pending, "
                             f"credits {cpost}+{cp} pending")
            total = self.totals[currency]
            total[0] += dp
            total[1] += dpost
            total[2] += cp
            total[3] += cpost

    def _resolved(self, op: ResolvePending, batch) -> None:
        record = self.world.ledger_memory.transfers.get(op.pending_id)
        if record is None or record.transfer.code != "payout":
            return
        pending = record.transfer
        wallet = self._wallet(pending.debit_account_id)
        rail = self.world.rails.get(pending.credit_account_id.split(":")[1])
        payments = rail.payments_for(pending.transfer_id) if rail else []
        self.reserved[wallet] -= pending.amount
        self.touched_wallets.add(wallet)
        if op.new_status is PendingStatus.POSTED:
            posted = next((o.record.transfer.amount for o in batch.ops if isinstance(o, PutTransfer)
                           and o.record.transfer.pending_id == op.pending_id), pending.amount)
            self.paid[wallet] += posted
            if not any(p.current().state == "succeeded" for p in payments):
                self.violate(f"payout {pending.transfer_id} posted in the ledger, but the provider has not paid it")
        elif any(p.outcome == "succeeded" for p in payments):
            self.violate(f"payout {pending.transfer_id} {op.new_status.value} in the ledger (its money back in the "
                         f"balance), but the provider paid it or will: {[p.current().state for p in payments]}")

    def on_provider_payment(self, rail, payment, repeated: bool) -> None:
        """A payment the provider took (called by the rail twin)."""
        self.touched_wallets.add(payment.msisdn)
        if repeated:
            self.violate(f"{rail.name} paid reference {payment.reference} twice to {payment.msisdn}")
            return
        record = self.world.ledger_memory.transfers.get(payment.reference)
        if record is None or record.status is not PendingStatus.PENDING:
            self.violate(f"{rail.name} was asked to pay {payment.reference} with no reservation in the ledger "
                         f"({record.status.value if record else 'no transfer'})")
            return
        if record.transfer.amount != payment.amount.minor or record.transfer.currency != payment.amount.currency:
            self.violate(f"{rail.name} was asked to pay {payment.amount} for {payment.reference}, reserved "
                         f"{record.transfer.amount} {record.transfer.currency}")
        if self._wallet(record.transfer.debit_account_id) != payment.msisdn:
            self.violate(f"{payment.reference} was sent to {payment.msisdn}, not the wallet of "
                         f"{record.transfer.debit_account_id}")

    def on_task_error(self, execution_name: str, state: str, error: str, cause: str) -> None:
        if error in ("LedgerRejected", "BusinessRuleViolation") and any(code in cause for code in NOT_IDEMPOTENT):
            self.violate(f"{state} of {execution_name} asked the ledger to move money again: {error} {cause[:160]}")

    def on_token_timeout(self, order_id: str, state: str) -> None:
        """A task token timed out. If customs' decision was recorded first (its answer came late), the
        workflow must still follow it: a cleared order is released, not refunded (checked at its end)."""
        order = self.world.docs_memory.get(f"order#{order_id}")
        outcome = ((order or {}).get("customs") or {}).get("outcome") if state == "AwaitCustoms" else None
        if outcome:
            self.decided_before_timeout += 1

    def after_step(self) -> None:
        accounts = self.world.ledger_memory.accounts
        for account_id in self.touched_accounts:
            account = accounts.get(account_id)
            if account is None or not account.flags:
                continue
            if (DMNEC in account.flags or CMNED in account.flags) and account.available < 0:
                self.violate(f"constrained account {account_id} is below zero: available {account.available}")
        self.touched_accounts.clear()
        for wallet in self.touched_wallets:
            self._check_wallet(wallet)
        self.touched_wallets.clear()
        docs = self.world.docs_memory
        touched, docs.touched = docs.touched, set()
        for pk in touched:
            if pk.startswith("order#") and pk[6:] in self.ended:
                order = self.world.docs_memory.get(pk)
                if order is not None and order["status"] != self.ended[pk[6:]]:
                    self.violate(f"order {pk[6:]} ended {self.ended[pk[6:]]} and then became {order['status']}")

    def _wallet(self, account_id: str) -> str:
        found = self.wallet_of_account.get(account_id)
        if found is None:
            kind, _, party = account_id.partition(":")
            doc = self.world.docs_memory.get(f"{kind}#{party}") if kind in ("seller", "member") else None
            found = doc["payout"]["msisdn"] if doc else f"?{account_id}"
            self.wallet_of_account[account_id] = found
        return found

    def _check_wallet(self, wallet: str) -> None:
        received = sum(rail.wallet_total(wallet) for rail in self.world.rails.values())
        paid, reserved = self.paid[wallet], self.reserved[wallet]
        if received < paid:
            self.violate(f"wallet {wallet}: the ledger paid {paid}, the wallet received {received}")
        elif received > paid + reserved:
            self.violate(f"wallet {wallet} received {received}: more than the ledger paid ({paid}) and still "
                         f"reserves ({reserved})")

    # -- an order's end -------------------------------------------------------------------------
    def order_ended(self, sim_order, execution) -> None:
        """The execution of ``sim_order`` ended: its terminal status and where its money went."""
        oid = sim_order.order_id
        order = self.world.docs_memory.get(f"order#{oid}")
        expected = END_TO_STATUS.get(execution.end_state) if execution.status == "SUCCEEDED" or \
            execution.end_state == "AwaitingOperator" else None
        terminal_entries = [e["status"] for e in order["timeline"] if e["status"] in TERMINAL]
        if expected is None:
            poll_budget = execution.error == "States.Runtime" and execution.end_state == "ManualReview" \
                and "'$.error'" in (execution.cause or "")
            self.given_up.add(oid)
            self.violate(f"the workflow of {oid} ended {execution.status} at {execution.end_state} "
                         f"({execution.error}: {(execution.cause or '')[:200]}); the order is left {order['status']}",
                         "asl-poll-budget-without-error" if poll_budget else None)
            return
        after_terminal = execution.end_state == "AwaitingOperator" and bool(terminal_entries) \
            and terminal_entries[0] != "manual_review"
        if order["status"] != expected:
            self.violate(f"the workflow of {oid} ended at {execution.end_state} but the order is {order['status']}",
                         "task-fails-after-its-terminal-write" if after_terminal else None)
        elif terminal_entries != [expected]:
            self.violate(f"order {oid} should end once, as {expected}; its timeline ends {terminal_entries}",
                         "task-fails-after-its-terminal-write" if after_terminal else None)
        self.ended[oid] = order["status"]
        self._money_of(order, sim_order)

    def _money_of(self, order: dict, sim_order) -> None:
        oid, status = order["order_id"], order["status"]
        ledger = self.world.ledger_memory
        pay = order["pay"]["amount"]
        payout = order["payout"]["amount"]
        moved = self.by_reference.get(oid, [])
        payments = [t for t in self.by_reference.get(order["payment"]["payment_intent_id"], []) if t.code == "card_payment"]
        paid_in = sum(t.amount for t in payments)
        if paid_in != pay:
            self.violate(f"order {oid}: the card payment of {pay} entered escrow as {paid_in} ({len(payments)} transfers)")
        refunds = [t for t in self.by_reference.get(order["payment"]["payment_intent_id"], []) if t.code == "card_refund"]
        refunded_ledger = sum(t.amount for t in refunds)
        refunded_card = self.world.cards.refunded(order["payment"]["payment_intent_id"]).minor
        escrow = ledger.accounts.get(f"escrow:{oid}")
        escrow_balance = (escrow.credits_posted - escrow.debits_posted) if escrow else 0
        to_party = [t for t in moved if t.transfer_id.startswith(f"release:{oid}")
                    and t.credit_account_id.startswith(("seller:", "allocation:"))]
        credited = sum(t.amount for t in to_party)
        released = bool(to_party)
        # The release's same-currency branch moves pay - fee, not the guarantee (sim/known.py).
        same_currency = "same-currency-release-credits-pay-less-fee" \
            if any(t.transfer_id == f"release:{oid}:seller" for t in to_party) else None
        if released and refunded_ledger:
            self.violate(f"order {oid} was both released ({credited}) and refunded ({refunded_ledger})")
        if refunded_card > pay:
            self.violate(f"order {oid}: the buyer was refunded {refunded_card}, more than the {pay} paid")
        if status == "refunded" and (order.get("customs") or {}).get("outcome") == "cleared":
            self.violate(f"order {oid} was refunded although customs cleared it "
                         f"({order['customs'].get('event_id')}): the decision never reached the workflow")
        if status == "refunded":
            if refunded_ledger != pay or refunded_card != pay or escrow_balance != 0:
                self.violate(f"order {oid} refunded: ledger {refunded_ledger}, card {refunded_card}, escrow left "
                             f"{escrow_balance}, paid {pay}")
        elif status in ("settled", "payout_failed"):
            if credited != payout or escrow_balance != 0 or refunded_card:
                self.violate(f"order {oid} {status}: {credited} credited for a payout of {payout}, escrow left "
                             f"{escrow_balance}, card refunded {refunded_card}",
                             same_currency if escrow_balance == 0 and not refunded_card else None)
            self._payouts_of(order)
        else:  # manual_review: the money is in exactly one place, which an operator can see
            if refunded_card != refunded_ledger:
                self.operator_cases.append(f"{oid}: card refunded {refunded_card}, ledger refund {refunded_ledger}")
            if released and credited != payout:
                self.violate(f"order {oid} in review: {credited} credited for a payout of {payout}", same_currency)
            if not released and not refunded_ledger and escrow_balance != pay:
                self.violate(f"order {oid} in review: escrow holds {escrow_balance} of the {pay} paid")
        for hold in moved:
            # Each hold the release made for the payout became the payouts' reservations, or was let go
            # when the order went to review before its payout started (payouts/lines.py): none is left.
            if hold.code == "payout_hold" and TransferKind(hold.kind) is TransferKind.PENDING:
                record = ledger.transfers.get(hold.transfer_id)
                if record is None or record.status is not PendingStatus.VOIDED:
                    self.violate(f"order {oid} is {status} but its hold {hold.transfer_id} is "
                                 f"{record.status.value if record else 'missing'}")
        if order.get("allocation") and released:
            shares = [t for t in moved if t.code == "member_share"]
            if shares and sum(t.amount for t in shares) != payout:
                self.violate(f"order {oid}: shares of {sum(t.amount for t in shares)} for a payout of {payout}")

    def _payouts_of(self, order: dict) -> None:
        oid, status = order["order_id"], order["status"]
        docs = self.world.docs_memory
        plan = docs.get(f"orderpayouts#{oid}")
        ids = plan["payout_ids"] if plan else []
        payouts = [docs.get(f"payout#{i}") for i in ids]
        states = [p["status"] if p else "missing" for p in payouts]
        expected = order["payout"]["amount"]
        if order.get("allocation"):
            # A share below its rail's smallest payout stays in the member's balance (workflow/order_payouts.py).
            from chalicelib.payouts.limits import limits_for

            expected = sum(s["amount"]["amount"] for s in order["allocation"]["shares"]
                           if s["amount"]["amount"] >= limits_for(s["route"]["rail"], s["amount"]["currency"]).min_per_tx)
        planned = sum(p["amount"]["amount"] for p in payouts if p)
        if planned != expected:
            self.violate(f"order {oid}: payouts planned for {planned}, the wallets are owed {expected}")
        if status == "settled" and any(s != "succeeded" for s in states):
            self.violate(f"order {oid} settled with payouts {states}")
        if status == "payout_failed" and ("failed" not in states or any(s not in ("succeeded", "failed") for s in states)):
            self.violate(f"order {oid} payout_failed with payouts {states}")
        for payout in payouts:
            if payout is None:
                continue
            record = self.world.ledger_memory.transfers.get(payout["payout_id"])
            want = {"succeeded": PendingStatus.POSTED, "failed": PendingStatus.VOIDED}.get(payout["status"])
            if want is not None and (record is None or record.status is not want):
                self.violate(f"payout {payout['payout_id']} is {payout['status']} but its reservation is "
                             f"{record.status.value if record else 'missing'}")
            rail = self.world.rails[payout["rail"]]
            got = rail.payments_for(payout["payout_id"])
            if payout["status"] == "succeeded" and not (len(got) == 1 and got[0].current().state == "succeeded"):
                self.violate(f"payout {payout['payout_id']} succeeded but the provider holds {[p.current().state for p in got]}")

    def order_deadline(self, sim_order) -> None:
        if sim_order.order_id is None:
            self.violate(f"order #{sim_order.plan.index} was never created (checkout failed for good)")
        elif sim_order.order_id not in self.ended and sim_order.order_id not in self.given_up:
            docs = self.world.docs_memory
            order = docs.get(f"order#{sim_order.order_id}")
            execution = self.world.interpreter.executions.get(sim_order.order_id)
            where = f"workflow at {execution.state} ({execution.status})" if execution else "no workflow"
            unlinked = order is not None and order["status"] == "awaiting_payment" \
                and docs.get(f"pi#{sim_order.payment_intent_id}") is None
            self.violate(f"order {sim_order.order_id} has not ended {sim_order.bound_s // 3600} h after checkout: "
                         f"it is {order['status'] if order else 'missing'}, {where}"
                         + ("; no pi# link to its payment intent" if unlinked else ""),
                         "checkout-without-payment-link" if unlinked else None)

    # -- the end of the run -------------------------------------------------------------------
    def final(self) -> None:
        ledger = self.world.ledger_memory
        scan: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for account in ledger.accounts.values():
            row = scan[account.currency]
            row[0] += account.debits_pending
            row[1] += account.debits_posted
            row[2] += account.credits_pending
            row[3] += account.credits_posted
            if account.flags and account.available < 0:
                self.violate(f"constrained account {account.account_id} is below zero: available {account.available}")
        for currency in sorted(set(scan) | set(self.totals)):
            got = [a + b for a, b in zip(scan[currency], self.archived[currency])]
            if got != self.totals[currency]:
                self.violate(f"{currency}: the accounts add up to {got}, the committed batches to {self.totals[currency]}")
            if got[1] != got[3] or got[0] != got[2]:
                self.violate(f"trial balance in {currency}: debits {got[1]} (+{got[0]} pending), credits {got[3]} "
                             f"(+{got[2]} pending)")
        wallets = set(self.paid) | set(self.reserved)
        for rail in self.world.rails.values():
            wallets |= set(rail.by_wallet) | set(rail.archived)
        for wallet in sorted(wallets):
            self._check_wallet(wallet)
            received = sum(rail.wallet_total(wallet) for rail in self.world.rails.values())
            if self.reserved[wallet] == 0 and received != self.paid[wallet]:
                self.violate(f"wallet {wallet} received {received}, the ledger paid {self.paid[wallet]}")
