"""The event loop: one seed, a virtual clock, the actors of the money path, the invariants after every step.

A step is one event: an order's checkout, a card payment, a webhook delivery (Stripe's, the
customs authority's), a shipment, an allocation, a workflow state's task, a timer, a provider's
callback, a tick of the scheduled sweeper (``drain_outbox``: outbox and open payouts, and
``expire_pending``), an admin's review. Events are ordered by (virtual time, sequence number),
so two runs of one seed take the same steps in the same order; every step writes trace lines
(``--trace FILE``), and their SHA-256 is the run's fingerprint.

Actors behave as their real counterparts do: a buyer retries a failed checkout with the same
Idempotency-Key (a new one after ``quote_expired``); Stripe retries a webhook that did not get a
2xx for three days; the customs authority retries a few times; providers send one callback and
never retry it; the sweeper runs every minute.
"""
from __future__ import annotations

import hashlib
import heapq
import json
import random
import re
import time
import traceback
from dataclasses import dataclass, field

from chalicelib.errors import MizaniError
from chalicelib.money import Money
from chalicelib.settings import Settings
from sim.checks import Checker
from sim.clock import EPOCH_NS, SECOND, VirtualClock
from sim.faults import PROFILES, FaultPlan
from sim.workload import ROUTES, OrderPlan, Workload
from sim.world import World, installed

CUSTOMS_TIMEOUT_S = 3 * 86400
POLL_SECONDS = 60
SWEEP_SECONDS = 60  # app.py: drain_outbox and expire_pending run "rate(1 minute)"
ADMIN_REVIEW_SECONDS = 3600
EVICT_AFTER_S = 86400  # a finished order's items leave memory a day after it ended
STRIPE_RETRIES_S = (60, 300, 1800, 3600, 7200, 14400, 28800, 57600, 86400)  # ~3 days, as Stripe does
CUSTOMS_RETRIES_S = (60, 300, 1800, 7200, 21600)
CLIENT_RETRIES = 8
SIGNATURE_SKEW_S = 240  # senders' clocks may be this far off ours (the tolerance is 300 s)
_ORDER_ID = re.compile(r"ord_[0-9a-f]{20}")


@dataclass
class SimOrder:
    """The simulator's view of one order: its plan and what happened to it so far."""

    plan: OrderPlan
    key: str
    bound_s: int
    checkout_attempts: int = 0
    order_id: str | None = None
    payment_intent_id: str | None = None
    pay: Money | None = None
    events: int = 0
    shipped: bool = False
    decided: bool = False
    allocated: bool = False
    ended: bool = False
    evicted: bool = False
    held_failed_event: dict | None = None
    final_status: str | None = None
    keys: set = field(default_factory=set)  # document keys written for this order (forgotten with it)


@dataclass(frozen=True)
class Result:
    """What one world's run did: its counts, its violations, its known bugs, its trace's SHA-256."""

    seed: int
    orders: int
    steps: int
    faults: int
    violations: list
    seconds: float
    trace_sha256: str
    statuses: dict
    fault_counts: dict
    operator_cases: int
    known: dict  # known bug id -> instances (sim/known.py)
    known_examples: dict  # known bug id -> its first Violation

    def line(self) -> str:
        return (f"sim: seed {self.seed}, orders {self.orders}, steps {self.steps}, faults {self.faults}, "
                f"violations {len(self.violations)}, {self.seconds:.1f} s")


