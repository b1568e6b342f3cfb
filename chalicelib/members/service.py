"""Registering a co-operative's members, listing them, and their balances.

A member is registered like a seller (the wallet validated for its rail, the rail asked whether
the wallet is active and whose it is, the number claimed once): ``member#<id>``, indexed under
its co-operative (``members#seller#<seller_id>``, oldest first), with its ledger account
``member:<id>`` made before the document, so a registered member always has its account.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from chalicelib import payees, phones, rails
from chalicelib.accounts import member_account_id
from chalicelib.documents import DocumentExists, Documents
from chalicelib.errors import Conflict, NotFound, ValidationError
from chalicelib.ids import derived_id
from chalicelib.ledger import AccountFlag, Ledger
from chalicelib.money import Money, check_currency
from chalicelib.wallets import WalletRegistry


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def public_member(doc: dict) -> dict:
    keys = ("member_id", "seller_id", "name", "payout", "status", "name_check", "payee_checked_at", "created_at")
    return {**{k: doc.get(k) for k in keys}, "kyc_tier": doc.get("kyc_tier", 0), "screening": doc.get("screening")}


class MemberService:
    """A co-operative's members (see the module doc). ``payee_rails``: rail name -> PayoutRail."""

    screening = None  # a ScreeningService (``bootstrap`` sets it): names screened at registration

    def __init__(self, docs: Documents, ledger: Ledger, settings, payee_rails=None, clock: Callable[[], datetime] = _utc_now):
        self.docs = docs
        self.ledger = ledger
        self.settings = settings
        self.payee_rails = payee_rails
        self.clock = clock
        self.wallets = WalletRegistry(docs)

    def register(self, seller: dict, name: str, payout: dict) -> dict:
        """Register a member of ``seller`` (the co-operative's document), paid to its own wallet in the
        co-operative's payout currency. The same member again (same number, same name) is the
        stored one; a number registered to anyone else is ``msisdn_taken``."""
        seller_id = seller["seller_id"]
        rail, currency = payout["rail"], check_currency(payout["currency"])
        if currency != seller["payout"]["currency"]:
            raise ValidationError("validation_error", f"members are paid in the co-operative's payout currency, "
                                  f"{seller['payout']['currency']}", path="payout.currency")
        wallet = phones.wallet_for_rail(payout["msisdn"], rails.rail(rail), currency, local_stage=self.settings.is_local)
        member_id = derived_id("mem_", seller_id, wallet.e164, length=16)
        route = {"rail": rail, "msisdn": wallet.e164, "currency": currency}
        existing = self.docs.get(f"member#{member_id}")
        if existing is not None:
            if (existing["name"], existing["payout"]) != (name, route):
                raise Conflict("msisdn_taken", "this wallet number is already registered to another member")
            return existing
        shareable = rails.rail(rail).shareable(wallet.e164, self.settings.is_local)
        owner = self.wallets.owner(wallet.e164)
        if owner is not None and (owner.seller_id, owner.member_id) != (seller_id, member_id) and not shareable:
            raise Conflict("msisdn_taken", "this wallet number is already registered to another seller or member")
        check = self.payee_rails(rail).check_payee(wallet.e164, currency) if self.payee_rails else None
        now = self.clock()
        member = {"member_id": member_id, "seller_id": seller_id, "name": name, "payout": route,
                  **payees.assess(check, name, now), "created_at": _iso(now)}
        if self.screening is not None:  # sanctions: a possible match is registered in review, its payouts wait
            member.update(self.screening.at_registration("member", seller_id, member_id, name))
        self.wallets.claim(wallet.e164, seller_id, member_id, shareable=shareable)
        self.ledger.create_account(member_account_id(member_id), currency, "liability",
                                   [AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS])
        try:
            self.docs.put_new(f"member#{member_id}", member, index=(f"members#seller#{seller_id}", f"{member['created_at']}#{member_id}"))
        except DocumentExists:  # the same registration, concurrently
            return self.docs.get(f"member#{member_id}")
        return member

    def get(self, seller_id: str, member_id: str) -> dict:
        """The member of that co-operative (404 for another co-operative's member, as for a missing one)."""
        member = self.docs.get(f"member#{member_id}") if isinstance(member_id, str) else None
        if member is None or member["seller_id"] != seller_id:
            raise NotFound("not_found", "no such member")
        return member

    def with_balance(self, member: dict) -> dict:
        currency = member["payout"]["currency"]
        account = self.ledger.get_account(member_account_id(member["member_id"]))
        return {**public_member(member), "balance": {
            "available": Money(account.available if account else 0, currency).to_json(),
            "payout_pending": Money(account.debits_pending if account else 0, currency).to_json(),
        }}

    def page(self, seller_id: str, limit: int = 20, cursor: str | None = None) -> tuple[list[dict], str | None]:
        found, following = self.docs.query_page(f"members#seller#{seller_id}", limit, cursor, newest_first=False)
        return [public_member(m) for m in found], following

    def named(self, seller_id: str, member_ids: list[str]) -> dict[str, dict]:
        """The co-operative's members named by an allocation, each once; any other is a 400 naming it."""
        found: dict[str, dict] = {}
        for i, member_id in enumerate(member_ids):
            path = f"shares.{i}.member_id"
            if member_id in found:
                raise ValidationError("validation_error", f"member {member_id} is named twice", path=path)
            member = self.docs.get(f"member#{member_id}")
            if member is None or member["seller_id"] != seller_id:
                raise ValidationError("unknown_member", f"{member_id} is not a member of this co-operative", path=path)
            found[member_id] = member
        return found

    def set_status(self, seller_id: str, member_id: str, status: str, by: str) -> dict:
        """An admin clears a member under review (``active``) or stops paying it (``blocked``)."""
        self.get(seller_id, member_id)
        now = _iso(self.clock())

        def mutate(member: dict) -> dict | None:
            if member.get("status", payees.ACTIVE) == status:
                return None
            return {**member, "status": status, "status_changed_at": now, "status_changed_by": by}

        return self.docs.update(f"member#{member_id}", mutate)
