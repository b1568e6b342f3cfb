"""What a card dispute does to an order (escrow owns the order; ``chalicelib.disputes`` the money).

Before release, a dispute holds the order: status ``disputed`` (``hold_for_dispute``), decided in
the order's conditional update, so a dispute racing the release is either before it (the release
task then finds the order disputed and waits) or after it (the money comes from the seller's side).
While disputed:

- a customs decision is accepted and recorded (``customs_while_disputed``) and answers the
  AwaitCustoms task, but ``release_escrow`` and ``refund`` answer ``disputed`` and the workflow
  waits in ``AwaitDispute*`` (``dispute_wait`` keeps its task token);
- the shipment cannot be recorded (409 ``invalid_state``).

When the dispute closes (``dispute_closed``): kept (won, or an inquiry closed) -> the order goes back
to ``status_before_dispute`` and the waiting workflow goes on (release if customs cleared, refund
if it refused); lost -> ``charged_back``, and the workflow ends there.
"""
from __future__ import annotations

from chalicelib.errors import InvalidState
from chalicelib.escrow.model import OrderStatus

S = OrderStatus
#: Where an order can be held by a dispute: paid, not released.
HOLDABLE = frozenset({S.PAID.value, S.SHIPPED.value, S.CUSTOMS_CLEARED.value})
#: The order has been released to the seller (the money left escrow).
RELEASED_STATUSES = frozenset({S.RELEASED.value, S.PAYOUT_PENDING.value, S.SETTLED.value, S.PAYOUT_FAILED.value})
#: The Step Functions error a lost dispute ends the waiting workflow with (``infra/escrow.asl.json``).
CHARGED_BACK_ERROR = "ChargedBack"

HELD, RELEASED, OTHER = "held", "released", "other"


def order_disputed(order_id: str) -> InvalidState:
    """The error a workflow step gets for a disputed order (code ``disputed``; the task turns it into
    the Step Functions error ``OrderDisputed``, and the workflow waits for the dispute)."""
    return InvalidState("disputed", f"order {order_id} is disputed; nothing moves until the dispute closes")


