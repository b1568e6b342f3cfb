"""Payouts to sellers' wallets: reserve in the ledger, call the rail, poll until final.

For each payout (one order's payout may be split to fit the rail's limits):

1. a payout document (status ``pending``) and, for the daily wallet limit, a
   conditional counter (counted once per payout id);
2. a *pending* ledger transfer ``seller:<id>`` → ``float:<rail>:<CUR>`` whose id is the
   payout id — so the seller can never be paid more than their balance;
3. the provider call with the payout id as the provider's reference;
4. finality: ``succeeded`` posts the pending transfer, ``failed`` voids it (the money
   is back in the seller's available balance). Anything else — a timeout, a 5xx, a
   lost callback — is *unknown*: we poll the provider's status until it is final.

Every step is idempotent under the payout id, so a retried Lambda, a duplicate
callback or a crash between two steps never pays twice or loses money.

This package changes only its own documents (payouts, an order's payout plan
``orderpayouts#<order>``); the order's status belongs to escrow, and the workflow
(``chalicelib/workflow/order_payouts.py``) tells it what happened.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from chalicelib import rails
from chalicelib.documents import DocumentExists, Documents, Versioned, WriteContended, WriteRefused
from chalicelib.errors import BusinessRuleViolation, MizaniError, NotFound, ProviderUnavailable, ValidationError
from chalicelib.http import RailNotSent
from chalicelib.accounts import float_account_id, party_account_id
from chalicelib.ids import derived_id
from chalicelib.ledger import Ledger, LedgerRejected, Result, Transfer, TransferKind, WritesNotApplied
from chalicelib.members.batch import NewDocument, get_many, put_all_new, read_many
from chalicelib.money import Money
from chalicelib.observability import bind, metrics
from chalicelib.payouts.limits import MAX_WITHDRAWAL_PARTS, Limits, limits_for, split
from chalicelib.payouts.lines import CHAIN_ITEMS, PayoutLine, chain_items, hold_id, hold_swaps, let_go

log = logging.getLogger("mizani.payouts")
#: How long one invocation holds the right to send a payout (longer than any provider call takes).
SEND_LEASE_SECONDS = 120
_OPEN = "payouts#open"
_ADMITTING = "withdrawals#admitting"
#: A withdrawal still being admitted after this long lost its invocation: the sweeper finishes or undoes it.
ADMISSION_GRACE_SECONDS = 300
#: A payout the provider still has no record of this long after it was claimed for sending, on a rail
#: that does not refuse a repeated reference (M-Pesa), is flagged for an operator instead of sent again.
UNSENT_REVIEW_SECONDS = 24 * 3600
#: At most this many payouts are advanced (sent or asked about) per workflow step: a co-operative of
#: 1,000 members is paid over several CheckPayout steps, each well inside a Lambda's time limit.
ADVANCES_PER_STEP = 60
#: Payouts of one order sent (or asked about) at once: each is another wallet, the time is the provider's.
SEND_THREADS = 8


def party_key(payout: dict) -> str:
    """The document of the party a payout pays (``member#<id>`` or ``seller#<id>``)."""
    return f"member#{payout['member_id']}" if payout.get("member_id") else f"seller#{payout['seller_id']}"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def public_payout(doc: dict) -> dict:
    keys = ("payout_id", "order_id", "member_id", "amount", "rail", "msisdn", "status", "provider_reference", "reason",
            "created_at", "updated_at")
    view = {k: doc.get(k) for k in keys}
    # API.md: pending | succeeded | failed. "new" (created, not yet sent: the sending task may be
    # retrying) and "scheduled" (waiting for the daily limit) are both pending to the seller.
    if view["status"] == "scheduled":
        view["scheduled_for"] = doc.get("not_before")
    if view["status"] == "held":
        view["hold"] = doc.get("reason")
    if view["status"] in ("new", "scheduled", "held", "sending"):
        view["status"] = "pending"
    return view


class PayoutService:
    def __init__(self, docs: Documents, ledger: Ledger, rails, clock=_now, payees=None, send_threads: int = 1,
                 tiers=None):
        self.docs = docs
        self.tiers = tiers  # TierCounters: what a party's KYC tier may be paid per day and month (payouts/tiers.py)
        self.send_threads = send_threads  # an order's payouts advanced at once (1: in order, deterministic)
        self.payees = payees  # PayeeGate: a party under review or blocked is not paid (its money stays reserved)
        self.ledger = ledger
        self.rails = rails  # callable: rail name -> PayoutRail
        self.clock = clock

    # -- an order's payout (driven by the workflow: chalicelib/workflow/order_payouts.py) ------
    def start_for_order(self, order_id: str, seller_id: str, lines: list[PayoutLine], held: bool = False) -> str:
        """StartPayout: plan the (possibly split) payouts of a released order and send the first of them.

        One line per payee (the co-operative, or each member it allocated a share to); each is split
        by its own wallet's limits. Payout ids derive from the order and the payee, so a retried step
        plans the same payouts and creates none twice. ``held``: the release held each line for this
        payout (``payouts/lines.py``); the holds become the payouts' reservations before any payout
        exists, so no payout is ever without its money (``_start_held``)."""
        planned = self._split(order_id, lines, held)
        if held:
            return self._start_held(order_id, seller_id, planned)
        ids = [payout_id for _, payouts in planned for payout_id, _ in payouts]
        new = self._planned_documents(order_id, seller_id, planned, reserved=False)
        # The order's plan (which payouts it has) last, after every payout it names.
        new.append(NewDocument(f"orderpayouts#{order_id}", {"order_id": order_id, "payout_ids": ids,
                                                            "currency": lines[0].amount.currency}))
        # A few transactions of 100 instead of three writes a payout; a document a retried step finds
        # written is kept as it is (a payout already under way is never reset).
        written = put_all_new(self.docs, new)
        if not written[-1]:  # planned by an earlier attempt: its plan is the plan
            ids = self.docs.get(f"orderpayouts#{order_id}")["payout_ids"]
        return self._advance_order(ids)

    def _split(self, order_id: str, lines: list[PayoutLine], held: bool) -> list[tuple[PayoutLine, list[tuple[str, int]]]]:
        """Each line with its payouts as (payout id, amount), split by its wallet's limits."""
        planned = []
        for line in lines:
            limits = limits_for(line.route["rail"], line.amount.currency)
            if held and line.member_id and line.amount.minor < limits.min_per_tx:
                # Held at release, below the smallest payout configured since: its hold is let go and the
                # share stays in the member's balance, as a share too small at release does.
                planned.append((line, []))
                continue
            parts = split(line.amount.minor, limits, rails.rail(line.route["rail"]).step(line.amount.currency))
            stem = f"po_{order_id}_{line.member_id}" if line.member_id else f"po_{order_id}"
            planned.append((line, [(f"{stem}_{i + 1}", amount) for i, amount in enumerate(parts)]))
        return planned

    def _planned_documents(self, order_id: str, seller_id: str, planned, reserved: bool) -> list[NewDocument]:
        return [doc for line, payouts in planned for payout_id, amount in payouts
                for doc in self._documents(payout_id, seller_id, order_id, Money(amount, line.amount.currency),
                                           line.route, member_id=line.member_id, reserved=reserved)]

    def _swaps(self, order_id: str, seller_id: str, planned) -> list[list[Transfer]]:
        return hold_swaps(order_id, lambda line: party_account_id(seller_id, line.member_id), planned)

    def _start_held(self, order_id: str, seller_id: str, planned) -> str:
        """The held order's start. Its plan names every line and payout with its amount, and is the
        plan from its first write on: a retry (even after the limits were configured anew) swaps
        and creates exactly what it says.

        A few payouts (most orders): the swap, the payouts and the plan are ONE atomic write. More:
        the plan first, then the swap chains, then the payouts (``_complete_swap``); CheckPayout
        and a manual review finish a start that died midway from the plan."""
        ids = [payout_id for _, payouts in planned for payout_id, _ in payouts]
        plan = {"order_id": order_id, "payout_ids": ids, "currency": planned[0][0].amount.currency,
                "seller_id": seller_id, "lines": [_line_json(line, payouts) for line, payouts in planned]}
        new = self._planned_documents(order_id, seller_id, planned, reserved=True)
        new.append(NewDocument(f"orderpayouts#{order_id}", plan))
        chains = self._swaps(order_id, seller_id, planned)
        if len(chains) == 1 and chain_items(chains[0]) + len(new) <= CHAIN_ITEMS:
            riding = self.docs.prepare_new([(d.pk, d.doc, d.sk, d.index) for d in new])
            try:
                self.ledger.transfer(*chains[0], writes=[riding])
                return self._advance_order(ids, written={d.pk: d.doc for d in new if d.sk == "doc"})
            except WritesNotApplied:
                pass  # planned before (a retried step): its plan is the plan
            except LedgerRejected as refused:
                if refused.result is not Result.EXISTS_WITH_DIFFERENT_FIELDS:
                    raise  # else: swapped before under another plan, which is the plan
        else:
            try:
                self.docs.put_new(f"orderpayouts#{order_id}", plan)
            except DocumentExists:
                pass  # planned before: its plan is the plan
        stored = self.docs.get(f"orderpayouts#{order_id}")
        if stored is None:
            raise MizaniError("payout_plan_missing", f"order {order_id}: its payouts were swapped under no plan")
        self._complete_swap(order_id, stored)
        return self._advance_order(stored["payout_ids"])

    def _complete_swap(self, order_id: str, plan: dict) -> None:
        """What a held plan says, done: the swap chains (those committed before replay) and the payouts."""
        planned = [_line_of(entry) for entry in plan["lines"]]
        for chain in self._swaps(order_id, plan["seller_id"], planned):
            self.ledger.transfer(*chain)
        put_all_new(self.docs, self._planned_documents(order_id, plan["seller_id"], planned, reserved=True))

    def let_go_of_holds(self, order_id: str, seller_id: str, lines: list[PayoutLine]) -> None:
        """An order taken out of its payout (a manual review): a swap under way is finished from its plan
        (its payouts exist and the sweeper pays them); with no plan, no swap began, and each hold is let
        go: the money is back in the payees' balances, as a payout that never started left it."""
        plan = self.docs.get(f"orderpayouts#{order_id}")
        if plan is not None:
            if plan.get("lines") is not None:
                self._complete_swap(order_id, plan)
            return
        for line in lines:
            pending_id = hold_id(order_id, line.member_id)
            try:
                self.ledger.transfer(let_go(order_id, pending_id))  # a repeated review replays it
            except LedgerRejected as refused:
                # Swapped or let go already, or never held (a share too small at release): nothing to give up.
                if refused.result not in (Result.PENDING_TRANSFER_ALREADY_VOIDED, Result.PENDING_TRANSFER_NOT_FOUND,
                                          Result.PENDING_TRANSFER_ALREADY_POSTED):
                    raise

    def check_for_order(self, order_id: str) -> str | None:
        """CheckPayout: ask the provider about unfinished payouts of the order (``None``: not started)."""
        plan = self.docs.get(f"orderpayouts#{order_id}")
        if plan is None:
            return None
        if plan.get("lines") is not None:  # held: a start that died between its plan and its payouts is finished
            return self._advance_order(plan["payout_ids"], on_missing=lambda: self._complete_swap(order_id, plan))
        return self._advance_order(plan["payout_ids"])

    def _advance_order(self, ids: list[str], written: dict[str, dict] | None = None, on_missing=None) -> str:
        """Advance up to ``ADVANCES_PER_STEP`` unfinished payouts of an order, ``send_threads`` at a
        time (each payout is a different wallet and its own claim, so they are independent; the
        wait is the providers'); its aggregate state. If any raised, the first error is raised once
        the others are done (the step is retried; what was advanced stays advanced)."""
        # One BatchGetItem per 100 payouts, not a GetItem each: a co-operative of 1,000 members is
        # advanced in ~33 steps, each of which reads the whole plan.
        if written is not None:  # created by this call just now (version 1): nothing to read
            read = {payout_id: Versioned(written[f"payout#{payout_id}"], 1) for payout_id in ids}
        else:
            stored = read_many(self.docs, [(f"payout#{payout_id}", "doc") for payout_id in ids])
            read = {payout_id: stored.get((f"payout#{payout_id}", "doc")) for payout_id in ids}
        if on_missing is not None and any(found is None for found in read.values()):
            on_missing()  # the plan names payouts not created yet: created, then advanced as read afresh
            return self._advance_order(ids)
        payouts = {payout_id: (found.doc if found else None) for payout_id, found in read.items()}
        unfinished = [pid for pid, p in payouts.items() if p is not None and p["status"] not in ("succeeded", "failed")]
        batch = unfinished[:ADVANCES_PER_STEP]
        # Each party read once a step, not once a part: an order's parts (and a wallet's) share it. One
        # wallet's parts run in one thread, so a key is written by one thread only.
        parties: dict[str, dict | None] = {}

        def advance(payout_id: str) -> dict:
            payout = payouts[payout_id]
            try:
                return self._advance(payout_id, self._limits(payout), schedule_when_over_daily=True, current=read[payout_id],
                                     parties=parties)
            except BusinessRuleViolation as refused:
                if refused.code != "insufficient_funds":
                    raise
                # The balance no longer holds it (a chargeback after release took it first): this part
                # failed before anything was sent, and the order's payout ends without it.
                return self.docs.get(f"payout#{payout_id}")

        errors = []
        if self.send_threads <= 1 or len(batch) == 1:
            for payout_id in batch:  # in order; the first error stops the step, as it always did
                payouts[payout_id] = advance(payout_id)
        elif batch:
            from concurrent.futures import ThreadPoolExecutor

            # One wallet's parts in order in one thread: they share its daily limit, so which part waits
            # for tomorrow must not depend on thread timing; different wallets go side by side.
            by_wallet: dict[str, list[str]] = {}
            for payout_id in batch:
                by_wallet.setdefault(payouts[payout_id]["msisdn"], []).append(payout_id)

            def advance_wallet(ids: list[str]) -> list[tuple[str, dict | Exception]]:
                done = []
                for payout_id in ids:
                    try:
                        done.append((payout_id, advance(payout_id)))
                    except Exception as error:  # noqa: BLE001 - re-raised below, after the others finished
                        done.append((payout_id, error))
                        break
                return done

            with ThreadPoolExecutor(max_workers=min(self.send_threads, len(by_wallet))) as pool:
                results = list(pool.map(advance_wallet, by_wallet.values()))
            for done in results:
                for payout_id, outcome in done:
                    if isinstance(outcome, Exception):
                        errors.append(outcome)
                    else:
                        payouts[payout_id] = outcome
        if errors:
            raise errors[0]
        return _aggregate([p["status"] if p else "new" for p in payouts.values()])

    @staticmethod
    def _limits(payout: dict) -> Limits:
        return limits_for(payout["rail"], payout["amount"]["currency"])

    def summary_for_order(self, order_id: str) -> dict:
        """What reached the wallet and what did not: ``{"paid", "unpaid": Money, "provider_references"}``."""
        plan = self.docs.get(f"orderpayouts#{order_id}") or {"payout_ids": [], "currency": None}
        stored = get_many(self.docs, [(f"payout#{i}", "doc") for i in plan["payout_ids"]])
        payouts = [stored[(f"payout#{i}", "doc")] for i in plan["payout_ids"] if (f"payout#{i}", "doc") in stored]
        currency = plan["currency"] or (payouts[0]["amount"]["currency"] if payouts else "USD")
        by_member: dict[str, dict] = {}
        for p in payouts:
            if p.get("member_id"):
                entry = by_member.setdefault(p["member_id"], {"paid": 0, "unpaid": 0, "msisdn": p["msisdn"],
                                                              "rail": p["rail"], "provider_references": []})
                entry["paid" if p["status"] == "succeeded" else "unpaid"] += p["amount"]["amount"]
                if p.get("provider_reference"):
                    entry["provider_references"].append(p["provider_reference"])
        return {
            "paid": Money(sum(p["amount"]["amount"] for p in payouts if p["status"] == "succeeded"), currency),
            "unpaid": Money(sum(p["amount"]["amount"] for p in payouts if p["status"] != "succeeded"), currency),
            "provider_references": [p["provider_reference"] for p in payouts if p.get("provider_reference")],
            # member id -> what reached that member's wallet and what did not (co-operatives' allocations)
            "members": {mid: {**e, "paid": Money(e["paid"], currency), "unpaid": Money(e["unpaid"], currency)}
                        for mid, e in by_member.items()},
        }

    # -- withdrawals ---------------------------------------------------------------
    def withdraw(self, seller: dict, amount: Money, request_key: str) -> dict:
        """A seller's (or a co-operative member's: ``seller`` is then the member's document, with its
        ``member_id``) own withdrawal from their available balance, on the same machinery.

        Admission is all or nothing, before anything is sent: every part is counted against the
        wallet's daily limit in one conditional write, then every part is reserved in one linked
        ledger chain. A refusal (``limit_exceeded``, ``insufficient_funds``) leaves nothing sent,
        nothing reserved and no payout behind.
        """
        route = seller["payout"]
        if amount.currency != route["currency"]:
            raise ValidationError("validation_error", f"withdrawals are in {route['currency']}", path="amount.currency")
        amount.require_positive()
        member_id = seller.get("member_id")
        if seller.get("status") == "blocked":
            raise BusinessRuleViolation("payee_blocked", "payouts to this wallet are blocked; the money stays in the balance")
        if seller.get("status") == "pending_review":
            # Counted against today's limit but sent on the day an admin clears it, a withdrawal would
            # let a wallet receive several days' limits at once: refused until the review is over.
            raise BusinessRuleViolation("payee_in_review", "this seller's wallet is being reviewed; withdraw once it is cleared")
        limits = limits_for(route["rail"], amount.currency)
        if amount.minor > limits.max_per_day:  # arithmetic only: refused before any split or write
            raise self._over_daily(limits, amount.currency)
        parts = split(amount.minor, limits, rails.rail(route["rail"]).step(amount.currency), max_parts=MAX_WITHDRAWAL_PARTS)
        base = derived_id("po_w_", seller["seller_id"], request_key) if not member_id else \
            derived_id("po_w_", seller["seller_id"], member_id, request_key)
        ids = [base if len(parts) == 1 else f"{base}_{i + 1}" for i in range(len(parts))]
        bind(payout_id=base, seller_id=seller["seller_id"], member_id=member_id)
        now = self.clock()
        # The request's key is bound to its amount before anything else is written: a retry with the
        # same key (even after a lost answer) replays this withdrawal, another amount is refused.
        intent = {"base": base, "amount": amount.to_json(), "payout_ids": ids, "parts": parts,
                  "seller_id": seller["seller_id"], "member_id": member_id, "route": route, "queued_at": _iso(now),
                  "day_key": self._day_key(route["rail"], route["msisdn"], now)}
        try:
            self.docs.put_new(f"withdrawal#{base}", intent)
            # Queued until admitted: a withdrawal whose invocation died midway is finished (or undone) by the sweeper.
            self.docs.put_new(f"admitting#{base}", {"base": base}, index=(_ADMITTING, f"{_iso(now)}#{base}"))
        except DocumentExists:
            stored = self.docs.get(f"withdrawal#{base}")
            if stored is not None and (stored["amount"], stored["payout_ids"]) != (intent["amount"], intent["payout_ids"]):
                raise BusinessRuleViolation("idempotency_key_reused", "this Idempotency-Key was used for another withdrawal") from None
            intent = stored or intent
            first = self.docs.get(f"payout#{ids[0]}")
            if first is not None:  # admitted before: a replay, whatever became of its parts
                return self._withdrawal_view([first] + [self.docs.get(f"payout#{i}") for i in ids[1:]])
        day_key = intent["day_key"]
        if not self.docs.add_all_within(day_key, dict(zip(ids, parts)), limits.max_per_day):
            self._forget_intent(base)
            raise self._over_daily(limits, amount.currency)
        refused, intent["tier_keys"] = self._tier_admit(seller, dict(zip(ids, parts)), amount.currency, now)
        if refused:
            for payout_id, part in zip(ids, parts):  # the wallet's count is given back: nothing of it stays
                self.docs.remove_from(day_key, payout_id, part)
            self._forget_intent(base)
            raise refused.error()
        try:
            # Reserve all parts in one linked chain: two concurrent withdrawals can never overdraw.
            self._reserve_many(ids, parts, party_account_id(seller["seller_id"], member_id), route, amount.currency)
        except BusinessRuleViolation:
            # Nothing of this withdrawal is reserved (the same ids and amounts would have replayed):
            # what the counter holds under its ids is this withdrawal's own count, given back.
            for payout_id, part in zip(ids, parts):
                self.docs.remove_from(day_key, payout_id, part)
                self._tier_give_back(intent.get("tier_keys"), payout_id, part)
            self._forget_intent(base)
            raise
        self._admitted(intent)
        return self._withdrawal_view([self._advance_admitted(payout_id, limits) for payout_id in ids])

    def _admitted(self, intent: dict) -> None:
        """Reserved: the parts become payouts (queued for the sweeper), and the intent leaves the queue."""
        currency = intent["amount"]["currency"]
        new = []
        for payout_id, part in zip(intent["payout_ids"], intent["parts"]):
            new += self._documents(payout_id, intent["seller_id"], None, Money(part, currency), intent["route"],
                                   reserved=True, day_key=intent["day_key"], member_id=intent.get("member_id"),
                                   tier_keys=intent.get("tier_keys"))
        put_all_new(self.docs, new)
        self.docs.delete(f"admitting#{intent['base']}")

    def _forget_intent(self, base: str) -> None:
        """A refused withdrawal leaves nothing: its key may be used again for another amount."""
        self.docs.delete(f"withdrawal#{base}")
        self.docs.delete(f"admitting#{base}")

    @staticmethod
    def _withdrawal_view(payouts: list[dict]) -> dict:
        """The first part as the API shows it, with every part in ``batch`` when there are several."""
        first = public_payout(payouts[0])
        if len(payouts) > 1:
            first["batch"] = [public_payout(p) for p in payouts]
        return first

    def finish_admissions(self, older_than_seconds: int = ADMISSION_GRACE_SECONDS) -> int:
        """The sweeper's first duty: a withdrawal whose invocation died between its reservation and its
        payouts is finished (reserved: its payouts are made and sent), or undone (nothing reserved: its
        day count is given back). Only intents older than the grace period, so a live request is left alone."""
        cutoff = _iso(self.clock() - timedelta(seconds=older_than_seconds))
        done = 0
        for marker in self.docs.query_index(_ADMITTING, limit=100, newest_first=False):
            intent = self.docs.get(f"withdrawal#{marker['base']}")
            if intent is None:
                self.docs.delete(f"admitting#{marker['base']}")
                continue
            if intent["queued_at"] > cutoff:
                continue  # its own request may still be running
            if self.ledger.get_transfer(intent["payout_ids"][0]) is not None:
                self._admitted(intent)  # reserved as one linked chain: every part is
            else:
                for payout_id, part in zip(intent["payout_ids"], intent["parts"]):
                    self.docs.remove_from(intent["day_key"], payout_id, part)
                self._forget_intent(intent["base"])
            done += 1
        return done

    def _advance_admitted(self, payout_id: str, limits: Limits) -> dict:
        """Send an admitted withdrawal part now if the provider takes it; if it does not answer
        (``provider_unavailable``), the part stays pending, reserved, and the sweeper sends it: the
        seller is not told to retry (a retry would be a second withdrawal)."""
        try:
            return self._advance(payout_id, limits, schedule_when_over_daily=False)
        except ProviderUnavailable as trouble:
            log.warning("payout %s admitted, not sent yet: %s", payout_id, trouble.code)
            return self.docs.get(f"payout#{payout_id}")

    @staticmethod
    def _day_key(rail: str, msisdn: str, now: datetime) -> str:
        return f"walletday#{rail}#{msisdn}#{now.date().isoformat()}"

    @staticmethod
    def _over_daily(limits: Limits, currency: str) -> BusinessRuleViolation:
        return BusinessRuleViolation(
            "limit_exceeded", f"this wallet can receive at most {Money(limits.max_per_day, currency)} a day"
        )

    def for_order(self, order_id: str) -> list[dict]:
        """The payouts of an order's plan (co-operative and members), in plan order, as the API shows them."""
        plan = self.docs.get(f"orderpayouts#{order_id}") or {"payout_ids": []}
        return [public_payout(p) for p in (self.docs.get(f"payout#{i}") for i in plan["payout_ids"]) if p]

    def list_for_seller(self, seller_id: str) -> list[dict]:
        return [public_payout(p) for p in self.docs.query_index(f"payouts#seller#{seller_id}", limit=200)]

    def page_for_seller(self, seller_id: str, limit: int = 20, cursor: str | None = None) -> tuple[list[dict], str | None]:
        """The seller's payouts and its members', newest first, one page (API.md's list convention)."""
        found, following = self.docs.query_page(f"payouts#seller#{seller_id}", limit, cursor)
        return [public_payout(p) for p in found], following

    def list_for_member(self, member_id: str, limit: int = 20) -> list[dict]:
        """A member's payouts, newest first (its order shares and its own withdrawals)."""
        refs = self.docs.query_index(f"payouts#member#{member_id}", limit=limit)
        return [public_payout(p) for p in (self.docs.get(f"payout#{r['payout_id']}") for r in refs) if p]

    def poll_open(self, limit: int = 100) -> int:
        """The scheduled sweeper: advance every unfinished payout (withdrawals have no workflow)."""
        self.finish_admissions()
        advanced = unknown = 0
        an_hour_ago = _iso(self.clock() - timedelta(hours=1))
        for marker in self.docs.query_index(_OPEN, limit=limit, newest_first=False):
            payout = self.docs.get(f"payout#{marker['payout_id']}")
            if payout is None or payout["status"] in ("succeeded", "failed"):
                self.docs.delete(f"openpayout#{marker['payout_id']}")
                continue
            if payout["status"] in ("sending", "pending") and (payout.get("sent_at") or payout["created_at"]) < an_hour_ago:
                unknown += 1
            limits = limits_for(payout["rail"], payout["amount"]["currency"])
            try:
                payout = self._advance(payout["payout_id"], limits, schedule_when_over_daily=payout.get("order_id") is not None)
                advanced += 1
            except MizaniError as error:  # one stuck payout must not stop the others; it is retried next tick
                log.warning("payout %s not advanced: %s", payout["payout_id"], error)
            if payout["status"] not in ("succeeded", "failed"):
                self._requeue(payout["payout_id"])
        # The alarm's gauge, every tick (0 too: missing data pages): of the payouts this sweep looked at,
        # those sent over an hour ago that their rail has not answered finally yet.
        metrics.payouts_unknown(unknown)
        return advanced

    def _requeue(self, payout_id: str) -> None:
        """Move a still-open payout to the back of the sweeper's queue, so that payouts stuck
        pending at the provider never starve newer ones (the sweeper reads the oldest first)."""
        now = _iso(self.clock())
        self.docs.delete(f"openpayout#{payout_id}")
        try:
            self.docs.put_new(f"openpayout#{payout_id}", {"payout_id": payout_id}, index=(_OPEN, f"{now}#{payout_id}"))
        except DocumentExists:
            pass

    def on_provider_callback(self, payout_id: str, rail: str | None = None) -> dict | None:
        """A provider said something about a payout: trusted only after re-querying its status.

        Only a payout already sent, on the rail the callback came from, is advanced: a callback for
        an unknown payout, another rail's, or one not yet sent (new, scheduled) changes nothing."""
        current = self.docs.read(f"payout#{payout_id}") if isinstance(payout_id, str) else None
        payout = current.doc if current is not None else None
        if payout is None or payout["status"] != "pending" or (rail is not None and payout["rail"] != rail):
            return None
        limits = limits_for(payout["rail"], payout["amount"]["currency"])
        # advanced from this very read: its first write names this version (stale: it reads again)
        return self._advance(payout_id, limits, schedule_when_over_daily=payout.get("order_id") is not None,
                             current=current)

    # -- the machinery ----------------------------------------------------------------
    def _documents(self, payout_id: str, seller_id: str, order_id: str | None, amount: Money, route: dict,
                   reserved: bool = False, day_key: str | None = None, member_id: str | None = None,
                   tier_keys: list | None = None) -> list[NewDocument]:
        """A new payout's documents: the payout (in its seller's list), its place in its member's
        list, and its place among the open payouts the sweeper polls. Each is created only if its
        key is free, so a retry after a crash between them completes what is missing."""
        now = _iso(self.clock())
        doc = {
            "payout_id": payout_id, "order_id": order_id, "seller_id": seller_id, "member_id": member_id,
            "amount": amount.to_json(),
            "rail": route["rail"], "msisdn": route["msisdn"], "status": "new", "provider_reference": None,
            "reason": None, "created_at": now, "updated_at": now,
            "reserved": reserved,  # the pending ledger transfer already exists (withdrawals reserve first)
            "day_key": day_key,  # set: already counted against that day's wallet limit (withdrawals)
            "tier_keys": tier_keys,  # set: already counted against the party's KYC tier (withdrawals)
        }
        found = [NewDocument(f"payout#{payout_id}", doc, index=(f"payouts#seller#{seller_id}", f"{now}#{payout_id}"))]
        if member_id:  # the member's own list (its USSD "Payments"), beside the co-operative's
            found.append(NewDocument(f"payout#{payout_id}", {"payout_id": payout_id}, sk="member",
                                     index=(f"payouts#member#{member_id}", f"{now}#{payout_id}")))
        found.append(NewDocument(f"openpayout#{payout_id}", {"payout_id": payout_id}, index=(_OPEN, f"{now}#{payout_id}")))
        return found

    def _reserve_many(self, ids, parts, account_id, route, currency) -> None:
        chain = [
            Transfer(pid, account_id, float_account_id(route["rail"], currency), part, currency,
                     TransferKind.PENDING, code="payout", reference=pid)
            for pid, part in zip(ids, parts)
        ]
        try:
            self.ledger.transfer(*chain)
        except LedgerRejected as refused:
            if refused.result is Result.EXCEEDS_CREDITS:
                raise BusinessRuleViolation("insufficient_funds", "the amount is more than the available balance") from None
            raise

    def _advance(self, payout_id: str, limits: Limits, schedule_when_over_daily: bool, payout: dict | None = None,
                 current: Versioned | None = None, parties: dict | None = None) -> dict:
        """Move one payout as far as it can go now; safe to call any number of times (``payout``: its
        document as just read, to spare a read; ``current``: the same with its version, so that each
        write of this call names the version the previous one left and needs no read of its own)."""
        if current is not None:
            payout = current.doc
        elif payout is None:
            current = self.docs.read(f"payout#{payout_id}")
            payout = current.doc if current is not None else None
        known = current  # the payout as this call last read or wrote it, with its version (None: not known)
        if payout is None:
            raise NotFound("not_found", "no such payout")
        if payout["status"] in ("succeeded", "failed"):
            return payout
        now = self.clock()
        if payout["status"] == "scheduled" and payout.get("not_before") and _iso(now) < payout["not_before"]:
            return payout
        amount = Money(payout["amount"]["amount"], payout["amount"]["currency"])
        rail = self.rails(payout["rail"])
        if payout["status"] in ("new", "scheduled", "held"):
            # Reserve first: money waiting for a payout (even one scheduled for tomorrow) is not available.
            if not payout.get("reserved"):
                payout, known = self._reserve_and_mark(payout, amount, known)
            # The party read once for its hold and its tier (both ask it about this very payout).
            party = None
            if self.payees is not None or self.tiers is not None:
                key = party_key(payout)
                party = parties[key] if parties is not None and key in parties else self.docs.get(key)
                if parties is not None:
                    parties[key] = party
            hold = self.payees.hold_reason(party_key(payout), party=party) if self.payees is not None else None
            if hold:
                if payout["status"] == "held" and payout.get("reason") == hold:
                    return payout
                return self._update(payout_id, status="held", reason=hold)
            day_key = self._day_key(payout["rail"], payout["msisdn"], now)
            if payout.get("day_key") and payout["day_key"] != day_key:
                # Not sent on the day it was counted for (held, or the provider was down): it counts on the
                # day it is really sent.
                self.docs.remove_from(payout["day_key"], payout_id, amount.minor)
                payout, known = self._write(payout_id, known, day_key=None)
            if payout.get("day_key"):
                day_key = payout["day_key"]
            elif not self.docs.add_within(day_key, payout_id, amount.minor, limits.max_per_day):
                if not schedule_when_over_daily:
                    self._fail_before_sending(payout, "daily_limit")
                    raise self._over_daily(limits, amount.currency)
                tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), timezone.utc)
                return self._update(payout_id, status="scheduled", not_before=_iso(tomorrow), reason="daily_limit")
            if self.tiers is not None:
                refused, tier_keys = self.tiers.admit_payout(payout, party_key(payout), amount, now, party=party)
                if refused:
                    if not payout.get("day_key"):  # counted for the wallet just now: given back, not sent today
                        self.docs.remove_from(day_key, payout_id, amount.minor)
                    if not schedule_when_over_daily:
                        self._fail_before_sending(payout, refused.reason)
                        raise refused.error()
                    return self._update(payout_id, status="scheduled", not_before=refused.not_before,
                                        reason=refused.reason, tier_keys=None)
                if tier_keys != (payout.get("tier_keys") or []):
                    payout, known = self._write(payout_id, known, tier_keys=tier_keys)
            lease, known = self._claim_send(payout_id, day_key, now, known)
            if lease is None:
                return self.docs.get(f"payout#{payout_id}")  # another invocation is sending it right now
            try:
                status = rail.send(payout_id, amount, payout["msisdn"], f"Mizani payout {payout.get('order_id') or ''}".strip())
            except RailNotSent:
                # Certain nothing reached the provider on this attempt: send again later, unless another
                # invocation took the payout over meanwhile (its send may have reached the provider).
                self._release_claim(payout_id, lease)
                raise
            payout, known = self._write(payout_id, known, status="pending", day_key=day_key, sent_at=_iso(now))
        elif payout["status"] == "sending" and _iso(now) < payout.get("sending_until", "") and not rail.resend_is_idempotent:
            # Another invocation holds the send, on a rail that does not promise to refuse a repeated
            # reference (M-Pesa): its answer, or the lease's end, decides. On MTN and Airtel asking now
            # is safe: "not found" is sent again under the same reference, which they refuse to repeat.
            return payout
        else:
            status = rail.status(payout_id, msisdn=payout["msisdn"], currency=amount.currency)
            if status.state == "unknown" and status.reason == "not_found" and rail.resend_is_idempotent:
                status = rail.send(payout_id, amount, payout["msisdn"], "Mizani payout")
            elif status.state == "unknown" and status.reason == "not_found" and not payout.get("needs_review"):
                claimed_at = payout.get("claimed_at") or payout.get("sent_at") or payout["created_at"]
                if claimed_at < _iso(now - timedelta(seconds=UNSENT_REVIEW_SECONDS)):
                    # The provider still has no record of it and does not promise to refuse a repeat: a human
                    # decides (send it again, or void it) rather than risk paying twice. Its money stays reserved.
                    log.warning("payout %s: the provider has no record of it; flagged for review", payout_id)
                    payout = self._update(payout_id, needs_review=True, reason="provider_has_no_record")
            if payout["status"] == "sending" and status.state == "pending":
                # The provider holds the payment a crashed or concurrent send made: it is sent.
                payout = self._update(payout_id, status="pending", sent_at=payout.get("sent_at") or _iso(now))
        if status.state == "succeeded":
            payout = self._post_and_mark(payout_id, known, provider_reference=status.provider_reference)
            metrics.payout("succeeded", payout["rail"])
            if status.payee_name and self.payees is not None:
                self.payees.after_payment(party_key(payout), status.payee_name)
        elif status.state == "failed":
            self.ledger.void(f"{payout_id}:void", payout_id, code="payout_failed", reference=payout_id)
            self.docs.remove_from(payout["day_key"], payout_id, amount.minor)
            self._tier_give_back(payout.get("tier_keys"), payout_id, amount.minor)
            payout = self._update(payout_id, status="failed", reason=status.reason or "failed")
            self.docs.delete(f"openpayout#{payout_id}")
            metrics.payout("failed", payout["rail"])
        return payout

    def _reserve_and_mark(self, payout: dict, amount: Money, known: Versioned | None) -> tuple[dict, Versioned | None]:
        """The payout's pending transfer and its ``reserved`` mark in ONE atomic write (the ledger's
        batch carries the payout's version-conditioned update): never reserved without saying so. A
        changed payout is read again; a reservation made before (a replay) is marked on its own."""
        payout_id = payout["payout_id"]
        for _ in range(3):
            if known is None:
                break
            _, write = self.docs.prepare_update(f"payout#{payout_id}", self._fields(reserved=True), current=known)
            if write is None:  # final meanwhile
                return known.doc, known
            try:
                self._reserve(known.doc, amount, writes=[write])
                return write.doc, write.committed()
            except WritesNotApplied as refused:
                if refused.replayed:
                    break
                known = self.docs.read(f"payout#{payout_id}")
                if known is None or known.doc.get("reserved"):
                    return (known.doc if known else payout), known
        self._reserve(payout, amount)
        return self._update(payout_id, reserved=True), None

    def _post_and_mark(self, payout_id: str, known: Versioned | None, provider_reference: str | None) -> dict:
        """Succeeded: the pending transfer posted, the payout ``succeeded`` and its place in the open list
        given up, in ONE atomic write."""
        fields = {"status": "succeeded", "provider_reference": provider_reference, "reason": None}
        open_place = [(f"openpayout#{payout_id}", "doc")]  # final: the sweeper polls it no more
        for _ in range(3):
            if known is None:
                break
            _, write = self.docs.prepare_update(f"payout#{payout_id}", self._fields(**fields), current=known)
            if write is None:  # succeeded already (posted with it): only its place in the open list may be left
                self.docs.delete(*open_place[0])
                return known.doc
            try:
                self.ledger.post(f"{payout_id}:post", payout_id, code="payout", reference=payout_id,
                                 writes=[self.docs.also_deleting(write, open_place)])
                return write.doc
            except WritesNotApplied as refused:
                if refused.replayed:
                    break  # posted before (a concurrent invocation): the status alone
                known = self.docs.read(f"payout#{payout_id}")
        self.ledger.post(f"{payout_id}:post", payout_id, code="payout", reference=payout_id)
        done = self._update(payout_id, **fields)
        self.docs.delete(*open_place[0])
        return done

    def _write(self, payout_id: str, known: Versioned | None, **fields) -> tuple[dict, Versioned | None]:
        """``_update`` from the payout as this call last read or wrote it: one conditional write and no
        read (if it is stale, the version refuses it and ``_update`` reads and applies it again)."""
        if known is not None:
            _, write = self.docs.prepare_update(f"payout#{payout_id}", self._fields(**fields), current=known)
            if write is None:
                return known.doc, known
            try:
                write.commit()
                return write.doc, write.committed()
            except (WriteRefused, WriteContended):
                pass
        return self._update(payout_id, **fields), None

    def _claim_send(self, payout_id: str, day_key: str, now: datetime,
                    known: Versioned | None = None) -> tuple[str | None, Versioned | None]:
        """Take the right to send ``payout_id`` (new/scheduled/held -> sending, under a lease), so that
        two invocations (a withdrawal and the sweeper, a retried task) never send it twice. A send
        whose invocation died is asked about (after the lease, on a rail that does not refuse repeats),
        never blindly sent again."""
        claimed = []
        until = _iso(now + timedelta(seconds=SEND_LEASE_SECONDS))

        def mutate(doc: dict) -> dict | None:
            claimed.clear()
            if doc["status"] not in ("new", "scheduled", "held"):
                return None
            claimed.append(until)
            return {**doc, "status": "sending", "sending_until": until, "claimed_at": _iso(now), "day_key": day_key,
                    "updated_at": _iso(self.clock())}

        if known is not None:  # from the payout as this call knows it: one write, no read
            _, write = self.docs.prepare_update(f"payout#{payout_id}", mutate, current=known)
            if write is None:
                return None, known
            try:
                write.commit()
                return claimed[0], write.committed()
            except (WriteRefused, WriteContended):
                pass  # changed meanwhile: decided again on what it is now
        self.docs.update(f"payout#{payout_id}", mutate)
        return (claimed[0] if claimed else None), None

    def _release_claim(self, payout_id: str, lease: str) -> None:
        """Back to ``new`` only while the payout is still this claim's (same lease, still ``sending``)."""

        def mutate(doc: dict) -> dict | None:
            if doc["status"] != "sending" or doc.get("sending_until") != lease:
                return None
            return {**doc, "status": "new", "updated_at": _iso(self.clock())}

        self.docs.update(f"payout#{payout_id}", mutate)

    def _reserve(self, payout: dict, amount: Money, writes: list = ()) -> None:
        pid = payout["payout_id"]
        try:
            self.ledger.transfer(
                Transfer(pid, party_account_id(payout["seller_id"], payout.get("member_id")),
                         float_account_id(payout["rail"], amount.currency),
                         amount.minor, amount.currency, TransferKind.PENDING, code="payout", reference=pid),
                writes=writes,
            )
        except LedgerRejected as refused:
            if refused.result is Result.EXCEEDS_CREDITS:
                self._fail_before_sending(payout, "insufficient_funds")
                raise BusinessRuleViolation("insufficient_funds", "the amount is more than the available balance") from None
            raise

    def _tier_admit(self, party: dict, parts: dict, currency: str, now: datetime):
        """A withdrawal's parts against the party's KYC tier (all or none): (refusal or None, keys counted)."""
        if self.tiers is None:
            return None, None
        key = f"member#{party['member_id']}" if party.get("member_id") else f"seller#{party['seller_id']}"
        return self.tiers.admit(key, currency, parts, now)

    def _tier_give_back(self, keys, payout_id: str, amount: int) -> None:
        if self.tiers is not None and keys:
            self.tiers.give_back(keys, payout_id, amount)

    def _fail_before_sending(self, payout: dict, reason: str) -> None:
        if self.ledger.get_transfer(payout["payout_id"]) is not None:
            self.ledger.void(f"{payout['payout_id']}:void", payout["payout_id"], code="payout_failed", reference=payout["payout_id"])
        self._update(payout["payout_id"], status="failed", reason=reason)
        self.docs.delete(f"openpayout#{payout['payout_id']}")
        metrics.payout("failed", payout["rail"])

    def _update(self, payout_id: str, **fields) -> dict:
        return self.docs.update(f"payout#{payout_id}", self._fields(**fields))

    def _fields(self, **fields):
        """The mutation that sets ``fields`` on a payout that is not final (final is final)."""

        def mutate(doc: dict) -> dict | None:
            if doc["status"] in ("succeeded", "failed"):
                return None  # final is final
            return {**doc, **fields, "updated_at": _iso(self.clock())}

        return mutate



def _line_json(line: PayoutLine, payouts: list[tuple[str, int]]) -> dict:
    return {"member_id": line.member_id, "amount": line.amount.to_json(), "route": line.route,
            "payouts": [[payout_id, amount] for payout_id, amount in payouts]}


def _line_of(entry: dict) -> tuple[PayoutLine, list[tuple[str, int]]]:
    line = PayoutLine(entry["member_id"], Money(entry["amount"]["amount"], entry["amount"]["currency"]), entry["route"])
    return line, [(payout_id, amount) for payout_id, amount in entry["payouts"]]


def _aggregate(states: list[str]) -> str:
    """An order's payout state from its payouts': succeeded only if all did, failed once all are final."""
    if all(s == "succeeded" for s in states):
        return "succeeded"
    if all(s in ("succeeded", "failed") for s in states):
        return "failed"
    return "pending"
