"""One order's whole story (``GET /v1/orders/{order_id}/story``): every ledger transfer of the order
with its two legs, every provider reference, and each reconcilable transfer's latest reconciliation.

Read only. The transfers are found where the order's money went: the history of its escrow account
(payment, fee, FX legs or release, refund, and anything else that touched the escrow; a conversion's
out leg, which never touches it, is found beside its in leg), of its
allocation account (members' shares), and its payout plan (each payout's reservation and the post or
void that resolved it). Which provider reports a transfer follows the reconciliation's own table
(``recon.ledger_records``): card payments and refunds are Stripe's, a posted payout belongs to the
rail of the float it left from. Internal movements (fee, FX legs, shares) have no provider: their
``reconciliation`` is ``null``; a reconcilable one no run has covered yet says ``not_reconciled``.

A buyer or seller sees the story of its own orders only (404 otherwise); the buyer does not see the
seller's wallet numbers, and neither sees the reconciliation outcomes (finance's own work).
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

from chalicelib.accounts import allocation_account_id, escrow_account_id
from chalicelib.ledger import TransferKind
from chalicelib.money import Money

#: What each transfer code is, in words (the console's timeline labels).
STEPS = {
    "card_payment": "payment into escrow",
    "card_refund": "refund to the buyer",
    "platform_fee": "platform fee",
    "escrow_release": "escrow released to the seller",
    "fx_leg": "FX leg",
    "member_share": "member's share",
    "payout": "payout",
    "payout_hold": "held for the payout",
    "payout_failed": "payout voided: back in the balance",
    "expiry": "reservation expired",
}
_REFUND_ID = re.compile(r"\brefund (re_[A-Za-z0-9_]+)")
_PAYMENT_REF_KEYS = ("payment_intent_id", "payment_id", "charge_id", "collection_id", "reference")


def _iso_ns(ns: int) -> str:
    """RFC 3339 UTC with microseconds (the width ``recon.runs`` stamps runs with, so they compare)."""
    return datetime.fromtimestamp(ns // 1000 / 1e6, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _provider_of(transfer) -> str | None:
    """Who reports this movement on a statement (``recon.ledger_records``' rule), or None (internal)."""
    if transfer.code in ("card_payment", "card_refund"):
        return "stripe"
    if transfer.code == "payout" and TransferKind(transfer.kind) in (TransferKind.POSTED, TransferKind.POST_PENDING):
        account = transfer.credit_account_id
        return account.split(":")[1] if account.startswith("float:") else None
    return None


def _step(transfer) -> str:
    label = STEPS.get(transfer.code, transfer.code or "transfer")
    kind = TransferKind(transfer.kind)
    if transfer.code == "fx_leg":
        label = "FX leg in: the platform takes the pay currency" if transfer.transfer_id.endswith(":fx-in") \
            else "FX leg out: the platform pays the payout currency"
    elif transfer.code == "payout_hold" and kind is TransferKind.VOID_PENDING:
        label = "hold let go: back in the balance" if transfer.transfer_id.endswith(":let-go") \
            else "hold taken over by the payouts' reservations"
    elif transfer.code == "payout" and kind is TransferKind.PENDING:
        label = "payout reserved"
    elif transfer.code == "payout" and kind is TransferKind.POST_PENDING:
        label = "payout paid to the wallet"
    return label


class OrderStories:
    """Builds stories from the services that own each part (see the module docstring)."""

    def __init__(self, escrow, ledger, payouts, treasury=None, runs=None):
        self.escrow = escrow
        self.ledger = ledger
        self.payouts = payouts
        self.treasury = treasury
        self.runs = runs

    def story(self, principal, order_id: str) -> dict:
        self.escrow.get_order(principal, order_id)  # 404 unless the caller may see it
        order = self.escrow.order(order_id)
        staff = principal.role in ("finance", "admin")
        payouts = self.payouts.for_order(order_id)
        ids = self._account_transfer_ids(escrow_account_id(order_id))
        if order.get("allocation"):
            ids += self._account_transfer_ids(allocation_account_id(order_id))
        ids += [p["payout_id"] for p in payouts]
        if order.get("payout_held"):  # what the release held for the payout (payouts/lines.py)
            from chalicelib.payouts.lines import hold_id, order_lines

            ids += [hold_id(order_id, line.member_id) for line in order_lines(order)]
        # A conversion's out leg (fx:<TO> -> the seller) never touches the escrow: it sits beside its in leg.
        ids += [i[: -len(":fx-in")] + ":fx-out" for i in ids if i.endswith(":fx-in")]
        records = self.ledger.get_transfers(dict.fromkeys(ids))
        resolutions = [r.resolved_by for r in records.values() if r.resolved_by and r.resolved_by not in records]
        records.update(self.ledger.get_transfers(resolutions))
        cache: dict = {}
        transfers = [self._transfer(r, staff, cache) for r in sorted(records.values(), key=lambda r: r.transfer.timestamp)]
        position = self.treasury.position(order_id) if self.treasury is not None else None
        view_payouts = [self._payout(p, principal) for p in payouts]
        return {
            "order_id": order_id,
            "status": order["status"],
            "buyer_id": order["buyer_id"],
            "seller_id": order["seller_id"],
            "total": order["total"], "pay": order["pay"], "fee": order["fee"], "payout": order["payout"],
            "rates": order.get("rates"),
            "shipment": order.get("shipment"),
            "customs": order.get("customs"),
            "timeline": order["timeline"],
            "transfers": transfers,
            "payouts": view_payouts,
            "references": self._references(order, view_payouts),
            "fx": position.to_json() if position is not None else None,
            "created_at": order["created_at"],
            "updated_at": order["updated_at"],
        }

    def _account_transfer_ids(self, account_id: str) -> list[str]:
        ids, cursor = [], None
        while True:
            page = self.ledger.history(account_id, limit=500, cursor=cursor)
            ids += [e.transfer_id for e in page.entries]
            if page.next_cursor is None:
                return ids
            cursor = page.next_cursor

    def _transfer(self, record, staff: bool, cache: dict) -> dict:
        t = record.transfer
        kind = TransferKind(t.kind)
        money = Money(t.amount, t.currency).to_json()
        status = record.status.value if record.status is not None else "posted"
        view = {
            "transfer_id": t.transfer_id,
            "step": _step(t),
            "code": t.code or None,
            "kind": kind.value,
            "status": status if kind is TransferKind.PENDING else (
                "posted" if kind in (TransferKind.POSTED, TransferKind.POST_PENDING) else "released"),
            "amount": money,
            "at": _iso_ns(t.timestamp),
            "reference": t.reference or None,
            "pending_id": t.pending_id or None,
            "resolved_by": record.resolved_by or None,
            "legs": [
                {"side": "debit", "account_id": t.debit_account_id, "amount": money},
                {"side": "credit", "account_id": t.credit_account_id, "amount": money},
            ],
            "meta": dict(t.meta) or None,
            "provider": _provider_of(t),
        }
        if staff:
            view["reconciliation"] = self._reconciliation(t, view["provider"], cache)
        return view

    def _reconciliation(self, t, provider: str | None, cache: dict) -> dict | None:
        if provider is None:
            return None  # internal to the ledger: no provider statement reports it
        found = None
        if self.runs is not None:
            day = datetime.fromtimestamp(t.timestamp / 1e9, tz=timezone.utc).date()
            found = self.runs.latest_outcome(provider, t.code, t.reference or t.transfer_id, t.transfer_id, day,
                                             booked_at=_iso_ns(t.timestamp), cache=cache)
        return found.to_json() if found is not None else {"outcome": "not_reconciled", "reconciliation_id": None,
                                                          "source": None, "classification": None,
                                                          "reconciled_at": None}

    @staticmethod
    def _payout(payout: dict, principal) -> dict:
        if principal.role == "buyer":  # the seller's wallets are not the buyer's business
            return {k: v for k, v in payout.items() if k not in ("msisdn", "member_id")}
        return payout

    @staticmethod
    def _references(order: dict, payouts: list[dict]) -> list[dict]:
        """Every id a provider knows this order by: the payment's, the refund's, each payout's."""
        refs = []
        payment = order.get("payment") or {}
        provider = payment.get("provider", "stripe")
        for key in _PAYMENT_REF_KEYS:
            value = payment.get(key)
            if isinstance(value, str) and value and not any(r["reference"] == value for r in refs):
                refs.append({"kind": key, "provider": provider, "reference": value})
        transfer = payment.get("bank_transfer")
        if isinstance(transfer, dict) and transfer.get("reference"):
            refs.append({"kind": "bank_transfer_reference", "provider": "bank", "reference": transfer["reference"]})
        for entry in order.get("timeline", []):
            found = _REFUND_ID.search(entry.get("detail") or "")
            if found:
                refs.append({"kind": "refund_id", "provider": provider, "reference": found.group(1)})
        for p in payouts:
            refs.append({"kind": "payout_id", "provider": p["rail"], "reference": p["payout_id"]})
            if p.get("provider_reference"):
                refs.append({"kind": "provider_reference", "provider": p["rail"], "reference": p["provider_reference"],
                             "payout_id": p["payout_id"]})
        return refs