class OrderDisputes:
    """Mixed into ``EscrowService``: uses its documents, clock, ``_now`` and workflow."""

    def hold_for_dispute(self, order_id: str, dispute_id: str, status: str) -> tuple[str, dict]:
        """Hold a paid, unreleased order for the dispute ``dispute_id``: (``held``, order). An order
        already released answers (``released``, order); any other (refunded, in review) (``other``, order).
        Repeating it changes nothing."""
        outcome = []

        def mutate(order: dict) -> dict | None:
            outcome.clear()
            current = order["status"]
            dispute = {"dispute_id": dispute_id, "status": status}
            if current == S.DISPUTED.value and (order.get("dispute") or {}).get("dispute_id") == dispute_id:
                outcome.append(HELD)
                return None
            if current in HOLDABLE:
                outcome.append(HELD)
                at = self._stamp()
                entry = {"status": S.DISPUTED.value, "at": at, "detail": f"card payment disputed ({dispute_id}); held"}
                return {**order, "status": S.DISPUTED.value, "status_before_dispute": current, "dispute": dispute,
                        "timeline": order["timeline"] + [entry], "updated_at": at}
            outcome.append(RELEASED if current in RELEASED_STATUSES else OTHER)
            if (order.get("dispute") or {}).get("dispute_id") == dispute_id:
                return None
            at = self._stamp()
            entry = {"status": "disputed_after_release" if current in RELEASED_STATUSES else "disputed", "at": at,
                     "detail": f"card payment disputed ({dispute_id})"}
            return {**order, "dispute": dispute, "timeline": order["timeline"] + [entry], "updated_at": at}

        order = self.docs.update(f"order#{order_id}", mutate)
        return outcome[0], order

    def customs_while_disputed(self, order: dict, status: str, office: str, event_id: str, detail: str) -> dict:
        """A customs decision for a disputed order that was shipped: recorded, and the AwaitCustoms task
        answered, but the order stays ``disputed`` (won, it comes back as ``customs_cleared``)."""
        order_id = order["order_id"]
        customs = {"outcome": status, "office": office, "event_id": event_id}

        def mutate(doc: dict) -> dict:
            if doc["status"] != S.DISPUTED.value or doc.get("status_before_dispute") != S.SHIPPED.value \
                    or (doc.get("customs") or {}).get("outcome"):
                raise InvalidState("invalid_state", f"order {order_id} is {doc['status']}, not awaiting customs")
            at = self._stamp()
            entry = {"status": "customs_cleared" if status == "cleared" else "customs_rejected", "at": at,
                     "detail": f"{detail}; held while disputed"}
            before = S.CUSTOMS_CLEARED.value if status == "cleared" else doc["status_before_dispute"]
            return {**doc, "customs": customs, "status_before_dispute": before,
                    "timeline": doc["timeline"] + [entry], "updated_at": at}

        if status == "inspection":
            return self._note(order_id, "customs_inspection", detail)
        order = self.docs.update(f"order#{order_id}", mutate)
        self._deliver_customs_outcome(order)
        return order

    def dispute_wait(self, order_id: str, task_token: str) -> dict:
        """AwaitDispute task body: keep the token; if the dispute has closed meanwhile, answer now."""
        order = self.docs.update(f"order#{order_id}", lambda doc: {**doc, "dispute_task_token": task_token})
        if order["status"] != S.DISPUTED.value:
            self._answer_dispute_wait(order)
        return order

    def dispute_closed(self, order_id: str, dispute_id: str, kept: bool, status: str) -> dict:
        """The dispute closed: kept -> the order continues where it stood; lost -> ``charged_back``.
        For an order no longer held (released, refunded) only its timeline and ``dispute`` change."""

        def mutate(order: dict) -> dict | None:
            dispute = order.get("dispute") or {}
            if dispute.get("dispute_id") != dispute_id or dispute.get("closed"):
                return None
            at = self._stamp()
            closed = {**dispute, "status": status, "closed": True}
            if order["status"] != S.DISPUTED.value:
                entry = {"status": "dispute_won" if kept else "dispute_lost", "at": at, "detail": f"dispute {dispute_id} {status}"}
                return {**order, "dispute": closed, "timeline": order["timeline"] + [entry], "updated_at": at}
            to = order["status_before_dispute"] if kept else S.CHARGED_BACK.value
            detail = f"dispute {dispute_id} {status}: " + (
                "the order continues" if kept else "the card network took the money back; nothing is paid out")
            entry = {"status": to, "at": at, "detail": detail}
            return {**order, "status": to, "dispute": closed, "timeline": order["timeline"] + [entry], "updated_at": at}

        order = self.docs.update(f"order#{order_id}", mutate)
        if order["status"] == S.CHARGED_BACK.value and getattr(self, "fx_positions", None) is not None:
            # Charged back: nothing will be converted; the guarantee leaves the FX capacity (idempotent, so a
            # repeated webhook after a crash here finishes it).
            self.fx_positions.cancel(order_id)
        self._answer_dispute_wait(order)
        return order

    def _answer_dispute_wait(self, order: dict) -> None:
        token = order.get("dispute_task_token")
        if not token or order["status"] == S.DISPUTED.value:
            return
        if order["status"] == S.CHARGED_BACK.value:
            self.workflow.fail(token, CHARGED_BACK_ERROR, "the dispute was lost")
        else:
            self.workflow.succeed(token, {"dispute": "closed", "status": order["status"]})

    def note_dispute(self, order_id: str, status: str, detail: str) -> dict:
        """A timeline entry about the dispute's money (once per detail)."""
        return self._note(order_id, status, detail)

    def ensure_release_booked(self, order_id: str) -> dict:
        """A released order whose release chain may not be committed yet (the task crashed between the
        status and the money): finish it now (the chain replays under its ids)."""
        order = self.order(order_id)
        if order["status"] == S.RELEASED.value:
            order = self.release_escrow(order_id)
        return order

    def refund_rest_after_chargeback(self, order_id: str) -> None:
        """A partial dispute lost before release: the card network took part of the payment back, and
        what is left in escrow goes back to the buyer too (the order is not fulfilled). Stripe first
        under a fixed key, then the ledger; a retry finds the escrow empty, or replays both."""
        from chalicelib.accounts import escrow_account_id, psp_account_id
        from chalicelib.ledger import Transfer
        from chalicelib.money import Money

        escrow = self.ledger.get_account(escrow_account_id(order_id))
        rest = escrow.available if escrow else 0
        if rest <= 0:
            return
        order = self.order(order_id)
        pi = order["payment"]["payment_intent_id"]
        money = Money(rest, order["pay"]["currency"])
        refund = self.cards.refund(pi, money, idempotency_key=f"mizani:{order_id}:refund-rest")
        self.ledger.transfer(Transfer(f"refund:{order_id}:rest", escrow_account_id(order_id), psp_account_id(money.currency),
                                      rest, money.currency, code="card_refund", reference=pi))
        self._note(order_id, "refunded_rest", f"{money} not disputed, refunded to the buyer ({refund.refund_id})")

    # -- the chargeback reserve (``chalicelib/disputes/reserve.py``) -------------------------------
    def reserve_at_release(self, order: dict) -> dict | None:
        """What of this order's payout the seller's ``reserve_bps`` holds back (Money JSON, or None):
        rounded UP to the rail's step so what is paid out stays whole; for an allocated order at most
        what the co-operative retains (members' shares are never held)."""
        from chalicelib import rails
        from chalicelib.disputes.reserve import reserve_amount
        from chalicelib.money import Money

        seller = self.docs.get(f"seller#{order['seller_id']}") or {}
        bps = int(seller.get("reserve_bps") or 0)
        payout = order["payout"]
        step = rails.rail(order["payout_route"]["rail"]).step(payout["currency"])
        amount = reserve_amount(payout["amount"], bps, step)
        if order.get("allocation"):
            amount = min(amount, order["allocation"]["retained"]["amount"])
        return Money(amount, payout["currency"]).to_json() if amount else None

    def reserve_legs(self, order: dict, source_account_id: str) -> list:
        """The release chain's leg into ``reserve:<seller>`` (none without a reserve)."""
        from chalicelib.disputes.reserve import ensure_reserve_account, hold_leg

        leg = hold_leg(order, source_account_id)
        if leg is None:
            return []
        ensure_reserve_account(self.ledger, order["seller_id"], leg.currency)
        return [leg]

    def reserve_tranche(self, order: dict) -> None:
        """After the chain committed: the tranche the schedule releases, 120 days after the card payment."""
        from chalicelib.disputes.reserve import release_at, write_tranche
        from chalicelib.money import Money

        reserve = order.get("reserve")
        if reserve and reserve["amount"]:
            days = getattr(self.settings, "reserve_days", 120)
            write_tranche(self.docs, order["order_id"], order, Money(reserve["amount"], reserve["currency"]),
                          release_at(order, days))

    def reserved(self, seller_id: str) -> int:
        """What the seller's reserve holds now."""
        from chalicelib.accounts import reserve_account_id

        account = self.ledger.get_account(reserve_account_id(seller_id))
        return account.balance if account else 0

    def _stamp(self) -> str:
        from datetime import timezone

        return self.clock().astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
