"""An admin's changes to a party (a seller or a co-operative's member): ``PATCH`` of its status,
its chargeback reserve (``reserve_bps``, sellers only) and its KYC tier (``kyc_tier``).

Each change is one conditional update of the party's document (``Documents.update``); the same
change again changes nothing. The status goes through the services that own it (escrow for a
seller, members for a member); the other fields are written here.
"""
from __future__ import annotations

from datetime import datetime, timezone

from chalicelib.errors import ValidationError

#: KYC tiers (API.md): 0 a phone number only, 1 identity checked by the co-operative, 2 a registered business.
KYC_TIERS = (0, 1, 2)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class PartyAdmin:
    """``PATCH /v1/sellers/{id}`` and ``PATCH /v1/sellers/{id}/members/{member_id}`` (admin)."""

    def __init__(self, docs, escrow, members, clock=lambda: datetime.now(timezone.utc)):
        self.docs = docs
        self.escrow = escrow
        self.members = members
        self.clock = clock

    def update_seller(self, principal, seller_id: str, status=None, reserve_bps=None, kyc_tier=None) -> dict:
        _require_something(status, reserve_bps, kyc_tier)
        self.escrow.get_seller(principal, seller_id)  # 404 if missing
        if status is not None:
            self.escrow.set_seller_status(principal, seller_id, status)
        return self._set(f"seller#{seller_id}", principal.sub, reserve_bps=reserve_bps, kyc_tier=kyc_tier)

    def update_member(self, principal, seller_id: str, member_id: str, status=None, reserve_bps=None,
                      kyc_tier=None) -> dict:
        _require_something(status, reserve_bps, kyc_tier)
        if reserve_bps is not None:
            raise ValidationError("validation_error", "a reserve is held from a seller's payouts, not a member's",
                                  path="reserve_bps")
        self.escrow.get_seller(principal, seller_id)
        self.members.get(seller_id, member_id)
        if status is not None:
            self.members.set_status(seller_id, member_id, status, principal.sub)
        return self._set(f"member#{member_id}", principal.sub, kyc_tier=kyc_tier)

    def _set(self, key: str, by: str, **fields) -> dict:
        fields = {k: v for k, v in fields.items() if v is not None}

        def mutate(doc: dict) -> dict | None:
            if all(doc.get(k) == v for k, v in fields.items()):
                return None
            return {**doc, **fields, "changed_at": _iso(self.clock()), "changed_by": by}

        return self.docs.update(key, mutate)


def _require_something(*values) -> None:
    if all(v is None for v in values):
        raise ValidationError("validation_error", "send at least one of status, reserve_bps, kyc_tier", path="body")
