"""The escrow journey: sellers, orders, payment into escrow, customs, release, refund.

Every movement of money is one ledger chain with ids derived from the order
(``pay:<order>``, ``release:<order>:*``, ``refund:<order>``), so a duplicate
webhook or a retried workflow task cannot move money twice. The order
document records *what happened* (status, timeline); the ledger holds the money.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Callable

from chalicelib.documents import DocumentExists, Documents, Versioned
from chalicelib.errors import Conflict, InvalidState, NotFound, ValidationError
from chalicelib import payees, phones, rails
from chalicelib.escrow import pricing
from chalicelib.accounts import (
    allocation_account_id,
    escrow_account_id,
    fee_account_id,
    fx_account_id,
    member_account_id,
    psp_account_id,
    seller_account_id,
)
from chalicelib.escrow.disputes import OrderDisputes, order_disputed
from chalicelib.escrow.ewtp import EwtpChecks
from chalicelib.escrow.model import ALLOWED_FROM, IN_ESCROW, OrderStatus, public_allocation, public_order
from chalicelib.escrow.payments import OrderPayments
from chalicelib.fx.conversion import conversion_legs
from chalicelib.fx.rates import rate
from chalicelib.ids import check_party_id, derived_id
from chalicelib.ledger import AccountFlag, Ledger, Transfer, WritesNotApplied
from chalicelib.money import Money, Rounding, check_currency
from chalicelib.observability import bind
from chalicelib.payments import methods
from chalicelib.payouts import lines as payout_lines

S = OrderStatus
log = logging.getLogger("mizani.escrow")
DMNEC = AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS
#: Member shares moved per linked chain at release: each share is 4 of a commit's 100 writes (the
#: transfer, the member's account, two history entries), plus the allocation account once.
SHARES_PER_CHAIN = 24
#: With each share held for its payout (payouts/lines.py): a share and its hold are six items and at most
#: two new accounts (the member's, a float shard), plus the allocation account once: 12 are 97 of 100.
HELD_SHARES_PER_CHAIN = 12
#: An allocation may be set or replaced in these statuses; from release on it is the one paid.
ALLOCATABLE = frozenset({S.AWAITING_PAYMENT, S.PAID, S.SHIPPED, S.CUSTOMS_CLEARED})


@dataclass(frozen=True)
class Principal:
    sub: str
    role: str


def _now_iso(clock: Callable[[], datetime]) -> str:
    return clock().astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _same_registration(existing: dict, details: dict) -> dict:
    """A repeated registration: the stored seller if it has these details, else ``seller_exists``."""
    if {k: existing[k] for k in details} != details:
        raise InvalidState("seller_exists", f"seller {existing['seller_id']} is already registered with other details")
    return existing


class EscrowService(OrderDisputes, OrderPayments, EwtpChecks):
    """Orders from checkout to settlement or refund. Ports are injected (see ``bootstrap``)."""

    screening = None  # a ScreeningService (``bootstrap`` sets it): sellers screened at registration

    #: ``treasury.Treasury``: each cross-currency order's FX position, opened at checkout within its
    #: currency's limit, closed at release or refund (``bootstrap.escrow`` sets it; None: not tracked).
    fx_positions = None

    def __init__(self, docs: Documents, ledger: Ledger, quotes, cards, workflow, settings, clock=_utc_now, outbox=None,
                 payee_rails=None, languages=None, payments=None):
        from chalicelib.payments.bank import LOCAL_BANK_ACCOUNTS, BankTransfers
        from chalicelib.payments.checkout import LOCAL_RETURN_URL, Checkout

        # Starts and refunds payments by method (payments/methods.py); bootstrap gives the configured one.
        local = settings.is_local
        self.checkout = payments or Checkout(cards, bank=BankTransfers(docs, LOCAL_BANK_ACCOUNTS) if local else None,
                                             return_url=LOCAL_RETURN_URL if local else None)
        self.outbox = outbox
        self.languages = languages  # LanguagePreferences: a wallet number's language (SMS); None: English
        from chalicelib.wallets import WalletRegistry

        self.wallets = WalletRegistry(docs)
        self.payee_rails = payee_rails  # rail name -> PayoutRail, asked about a wallet before registering it
        self.docs = docs
        self.ledger = ledger
        self.quotes = quotes
        self.cards = cards
        self.workflow = workflow
        self.settings = settings
        self.clock = clock

    # -- sellers ---------------------------------------------------------------
    def register_seller(self, principal: Principal, name: str, country: str, payout: dict) -> dict:
        """Register a seller: an admin names any id; a seller registers itself (its ``sub`` is the id)."""
        if principal.role == "seller":
            seller_id = principal.sub
        else:
            seller_id = payout.get("seller_id") or derived_id("sel_", name, payout["msisdn"], length=16)
        check_party_id(seller_id)  # first: a refused id must leave no wallet claim, account or document behind
        rail, currency = payout["rail"], check_currency(payout["currency"])
        wallet = phones.wallet_for_rail(payout["msisdn"], rails.rail(rail), currency, local_stage=self.settings.is_local)
        route = {"rail": rail, "msisdn": wallet.e164, "currency": currency}
        details = {"name": name, "country": country, "payout": route}
        existing = self.docs.get(f"seller#{seller_id}")
        if existing is not None:
            return _same_registration(existing, details)
        shareable = rails.rail(rail).shareable(wallet.e164, self.settings.is_local)
        owner = self.wallets.owner(wallet.e164)
        if owner is not None and (owner.seller_id, owner.member_id) != (seller_id, None) and not shareable:
            self.wallets.claim(wallet.e164, seller_id)  # msisdn_taken, before the rail is asked anything
        # Ask the rail about the wallet before anything is written: an inactive one is refused.
        check = self.payee_rails(rail).check_payee(wallet.e164, currency) if self.payee_rails else None
        seller = {"seller_id": seller_id, **details, **payees.assess(check, name, self.clock()),
                  "created_at": _now_iso(self.clock)}
        if self.screening is not None:  # sanctions: a possible match is registered in review, its payouts wait
            seller.update(self.screening.at_registration("seller", seller_id, None, name))
        # The wallet's claim decides a race between two parties registering the same number.
        self.wallets.claim(wallet.e164, seller_id, shareable=shareable)
        # The account before the document (idempotent): a registered seller always has its account.
        self.ledger.create_account(seller_account_id(seller_id), currency, "liability", [DMNEC])
        try:
            self.docs.put_new(f"seller#{seller_id}", seller)
        except DocumentExists:  # a concurrent registration of the same id
            return _same_registration(self.docs.get(f"seller#{seller_id}"), details)
        return seller

    def set_seller_status(self, principal: Principal, seller_id: str, status: str) -> dict:
        """An admin's decision on a party under review (``active``) or to stop paying it (``blocked``)."""
        self.get_seller(principal, seller_id)
        now = _now_iso(self.clock)

        def mutate(seller: dict) -> dict | None:
            if seller.get("status", payees.ACTIVE) == status:
                return None
            return {**seller, "status": status, "status_changed_at": now, "status_changed_by": principal.sub}

        return self.docs.update(f"seller#{seller_id}", mutate)

    def get_seller(self, principal: Principal, seller_id: str) -> dict:
        seller = self.docs.get(f"seller#{seller_id}")
        if seller is None or (principal.role == "seller" and principal.sub != seller_id) or principal.role == "buyer":
            raise NotFound("not_found", "no such seller")
        return seller

    def seller_balance(self, principal: Principal, seller_id: str) -> dict:
        seller = self.get_seller(principal, seller_id)
        currency = seller["payout"]["currency"]
        account = self.ledger.get_account(seller_account_id(seller_id))
        in_escrow: dict[str, int] = {}
        for order in self.docs.query_index(f"seller#{seller_id}", limit=500):
            held = 0
            if order["status"] in {s.value for s in IN_ESCROW}:
                held = order["pay"]["amount"]
            elif order["status"] in (S.MANUAL_REVIEW.value, S.DISPUTED.value):
                # Under review or disputed, the money is wherever the ledger says: in escrow unless released
                # (or withdrawn by the card network).
                escrow = self.ledger.get_account(escrow_account_id(order["order_id"]))
                held = max(escrow.balance, 0) if escrow else 0
            if held:
                in_escrow[order["pay"]["currency"]] = in_escrow.get(order["pay"]["currency"], 0) + held
        return {
            "available": Money(account.available if account else 0, currency).to_json(),
            "in_escrow": [Money(v, c).to_json() for c, v in sorted(in_escrow.items())],
            "payout_pending": Money(account.debits_pending if account else 0, currency).to_json(),
            "reserved": Money(self.reserved(seller_id), currency).to_json(),
        }

    # -- orders ----------------------------------------------------------------
    def create_order(self, principal: Principal, seller_id: str, pay_currency: str, lines: list[dict], request_key: str,
                     payment_method: str | None = None, payer_msisdn: str | None = None) -> dict:
        """Price, lock both quotes, start the payment by its method, store the order.

        The order id derives from the buyer and the request's Idempotency-Key, so a
        client retry after a crash finds the same quotes and the same payment (PaymentIntent,
        collection request, bank reference).
        """
        order_id = derived_id("ord_", principal.sub, request_key)
        bind(order_id=order_id, seller_id=seller_id)  # every line of this request names them, a refusal's too
        seller = self.docs.get(f"seller#{seller_id}")
        if seller is None:
            raise NotFound("not_found", "no such seller", path="seller_id")
        check_currency(pay_currency)
        chosen = methods.method(payment_method)
        payer = methods.check_currency_and_payer(chosen, pay_currency, payer_msisdn, local_stage=self.settings.is_local)
        existing = self.docs.get(f"order#{order_id}")
        if existing is not None:
            self._link_order(existing)  # an earlier attempt may have died between the order and its links
            return public_order(existing, principal)

        priced, total = pricing.price_lines(lines)
        fee = pricing.platform_fee(total, self.settings.fee_bps)
        payout_currency = seller["payout"]["currency"]
        # Lock what the buyer pays (rounded UP) and what the seller gets (rounded DOWN).
        if pay_currency == total.currency:
            pay, pay_quote = total, None
        else:
            # Stored already locked for this order: one conditional write (a retry consumes it again, idempotently).
            pay_quote = self.quotes.quote(pay_currency, total.currency, to_amount=total.minor, quote_id=f"q_{order_id}_pay",
                                          consumer_id=order_id)
            pay = pay_quote.from_money
        # A method that collects whole units only (M-Pesa): the buyer pays UP to the next whole unit.
        step = chosen.step(pay_currency)
        pay = Money(-(-pay.minor // step) * step, pay_currency)
        methods.check_amount(chosen, pay)  # limit_exceeded, naming the methods that can take it
        net = total - fee
        if payout_currency == total.currency:
            payout, payout_quote = net, None
        else:
            payout_quote = self.quotes.quote(total.currency, payout_currency, from_amount=net.minor,
                                             quote_id=f"q_{order_id}_payout", consumer_id=order_id)
            payout = payout_quote.to_money
        # A rail that pays whole units only: round the guarantee DOWN; the cents stay with the house.
        step = rails.rail(seller["payout"]["rail"]).step(payout_currency)
        payout = Money(payout.minor // step * step, payout_currency)
        total_usd = self._in_usd(total, pay_quote, payout_quote)
        if self.fx_positions is not None:  # within the payout currency's FX limit, else 422 fx_capacity_exceeded
            self.fx_positions.reserve(order_id, pay, payout, pay - pricing.fee_in_pay_currency(pay, fee, total),
                                      seller_id=seller_id)

        payment = self.checkout.start(order_id, chosen, pay, payer_msisdn=payer,
                                      metadata={"order_id": order_id, "seller_id": seller_id, "buyer_id": principal.sub})
        # eWTP over 30 days (this buyer and seller): counted once, decided by one conditional write.
        ewtp = self.ewtp_fields(principal.sub, seller_id, order_id, total_usd)
        now = _now_iso(self.clock)
        order = {
            "order_id": order_id,
            "buyer_id": principal.sub,
            "seller_id": seller_id,
            "status": S.AWAITING_PAYMENT.value,
            "lines": [p.to_json() for p in priced],
            "total": total.to_json(),
            "pay": pay.to_json(),
            "fee": fee.to_json(),
            "payout": payout.to_json(),
            "total_usd": total_usd.to_json(),
            **ewtp,
            "quotes": {
                "pay": pay_quote.quote_id if pay_quote else None,
                "payout": payout_quote.quote_id if payout_quote else None,
            },
            "rates": {
                "pay": str(pay_quote.rate) if pay_quote else "1",
                "payout": str(payout_quote.rate) if payout_quote else "1",
            },
            "payment": payment,
            "payout_route": seller["payout"],
            "shipment": None,
            "customs": None,
            "timeline": [{"status": S.AWAITING_PAYMENT.value, "at": now}],
            "created_at": now,
            "updated_at": now,
        }
        try:
            self.docs.put_new(f"order#{order_id}", order, index=(f"seller#{seller_id}", f"{now}#{order_id}"))
            stored = json.loads(json.dumps(order))  # as stored (and as a read would return it)
            if not getattr(self.docs, "links_orders", False):
                self._link_order(stored)
        except DocumentExists:  # a concurrent retry stored the same order
            stored = self.docs.get(f"order#{order_id}")
            self._link_order(stored)
        return public_order(stored, principal)

    def _link_order(self, order: dict) -> None:
        """The order's buyer index and its payment's link to it (``order_index.order_links``). The
        indexed adapters write them in the order's own transaction; here each is written once and on
        its own, and again by a retry: a retry after a crash between the order and a link (another
        adapter) writes the missing link (without the ``pi#`` link the payment's webhook could never
        find its order and the money no escrow)."""
        from chalicelib.order_index import order_links

        for key, index in order_links(order):
            try:
                self.docs.put_new(key, {"order_id": order["order_id"]}, index=index)
            except DocumentExists:
                pass

    def _in_usd(self, total: Money, pay_quote, payout_quote) -> Money:
        """The order total in USD at the rate locked at checkout (for the eWTP rule)."""
        if total.currency == "USD":
            return total
        mid = rate(self.quotes.rate_source.latest(), total.currency, "USD")
        return Money.from_decimal(total.to_decimal() * mid, "USD", Rounding.HALF_EVEN)

    def get_order(self, principal: Principal, order_id: str) -> dict:
        return public_order(self._visible_order(principal, order_id), principal)

    def _visible_order(self, principal: Principal, order_id: str, current: Versioned | None = None) -> dict:
        if current is not None:
            order = current.doc
        else:
            order = self.docs.get(f"order#{order_id}") if isinstance(order_id, str) else None
        if order is None:
            raise NotFound("not_found", "no such order")
        if principal.role in ("admin", "finance"):
            return order
        if principal.role == "buyer" and order["buyer_id"] == principal.sub:
            return order
        if principal.role == "seller" and order["seller_id"] == principal.sub:
            return order
        raise NotFound("not_found", "no such order")  # not yours: indistinguishable from missing

    def record_shipment(self, principal: Principal, order_id: str, carrier: str, tracking_number: str, declaration_ref: str,
                        customs_office: str | None = None) -> dict:
        current = self._read(order_id)
        order = self._visible_order(principal, order_id, current)
        if principal.role != "seller":
            raise NotFound("not_found", "no such order")
        shipment = {"carrier": carrier, "tracking_number": tracking_number, "customs_declaration_ref": declaration_ref}
        if customs_office:  # where the goods clear customs: the clearance report's office while they wait
            shipment["customs_office"] = customs_office
        if order["status"] == S.SHIPPED.value and order.get("shipment") == shipment:
            return public_order(order, principal)  # the same shipment again: nothing to do
        updated = self._transition(order_id, S.SHIPPED, detail=f"{carrier} {tracking_number}", fields={"shipment": shipment},
                                   current=current)
        return public_order(updated, principal)

    # -- status machine --------------------------------------------------------
    def _transition(self, order_id: str, to: OrderStatus, detail: str | None = None, fields: dict | None = None,
                    condition: Callable[[dict], bool] | None = None, current: Versioned | None = None) -> dict:
        """Move the order to ``to`` if its current status allows it; append to the timeline.

        ``current``: the order as this call just read it (``_read``), sparing the update its own read."""
        try:
            return self.docs.update(f"order#{order_id}", self._step(order_id, to, detail, fields, condition), current=current)
        except KeyError:
            raise NotFound("not_found", "no such order") from None

    def _step(self, order_id: str, to: OrderStatus, detail: str | None, fields: dict | None,
              condition: Callable[[dict], bool] | None = None) -> Callable[[dict], dict]:
        """The mutation of a status step (``invalid_state`` where the current status does not allow it)."""

        def mutate(order: dict) -> dict:
            current = S(order["status"])
            if current not in ALLOWED_FROM[to] or (condition and not condition(order)):
                raise InvalidState("invalid_state", f"order {order_id} is {current.value}; cannot become {to.value}")
            now = _now_iso(self.clock)
            entry = {"status": to.value, "at": now}
            if detail:
                entry["detail"] = detail
            order = {**order, **(fields or {}), "status": to.value, "updated_at": now}
            order["timeline"] = order["timeline"] + [entry]
            return order

        return mutate

    def _moved(self, current: Versioned, to: OrderStatus, plan: Callable[[dict], tuple[list, str | None, dict | None]]) -> dict:
        """Commit the money and the order's step to ``to`` as ONE atomic write: the ledger's
        TransactWriteItems carries the order's update (conditioned on the version read, so on the status
        it had) and its projections. No crash can leave the money moved and the order not saying so, or
        the other way round. ``plan(order)`` -> (chain, detail, fields), decided again on every attempt
        from the order as read. A race or a retry is decided by the version condition: the loser reads
        again, and an order already at ``to`` is done (its money moved with it)."""
        order_id = current.doc["order_id"]
        for _ in range(getattr(self.docs, "max_attempts", 8)):
            if current.doc["status"] == to.value:
                return current.doc
            chain, detail, fields = plan(current.doc)
            _, write = self.docs.prepare_update(f"order#{order_id}", self._step(order_id, to, detail, fields), current=current)
            try:
                self.ledger.transfer(*chain, writes=[write])
                return write.doc
            except WritesNotApplied as refused:
                current = self._read(order_id)
                if refused.replayed and current.doc["status"] != to.value:
                    # The chain was committed without this step (an order from before money and status were
                    # one write): the status alone, as it was then.
                    return self._transition(order_id, to, detail=detail, fields=fields, current=current)
        raise Conflict("request_in_progress", "the order is being changed by another request; retry")

    def _read(self, order_id: str) -> Versioned:
        """The order and its version (``NotFound`` if there is none)."""
        found = self.docs.read(f"order#{order_id}") if isinstance(order_id, str) else None
        if found is None:
            raise NotFound("not_found", "no such order")
        return found

    def _record(self, order_id: str, status: str, detail: str, fields: dict, condition: Callable[[dict], bool]) -> dict:
        """A timeline entry (status unchanged) with ``fields``, written only if ``condition`` holds
        on the document being replaced (re-checked on every optimistic retry)."""

        def mutate(order: dict) -> dict:
            if not condition(order):
                raise InvalidState("invalid_state", f"order {order_id} is {order['status']}, not awaiting customs")
            at = _now_iso(self.clock)
            entry = {"status": status, "at": at, "detail": detail}
            return {**order, **fields, "timeline": order["timeline"] + [entry], "updated_at": at}

        return self.docs.update(f"order#{order_id}", mutate)

    def _note(self, order_id: str, status: str, detail: str, fields: dict | None = None,
              current: Versioned | None = None) -> dict:
        """Add a timeline entry without changing the status (idempotent per detail)."""

        def mutate(order: dict) -> dict | None:
            entry = {"status": status, "at": _now_iso(self.clock), "detail": detail}
            if any(e.get("detail") == detail and e["status"] == status for e in order["timeline"]):
                return None
            return {**order, **(fields or {}), "timeline": order["timeline"] + [entry], "updated_at": entry["at"]}

        return self.docs.update(f"order#{order_id}", mutate, current=current)

    def order(self, order_id: str) -> dict:
        found = self.docs.get(f"order#{order_id}")
        if found is None:
            raise NotFound("not_found", "no such order")
        return found

    # -- payment (Stripe webhook) --------------------------------------------------
    def payment_succeeded(self, payment_intent_id: str, amount: Money, order_id: str | None = None) -> dict:
        """Money arrived at the card processor (card, Alipay, WeChat Pay): move it into the order's escrow
        and start the workflow (``payment_received``, the same for every method)."""
        current = self._order_for_payment(payment_intent_id, order_id)
        label = methods.of_order(current.doc).display_name
        return self.payment_received(current.doc["order_id"], amount, payment_intent_id,
                                     detail=f"{label} payment {payment_intent_id}", current=current)

    def payment_failed(self, payment_intent_id: str, reason: str, order_id: str | None = None) -> dict:
        """A declined card: recorded on the timeline; the order still awaits a payment."""
        current = self._order_for_payment(payment_intent_id, order_id)
        return self._note(current.doc["order_id"], "payment_failed", f"card payment failed: {reason}", current=current)

    def _order_for_payment(self, payment_intent_id: str, order_id: str | None) -> Versioned:
        if order_id:  # the event's metadata names the order: it is that order if the order names this payment
            try:
                named = self._read(order_id)
            except NotFound:
                named = None
            if named is not None and (named.doc.get("payment") or {}).get("payment_intent_id") == payment_intent_id:
                return named
        link = self.docs.get(f"pi#{payment_intent_id}")
        if link is None:
            raise NotFound("not_found", "no order for this payment")
        if order_id and order_id != link["order_id"]:
            raise NotFound("not_found", "the payment's order does not match")
        return self._read(link["order_id"])

    # -- customs -----------------------------------------------------------------
    def customs_event(self, order_id: str, status: str, declaration_ref: str, office: str, event_id: str) -> dict:
        """A signed customs decision. ``cleared``/``rejected`` settle the AwaitCustoms task once.

        The first decision wins atomically: the check (shipped, no decision yet) runs inside the
        conditional update that records the decision, so of two racing decisions exactly one is
        written and the other answers ``invalid_state`` having changed nothing.
        """
        current = self._read(order_id)
        order = current.doc
        disputed = order["status"] == S.DISPUTED.value and order.get("status_before_dispute") == S.SHIPPED.value
        if (order["status"] != S.SHIPPED.value and not disputed) or (order.get("customs") or {}).get("outcome"):
            raise InvalidState("invalid_state", f"order {order_id} is {order['status']}, not awaiting customs")
        if declaration_ref != (order.get("shipment") or {}).get("customs_declaration_ref"):
            raise ValidationError("validation_error", "the declaration does not match the shipment", path="customs_declaration_ref")
        detail = f"customs {status} at {office} ({event_id})"
        if disputed:  # recorded and answered, but nothing is released until the dispute closes
            return self.customs_while_disputed(order, status, office, event_id, detail)
        if status == "inspection":
            return self._note(order_id, "customs_inspection", detail)
        customs = {"outcome": status, "office": office, "event_id": event_id}
        undecided = lambda o: not (o.get("customs") or {}).get("outcome")  # noqa: E731
        if status == "cleared":
            order = self._transition(order_id, S.CUSTOMS_CLEARED, detail=detail, fields={"customs": customs},
                                     condition=undecided, current=current)
            self._sms("cleared", order)
        else:
            # The status stays ``shipped`` until the workflow refunds, but the decision is taken.
            order = self._record(order_id, "customs_rejected", detail, fields={"customs": customs},
                                 condition=lambda o: o["status"] == S.SHIPPED.value and undecided(o))
        self._deliver_customs_outcome(order)
        return order

    def customs_timed_out(self, order_id: str) -> dict:
        """AwaitCustoms timed out. The timeout is a decision too, and the first decision wins, in the
        same conditional write as two customs decisions race in: if customs' own decision was recorded
        first (its answer to the token came late), that decision stands and the order is not refunded;
        else the timeout is recorded and a decision arriving later is refused (``invalid_state``)."""
        undecided = lambda o: o["status"] == S.SHIPPED.value and not (o.get("customs") or {}).get("outcome")  # noqa: E731
        order = self.order(order_id)
        if not undecided(order):
            return order
        try:
            return self._record(order_id, "customs_timeout", "customs did not answer in time",
                                fields={"customs": {"outcome": "timed_out", "office": None, "event_id": None}},
                                condition=undecided)
        except InvalidState:
            return self.order(order_id)  # decided meanwhile: that decision stands

    def customs_wait(self, order_id: str, task_token: str) -> None:
        """AwaitCustoms task body: keep the token; if customs already answered, answer now."""

        def mutate(order: dict) -> dict:
            return {**order, "task_token": task_token}

        order = self.docs.update(f"order#{order_id}", mutate)
        if (order.get("customs") or {}).get("outcome"):
            self._deliver_customs_outcome(order)

    def redeliver_customs_outcome(self, order_id: str) -> None:
        """Answer the AwaitCustoms token again with the decision the order holds (a customs webhook
        retried after answering the token failed)."""
        self._deliver_customs_outcome(self.order(order_id))

    def _deliver_customs_outcome(self, order: dict) -> None:
        token = order.get("task_token")
        outcome = (order.get("customs") or {}).get("outcome")
        if not token or not outcome:
            return  # the workflow will pick it up when it stores its token
        if outcome == "cleared":
            self.workflow.succeed(token, {"customs": "cleared"})
        else:
            self.workflow.fail(token, "CustomsRejected", "customs rejected the shipment")

    # -- workflow tasks ------------------------------------------------------------
    def release_escrow(self, order_id: str) -> dict:
        """Escrow → fee + FX → seller, as one linked chain at the rates locked at checkout.

        The order becomes ``released`` in the same atomic write as the chain (``_moved``): that freezes
        its allocation (a PUT from then on is ``invalid_state``), and the write's version condition
        makes the money move by the allocation the order holds. What follows the chain (the reserve's
        tranche, the FX position, the members' shares) is idempotent and finished by the task's retry
        (every id derives from the order). With an allocation the payout goes to the order's allocation account and from there,
        in linked chains of ``SHARES_PER_CHAIN``, to each member and (what is retained) to the
        co-operative: the co-operative cannot withdraw its members' money in between."""
        current = self._read(order_id)
        order = current.doc
        if order["status"] == S.DISPUTED.value:
            raise order_disputed(order_id)
        if order["status"] not in (S.CUSTOMS_CLEARED.value, S.RELEASED.value):
            raise InvalidState("invalid_state", f"order {order_id} is {order['status']}; cannot release")
        if order["status"] == S.CUSTOMS_CLEARED.value:
            order = self._moved(current, S.RELEASED, self._release_plan)
        else:
            # Released before: by this code with its chain in the same write, or (an order released before
            # money and status were one write) maybe without it: the chain again, a replay if it is there.
            self.ledger.transfer(*self._release_chain(order))
        allocation = order.get("allocation")
        self.reserve_tranche(order)
        if self.fx_positions is not None:
            self.fx_positions.settle(order_id)  # converted: the FX position closes, its P&L at this moment's rates
        if allocation:
            self._share_out(order, allocation)
        return order

    def _release_plan(self, order: dict) -> tuple[list[Transfer], str, dict]:
        """The release step of ``order`` as read: its chain, timeline detail and fields. The reserve is
        decided with the status (``reserve_bps`` as it stands now), so a retry holds the same; the chain
        is the released order's (its allocation and reserve), which the order's version condition in
        the same transaction guarantees nobody changed since the read."""
        payout = Money(order["payout"]["amount"], order["payout"]["currency"])
        # ``payout_held``: the payees' lines are held for the payout in the same writes that credit them
        # (payouts/lines.py), so no withdrawal between this step and StartPayout can take them.
        fields = {"reserve": self.reserve_at_release(order), "payout_held": True}
        if order.get("allocation"):
            fields["payout_unsent"] = payout_lines.unsent_shares(order)
        detail = f"{payout} guaranteed to the seller"
        return self._release_chain({**order, **fields}), detail, fields

    def _release_chain(self, order: dict) -> list[Transfer]:
        """Escrow → fee + FX → seller (or the allocation account), and the reserve's leg: one chain."""
        order_id = order["order_id"]
        pay = Money(order["pay"]["amount"], order["pay"]["currency"])
        payout = Money(order["payout"]["amount"], order["payout"]["currency"])
        total = order["total"]["amount"]
        fee_pay = pricing.fee_in_pay_currency(pay, Money(order["fee"]["amount"], order["fee"]["currency"]),
                                              Money(total, order["total"]["currency"]))
        seller = seller_account_id(order["seller_id"])
        if order.get("allocation"):
            seller = allocation_account_id(order_id)
            self.ledger.create_account(seller, payout.currency, "liability", [DMNEC])
        escrow = escrow_account_id(order_id)
        chain = []
        if fee_pay.minor:
            chain.append(Transfer(f"release:{order_id}:fee", escrow, fee_account_id(pay.currency), fee_pay.minor, pay.currency,
                                  code="platform_fee", reference=order_id))
        if pay.currency == payout.currency:
            # The seller gets what was guaranteed, not what the buyer paid less the fee: when the listing
            # is in another currency the two quotes' spreads (and a whole-unit rounding) are the house's,
            # kept in its FX account as they are when the currencies differ.
            chain.append(Transfer(f"release:{order_id}:seller", escrow, seller, payout.minor, pay.currency,
                                  code="escrow_release", reference=order_id))
            margin = (pay - fee_pay).minor - payout.minor
            if margin > 0:
                chain.append(Transfer(f"release:{order_id}:fx-margin", escrow, fx_account_id(pay.currency), margin,
                                      pay.currency, code="fx_margin", reference=order_id))
            elif margin < 0:
                chain.append(Transfer(f"release:{order_id}:fx-topup", fx_account_id(pay.currency), escrow, -margin,
                                      pay.currency, code="fx_margin", reference=order_id))
        else:
            # TigerBeetle's currency-exchange recipe (fx/conversion.py), at the two rates locked at checkout.
            chain += conversion_legs(pay - fee_pay, payout, escrow, seller, f"release:{order_id}", reference=order_id,
                                     meta={"rates": order.get("rates")})
        chain += self.reserve_legs(order, seller)  # part of the payout held against chargebacks, same chain
        if order.get("payout_held") and not order.get("allocation"):
            chain += [payout_lines.hold(order, line) for line in payout_lines.order_lines(order)]
        return chain

    def _share_out(self, order: dict, allocation: dict) -> None:
        """The allocation account → each member's share, and → the co-operative what it retained.

        Several linked chains (a commit holds 100 writes); each transfer id derives from the order
        and the member, so a retry after a crash between two chains replays the chains already
        committed (the ledger answers a same-id, same-fields transfer with its first result) and
        commits the rest: no share moves twice, none is lost."""
        order_id, currency = order["order_id"], order["payout"]["currency"]
        source = allocation_account_id(order_id)
        # Each share sent to its member's wallet is held for that payout in the chain that credits it.
        held = {line.member_id: payout_lines.hold(order, line)
                for line in (payout_lines.order_lines(order) if order.get("payout_held") else [])}
        moves = [[Transfer(f"share:{order_id}:{s['member_id']}", source, member_account_id(s["member_id"]),
                           s["amount"]["amount"], currency, code="member_share", reference=order_id),
                  *([held[s["member_id"]]] if s["member_id"] in held else [])]
                 for s in allocation["shares"] if s["amount"]["amount"] > 0]
        retained = allocation["retained"]["amount"] - (order.get("reserve") or {}).get("amount", 0)  # less the reserve
        if retained > 0:
            moves.append([Transfer(f"share:{order_id}:retained", source, seller_account_id(order["seller_id"]),
                                   retained, currency, code="member_share", reference=order_id)])
        per_chain = HELD_SHARES_PER_CHAIN if held else SHARES_PER_CHAIN
        for start in range(0, len(moves), per_chain):
            self.ledger.transfer(*(t for move in moves[start:start + per_chain] for t in move))

    # -- co-operatives' allocations ------------------------------------------------------
    def set_allocation(self, principal: Principal, order_id: str, shares: list[tuple[str, int]], retain_bps: int,
                       members: dict[str, dict]) -> dict:
        """Record who delivered how much of an order (``PUT /v1/orders/{id}/allocation``).

        ``members``: the co-operative's members named in ``shares`` (checked by the caller to be
        this seller's). Replaces an earlier allocation; refused from release on, decided inside the
        order's conditional update (a release racing a PUT: exactly one of them sees the other)."""
        from chalicelib.members.allocation import allocate

        order = self._visible_order(principal, order_id)
        if principal.role != "seller":
            raise NotFound("not_found", "no such order")
        payout = Money(order["payout"]["amount"], order["payout"]["currency"])
        steps = {mid: rails.rail(m["payout"]["rail"]).step(payout.currency) for mid, m in members.items()}
        shared = allocate(payout.minor, shares, retain_bps, steps)
        allocation = {
            "shares": [{"member_id": s.member_id, "quantity": s.quantity, "amount": Money(s.amount, payout.currency).to_json(),
                        "route": members[s.member_id]["payout"]} for s in shared.shares],
            "retained": Money(shared.retained, payout.currency).to_json(),
            "retain_bps": retain_bps,
        }
        allocatable = {s.value for s in ALLOCATABLE}

        def mutate(doc: dict) -> dict | None:
            if doc["status"] not in allocatable:
                raise InvalidState("invalid_state", f"order {order_id} is {doc['status']}; its allocation is final")
            if doc.get("allocation") == allocation:
                return None
            return {**doc, "allocation": allocation, "updated_at": _now_iso(self.clock)}

        self.docs.update(f"order#{order_id}", mutate)
        return public_allocation(order_id, allocation)

    def refund(self, order_id: str, reason: str) -> dict:
        """Give the buyer their money back: Stripe first (deterministic key), then the ledger."""
        order = self.order(order_id)
        if order["status"] == S.REFUNDED.value:
            return order
        if order["status"] == S.DISPUTED.value:
            raise order_disputed(order_id)  # a disputed charge cannot be refunded: the dispute decides first
        if order["status"] not in {s.value for s in ALLOWED_FROM[S.REFUNDED]}:
            raise InvalidState("invalid_state", f"order {order_id} is {order['status']}; it cannot be refunded")
        pay = Money(order["pay"]["amount"], order["pay"]["currency"])
        escrow = self.ledger.get_account(escrow_account_id(order_id))
        if escrow is None or escrow.credits_posted == 0:
            return self._transition(order_id, S.MANUAL_REVIEW, detail="refund asked but nothing is in escrow")
        chosen = methods.of_order(order)
        if chosen.kind != methods.STRIPE:  # a wallet or a bank transfer: payments.py
            return self.refund_other(order, chosen, reason)
        refund = self.cards.refund(order["payment"]["payment_intent_id"], pay, idempotency_key=f"mizani:{order_id}:refund")
        self.ledger.transfer(
            Transfer(f"refund:{order_id}", escrow_account_id(order_id), psp_account_id(pay.currency), pay.minor, pay.currency,
                     code="card_refund", reference=order["payment"]["payment_intent_id"])
        )
        if self.fx_positions is not None:
            self.fx_positions.cancel(order_id)  # nothing was converted: the guarantee is off the FX capacity
        return self._transition(order_id, S.REFUNDED, detail=f"{reason}; refund {refund.refund_id}")

    def manual_review(self, order_id: str, cause: str) -> dict:
        current = self._read(order_id)
        order = current.doc
        # An order that is over (settled, refunded, charged back, its payout failed back to the balance) stays over.
        if order["status"] in (S.MANUAL_REVIEW.value, S.SETTLED.value, S.REFUNDED.value, S.CHARGED_BACK.value,
                               S.PAYOUT_FAILED.value):
            return order
        return self._transition(order_id, S.MANUAL_REVIEW, detail=cause[:500], current=current)

    def begin_payout(self, order_id: str) -> dict:
        """StartPayout's status step: a released order is ``payout_pending`` (already there is fine)."""
        current = self._read(order_id)
        order = current.doc
        if order["status"] == S.RELEASED.value:
            payout = Money(order["payout"]["amount"], order["payout"]["currency"])
            return self.mark(order_id, S.PAYOUT_PENDING, detail=f"paying {payout} to the seller's wallet", current=current)
        if order["status"] != S.PAYOUT_PENDING.value:
            raise InvalidState("invalid_state", f"order {order_id} is {order['status']}; no payout to start")
        return order

    def finish_payout(self, order_id: str, outcome: str, summary: dict) -> dict:
        """Settle (every part paid) or ``payout_failed`` (what failed is back in the seller's balance).

        ``summary`` is what payouts reports: ``paid`` and ``unpaid`` Money, ``provider_references``.
        The SMS says exactly that: what reached the wallet, and what is in the balance to withdraw."""
        current = self._read(order_id)
        order = current.doc
        paid, unpaid = summary["paid"], summary["unpaid"]
        refs = ", ".join(summary["provider_references"]) or None
        # Every SMS is queued (idempotently, claimed by this invocation) before the terminal status is
        # written, and sent after it by ``_send``, which never fails the task (what it cannot send, the
        # sweeper's drain does once the claim lapses): nothing that can fail comes after the terminal write,
        # so a retried Settle finds the order done and the SMS queued, never a ManualReview.
        members = summary.get("members") or {}
        coop = (self.docs.get(f"seller#{order['seller_id']}") or {}).get("name", "") \
            if members and self.outbox is not None else ""
        claimed = [self._member_sms(order, member_id, member, coop) for member_id, member in members.items()]
        if order.get("allocation"):
            finished = self._finish_allocated(current, outcome, paid, unpaid, len(members))
            for message in claimed:  # after the terminal write, as the seller's below
                self._send(message)
            return finished
        if outcome == "succeeded":
            queued = self._sms("payout_sent", order, paid, refs, send=False)
            order = self.mark(order_id, S.SETTLED, detail=f"{paid} paid to {order['payout_route']['msisdn']}", current=current)
        elif paid.minor:
            queued = self._sms("payout_failed", order, paid, unpaid=unpaid, text_event="payout_partial", send=False)
            order = self.mark(order_id, S.PAYOUT_FAILED, current=current,
                              detail=f"{paid} paid to the wallet; {unpaid} failed and is in the seller's balance")
        else:
            queued = self._sms("payout_failed", order, send=False)
            order = self.mark(order_id, S.PAYOUT_FAILED, current=current,
                              detail="the wallet payout failed; the money is in the seller's balance")
        self._send(queued)
        return public_order(order)

    def _finish_allocated(self, current: Versioned, outcome: str, paid: Money, unpaid: Money, members: int) -> dict:
        """An allocated order ends settled when every member payout was paid; else ``payout_failed``,
        with what failed back in those members' balances (each can withdraw it)."""
        order_id = current.doc["order_id"]
        if outcome == "succeeded":
            order = self.mark(order_id, S.SETTLED, detail=f"{paid} paid to {members} members' wallets", current=current)
        else:
            order = self.mark(order_id, S.PAYOUT_FAILED, current=current,
                              detail=f"{paid} paid to members' wallets; {unpaid} failed and is in those members' balances")
        return public_order(order)

    def _member_sms(self, order: dict, member_id: str, member: dict, coop: str) -> dict | None:
        """Each member paid is told, in their language, what reached their wallet (or that it is safe
        in their balance, to withdraw over USSD). Queued claimed, for ``_send``, as ``_sms``."""
        if self.outbox is None:
            return None
        from chalicelib.notify.messages import compose

        paid, unpaid = member["paid"], member["unpaid"]
        if not unpaid.minor:
            event, amount, rest = "member_paid", paid, None
        elif paid.minor:
            event, amount, rest = "member_payout_partial", paid, unpaid
        else:
            event, amount, rest = "member_payout_failed", unpaid, None
        refs = ", ".join(member.get("provider_references") or []) or None
        text = compose(event, order, amount, refs, rest, language=self._language(member["msisdn"]),
                       rail=member["rail"], coop_name=coop)
        return self.outbox.enqueue(f"member:{order['order_id']}:{member_id}", member["msisdn"], text, claim=True)

    def _language(self, msisdn: str) -> str:
        return self.languages.get(msisdn) if self.languages is not None else "en"

    def _sms(self, event: str, order: dict, amount: Money | None = None, ref: str | None = None,
             unpaid: Money | None = None, text_event: str | None = None, send: bool = True) -> dict | None:
        """Queue (once per event and order) and, unless ``send`` is False, send the seller's SMS.

        Queued already claimed by this invocation (``Outbox.enqueue(claim=True)``), so sending it
        needs no queue read and no claim; returns it for ``_send`` (``None``: queued before, by an
        earlier attempt whose claim, or the sweeper's drain, sends it). Other messages waiting in the
        queue go with the scheduled drain (every minute)."""
        if self.outbox is None:
            return None
        from chalicelib.notify.messages import compose

        msisdn = order["payout_route"]["msisdn"]
        text = compose(text_event or event, order, amount, ref, unpaid, language=self._language(msisdn))
        claimed = self.outbox.enqueue(f"{event}:{order['order_id']}", msisdn, text, claim=True)
        if send:
            self._send(claimed)
        return claimed

    def _send(self, claimed: dict | None) -> None:
        """Send a message ``_sms`` queued claimed; a failure leaves it queued for the sweeper's drain
        (the money and the order's status never wait on, or fail with, an SMS)."""
        if self.outbox is None or claimed is None:
            return
        try:
            self.outbox.send(claimed)
        except Exception as error:  # noqa: BLE001 - an SMS must never fail the step that moved the money
            log.warning("SMS not sent now (the sweeper retries): %s", type(error).__name__)

    def mark(self, order_id: str, to: OrderStatus, detail: str | None = None, fields: dict | None = None,
             current: Versioned | None = None) -> dict:
        """Idempotent status step for the workflow: already there is fine (``current``: as just read)."""
        current = current or self._read(order_id)
        if current.doc["status"] == to.value:
            return current.doc
        return self._transition(order_id, to, detail=detail, fields=fields, current=current)