class Simulation:
    """One run (see the module doc). ``run()`` returns a ``Result``."""

    def __init__(self, seed: int, orders: int, *, faults: str = "default", trace_file=None, stop_on_first: bool = True,
                 mean_interarrival_s: float = 20.0, progress=None, excluded_faults: frozenset[str] = frozenset(),
                 until_step: int | None = None, strict: bool = False):
        self.seed = seed
        self.orders = orders
        self.trace_file = trace_file
        self.progress = progress
        self.until_step = until_step
        master = random.Random(seed)
        self.rngs = {name: random.Random(master.getrandbits(64))
                     for name in ("workload", "faults", "workflow", "providers", "actors")}
        self.rng = self.rngs["actors"]
        self.clock = VirtualClock()
        self._queue: list = []
        self._seq = 0
        self._digest = hashlib.sha256()
        self._lines: list[str] = []  # trace lines not yet hashed (and written): hashed in chunks, same digest
        self.steps = 0
        self.plan = FaultPlan(self.rngs["faults"], PROFILES[faults], trace=self.trace, excluded=excluded_faults)
        self.settings = Settings(stage="local", customs_timeout_seconds=CUSTOMS_TIMEOUT_S,
                                 payout_poll_seconds=POLL_SECONDS)
        self.world = World(self, self.plan, self.rngs, self.trace, self.settings,
                           on_commit=self._on_commit, on_execution_end=self._execution_ended,
                           on_task_error=lambda *args: self.checker.on_task_error(*args),
                           on_timeout=lambda execution, state: self.checker.on_token_timeout(execution.name, state))
        self.checker = Checker(self.world, stop_on_first=stop_on_first, strict=strict)
        for rail in self.world.rails.values():
            rail.observer = self.checker.on_provider_payment
        self.workload = Workload(self.rngs["workload"], orders, mean_interarrival_s)
        self.by_id: dict[str, SimOrder] = {}
        self.created = 0
        self.open_orders = 0
        self.bound_s = CUSTOMS_TIMEOUT_S + 2 * 86400
        self.review: list[tuple[str, str, str | None]] = []  # (kind, seller id, member id) held under another name
        self.members: dict[str, list[dict]] = {}
        self.statuses: dict[str, int] = {}
        self.evicted = 0
        self.stopped = False

    # -- the scheduler the world uses ---------------------------------------------------
    @property
    def now_ns(self) -> int:
        return self.clock.now_ns

    def after(self, delay_ns: int, callback, *args) -> None:
        self._seq += 1
        delay_ns = int(delay_ns)
        heapq.heappush(self._queue, (self.clock.now_ns + (delay_ns if delay_ns > 0 else 0), self._seq, callback, args))

    def trace(self, text: str) -> None:
        lines = self._lines
        lines.append(f"{(self.clock.now_ns - EPOCH_NS) // 1_000_000:>12} {text}\n")
        if len(lines) >= 2048:
            self._flush_trace()

    def _flush_trace(self) -> None:
        """Hash (and write) the buffered lines: SHA-256 over their concatenation is the digest of the
        lines fed one by one, so the fingerprint does not depend on the chunking."""
        if self._lines:
            chunk = "".join(self._lines)
            self._lines.clear()
            self._digest.update(chunk.encode())
            if self.trace_file is not None:
                self.trace_file.write(chunk)

    def _on_commit(self, batch) -> None:
        self.checker.on_commit(batch)

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> Result:
        started = time.perf_counter()
        try:
            with installed(self.world):
                self._loop(started)
        finally:
            self._flush_trace()
        checker, plan = self.checker, self.plan
        return Result(self.seed, self.created, self.steps, plan.total, list(checker.violations),
                      time.perf_counter() - started, self._digest.hexdigest(), dict(sorted(self._status_counts().items())),
                      dict(sorted(plan.counts.items())), len(checker.operator_cases), dict(sorted(checker.known.items())),
                      dict(checker.known_examples))

    def _loop(self, started: float) -> None:
        self._register_parties()
        self.after(0, self._arrive, 0)
        self.after(SWEEP_SECONDS * SECOND, self._sweep)
        self.after(ADMIN_REVIEW_SECONDS * SECOND, self._admin_review)
        self.after(86400 * SECOND, self._janitor)
        report_every = max(1, self.orders // 20)
        next_report = report_every
        queue = self._queue
        checker = self.checker
        plan = self.plan
        world = self.world
        docs = world.docs_memory
        clock = self.clock
        heappop = heapq.heappop
        until_step = self.until_step
        progress = self.progress
        while queue and not self.stopped:
            at, _, callback, args = heappop(queue)
            if at < clock.now_ns:
                raise ValueError(f"time runs forward: {at} < {clock.now_ns}")
            clock.now_ns = at
            self.steps += 1
            checker.step = self.steps
            plan.active = True
            try:
                callback(*args)
            except Exception as error:  # an actor let something through: a bug here or in the code under test
                plan.active = False
                checker.violate(f"unexpected {type(error).__name__} in {getattr(callback, '__name__', callback)}: "
                                f"{error}\n{traceback.format_exc()}")
            plan.active = False
            if world.callback_queue:
                self._schedule_callbacks()
            if docs.touched:
                self._attribute_keys()
            checker.after_step()
            if checker.violations and checker.stop_on_first:
                break
            if until_step is not None and self.steps >= until_step:
                break
            if self.open_orders == 0 and self.created >= self.orders:
                break
            if progress is not None and self.created >= next_report:
                next_report += report_every
                progress(f"sim: {self.created}/{self.orders} orders, step {self.steps}, "
                         f"virtual {clock.seconds() / 86400:.1f} d, faults {plan.total}, "
                         f"violations {len(checker.violations)}, {time.perf_counter() - started:.0f} s")
        if not (checker.failed and checker.stop_on_first) and until_step is None:
            checker.final()

    def _status_counts(self) -> dict:
        counts = dict(self.statuses)
        for sim_order in self.by_id.values():
            if sim_order.final_status:
                counts[sim_order.final_status] = counts.get(sim_order.final_status, 0) + 1
        return counts

    def _attribute_keys(self) -> None:
        """Remember which order each written document belongs to (its key names the order)."""
        for pk in self.world.docs_memory.touched:
            if "ord_" in pk:
                match = _ORDER_ID.search(pk)
                sim_order = self.by_id.get(match.group(0)) if match else None
                if sim_order is not None:
                    sim_order.keys.add(pk)

    # -- parties -----------------------------------------------------------------------------
    def _register_parties(self) -> None:
        from chalicelib.escrow.service import Principal
        from chalicelib.members.service import MemberService

        escrow = self.world.escrow
        members = MemberService(self.world.docs, self.world.ledger, self.settings, payee_rails=self.world.rail,
                                clock=self.clock.now)
        if self.world.screening is not None:
            members.screening = self.world.screening  # as bootstrap.members() screens members
        self.member_service = members
        rng = self.rngs["workload"]
        next_wallet = len(self.workload.sellers) + 1000
        for seller in self.workload.sellers:
            self.world.rails[seller.rail].holders[seller.msisdn] = seller.holder_name
            doc = escrow.register_seller(Principal(seller.seller_id, "seller"), seller.name, seller.country,
                                         {"rail": seller.rail, "msisdn": seller.msisdn, "currency": seller.currency})
            if seller.holder_name != seller.name:
                self.review.append(("seller", seller.seller_id, None))
            if not seller.busy:
                continue
            self.members[seller.seller_id] = []
            routes = [r for r in ROUTES if r[2] == seller.currency and r[1] == seller.country]
            for m in range(rng.randint(3, 12)):
                rail, _, currency, prefix, _ = rng.choice(routes)
                next_wallet += 1
                msisdn = f"{prefix}{(next_wallet * 7919 + 1234567) % 10_000_000:07d}"
                name = f"Member {m:02d} of {seller.seller_id}"
                holder = name if rng.random() >= 0.05 else f"Another Holder {next_wallet}"
                self.world.rails[rail].holders[msisdn] = holder
                member = members.register(doc, name, {"rail": rail, "msisdn": msisdn, "currency": currency})
                self.members[seller.seller_id].append(member)
                if holder != name:
                    self.review.append(("member", seller.seller_id, member["member_id"]))
        self.trace(f"registered {len(self.workload.sellers)} sellers, "
                   f"{sum(len(m) for m in self.members.values())} members")

    def _admin_review(self) -> None:
        """An admin clears the parties held for review (their wallets' holders checked out by hand)."""
        from chalicelib.escrow.service import Principal

        admin = Principal("admin-1", "admin")
        for kind, seller_id, member_id in self.review:
            # The console's list of parties held for review (the simulator's own read: not metered, and
            # a party may be held later than it was registered, so the list is read every round).
            doc = self.world.docs_memory.get(f"seller#{seller_id}" if kind == "seller" else f"member#{member_id}")
            if not doc or doc.get("status") != "pending_review":
                continue
            try:
                if kind == "seller":
                    self.world.escrow.set_seller_status(admin, seller_id, "active")
                    self.trace(f"admin cleared seller {seller_id}")
                else:
                    self.member_service.set_status(seller_id, member_id, "active", admin.sub)
                    self.trace(f"admin cleared member {member_id}")
            except Exception as error:  # the console shows an error; the admin tries again next round
                self.trace(f"admin review of {member_id or seller_id} failed: {type(error).__name__}")
        if not self._finished():
            self.after(ADMIN_REVIEW_SECONDS * SECOND, self._admin_review)

    def _janitor(self) -> None:
        """Once a virtual day: what DynamoDB's TTL and the fakes' logs would forget (the memory bound).
        A wallet's daily counter two days old is never read again; the card fake's call log is not read."""
        from datetime import timedelta

        cutoff = (self.clock.now() - timedelta(days=2)).date().isoformat()
        docs = self.world.docs_memory
        stale = [key for key in docs.items if key[1] == "counter" and key[0].startswith("walletday#")
                 and key[0].rsplit("#", 1)[1] < cutoff]
        for pk, _ in stale:
            docs.forget(pk, ("counter",))
        self.world.cards.calls.clear()
        if not self._finished():
            self.after(86400 * SECOND, self._janitor)

    def _finished(self) -> bool:
        return self.created >= self.orders and self.open_orders == 0

    # -- checkout and payment ----------------------------------------------------------------
    def _arrive(self, index: int) -> None:
        plan = self.workload.order(index)
        sim_order = SimOrder(plan, key=f"checkout-{self.seed}-{index}-0", bound_s=self.bound_s)
        self.created += 1
        self.open_orders += 1
        self.after(self.bound_s * SECOND, self._deadline, sim_order)
        self._checkout(sim_order)
        if index + 1 < self.orders:
            self.after(int(self.workload.interarrival() * SECOND), self._arrive, index + 1)

    def _checkout(self, sim_order: SimOrder) -> None:
        from chalicelib.escrow.service import Principal

        plan = sim_order.plan
        sim_order.checkout_attempts += 1
        try:
            order = self.world.escrow.create_order(Principal(plan.buyer, "buyer"), plan.seller.seller_id,
                                                   plan.pay_currency, plan.lines, sim_order.key)
        except Exception as error:
            code = getattr(error, "code", type(error).__name__)
            self.trace(f"checkout #{plan.index} key {sim_order.key} -> {code}")
            if sim_order.checkout_attempts >= CLIENT_RETRIES:
                return
            if code == "quote_expired":  # the client starts again with a new key
                sim_order.key = f"checkout-{self.seed}-{plan.index}-{sim_order.checkout_attempts}"
            elif isinstance(error, MizaniError) and not error.retryable and code not in ("request_in_progress",):
                self.checker.violate(f"checkout #{plan.index} refused: {code}: {error}")
                return
            self.after(self.rng.randint(1, 30) * SECOND, self._checkout, sim_order)
            return
        sim_order.order_id = order["order_id"]
        sim_order.payment_intent_id = order["payment"]["payment_intent_id"]
        sim_order.pay = Money(order["pay"]["amount"], order["pay"]["currency"])
        self.by_id[sim_order.order_id] = sim_order
        self.trace(f"checkout #{plan.index} {sim_order.order_id} seller {plan.seller.seller_id} pay {sim_order.pay} "
                   f"payout {order['payout']['amount']} {order['payout']['currency']}")
        self.after(plan.pay_after * SECOND, self._pay, sim_order, plan.declines)

    def _pay(self, sim_order: SimOrder, declines: int) -> None:
        from chalicelib.payments import CardDeclined

        cards = self.world.cards
        pi = sim_order.payment_intent_id
        if declines:
            try:
                cards.pay(pi, "failed")
            except CardDeclined:
                pass
            event = self._stripe_event(sim_order, "payment_intent.payment_failed")
            if self.plan.hit("stripe.failed_event_last", sim_order.order_id):
                sim_order.held_failed_event = event  # delivered after the success
            else:
                self._send_stripe(sim_order, event)
            self.after(self.rng.randint(30, 600) * SECOND, self._pay, sim_order, declines - 1)
            return
        cards.pay(pi)
        self.trace(f"card paid {sim_order.order_id}")
        self._send_stripe(sim_order, self._stripe_event(sim_order, "payment_intent.succeeded"))
        if sim_order.held_failed_event is not None:
            self.after(self.rng.randint(2, 20) * SECOND, self._deliver_stripe, sim_order, sim_order.held_failed_event, 0)

    def _stripe_event(self, sim_order: SimOrder, event_type: str) -> dict:
        from chalicelib.payments.amounts import to_stripe_amount

        sim_order.events += 1
        intent = self.world.cards._intents[sim_order.payment_intent_id]
        amount = to_stripe_amount(sim_order.pay)
        obj = {"id": intent.payment_intent_id, "object": "payment_intent", "amount": amount,
               "currency": sim_order.pay.currency.lower(), "metadata": dict(intent.metadata),
               "status": "succeeded" if event_type.endswith("succeeded") else "requires_payment_method"}
        if event_type.endswith("succeeded"):
            obj.update(amount_received=amount, latest_charge=f"ch_{sim_order.order_id}")
        else:
            obj["last_payment_error"] = {"code": "card_declined", "decline_code": "generic_decline",
                                         "message": "Your card was declined."}
        return {"id": f"evt_{sim_order.order_id}_{sim_order.events}", "object": "event", "type": event_type,
                "created": int(self.clock.seconds() + EPOCH_NS // SECOND), "data": {"object": obj}}

    def _send_stripe(self, sim_order: SimOrder, event: dict) -> None:
        self.after(self.rng.randint(1, 5) * SECOND, self._deliver_stripe, sim_order, event, 0)
        if self.plan.hit("stripe.webhook_twice", event["id"]):
            self.after(self.rng.randint(1, 60) * SECOND, self._deliver_stripe, sim_order, event, 0)
        if self.plan.hit("stripe.webhook_replayed_later", event["id"]):
            self.after(self.rng.randint(3600, 86400) * SECOND, self._deliver_stripe, sim_order, event, 0)

    def _deliver_stripe(self, sim_order: SimOrder, event: dict, attempt: int) -> None:
        from chalicelib.api import webhooks
        from chalicelib.payments import SIGNATURE_HEADER  # noqa: F401  (the header the body is signed for)
        from sandbox.simulators.stripe import sign

        if sim_order.evicted:
            return
        body = json.dumps(event, separators=(",", ":"))
        skew = self.rng.randint(-SIGNATURE_SKEW_S, SIGNATURE_SKEW_S)
        signature = sign(body, self.world_settings_secret("stripe"), int(time.time()) + skew)
        status, note = self._call_webhook(webhooks.handle_stripe, body.encode(), signature)
        self.trace(f"stripe {event['id']} {event['type']} attempt {attempt + 1} -> {status}{note}")
        if status >= 300 and attempt < len(STRIPE_RETRIES_S):
            self.after(STRIPE_RETRIES_S[attempt] * SECOND, self._deliver_stripe, sim_order, event, attempt + 1)
        if event["type"].endswith("succeeded") and not sim_order.shipped:
            order = self.world.docs_memory.get(f"order#{sim_order.order_id}")
            if order is not None and order["status"] == "paid":
                sim_order.shipped = True  # the seller has heard: it ships
                self.after(sim_order.plan.ship_after * SECOND, self._ship, sim_order, 0)

    def world_settings_secret(self, kind: str) -> str:
        from chalicelib import settings

        current = settings.get()
        return current.stripe_webhook_secret if kind == "stripe" else current.customs_secret

    def _call_webhook(self, handler, body: bytes, signature: str) -> tuple[int, str]:
        from chalicelib.api.errors import STATUS_BY_ERROR

        try:
            ack = handler(body, signature)
            return 200, " duplicate" if ack.get("duplicate") else ""
        except MizaniError as error:
            status = next((STATUS_BY_ERROR[k] for k in type(error).__mro__ if k in STATUS_BY_ERROR), 500)
            return status, f" {error.code}"
        except Exception as error:  # a crash, a throttle past the SDK's retries: API Gateway answers 5xx
            return 502, f" {type(error).__name__}"

    # -- the seller and customs ----------------------------------------------------------------
    def _ship(self, sim_order: SimOrder, attempt: int) -> None:
        from chalicelib.escrow.service import Principal

        if sim_order.evicted:
            return
        plan = sim_order.plan
        try:
            self.world.escrow.record_shipment(Principal(plan.seller.seller_id, "seller"), sim_order.order_id, "DHL",
                                              f"JD{plan.index:09d}", f"DECL-{plan.index}")
        except Exception as error:
            code = getattr(error, "code", type(error).__name__)
            self.trace(f"shipment {sim_order.order_id} attempt {attempt + 1} -> {code}")
            if attempt < CLIENT_RETRIES:
                self.after(600 * SECOND, self._ship, sim_order, attempt + 1)
            return
        self.trace(f"shipped {sim_order.order_id}")
        if plan.seller.busy and self.members.get(plan.seller.seller_id) and self.rng.random() < 0.7:
            self.after(self.rng.randint(1, 900) * SECOND, self._allocate, sim_order, 0)
        if plan.customs != "silent":
            self.after(plan.customs_after * SECOND, self._customs, sim_order)

    def _allocate(self, sim_order: SimOrder, attempt: int) -> None:
        from chalicelib.escrow.service import Principal
        from chalicelib.members.cooperatives import Cooperatives

        if sim_order.evicted:
            return
        plan = sim_order.plan
        members = self.members[plan.seller.seller_id]
        chosen = self.rng.sample(members, self.rng.randint(1, len(members)))
        shares = [(m["member_id"], self.rng.randint(1, 200)) for m in chosen]
        retain_bps = self.rng.choice((0, 0, 250, 500, 1000))
        try:
            Cooperatives(self.world.escrow, self.member_service).allocate(
                Principal(plan.seller.seller_id, "seller"), sim_order.order_id, shares, retain_bps)
        except Exception as error:
            code = getattr(error, "code", type(error).__name__)
            self.trace(f"allocation {sim_order.order_id} attempt {attempt + 1} -> {code}")
            if code != "invalid_state" and attempt < CLIENT_RETRIES:
                self.after(60 * SECOND, self._allocate, sim_order, attempt + 1)
            return
        sim_order.allocated = True
        self.trace(f"allocated {sim_order.order_id} to {len(shares)} members, retaining {retain_bps} bps")

    def _customs(self, sim_order: SimOrder) -> None:
        if sim_order.evicted:
            return
        plan = sim_order.plan
        if plan.inspection_first:
            self._send_customs(sim_order, "inspection")
            self.after(self.rng.randint(600, 7200) * SECOND, self._decide, sim_order)
        else:
            self._decide(sim_order)

    def _decide(self, sim_order: SimOrder) -> None:
        if sim_order.evicted:
            return
        plan = sim_order.plan
        event = self._send_customs(sim_order, plan.customs)
        if self.plan.hit("customs.inspection_after_decision", event["event_id"]):
            self.after(self.rng.randint(1, 120) * SECOND, self._send_customs_now, sim_order, "inspection")
        if self.plan.hit("customs.contradicting_decision", event["event_id"]):
            other = "rejected" if plan.customs == "cleared" else "cleared"
            self.after(self.rng.randint(1, 600) * SECOND, self._send_customs_now, sim_order, other)

    def _send_customs_now(self, sim_order: SimOrder, status: str) -> None:
        if not sim_order.evicted:
            self._send_customs(sim_order, status)

    def _send_customs(self, sim_order: SimOrder, status: str) -> dict:
        sim_order.events += 1
        plan = sim_order.plan
        event = {"event_id": f"cus_{sim_order.order_id}_{sim_order.events}", "order_id": sim_order.order_id,
                 "customs_declaration_ref": f"DECL-{plan.index}", "status": status, "office": plan.office,
                 "occurred_at": self.clock.now().isoformat().replace("+00:00", "Z")}
        self.after(self.rng.randint(1, 10) * SECOND, self._deliver_customs, sim_order, event, 0)
        if self.plan.hit("customs.webhook_twice", event["event_id"]):
            self.after(self.rng.randint(1, 30) * SECOND, self._deliver_customs, sim_order, event, 0)
        if self.plan.hit("customs.webhook_replayed_later", event["event_id"]):
            self.after(self.rng.randint(3600, 86400) * SECOND, self._deliver_customs, sim_order, event, 0)
        return event

    def _deliver_customs(self, sim_order: SimOrder, event: dict, attempt: int) -> None:
        from chalicelib.api import webhooks
        from chalicelib.api.signatures import sign

        if sim_order.evicted:
            return
        body = json.dumps(event, separators=(",", ":")).encode()
        skew = self.rng.randint(-SIGNATURE_SKEW_S, SIGNATURE_SKEW_S)
        signature = sign(body, self.world_settings_secret("customs"), int(time.time()) + skew)
        status, note = self._call_webhook(webhooks.handle_customs, body, signature)
        self.trace(f"customs {event['event_id']} {event['status']} attempt {attempt + 1} -> {status}{note}")
        if status >= 300 and attempt < len(CUSTOMS_RETRIES_S):
            self.after(CUSTOMS_RETRIES_S[attempt] * SECOND, self._deliver_customs, sim_order, event, attempt + 1)

    def _withdraw(self, party_key: str, request_key: str, attempt: int) -> None:
        """A seller or member withdraws its whole available balance (the same Idempotency-Key on a retry)."""
        from chalicelib.accounts import member_account_id, seller_account_id
        from chalicelib.payouts.limits import limits_for
        from chalicelib.rails import rail as rail_entry

        kind, _, party_id = party_key.partition("#")
        try:
            # What the seller's app shows before it asks: the party and its balance (API reads, faults included).
            party = self.world.docs.get(party_key)
            account = self.world.ledger.get_account(member_account_id(party_id) if kind == "member"
                                                    else seller_account_id(party_id))
            route = party["payout"]
            step = rail_entry(route["rail"]).step(route["currency"])
            limits = limits_for(route["rail"], route["currency"])
            amount = min(account.available, limits.max_per_day) // step * step if account else 0
            if amount < limits.min_per_tx:
                self.trace(f"withdrawal {party_key} {request_key}: nothing to withdraw ({amount})")
                return
            view = self.world.payouts.withdraw(party, Money(amount, route["currency"]), f"{request_key}-{attempt // 4}")
            self.trace(f"withdrawal {party_key} {Money(amount, route['currency'])} -> {view['status']}")
        except Exception as error:
            code = getattr(error, "code", type(error).__name__)
            self.trace(f"withdrawal {party_key} attempt {attempt + 1} -> {code}")
            if attempt < CLIENT_RETRIES:
                # limit_exceeded: tomorrow; insufficient_funds or idempotency_key_reused: a new amount under a new key
                delay = 86400 if code == "limit_exceeded" else self.rng.randint(10, 600)
                next_attempt = attempt + 1 if code not in ("insufficient_funds", "idempotency_key_reused") \
                    else (attempt // 4 + 1) * 4
                self.after(delay * SECOND, self._withdraw, party_key, request_key, next_attempt)

    # -- providers, sweeper ----------------------------------------------------------------------
    def _schedule_callbacks(self) -> None:
        queued, self.world.callback_queue = self.world.callback_queue, []
        for rail, reference, delay_ns in queued:
            if self.plan.hit("rail.callback_lost", reference):
                continue
            if self.plan.hit("rail.callback_late", reference):
                delay_ns += self.rng.randint(600, 3600) * SECOND
            self.after(delay_ns + self.rng.randint(0, 3) * SECOND, self._callback, rail, reference)
            if self.plan.hit("rail.callback_twice", reference):
                self.after(delay_ns + self.rng.randint(1, 120) * SECOND, self._callback, rail, reference)

    def _callback(self, rail, reference: str) -> None:
        try:
            advanced = self.world.payouts.on_provider_callback(reference, rail=rail.name)
            note = advanced["status"] if advanced else "ignored"
        except Exception as error:  # the provider does not retry its callback
            note = type(error).__name__
        self.trace(f"callback {rail.name} {reference} -> {note}")

    def _sweep(self) -> None:
        """``drain_outbox`` and ``expire_pending`` (app.py), each minute: one failing does not stop the other."""
        for name, job in (("outbox", self.world.outbox.drain), ("payouts", self.world.payouts.poll_open),
                          ("expiry", self.world.ledger.expire_pending)):
            try:
                job()
            except Exception as error:
                self.trace(f"sweeper {name} -> {type(error).__name__}")
        if not self._finished():
            self.after(SWEEP_SECONDS * SECOND, self._sweep)

    # -- ends ------------------------------------------------------------------------------------
    def _execution_ended(self, execution) -> None:
        sim_order = self.by_id.get(execution.name)
        if sim_order is None or sim_order.ended:
            return
        sim_order.ended = True
        self.checker.order_ended(sim_order, execution)
        order = self.world.docs_memory.get(f"order#{sim_order.order_id}")
        sim_order.final_status = self.checker.ended.get(sim_order.order_id) or (order or {}).get("status", "unknown")
        if sim_order.final_status == "payout_failed":
            # The SMS says the money is safe in the balance: its owner withdraws it later (no workflow: the sweeper).
            plan = self.world.docs_memory.get(f"orderpayouts#{sim_order.order_id}") or {"payout_ids": []}
            parties = set()
            for payout_id in plan["payout_ids"]:
                payout = self.world.docs_memory.get(f"payout#{payout_id}")
                if payout and payout["status"] == "failed":
                    parties.add(f"member#{payout['member_id']}" if payout.get("member_id") else f"seller#{payout['seller_id']}")
            for party in sorted(parties):
                self.after(self.rng.randint(3600, 86400) * SECOND, self._withdraw, party, f"w-{sim_order.order_id}", 0)
        self.after(EVICT_AFTER_S * SECOND, self._evict, sim_order)

    def _deadline(self, sim_order: SimOrder) -> None:
        self.open_orders -= 1
        if not sim_order.ended:
            self.checker.order_deadline(sim_order)

    def _evict(self, sim_order: SimOrder) -> None:
        """Forget a finished order a day after it ended: its documents, quotes, card objects, ledger
        transfers and provider payments leave memory; what the final checks need stays (per-wallet and
        per-currency totals, the counters of every account that still holds money)."""
        world, checker, oid = self.world, self.checker, sim_order.order_id
        docs = world.docs_memory
        plan = docs.get(f"orderpayouts#{oid}")
        payout_ids = plan["payout_ids"] if plan else []
        payouts = [docs.get(f"payout#{pid}") for pid in payout_ids]
        if any(p is not None and p["status"] not in ("succeeded", "failed") for p in payouts) and not self._finished():
            self.after(EVICT_AFTER_S * SECOND, self._evict, sim_order)  # still moving: look again tomorrow
            return
        if any(p is not None and p["status"] not in ("succeeded", "failed") for p in payouts):
            return
        sim_order.evicted = True
        for pk in sim_order.keys:
            docs.forget(pk)
        docs.forget(f"pi#{sim_order.payment_intent_id}")
        for pid in payout_ids:
            docs.forget(f"payout#{pid}")
        world.quote_store.forget([f"q_{oid}_pay", f"q_{oid}_payout"])
        cards = world.cards
        for key in (f"mizani:{oid}:payment_intent", f"mizani:{oid}:refund"):
            seen = cards._keys.pop(key, None)
            if seen is not None and hasattr(seen[2], "refund_id"):
                cards._refunds.pop(seen[2].refund_id, None)
        pi = sim_order.payment_intent_id
        cards._intents.pop(pi, None)
        cards._refunded.pop(pi, None)
        ledger = world.ledger_memory
        references = [oid, pi, *payout_ids]
        for reference in references:
            for transfer in checker.by_reference.pop(reference, ()):
                ledger.transfers.pop(transfer.transfer_id, None)
        for pid in payout_ids:  # the post/void of a payout names its reservation, not the payout, as its id
            for suffix in (":post", ":void", ":expire"):
                ledger.transfers.pop(f"{pid}{suffix}", None)
        for account_id in (f"escrow:{oid}", f"allocation:{oid}"):
            account = ledger.accounts.get(account_id)
            if account is not None and account.debits_pending == account.credits_pending == 0 \
                    and account.debits_posted == account.credits_posted:
                archived = checker.archived[account.currency]
                archived[0] += account.debits_pending
                archived[1] += account.debits_posted
                archived[2] += account.credits_pending
                archived[3] += account.credits_posted
                del ledger.accounts[account_id]
                ledger.entries.pop(account_id, None)
        for rail in world.rails.values():
            rail.forget(payout_ids)
        world.interpreter.forget(oid)
        checker.ended.pop(oid, None)
        self.statuses[sim_order.final_status] = self.statuses.get(sim_order.final_status, 0) + 1
        del self.by_id[oid]
        self.evicted += 1
        if self.evicted % 1000 == 0:
            self._trim_histories()

    def _trim_histories(self) -> None:
        """Account histories are only read by the API's history route: keep each one's last 1,000 entries."""
        for account_id, rows in self.world.ledger_memory.entries.items():
            if len(rows) > 2000:
                del rows[:-1000]


def shard_seed(seed: int, shard: int, jobs: int) -> int:
    """The seed of one of ``jobs`` independent worlds of a run (the run's own seed when there is one world)."""
    if jobs == 1:
        return seed
    return random.Random(f"mizani-sim:{seed}:{shard}/{jobs}").getrandbits(48)


def shard_orders(orders: int, shard: int, jobs: int) -> int:
    return orders // jobs + (1 if shard < orders % jobs else 0)


def _run_shard(args: dict) -> Result:
    from contextlib import ExitStack

    from sim.plants import planted

    shard, jobs = args["shard"], args["jobs"]
    prefix = f"[{shard + 1}/{jobs}] " if jobs > 1 else ""
    progress = (lambda line: print(prefix + line, flush=True)) if args["progress"] else None
    with ExitStack() as stack:
        trace_file = None
        if args["trace"]:
            path = args["trace"] if jobs == 1 else f"{args['trace']}.{shard + 1}"
            trace_file = stack.enter_context(open(path, "w", encoding="utf-8"))
        if args["plant"]:
            stack.enter_context(planted(args["plant"]))
        simulation = Simulation(shard_seed(args["seed"], shard, jobs), shard_orders(args["orders"], shard, jobs),
                                faults=args["faults"], trace_file=trace_file, stop_on_first=args["stop_on_first"],
                                mean_interarrival_s=args["interarrival"], progress=progress,
                                until_step=args["until_step"], excluded_faults=args["excluded"], strict=args["strict"])
        return simulation.run()


def run(seed: int, orders: int, *, jobs: int = 1, shards=None, faults: str = "default", trace: str | None = None,
        stop_on_first: bool = True, interarrival: float = 20.0, progress: bool = False, until_step: int | None = None,
        plant: str | None = None, excluded: frozenset[str] = frozenset(), strict: bool = False) -> list[Result]:
    """Run ``orders`` orders as ``jobs`` independent worlds (one process each when ``jobs`` > 1);
    ``shards`` picks some of them (a replay). Returns one ``Result`` per world run, in shard order."""
    picked = list(range(jobs)) if shards is None else list(shards)
    tasks = [dict(seed=seed, orders=orders, jobs=jobs, shard=k, faults=faults, trace=trace, stop_on_first=stop_on_first,
                  interarrival=interarrival, progress=progress, until_step=until_step, plant=plant, excluded=excluded,
                  strict=strict)
             for k in picked]
    if len(tasks) == 1:
        return [_run_shard(tasks[0])]
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(len(tasks)) as pool:
        return pool.map(_run_shard, tasks)
