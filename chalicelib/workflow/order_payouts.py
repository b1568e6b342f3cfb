"""An order's payout as the escrow workflow drives it: escrow owns the order, payouts the money.

StartPayout, CheckPayout and Settle call this. It asks escrow to move the order's status
(``begin_payout``, ``finish_payout``) and payouts to plan, send and poll the order's
payouts, so neither package writes the other's documents.
"""
from __future__ import annotations

from chalicelib.money import Money


class OrderPayouts:
    """The three payout steps of the escrow workflow, over ``EscrowService`` and ``PayoutService``."""

    def __init__(self, escrow, payouts):
        self.escrow = escrow
        self.payouts = payouts

    def start_for_order(self, order_id: str) -> str:
        order = self.escrow.begin_payout(order_id)
        payout = Money(order["payout"]["amount"], order["payout"]["currency"])
        return self.payouts.start_for_order(order_id, order["seller_id"], payout, order["payout_route"])

    def check_for_order(self, order_id: str) -> str:
        state = self.payouts.check_for_order(order_id)
        return self.start_for_order(order_id) if state is None else state

    def finish_for_order(self, order_id: str, outcome: str) -> dict:
        return self.escrow.finish_payout(order_id, outcome, self.payouts.summary_for_order(order_id))
