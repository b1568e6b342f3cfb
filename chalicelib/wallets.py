"""Who a wallet number belongs to: one seller or one member, never two.

A wallet number is claimed once, with one conditional write (``wallet#<E.164 digits>``), by the
party registered to it; a second party asking for the same number gets ``msisdn_taken`` (409).
The claim is also how a caller on a basic phone (USSD) is recognised: the number they dial
from names their party.

In the local stage MTN's sandbox test numbers may be shared (every demo seller may use them):
the first party to claim one is the one the number answers for.

``claim_many`` claims many numbers at once (a co-operative registering its members in bulk):
up to 100 in one transaction, so either every number is claimed or, if one is another's, none.
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.documents import DocumentExists, Documents
from chalicelib.errors import Conflict


@dataclass(frozen=True)
class WalletOwner:
    """The party a wallet number is registered to (``member_id`` ``None``: the seller's own wallet)."""

    msisdn: str
    seller_id: str
    member_id: str | None

    @property
    def party_key(self) -> str:
        return f"member#{self.member_id}" if self.member_id else f"seller#{self.seller_id}"


class WalletRegistry:
    """The one registry of wallet numbers (see the module doc)."""

    def __init__(self, docs: Documents):
        self.docs = docs

    def claim(self, msisdn: str, seller_id: str, member_id: str | None = None, shareable: bool = False) -> WalletOwner:
        """Register ``msisdn`` to the party, or confirm it already is; ``msisdn_taken`` if it is another's.

        ``shareable`` (a sandbox test number in the local stage): another party's claim is no refusal."""
        owner = WalletOwner(msisdn, seller_id, member_id)
        try:
            self.docs.put_new(f"wallet#{msisdn}", {"msisdn": msisdn, "seller_id": seller_id, "member_id": member_id})
            return owner
        except DocumentExists:
            existing = self.owner(msisdn)
        if existing == owner or shareable:
            return owner
        raise Conflict("msisdn_taken", "this wallet number is already registered to another seller or member")

    def claim_many(self, claims: list[tuple[WalletOwner, bool]]) -> None:
        """Claim each ``(owner, shareable)`` as ``claim`` does; ``msisdn_taken`` (its ``fields`` name
        the number) if one is another party's, and then, for up to ``TRANSACTION_ITEMS`` claims,
        none of them is written."""
        from chalicelib.members.batch import NewDocument, get_many, put_all_new

        wanted = {owner.msisdn: (owner, shareable) for owner, shareable in claims}

        def refuse_others(taken: list[NewDocument]) -> None:
            stored = get_many(self.docs, [(doc.pk, doc.sk) for doc in taken])
            for doc in taken:
                owner, shareable = wanted[doc.doc["msisdn"]]
                found = stored.get((doc.pk, doc.sk))
                existing = WalletOwner(found["msisdn"], found["seller_id"], found.get("member_id")) if found else None
                if existing != owner and not shareable:
                    raise Conflict("msisdn_taken", "this wallet number is already registered to another seller or member",
                                   msisdn=owner.msisdn)

        put_all_new(self.docs, [NewDocument(f"wallet#{o.msisdn}", {"msisdn": o.msisdn, "seller_id": o.seller_id,
                                                                  "member_id": o.member_id})
                                for o, _ in wanted.values()], on_taken=refuse_others)

    def owners(self, msisdns: list[str]) -> dict[str, WalletOwner]:
        """The owners of those of ``msisdns`` that are claimed (one batched read)."""
        from chalicelib.members.batch import get_many

        found = get_many(self.docs, [(f"wallet#{m}", "doc") for m in msisdns])
        return {doc["msisdn"]: WalletOwner(doc["msisdn"], doc["seller_id"], doc.get("member_id"))
                for doc in found.values() if doc}

    def owner(self, msisdn: str) -> WalletOwner | None:
        doc = self.docs.get(f"wallet#{msisdn}")
        if not doc:
            return None
        return WalletOwner(doc["msisdn"], doc["seller_id"], doc.get("member_id"))
