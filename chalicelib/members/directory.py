"""The USSD menu's view of a caller: whose wallet number it is, and what that party has.

Implements ``chalicelib.ussd.directory.Directory`` over the real services: a number is a
co-operative's own (a seller) or one of its members' (``chalicelib.wallets``); balances
come from the ledger, payouts and orders from their documents, and a withdrawal goes
through ``PayoutService.withdraw``, the same path as ``POST /v1/sellers/{id}/payouts``.
"""
from __future__ import annotations

from chalicelib.escrow.service import Principal
from chalicelib.money import Money

_STAFF = Principal("ussd", "admin")  # the caller is authenticated by their number and PIN


def _money(view: dict) -> Money:
    return Money(view["amount"], view["currency"])


class PartyDirectory:
    """``Directory`` for the USSD service (see the module doc)."""

    def __init__(self, escrow, members, payouts):
        self.escrow = escrow
        self.members = members
        self.payouts = payouts

    def caller(self, msisdn: str):
        from chalicelib.ussd.directory import Caller

        owner = self.escrow.wallets.owner(str(msisdn).lstrip("+"))
        if owner is None:
            return None
        if owner.member_id:
            party = self.escrow.docs.get(f"member#{owner.member_id}")
            kind = "member"
        else:
            party = self.escrow.docs.get(f"seller#{owner.seller_id}")
            kind = "seller"
        if party is None:
            return None  # claimed by a registration that did not finish
        return Caller(kind=kind, seller_id=owner.seller_id, member_id=owner.member_id, name=party["name"],
                      msisdn=owner.msisdn, currency=party["payout"]["currency"])

    def balance(self, caller) -> dict:
        if caller.kind == "member":
            view = self.members.with_balance(self.members.get(caller.seller_id, caller.member_id))["balance"]
            return {"available": _money(view["available"]), "in_escrow": [], "payout_pending": _money(view["payout_pending"])}
        view = self.escrow.seller_balance(_STAFF, caller.seller_id)
        return {"available": _money(view["available"]), "in_escrow": [_money(m) for m in view["in_escrow"]],
                "payout_pending": _money(view["payout_pending"])}

    def recent_payouts(self, caller, limit: int = 3) -> list[dict]:
        if caller.kind == "member":
            return self.payouts.list_for_member(caller.member_id, limit)
        # the co-operative's own wallet's payouts (its list also holds its members')
        found, _ = self.payouts.page_for_seller(caller.seller_id, 50)
        return [p for p in found if not p.get("member_id")][:limit]

    def recent_orders(self, caller, limit: int = 3) -> list[dict]:
        if caller.kind != "seller":
            return []
        orders = self.escrow.docs.query_index(f"seller#{caller.seller_id}", limit=limit)
        return [{"order_id": o["order_id"], "status": o["status"], "payout": o["payout"]} for o in orders]

    def withdraw(self, caller, amount: Money, request_key: str) -> dict:
        if caller.kind == "member":
            party = self.members.get(caller.seller_id, caller.member_id)
        else:
            party = self.escrow.get_seller(_STAFF, caller.seller_id)
        return self.payouts.withdraw(party, amount, request_key)
