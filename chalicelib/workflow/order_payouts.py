"""An order's payout as the escrow workflow drives it: escrow owns the order, payouts the money.

StartPayout, CheckPayout and Settle call this. It asks escrow to move the order's status
(``begin_payout``, ``finish_payout``) and payouts to plan, send and poll the order's
payouts, so neither package writes the other's documents.

An order with an allocation pays each member's share to that member's own wallet (escrow
moved the shares into the members' accounts at release); the co-operative keeps what it
retained, in its balance. Without one, the whole payout goes to the co-operative's wallet.
"""
from __future__ import annotations

from chalicelib.money import Money
from chalicelib.payouts.limits import limits_for
from chalicelib.payouts.service import PayoutLine


class OrderPayouts:
    """The three payout steps of the escrow workflow, over ``EscrowService`` and ``PayoutService``."""

    def __init__(self, escrow, payouts):
        self.escrow = escrow
        self.payouts = payouts

    def start_for_order(self, order_id: str) -> str:
        order = self.escrow.begin_payout(order_id)
        allocation = order.get("allocation")
        if allocation:
            # A share below its wallet's smallest payout is not sent: it stays in the member's balance,
            # to withdraw once later shares have added to it.
            lines = [PayoutLine(s["member_id"], Money(s["amount"]["amount"], s["amount"]["currency"]), s["route"])
                     for s in allocation["shares"]
                     if s["amount"]["amount"] >= limits_for(s["route"]["rail"], s["amount"]["currency"]).min_per_tx]
        else:
            # Less what the reserve holds against chargebacks (it stays in ``reserve:<seller>`` for 120 days).
            amount = order["payout"]["amount"] - (order.get("reserve") or {}).get("amount", 0)
            lines = [PayoutLine(None, Money(amount, order["payout"]["currency"]), order["payout_route"])] if amount else []
        if not lines:  # no share big enough to send: it is all in the members' and the co-operative's balances
            return "succeeded"
        return self.payouts.start_for_order(order_id, order["seller_id"], lines)

    def check_for_order(self, order_id: str) -> str:
        state = self.payouts.check_for_order(order_id)
        return self.start_for_order(order_id) if state is None else state

    def finish_for_order(self, order_id: str, outcome: str) -> dict:
        return self.escrow.finish_payout(order_id, outcome, self.payouts.summary_for_order(order_id))
