"""Orders and sellers as the API sees them, and the order's status machine."""
from __future__ import annotations

from enum import Enum


class OrderStatus(str, Enum):
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    SHIPPED = "shipped"
    CUSTOMS_CLEARED = "customs_cleared"
    RELEASED = "released"
    PAYOUT_PENDING = "payout_pending"
    SETTLED = "settled"
    REFUNDED = "refunded"
    PAYOUT_FAILED = "payout_failed"
    MANUAL_REVIEW = "manual_review"
    DISPUTED = "disputed"  # the buyer disputed the card payment before release: nothing is released until it closes
    CHARGED_BACK = "charged_back"  # a dispute before release was lost: the escrow went back to the card network


S = OrderStatus

#: Allowed transitions: status -> the statuses it may come from.
ALLOWED_FROM: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PAID: frozenset({S.AWAITING_PAYMENT}),
    S.SHIPPED: frozenset({S.PAID}),
    S.CUSTOMS_CLEARED: frozenset({S.SHIPPED}),
    S.RELEASED: frozenset({S.CUSTOMS_CLEARED}),
    S.PAYOUT_PENDING: frozenset({S.RELEASED, S.PAYOUT_FAILED}),
    S.SETTLED: frozenset({S.PAYOUT_PENDING, S.RELEASED}),
    S.PAYOUT_FAILED: frozenset({S.PAYOUT_PENDING}),
    # Refund only while the money is still in escrow: never after release.
    S.REFUNDED: frozenset({S.PAID, S.SHIPPED, S.MANUAL_REVIEW}),
    S.MANUAL_REVIEW: frozenset(set(OrderStatus) - {S.SETTLED, S.REFUNDED, S.MANUAL_REVIEW, S.CHARGED_BACK}),
    # A dispute before release holds the order where it stood; lost, it is charged back. Won, it goes back to
    # ``status_before_dispute`` (``escrow/disputes.py``: that step is not in this table, so no other step can
    # take an order out of ``disputed``).
    S.DISPUTED: frozenset({S.PAID, S.SHIPPED, S.CUSTOMS_CLEARED}),
    S.CHARGED_BACK: frozenset({S.DISPUTED}),
}

#: Statuses in which the buyer's money sits in the order's escrow account.
IN_ESCROW = frozenset({S.PAID, S.SHIPPED, S.CUSTOMS_CLEARED})

def public_seller(doc: dict) -> dict:
    """The seller as the API shows it: who, where it is paid, and whether it may be paid now."""
    keys = ("seller_id", "name", "country", "payout", "status", "name_check", "payee_checked_at", "created_at",
            "reserve_bps", "kyc_tier", "screening")
    return {k: doc.get(k) for k in keys if k in doc}


def public_allocation(order_id: str, allocation: dict) -> dict:
    """An order's allocation as API.md shows it (the wallet each share is paid to stays inside)."""
    return {
        "order_id": order_id,
        "shares": [{k: share[k] for k in ("member_id", "quantity", "amount")} for share in allocation["shares"]],
        "retained": allocation["retained"],
        "retain_bps": allocation.get("retain_bps", 0),
    }


def public_order(doc: dict, viewer=None) -> dict:
    """The order as API.md shows it to ``viewer`` (a ``Principal``; internal fields such as the
    task token stay inside). The card's ``client_secret`` lets its holder confirm the payment, so
    only the order's buyer sees it."""
    keys = (
        "order_id", "buyer_id", "seller_id", "status", "lines", "total", "pay", "fee", "payout",
        "tariff_free", "quotes", "payment", "shipment", "customs", "timeline", "created_at", "updated_at",
        "tariff_reason", "reserve", "refund",
    )
    view = {k: doc.get(k) for k in keys}
    dispute = doc.get("dispute")
    view["dispute"] = {k: dispute[k] for k in ("dispute_id", "status") if k in dispute} if dispute else None
    view["allocation"] = public_allocation(doc["order_id"], doc["allocation"]) if doc.get("allocation") else None
    is_buyer = viewer is not None and viewer.role == "buyer" and viewer.sub == doc.get("buyer_id")
    if isinstance(view["payment"], dict) and not is_buyer:
        view["payment"] = {k: v for k, v in view["payment"].items() if k != "client_secret"}
    return view
