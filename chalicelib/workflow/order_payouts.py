"""An order's payout as the escrow workflow drives it: escrow owns the order, payouts the money.

StartPayout, CheckPayout and Settle call this. It asks escrow to move the order's status
(``begin_payout``, ``finish_payout``) and payouts to plan, send and poll the order's
payouts, so neither package writes the other's documents.

An order with an allocation pays each member's share to that member's own wallet (escrow
moved the shares into the members' accounts at release); the co-operative keeps what it
retained, in its balance. Without one, the whole payout goes to the co-operative's wallet.
"""
from __future__ import annotations

from chalicelib.payouts.lines import order_lines


class OrderPayouts:
    """The three payout steps of the escrow workflow, over ``EscrowService`` and ``PayoutService``."""

    def __init__(self, escrow, payouts):
        self.escrow = escrow
        self.payouts = payouts

    def start_for_order(self, order_id: str) -> str:
        order = self.escrow.begin_payout(order_id)
        lines = order_lines(order)
        if not lines:  # no share big enough to send: it is all in the members' and the co-operative's balances
            return "succeeded"
        # An order released with its lines held (payouts/lines.py) has its money kept for these payouts.
        return self.payouts.start_for_order(order_id, order["seller_id"], lines, held=bool(order.get("payout_held")))

    def check_for_order(self, order_id: str) -> str:
        state = self.payouts.check_for_order(order_id)
        return self.start_for_order(order_id) if state is None else state

    def review(self, order_id: str, cause: str) -> dict:
        """ManualReview: the order is left for an operator. A payout the release held and that never
        started gives its holds up (the money is back in the payees' balances, to withdraw or to pay
        again); one whose swap began is finished, its payouts paid by the sweeper."""
        order = self.escrow.manual_review(order_id, cause)
        if order.get("payout_held") and order["status"] == "manual_review":
            self.payouts.let_go_of_holds(order_id, order["seller_id"], order_lines(order))
        return order

    def finish_for_order(self, order_id: str, outcome: str) -> dict:
        return self.escrow.finish_payout(order_id, outcome, self.payouts.summary_for_order(order_id))
