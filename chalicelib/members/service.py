"""Registering a co-operative's members, listing them, and their balances.

A member is registered like a seller (the wallet validated for its rail, the rail asked whether
the wallet is active and whose it is, the number claimed once): ``member#<id>``, indexed under
its co-operative (``members#seller#<seller_id>``, oldest first), with its ledger account
``member:<id>`` made before the document, so a registered member always has its account.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from chalicelib import payees, phones, rails
from chalicelib.accounts import member_account_id
from chalicelib.documents import DocumentExists, Documents
from chalicelib.errors import BusinessRuleViolation, Conflict, NotFound, ValidationError
from chalicelib.ids import derived_id
from chalicelib.ledger import AccountFlag, Ledger
from chalicelib.money import Money, check_currency
from chalicelib.members.batch import NewDocument, get_many, put_all_new
from chalicelib.wallets import WalletOwner, WalletRegistry

#: Wallets asked about at once when members are registered in bulk (each ask is a call to the rail).
PAYEE_CHECK_THREADS = 8


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class _Plan:
    """One registration, checked: who the member is and where it is paid."""

    seller_id: str
    name: str
    rail: str
    currency: str
    msisdn: str  # E.164 digits
    member_id: str
    shareable: bool

    @property
    def route(self) -> dict:
        return {"rail": self.rail, "msisdn": self.msisdn, "currency": self.currency}

    def index(self, created_at: str) -> tuple[str, str]:
        """Its place in the co-operative's list, oldest first (each member of a batch has its own
        ``created_at``, in the order sent)."""
        return f"members#seller#{self.seller_id}", f"{created_at}#{self.member_id}"


@contextmanager
def _entry(i: int):
    """A refusal of one entry of a bulk registration names it: ``members.<i>.<field>``."""
    try:
        yield
    except ValidationError as error:
        raise ValidationError(error.code, error.message, path=f"members.{i}.{error.path}" if error.path else f"members.{i}",
                              **error.detail) from None
    except (Conflict, BusinessRuleViolation) as error:
        field = "payout.msisdn" if error.code in ("msisdn_taken", "payee_invalid") else ""
        raise type(error)(error.code, error.message, fields=[{"path": f"members.{i}" + (f".{field}" if field else ""),
                                                             "message": error.message}]) from None


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
        plan = self._plan(seller, name, payout)
        existing = self.docs.get(f"member#{plan.member_id}")
        if existing is not None:
            self._same_member(existing, plan)
            return existing
        self._wallet_free(self.wallets.owner(plan.msisdn), plan)
        member = self._screened(self._new_member(plan, self._payee_check(plan)))
        self.wallets.claim(plan.msisdn, plan.seller_id, plan.member_id, shareable=plan.shareable)
        self.ledger.create_account(member_account_id(plan.member_id), plan.currency, "liability",
                                   [AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS])
        try:
            self.docs.put_new(f"member#{plan.member_id}", member, index=plan.index(member["created_at"]))
        except DocumentExists:  # the same registration, concurrently
            return self.docs.get(f"member#{plan.member_id}")
        return member

    def register_many(self, seller: dict, entries: list[tuple[str, dict]]) -> list[dict]:
        """Register several members of ``seller`` at once (``POST .../members/batch``): each as
        ``register`` does, in a handful of requests instead of a dozen per member.

        Everything that can refuse is decided before anything is written: a malformed entry, a
        number named twice, a number already another's (``msisdn_taken``) or a wallet the rail
        says is inactive refuses the whole batch, naming the entry (``members.<i>...``). The
        wallet numbers are then claimed in one transaction (a number taken meanwhile refuses
        them all), the ledger accounts made, and the documents written in one transaction.
        Members already registered (the same name and number) are answered as stored."""
        plans = []
        for i, (name, payout) in enumerate(entries):
            with _entry(i):
                plans.append(self._plan(seller, name, payout))
        seen: dict[str, int] = {}
        for i, plan in enumerate(plans):
            if plan.msisdn in seen:
                raise ValidationError("validation_error", f"the wallet number {plan.msisdn} is also entry {seen[plan.msisdn]}",
                                      path=f"members.{i}.payout.msisdn")
            seen[plan.msisdn] = i
        stored = get_many(self.docs, [(f"member#{p.member_id}", "doc") for p in plans])
        existing = {}
        for i, plan in enumerate(plans):
            found = stored.get((f"member#{plan.member_id}", "doc"))
            if found is not None:
                with _entry(i):
                    self._same_member(found, plan)
                existing[i] = found
        new = [i for i in range(len(plans)) if i not in existing]
        owners = self.wallets.owners([plans[i].msisdn for i in new])
        for i in new:
            with _entry(i):
                self._wallet_free(owners.get(plans[i].msisdn), plans[i])
        checks = self._payee_checks([plans[i] for i in new])
        members = {}
        for i, check in zip(new, checks):
            with _entry(i):
                members[i] = self._new_member(plans[i], check)
        members = {i: self._screened(member) for i, member in members.items()}  # the first writes
        try:
            self.wallets.claim_many([(WalletOwner(plans[i].msisdn, plans[i].seller_id, plans[i].member_id), plans[i].shareable)
                                     for i in new])
        except Conflict as taken:  # a number claimed by another party since it was read above
            raise Conflict(taken.code, taken.message, fields=[{"path": f"members.{seen[taken.detail['msisdn']]}.payout.msisdn",
                                                               "message": taken.message}]) from None
        for i in new:
            self.ledger.create_account(member_account_id(plans[i].member_id), plans[i].currency, "liability",
                                       [AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS])
        written = put_all_new(self.docs, [NewDocument(f"member#{plans[i].member_id}", members[i],
                                                      index=plans[i].index(members[i]["created_at"])) for i in new])
        for i, ours in zip(new, written):
            if not ours:  # the same registration, concurrently: the stored document is the member
                members[i] = self.docs.get(f"member#{plans[i].member_id}")
        return [existing[i] if i in existing else members[i] for i in range(len(plans))]

    # -- the steps of a registration -------------------------------------------------------
    def _plan(self, seller: dict, name: str, payout: dict) -> "_Plan":
        """The member a registration names, checked (currency, wallet number for its rail); no I/O."""
        seller_id = seller["seller_id"]
        rail, currency = payout["rail"], check_currency(payout["currency"])
        if currency != seller["payout"]["currency"]:
            raise ValidationError("validation_error", f"members are paid in the co-operative's payout currency, "
                                  f"{seller['payout']['currency']}", path="payout.currency")
        wallet = phones.wallet_for_rail(payout["msisdn"], rails.rail(rail), currency, local_stage=self.settings.is_local)
        return _Plan(seller_id=seller_id, name=name, rail=rail, currency=currency, msisdn=wallet.e164,
                     member_id=derived_id("mem_", seller_id, wallet.e164, length=16),
                     shareable=rails.rail(rail).shareable(wallet.e164, self.settings.is_local))

    @staticmethod
    def _same_member(existing: dict, plan: "_Plan") -> None:
        if (existing["name"], existing["payout"]) != (plan.name, plan.route):
            raise Conflict("msisdn_taken", "this wallet number is already registered to another member")

    @staticmethod
    def _wallet_free(owner: WalletOwner | None, plan: "_Plan") -> None:
        if owner is not None and (owner.seller_id, owner.member_id) != (plan.seller_id, plan.member_id) and not plan.shareable:
            raise Conflict("msisdn_taken", "this wallet number is already registered to another seller or member")

    def _payee_check(self, plan: "_Plan"):
        return self.payee_rails(plan.rail).check_payee(plan.msisdn, plan.currency) if self.payee_rails else None

    def _payee_checks(self, plans: list["_Plan"]) -> list:
        """The rails asked about each wallet, ``PAYEE_CHECK_THREADS`` at a time (the wait is the rails')."""
        if len(plans) <= 1 or not self.payee_rails:
            return [self._payee_check(p) for p in plans]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(PAYEE_CHECK_THREADS, len(plans))) as pool:
            return list(pool.map(self._payee_check, plans))

    def _new_member(self, plan: "_Plan", check) -> dict:
        """The member's document (``payee_invalid`` if the rail says the wallet is inactive); no I/O."""
        now = self.clock()
        return {"member_id": plan.member_id, "seller_id": plan.seller_id, "name": plan.name, "payout": plan.route,
                **payees.assess(check, plan.name, now), "created_at": _iso(now)}

    def _screened(self, member: dict) -> dict:
        """Sanctions screening records the party (before its wallet is claimed, as for a seller); a
        possible match is registered in review and its payouts wait."""
        if self.screening is None:
            return member
        return {**member, **self.screening.at_registration("member", member["seller_id"], member["member_id"], member["name"])}

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
        """The co-operative's members named by an allocation, each once; any other is a 400 naming it
        (read in batches of 100: an allocation of 1,000 members is ten reads, not a thousand)."""
        named: set[str] = set()
        for i, member_id in enumerate(member_ids):
            if member_id in named:
                raise ValidationError("validation_error", f"member {member_id} is named twice", path=f"shares.{i}.member_id")
            named.add(member_id)
        stored = get_many(self.docs, [(f"member#{m}", "doc") for m in member_ids])
        found: dict[str, dict] = {}
        for i, member_id in enumerate(member_ids):
            member = stored.get((f"member#{member_id}", "doc"))
            if member is None or member.get("seller_id") != seller_id:
                raise ValidationError("unknown_member", f"{member_id} is not a member of this co-operative",
                                      path=f"shares.{i}.member_id")
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
