"""How an order's money arrives and goes back, whatever the payment method (``payments/methods.py``).

Mixed into ``EscrowService``. Every method lands the money the same way: one ledger transfer
``psp:<provider>:<CUR>`` → ``escrow:<order>`` with the method's ledger code, then the order is
``paid`` and the escrow workflow starts (named after the order). From there release is the same
for every method. What differs is who tells us the money arrived and how it goes back:

* Stripe (card, Alipay, WeChat Pay) and mobile-money collections report one payment of the order's
  exact amount: ``payment_received`` books it under ``pay:<order>``, so a duplicated, late or
  replayed report (a webhook, a callback, a poll) moves nothing twice. A payment of another amount
  is not booked: the order goes to ``manual_review``.
* A bank transfer is whatever the buyer's bank sent: ``bank_credit`` books every credit that carries
  the order's reference, under an id derived from the bank's own entry (a repeated camt.054 is the
  same entry), and the order is ``paid`` when the first credit is exactly the amount; a partial or
  an excess payment goes to ``manual_review`` stating what was received.

Refunds (``refund_other``, for the methods that are not Stripe's): a collection is given back to
the payer's wallet, reserved as a pending ledger transfer while the rail works and posted (or voided)
when the rail says; a bank transfer is recorded as owed (``refunds:owed:<CUR>``) and finance marks it
paid (``bank_refund_paid``) once it has sent the money back.
"""
from __future__ import annotations

from datetime import timezone

from chalicelib.accounts import escrow_account_id, psp_account_id, refunds_owed_account_id
from chalicelib.errors import InvalidState, ProviderUnavailable
from chalicelib.escrow.model import OrderStatus
from chalicelib.ids import derived_id
from chalicelib.ledger import AccountFlag, Transfer, TransferKind
from chalicelib.money import Money
from chalicelib.payments import methods

S = OrderStatus
DMNEC = AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS


class RefundPending(ProviderUnavailable):
    """The rail has not finished giving the money back yet; the refund step asks again (retryable)."""

    code = "refund_pending"


