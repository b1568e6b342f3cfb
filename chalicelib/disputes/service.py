"""``DisputeService``: one document per dispute, merged from Stripe's events, then converged.

Each ``charge.dispute.*`` event is merged into ``dispute#<id>`` so that what it says only ever
moves forward: ``withdrawn``/``reinstated`` once true stay true, a final status (won, lost,
warning_closed) is never replaced, an earlier snapshot never overwrites a later one, balance
transactions are kept by id. A duplicate, late or reordered event therefore merges into the
same document. Then ``_converge`` does what the document says and has not been done yet, each
step idempotent on its own (ledger ids derive from the dispute id; the order's changes are
conditional updates), and records it in ``booked``; a crash between a ledger write and that
record is finished by Stripe's retry of the webhook, which replays the write.

The stage (``escrow`` or ``released``) is decided once, by escrow's conditional update that
holds the order (``hold_for_dispute``): a dispute racing the release is on one side of it.

Money (see ``waterfall.py`` for the split):

    withdrawn   escrow:<order> -> psp:stripe:<PAY>, the disputed amount     dispute:<id>:withdrawn
                funded, before release, by the escrow itself and for any shortfall
                loss:chargebacks:<PAY>                                        dispute:<id>:loss
                after release, by the fee given back (revenue:fees:<PAY>)     dispute:<id>:fee-back
                and, through fx:<PAY>/fx:<PAYOUT>, by reserve:<seller>,       dispute:<id>:fx-pay,
                seller:<seller>, loss:chargebacks:<PAYOUT> in that order      :reserve, :balance, :loss
    reinstated  every one of those transfers mirrored                         <id>:back, dispute:<id>:reinstated
    fees        expense:dispute_fees:<CUR> -> psp:stripe:<CUR> per balance txn  dispute:<id>:fee:<txn>

A payout already made is never reversed: only available money is taken.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from chalicelib.accounts import (
    chargeback_loss_account_id,
    dispute_fee_account_id,
    escrow_account_id,
    fee_account_id,
    fx_account_id,
    psp_account_id,
    reserve_account_id,
    seller_account_id,
)
from chalicelib.disputes.events import AWAITING_EVIDENCE, FINAL, KEPT, DisputeEvent, supersedes
from chalicelib.disputes.waterfall import split_recovery
from chalicelib.documents import DocumentExists, matching_page
from chalicelib.errors import Conflict, MizaniError, NotFound
from chalicelib.ledger import AccountFlag, LedgerRejected, Result, Transfer
from chalicelib.money import Money, Rounding

log = logging.getLogger("mizani.disputes")

ESCROW, RELEASED = "escrow", "released"
INDEX = "disputes"
#: Ledger codes of a dispute's transfers.
DISPUTE_CODE, REINSTATED_CODE = "card_dispute", "card_dispute_reversal"
RECOVERY_CODE, LOSS_CODE, FEE_CODE = "chargeback_recovery", "chargeback_loss", "dispute_fee"
BACK_CODE = "chargeback_reversal"  # each funding leg given back when the dispute is won
_FUNDING_LEGS = ("loss", "fee-back", "fx-pay", "reserve", "balance", "loss-payout")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def public_dispute(doc: dict) -> dict:
    """The dispute as API.md shows it, with what it has taken from where (``recovered``)."""
    view = {k: doc.get(k) for k in ("dispute_id", "order_id", "amount", "reason", "status", "evidence_submitted",
                                     "due_by", "created_at")}
    view["evidence_submitted"] = bool(view["evidence_submitted"])
    view["stage"] = doc.get("stage")
    view["recovered"] = doc.get("recovery")
    view["updated_at"] = doc.get("updated_at")
    return view


class DisputeService:
    """Card disputes (see the module doc). ``escrow`` is the ``EscrowService`` (orders, cards);
    ``gateway`` a ``DisputeGateway``; ``reserves`` a ``ReserveService`` (``reserve.py``)."""

    def __init__(self, docs, ledger, escrow, gateway, reserves=None, outbox=None, clock=_utc_now, max_attempts: int = 6):
        self.docs = docs
        self.ledger = ledger
        self.escrow = escrow
        self.gateway = gateway
        self.reserves = reserves
        self.outbox = outbox
        self.clock = clock
        self.max_attempts = max_attempts

    # -- the webhook -------------------------------------------------------------------------
    def handle(self, event: DisputeEvent) -> dict | None:
        """Merge one verified event and converge; ``None`` when the charge is not one of ours
        (acknowledged: nothing moves)."""
        link = self.docs.get(f"pi#{event.payment_intent_id}") if event.payment_intent_id else None
        order = self.docs.get(f"order#{link['order_id']}") if link else None
        if order is None:
            log.warning("dispute %s is for a payment Mizani does not know (%s): ignored", event.dispute_id,
                        event.payment_intent_id)
            return None
        if event.amount.currency != order["pay"]["currency"] or event.amount.minor > order["pay"]["amount"]:
            log.warning("dispute %s (%s) does not fit order %s: ignored", event.dispute_id, event.amount, order["order_id"])
            return None
        if order["status"] == "awaiting_payment":
            # The dispute overtook the payment's own webhook: let Stripe retry once the payment is booked.
            raise Conflict("request_in_progress", "the disputed payment is not recorded yet; retry")
        return self._converge(self._merge(event, order))

    def _merge(self, event: DisputeEvent, order: dict) -> dict:
        now = _iso(self.clock())
        moves = {m.transaction_id: {"amount": m.amount.to_json(), "fee": m.fee.to_json()} for m in event.moves}
        fresh = {
            "dispute_id": event.dispute_id, "order_id": order["order_id"], "seller_id": order["seller_id"],
            "payment_intent_id": event.payment_intent_id, "charge_id": event.charge_id,
            "amount": event.amount.to_json(), "reason": event.reason, "status": event.status, "status_at": event.created,
            "due_by": _iso(datetime.fromtimestamp(event.due_by, timezone.utc)) if event.due_by else None,
            "evidence_submitted": event.evidence_submitted, "withdrawn": event.withdrawn or event.reinstated,
            "reinstated": event.reinstated, "moves": moves, "stage": None, "recovery": None,
            "booked": {}, "events": [event.event_id], "created_at": now, "updated_at": now,
        }
        try:
            self.docs.put_new(f"dispute#{event.dispute_id}", fresh, index=(INDEX, f"{now}#{event.dispute_id}"))
            return fresh
        except DocumentExists:
            pass

        def merge(doc: dict) -> dict | None:
            if event.event_id in doc["events"]:
                return None
            new = {**doc, "moves": {**doc["moves"], **moves}, "events": (doc["events"] + [event.event_id])[-50:],
                   "withdrawn": doc["withdrawn"] or event.withdrawn or event.reinstated,
                   "reinstated": doc["reinstated"] or event.reinstated,
                   "evidence_submitted": doc["evidence_submitted"] or event.evidence_submitted,
                   "due_by": doc["due_by"] or fresh["due_by"], "updated_at": now}
            if supersedes(event.status, event.created, doc["status"], doc["status_at"]):
                new["status"], new["status_at"] = event.status, event.created
            return new

        return self.docs.update(f"dispute#{event.dispute_id}", merge)

    # -- converging ----------------------------------------------------------------------------
    def _converge(self, doc: dict) -> dict:
        dispute_id, order_id = doc["dispute_id"], doc["order_id"]
        booked = doc.get("booked") or {}
        if doc.get("stage") is None:
            where, order = self.escrow.hold_for_dispute(order_id, dispute_id, doc["status"])
            if where != "held" and order["status"] == "released":
                order = self.escrow.ensure_release_booked(order_id)
            stage = ESCROW if where == "held" or not self._release_booked(order) else RELEASED
            doc = self._record(dispute_id, lambda d: None if d.get("stage") else {"stage": stage})
        if doc["withdrawn"] and not booked.get("withdrawn"):
            recovery = self._withdraw(doc)
            doc = self._record(dispute_id, lambda d: {"recovery": recovery, "booked": {**d["booked"], "withdrawn": True}})
            self._note(doc, "withdrawn")
        booked_fees = self._book_fees(doc)
        if booked_fees:
            doc = self._record(dispute_id, lambda d: {"booked": {**d["booked"],
                                                                 "fees": sorted(set(d["booked"].get("fees", [])) | booked_fees)}})
        booked = doc["booked"]
        if doc["reinstated"] and booked.get("withdrawn") and not booked.get("reinstated"):
            self._reinstate(doc)
            doc = self._record(dispute_id, lambda d: {"booked": {**d["booked"], "reinstated": True}})
            self._note(doc, "reinstated")
        booked = doc["booked"]
        if doc["status"] in FINAL and not booked.get("closed"):
            kept = doc["status"] in KEPT
            # Won with the money taken: the order goes on once Stripe has given the money back.
            if not (kept and booked.get("withdrawn") and not booked.get("reinstated")):
                order = self.escrow.dispute_closed(order_id, dispute_id, kept, doc["status"])
                if not kept and doc["stage"] == ESCROW and order["status"] == "charged_back":
                    self.escrow.refund_rest_after_chargeback(order_id)
                doc = self._record(dispute_id, lambda d: {"booked": {**d["booked"], "closed": True}})
        if not doc["booked"].get("texted"):
            self._text_seller(doc)
            doc = self._record(dispute_id, lambda d: {"booked": {**d["booked"], "texted": True}})
        if not doc["evidence_submitted"] and doc["status"] in AWAITING_EVIDENCE:
            self._submit_evidence(doc)
            doc = self._record(dispute_id, lambda d: {"evidence_submitted": True})
        return doc

    def _record(self, dispute_id: str, change) -> dict:
        """Apply ``change(doc) -> fields | None`` to the dispute document (optimistic, retried)."""

        def mutate(doc: dict) -> dict | None:
            fields = change(doc)
            if not fields:
                return None
            return {**doc, **fields, "updated_at": _iso(self.clock())}

        return self.docs.update(f"dispute#{dispute_id}", mutate)

    def _release_booked(self, order: dict) -> bool:
        oid = order["order_id"]
        legs = self.ledger.get_transfers([f"release:{oid}:seller", f"release:{oid}:fx-out"])
        return bool(legs)

    # -- the money -----------------------------------------------------------------------------
    def _guard(self, doc: dict) -> Transfer:
        """The transfer every withdrawal plan shares (same id, same fields): of two plans made from
        different balances, at most one can ever commit."""
        amount = Money(doc["amount"]["amount"], doc["amount"]["currency"])
        return Transfer(f"dispute:{doc['dispute_id']}:withdrawn", escrow_account_id(doc["order_id"]),
                        psp_account_id(amount.currency), amount.minor, amount.currency, code=DISPUTE_CODE,
                        reference=doc["payment_intent_id"] or doc["dispute_id"])

    def _withdraw(self, doc: dict) -> dict:
        """Book the card network's withdrawal; what it took from where (``{"reserve", "balance", "loss", "escrow"}``)."""
        guard = self._guard(doc)
        if self.ledger.get_transfer(guard.transfer_id) is None:
            order = self.escrow.order(doc["order_id"])
            for _ in range(self.max_attempts):
                legs = self._funding(doc, order)
                try:
                    self.ledger.transfer(guard, *legs)
                    break
                except LedgerRejected as refused:
                    if refused.result is Result.EXCEEDS_CREDITS:
                        continue  # a balance moved since we read it: read again and re-plan
                    if refused.result is Result.EXISTS_WITH_DIFFERENT_FIELDS:
                        break  # another invocation committed its plan: that one stands
                    raise
            else:
                raise Conflict("request_in_progress", "the seller's balance kept moving; retry")
        return self._recovery_of(doc)

    def _funding(self, doc: dict, order: dict) -> list[Transfer]:
        """The transfers that put the disputed amount into the order's escrow account, from where the
        guard takes it (read balances, split; the ledger's conditions refuse a stale plan)."""
        dispute_id, ref = doc["dispute_id"], doc["payment_intent_id"] or doc["dispute_id"]
        disputed = Money(doc["amount"]["amount"], doc["amount"]["currency"])
        escrow = escrow_account_id(doc["order_id"])
        if doc["stage"] == ESCROW:
            account = self.ledger.get_account(escrow)
            if account is None:
                self.ledger.create_account(escrow, disputed.currency, "liability", [AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS])
            short = disputed.minor - min(disputed.minor, max(account.available, 0) if account else 0)
            if not short:
                return []
            loss = self._loss_account(disputed.currency)
            return [Transfer(f"dispute:{dispute_id}:loss", loss, escrow, short, disputed.currency, code=LOSS_CODE,
                             reference=ref)]
        pay = Money(order["pay"]["amount"], order["pay"]["currency"])
        payout = Money(order["payout"]["amount"], order["payout"]["currency"])
        fee_pay = Money.from_decimal(pay.to_decimal() * Decimal(order["fee"]["amount"]) / Decimal(order["total"]["amount"]),
                                     pay.currency, Rounding.DOWN)
        fee_back = fee_pay.minor * disputed.minor // pay.minor  # what the platform gives back of its fee
        rest = disputed.minor - fee_back
        legs = []
        if fee_back:
            legs.append(Transfer(f"dispute:{dispute_id}:fee-back", fee_account_id(pay.currency), escrow, fee_back,
                                 pay.currency, code=RECOVERY_CODE, reference=ref))
        if payout.currency == pay.currency:
            owed, target = rest, escrow
        else:
            # What the seller received for the disputed part, at the rates locked at checkout (rounded UP:
            # the platform collects), converted back through the FX accounts as the release did.
            owed = min(payout.minor, -(-payout.minor * disputed.minor // pay.minor))
            target = fx_account_id(payout.currency)
            legs.append(Transfer(f"dispute:{dispute_id}:fx-pay", fx_account_id(pay.currency), escrow, rest, pay.currency,
                                 code="fx_leg", reference=ref))
        seller_id = order["seller_id"]
        accounts = self.ledger.get_accounts([reserve_account_id(seller_id), seller_account_id(seller_id)])
        reserve = accounts.get(reserve_account_id(seller_id))
        balance = accounts.get(seller_account_id(seller_id))
        split = split_recovery(owed, reserve.available if reserve else 0, balance.available if balance else 0)
        cur = payout.currency
        if split.reserve:
            legs.append(Transfer(f"dispute:{dispute_id}:reserve", reserve_account_id(seller_id), target, split.reserve, cur,
                                 code=RECOVERY_CODE, reference=ref))
        if split.balance:
            legs.append(Transfer(f"dispute:{dispute_id}:balance", seller_account_id(seller_id), target, split.balance, cur,
                                 code=RECOVERY_CODE, reference=ref))
        if split.loss:
            legs.append(Transfer(f"dispute:{dispute_id}:loss-payout", self._loss_account(cur), target, split.loss, cur,
                                 code=LOSS_CODE, reference=ref))
        return legs

    def _loss_account(self, currency: str) -> str:
        account_id = chargeback_loss_account_id(currency)
        self.ledger.create_account(account_id, currency, "expense")
        return account_id

    def _committed_legs(self, dispute_id: str) -> dict[str, Transfer]:
        ids = {leg: f"dispute:{dispute_id}:{leg}" for leg in _FUNDING_LEGS}
        found = self.ledger.get_transfers(ids.values())
        return {leg: found[tid].transfer for leg, tid in ids.items() if tid in found}

    def _recovery_of(self, doc: dict) -> dict:
        legs = self._committed_legs(doc["dispute_id"])
        disputed = Money(doc["amount"]["amount"], doc["amount"]["currency"])
        cur = next((t.currency for k, t in legs.items() if k in ("reserve", "balance", "loss-payout")), disputed.currency)

        def amount(*names: str) -> dict:
            return Money(sum(legs[n].amount for n in names if n in legs), cur).to_json()

        if doc["stage"] == ESCROW:
            loss = legs["loss"].amount if "loss" in legs else 0
            return {"escrow": Money(disputed.minor - loss, disputed.currency).to_json(),
                    "loss": Money(loss, disputed.currency).to_json()}
        return {"reserve": amount("reserve"), "balance": amount("balance"), "loss": amount("loss-payout")}

    def _reinstate(self, doc: dict) -> None:
        """The card network gave the money back: every transfer of the withdrawal, mirrored."""
        dispute_id = doc["dispute_id"]
        guard = self._guard(doc)
        back = [Transfer(f"dispute:{dispute_id}:reinstated", guard.credit_account_id, guard.debit_account_id, guard.amount,
                         guard.currency, code=REINSTATED_CODE, reference=guard.reference)]
        legs = self._committed_legs(dispute_id)
        for leg, t in legs.items():
            back.append(Transfer(f"{t.transfer_id}:back", t.credit_account_id, t.debit_account_id, t.amount, t.currency,
                                 code=BACK_CODE, reference=t.reference))
        self.ledger.transfer(*back)
        if "reserve" in legs and self.reserves is not None:
            # Back in the reserve, released with the disputed order's own reserve (or at once if that has passed).
            order = self.escrow.order(doc["order_id"])
            self.reserves.hold_again(order, f"dispute-{dispute_id}", Money(legs["reserve"].amount, legs["reserve"].currency))

    def _book_fees(self, doc: dict) -> set[str]:
        """The card processor's dispute fee of each balance transaction not booked yet (a negative fee:
        given back); the balance transactions booked now."""
        from chalicelib.money import SUPPORTED_CURRENCIES

        booked = set()
        for txn_id, move in sorted(doc["moves"].items()):
            fee = move["fee"]
            if txn_id in (doc.get("booked") or {}).get("fees", []):
                continue
            if not fee["amount"] or fee["currency"] not in SUPPORTED_CURRENCIES:
                continue
            expense = dispute_fee_account_id(fee["currency"])
            self.ledger.create_account(expense, fee["currency"], "expense")
            psp = psp_account_id(fee["currency"])
            debit, credit = (expense, psp) if fee["amount"] > 0 else (psp, expense)
            self.ledger.transfer(Transfer(f"dispute:{doc['dispute_id']}:fee:{txn_id}", debit, credit, abs(fee["amount"]),
                                          fee["currency"], code=FEE_CODE, reference=doc["payment_intent_id"] or ""))
            booked.add(txn_id)
        return booked

    def _note(self, doc: dict, what: str) -> None:
        recovery = doc.get("recovery") or {}
        if what == "withdrawn":
            taken = ", ".join(f"{k} {Money(v['amount'], v['currency'])}" for k, v in recovery.items() if v["amount"])
            detail = f"dispute {doc['dispute_id']}: the card network took {Money(**_m(doc['amount']))}" + (
                f" (from {taken})" if taken else "")
        else:
            detail = f"dispute {doc['dispute_id']}: the card network gave {Money(**_m(doc['amount']))} back"
        self.escrow.note_dispute(doc["order_id"], f"dispute_funds_{what}", detail)

    # -- evidence and the seller's SMS ----------------------------------------------------------
    def _submit_evidence(self, doc: dict) -> None:
        from chalicelib.disputes.evidence import evidence_for

        order = self.escrow.order(doc["order_id"])
        self.gateway.submit_evidence(doc["dispute_id"], evidence_for(order), f"mizani:{doc['dispute_id']}:evidence",
                                     metadata={"order_id": doc["order_id"]})

    def _text_seller(self, doc: dict) -> None:
        if self.outbox is None:
            return
        from chalicelib.disputes.messages import dispute_text

        order = self.escrow.order(doc["order_id"])
        self.outbox.enqueue(f"dispute:{doc['dispute_id']}", order["payout_route"]["msisdn"],
                            dispute_text(order, doc, after_release=doc["stage"] == RELEASED))
        try:
            self.outbox.drain()
        except MizaniError as error:  # a text never holds up the money
            log.warning("dispute %s: SMS not sent yet: %s", doc["dispute_id"], error)

    # -- reads -------------------------------------------------------------------------------------
    def get(self, principal, dispute_id: str) -> dict:
        """A dispute for finance and admins, or for the seller of its order (404 for anyone else)."""
        doc = self.docs.get(f"dispute#{dispute_id}") if isinstance(dispute_id, str) else None
        if doc is None or (principal.role == "seller" and doc["seller_id"] != principal.sub) \
                or principal.role not in ("seller", "finance", "admin"):
            raise NotFound("not_found", "no such dispute")
        return public_dispute(doc)

    def page(self, status: str | None, limit: int, cursor: str | None) -> dict:
        """Disputes newest first, one page; ``status`` keeps only that status."""
        found, following = matching_page(self.docs, INDEX, limit, cursor, lambda d: status in (None, d["status"]))
        disputes = [public_dispute(d) for d in found]
        return {"disputes": disputes, "has_more": following is not None, "next_cursor": following}


def _m(money: dict) -> dict:
    return {"minor": money["amount"], "currency": money["currency"]}


def reserve_release_at(order: dict, days: int) -> datetime:
    """When an order's reserve is released: ``days`` after its card payment."""
    paid = next((e["at"] for e in order["timeline"] if e["status"] == "paid"), order["created_at"])
    return datetime.fromisoformat(paid.replace("Z", "+00:00")) + timedelta(days=days)
