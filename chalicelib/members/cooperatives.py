"""What the co-operative routes ask: the seller's ownership checked once, then members or escrow.

``Cooperatives`` sits over ``EscrowService`` (sellers, orders, allocations) and ``MemberService``:
a seller sees and changes only its own members (another's answer 404, as missing ones do).
"""
from __future__ import annotations

from chalicelib.members.service import public_member


class Cooperatives:
    """The co-operative routes' service (see the module doc)."""

    def __init__(self, escrow, members):
        self.escrow = escrow
        self.members = members

    def register_member(self, principal, seller_id: str, name: str, payout: dict) -> dict:
        seller = self.escrow.get_seller(principal, seller_id)  # ownership: 404 if not theirs
        return public_member(self.members.register(seller, name, payout))

    def register_members(self, principal, seller_id: str, entries: list[tuple[str, dict]]) -> list[dict]:
        """Several members at once (the bulk form): the seller's ownership checked once for all."""
        seller = self.escrow.get_seller(principal, seller_id)  # ownership: 404 if not theirs
        return [public_member(m) for m in self.members.register_many(seller, entries)]

    def list_members(self, principal, seller_id: str, limit: int, cursor: str | None) -> dict:
        self.escrow.get_seller(principal, seller_id)
        found, following = self.members.page(seller_id, limit, cursor)
        return {"members": found, "has_more": following is not None, "next_cursor": following}

    def get_member(self, principal, seller_id: str, member_id: str) -> dict:
        self.escrow.get_seller(principal, seller_id)
        return self.members.with_balance(self.members.get(seller_id, member_id))

    def set_member_status(self, principal, seller_id: str, member_id: str, status: str) -> dict:
        self.escrow.get_seller(principal, seller_id)
        return public_member(self.members.set_status(seller_id, member_id, status, principal.sub))

    def allocate(self, principal, order_id: str, shares: list[tuple[str, int]], retain_bps: int) -> dict:
        order = self.escrow.get_order(principal, order_id)  # 404 unless the principal's order
        members = self.members.named(order["seller_id"], [member_id for member_id, _ in shares])
        return self.escrow.set_allocation(principal, order_id, shares, retain_bps, members)