class OrderPayments:
    """Mixed into ``EscrowService``: uses its documents, ledger, workflow, ``_transition``, ``_note``."""

    # -- the money arrives -------------------------------------------------------------------
    def payment_received(self, order_id: str, amount: Money, provider_reference: str, detail: str | None = None,
                         current=None) -> dict:
        """The order's provider collected ``amount``: into escrow once, then ``paid`` and the workflow.

        The transfer and the step to ``paid`` are one atomic write (``_moved``); an order that no longer
        awaits its payment (under review, say) gets the money into escrow alone, as before. The
        transfer's id makes a duplicate or replayed report harmless; ``current``: the order as the
        caller just read it (``_read``)."""
        current = current or self._read(order_id)
        order = current.doc
        chosen = methods.of_order(order)
        expected = Money(order["pay"]["amount"], order["pay"]["currency"])
        if amount != expected:
            if order["status"] == S.AWAITING_PAYMENT.value:
                return self._transition(order_id, S.MANUAL_REVIEW, current=current,
                                        detail=f"payment of {amount} does not match the order's {expected}")
            return order
        currency = expected.currency
        self.ledger.create_account(escrow_account_id(order_id), currency, "liability", [DMNEC])
        pay = Transfer(f"pay:{order_id}", psp_account_id(currency, chosen.provider), escrow_account_id(order_id),
                       expected.minor, currency, code=chosen.ledger_code, reference=provider_reference)
        detail = detail or f"{chosen.display_name} payment {provider_reference}"
        if order["status"] == S.AWAITING_PAYMENT.value:
            try:
                order = self._moved(current, S.PAID, lambda _: ([pay], detail, None))
            except InvalidState:  # it moved on meanwhile (a review): the money goes into escrow all the same
                self.ledger.transfer(pay)
                order = self.order(order_id)
        else:
            self.ledger.transfer(pay)
        return self._after_paid(order)

    def _paid(self, order_id: str, detail: str) -> dict:
        order = self.order(order_id)
        if order["status"] == S.AWAITING_PAYMENT.value:
            try:
                order = self._transition(order_id, S.PAID, detail=detail)
            except InvalidState:
                order = self.order(order_id)
        return self._after_paid(order)

    def _after_paid(self, order: dict) -> dict:
        """A paid order: its SMS (once) and its workflow (named after the order: started once)."""
        order_id = order["order_id"]
        if order["status"] == S.PAID.value:
            self._sms("paid", order)
        if order["status"] in {S.PAID.value, S.SHIPPED.value}:
            self.workflow.start(order_id, {
                "order_id": order_id,
                "customs_timeout_seconds": self.settings.customs_timeout_seconds,
                "poll_seconds": self.settings.payout_poll_seconds,
            })
        return order

    def collection_failed(self, order_id: str, reason: str) -> dict:
        """The payer's wallet refused or the request expired: noted; nothing was collected."""
        return self._note(order_id, "payment_failed", f"mobile-money payment failed: {reason}")

    def bank_credit(self, order_id: str, amount: Money, entry_id: str, booked_on: str = "") -> dict:
        """A bank credit carrying the order's reference: booked into escrow (once per bank entry).

        The first credit of exactly the order's amount makes it ``paid``; any other amount (short,
        over, or a second payment) goes to ``manual_review`` with what has been received in all, the
        money staying in escrow until a human decides (a refund gives back all that was received)."""
        order = self.order(order_id)
        expected = Money(order["pay"]["amount"], order["pay"]["currency"])
        if amount.currency != expected.currency:
            return self._review_bank(order_id, f"a bank credit of {amount} for an order payable in {expected.currency} "
                                               f"was not booked ({entry_id})")
        escrow = escrow_account_id(order_id)
        self.ledger.create_account(escrow, expected.currency, "liability", [DMNEC])
        transfer_id = derived_id(f"pay:{order_id}:bank:", entry_id, length=16)
        # Only for what to say: the transfer's id alone decides that this entry is booked once.
        replay = self.ledger.get_transfer(transfer_id) is not None
        self.ledger.transfer(Transfer(transfer_id, psp_account_id(expected.currency, "bank"), escrow, amount.minor,
                                      expected.currency, code="bank_transfer", reference=order["payment"]["payment_id"]))
        held = self.ledger.get_account(escrow)
        received = Money(held.credits_posted, expected.currency)
        if order["status"] == S.AWAITING_PAYMENT.value and amount == expected:
            return self._paid(order_id, f"bank transfer of {amount} received ({entry_id}{', ' + booked_on if booked_on else ''})")
        if replay:
            return self.order(order_id)  # this very bank entry again (a repeated camt.054): nothing new
        what = "more than" if received > expected else "less than"
        return self._review_bank(order_id, f"bank transfer: {received} received in all, {what} the order's {expected} "
                                           f"(last credit {amount}, {entry_id})")

    def _review_bank(self, order_id: str, detail: str) -> dict:
        order = self.order(order_id)
        if order["status"] == S.MANUAL_REVIEW.value:
            return self._note(order_id, "bank_credit", detail)
        if order["status"] in (S.SETTLED.value, S.REFUNDED.value):
            return self._note(order_id, "bank_credit", detail)
        return self._transition(order_id, S.MANUAL_REVIEW, detail=detail)

    # -- the money goes back -------------------------------------------------------------------
    def refund_other(self, order: dict, chosen, reason: str) -> dict:
        """Refund an order not paid through Stripe: everything its escrow holds goes back."""
        order_id = order["order_id"]
        escrow = self.ledger.get_account(escrow_account_id(order_id))
        currency = order["pay"]["currency"]
        held = Money(max(escrow.balance, 0), currency)
        if not held.minor:
            return self._transition(order_id, S.MANUAL_REVIEW, detail="refund asked but nothing is in escrow")
        if chosen.kind == methods.BANK:
            # Recorded as owed: finance sends the transfer back and marks it paid (bank_refund_paid).
            self.ledger.create_account(refunds_owed_account_id(currency), currency, "liability")
            self.ledger.transfer(Transfer(f"refund:{order_id}", escrow_account_id(order_id),
                                          refunds_owed_account_id(currency), held.minor, currency,
                                          code="bank_refund_owed", reference=order["payment"]["payment_id"]))
            refund = {"status": "owed", "amount": held.to_json(), "reference": order["payment"]["payment_id"],
                      "owed_at": self._payment_stamp()}
            self._index_refund(order, refund)
            self._cancel_fx_position(order_id)
            return self._transition(order_id, S.REFUNDED, detail=f"{reason}; {held} owed back by bank transfer",
                                    fields={"refund": refund})
        # A collection: reserved while the rail gives it back; posted or voided on its word.
        pending_id = f"refund:{order_id}"
        psp = psp_account_id(currency, chosen.provider)
        self.ledger.transfer(Transfer(pending_id, escrow_account_id(order_id), psp, held.minor, currency,
                                      kind=TransferKind.PENDING, code=chosen.refund_code,
                                      reference=order["payment"]["payment_id"]))
        outcome = self.checkout.refund(order, chosen, held)
        if outcome.state == "succeeded":
            self.ledger.post(f"{pending_id}:post", pending_id, code=chosen.refund_code,
                             reference=order["payment"]["payment_id"])
            self._cancel_fx_position(order_id)
            return self._transition(order_id, S.REFUNDED, detail=f"{reason}; {held} back to the payer's "
                                    f"{chosen.display_name} wallet ({outcome.reference or 'refund'})",
                                    fields={"refund": {"status": "succeeded", "amount": held.to_json(),
                                                       "provider_reference": outcome.reference}})
        if outcome.state == "failed":
            self.ledger.void(f"{pending_id}:void", pending_id, code=chosen.refund_code,
                             reference=order["payment"]["payment_id"])
            return self._transition(order_id, S.MANUAL_REVIEW, detail=f"the {chosen.display_name} refund failed "
                                    f"({outcome.reason}); the money is in escrow")
        raise RefundPending(message=f"the {chosen.display_name} refund of {held} is still in progress")

    def _cancel_fx_position(self, order_id: str) -> None:
        if getattr(self, "fx_positions", None) is not None:
            self.fx_positions.cancel(order_id)  # nothing was converted: the guarantee is off the FX capacity

    def bank_refund_paid(self, order_id: str, bank_reference: str, principal_sub: str) -> dict:
        """Finance sent a bank refund back: owed → paid, once (a repeat answers the same order)."""
        order = self.order(order_id)
        refund = order.get("refund") or {}
        if methods.of_order(order).kind != methods.BANK or order["status"] != S.REFUNDED.value or not refund:
            raise InvalidState("invalid_state", f"order {order_id} has no bank refund owed")
        if refund.get("status") == "paid":
            return order
        amount = Money(refund["amount"]["amount"], refund["amount"]["currency"])
        self.ledger.transfer(Transfer(f"refund:{order_id}:paid", refunds_owed_account_id(amount.currency),
                                      psp_account_id(amount.currency, "bank"), amount.minor, amount.currency,
                                      code="bank_refund", reference=order["payment"]["payment_id"]))
        at = self._payment_stamp()

        def mutate(doc: dict) -> dict | None:
            current = doc.get("refund") or {}
            if current.get("status") == "paid":
                return None
            paid = {**current, "status": "paid", "paid_at": at, "paid_by": principal_sub, "bank_reference": bank_reference}
            entry = {"status": "refund_paid", "at": at, "detail": f"{amount} sent back by bank transfer ({bank_reference})"}
            return {**doc, "refund": paid, "timeline": doc["timeline"] + [entry], "updated_at": at}

        updated = self.docs.update(f"order#{order_id}", mutate)
        self._index_refund(updated, updated["refund"])
        return updated

    def _index_refund(self, order: dict, refund: dict) -> None:
        """The finance list of bank refunds by status (``GET /v1/refunds?status=``): one marker per status."""
        from chalicelib.documents import DocumentExists

        status = refund["status"]
        doc = {"order_id": order["order_id"], "buyer_id": order["buyer_id"], **refund}
        try:
            self.docs.put_new(f"refund#{order['order_id']}", doc, sk=f"status#{status}",
                              index=(f"refunds#{status}", f"{refund.get('owed_at') or ''}#{order['order_id']}"))
        except DocumentExists:
            pass
        if status == "paid":
            self.docs.delete(f"refund#{order['order_id']}", sk="status#owed")

    def refunds(self, status: str, limit: int, cursor: str | None) -> dict:
        found, following = self.docs.query_page(f"refunds#{status}", limit, cursor, newest_first=False)
        return {"refunds": found, "has_more": following is not None, "next_cursor": following}

    def payment_lookup(self, payment_id: str) -> dict:
        """Finance's question "which order is this payment?": a PaymentIntent id, a collection reference
        or a bank reference -> the order, its method, the amount and where it stands."""
        from chalicelib.errors import NotFound

        for prefix in ("pi#", "collection#", "bankref#"):
            link = self.docs.get(f"{prefix}{payment_id}") if isinstance(payment_id, str) else None
            if link and link.get("order_id"):
                order = self.order(link["order_id"])
                payment = order.get("payment") or {}
                view = {"payment_id": payment_id, "order_id": order["order_id"], "method": methods.of_order(order).name,
                        "amount": order["pay"], "order_status": order["status"]}
                if payment.get("bank_transfer"):
                    view["bank_transfer"] = payment["bank_transfer"]
                return view
        raise NotFound("not_found", "no payment with this id")

    def _payment_stamp(self) -> str:
        return self.clock().astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
