"""``FakeDirectory``: an in-memory ``Directory`` for tests, the bench and a sandbox without members."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone

from chalicelib.errors import BusinessRuleViolation, MizaniError
from chalicelib.money import Money
from chalicelib.ussd.directory import MEMBER, SELLER, Caller


@dataclass
class FakeParty:
    """One caller's arranged balances and lists (newest last)."""

    caller: Caller
    available: int = 0  # minor units
    in_escrow: list[Money] = field(default_factory=list)
    payout_pending: int = 0
    payouts: list[dict] = field(default_factory=list)  # newest last
    orders: list[dict] = field(default_factory=list)  # newest last


class FakeDirectory:
    """In-memory callers with balances. ``withdraw`` moves ``available`` to ``payout_pending`` once per
    ``request_key`` (a replay returns the first payout) and records every call in ``withdrawals``;
    ``fail_next(error)`` makes the next withdrawal raise ``error`` (nothing moves)."""

    def __init__(self) -> None:
        self.parties: dict[str, FakeParty] = {}
        self.withdrawals: list[tuple[str, Money, str]] = []  # (msisdn, amount, request_key) per call
        self._by_key: dict[str, dict] = {}
        self._errors: list[MizaniError] = []
        self._lock = threading.Lock()

    # -- arranging ------------------------------------------------------------------
    def add_seller(self, msisdn: str, name: str = "Abahuzamugambi Coffee Co-op", currency: str = "RWF",
                   available: int = 0, seller_id: str | None = None, **more) -> FakeParty:
        caller = Caller(SELLER, seller_id or f"seller-{msisdn}", None, name, msisdn, currency)
        return self._add(FakeParty(caller, available, **more))

    def add_member(self, msisdn: str, name: str = "Uwimana Jeanne", currency: str = "RWF", available: int = 0,
                   seller_id: str = "seller-coop", member_id: str | None = None, **more) -> FakeParty:
        caller = Caller(MEMBER, seller_id, member_id or f"member-{msisdn}", name, msisdn, currency)
        return self._add(FakeParty(caller, available, **more))

    def _add(self, party: FakeParty) -> FakeParty:
        self.parties[party.caller.msisdn] = party
        return party

    def fail_next(self, error: MizaniError) -> None:
        self._errors.append(error)

    # -- the port ---------------------------------------------------------------------
    def caller(self, msisdn: str) -> Caller | None:
        party = self.parties.get(str(msisdn).lstrip("+"))
        return party.caller if party else None

    def balance(self, caller: Caller) -> dict:
        party = self.parties[caller.msisdn]
        return {
            "available": Money(party.available, caller.currency),
            "in_escrow": list(party.in_escrow) if caller.kind == SELLER else [],
            "payout_pending": Money(party.payout_pending, caller.currency),
        }

    def recent_payouts(self, caller: Caller, limit: int = 3) -> list[dict]:
        return list(reversed(self.parties[caller.msisdn].payouts))[:limit]

    def recent_orders(self, caller: Caller, limit: int = 3) -> list[dict]:
        return list(reversed(self.parties[caller.msisdn].orders))[:limit] if caller.kind == SELLER else []

    def withdraw(self, caller: Caller, amount: Money, request_key: str) -> dict:
        with self._lock:
            self.withdrawals.append((caller.msisdn, amount, request_key))
            if request_key in self._by_key:
                return self._by_key[request_key]
            if self._errors:
                raise self._errors.pop(0)
            party = self.parties[caller.msisdn]
            if amount.currency != caller.currency or amount.minor <= 0:
                raise BusinessRuleViolation("validation_error", "bad amount")
            if amount.minor > party.available:
                raise BusinessRuleViolation("insufficient_funds", "the amount is more than the available balance")
            party.available -= amount.minor
            party.payout_pending += amount.minor
            now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
            payout = {"payout_id": f"po_fake_{len(self._by_key) + 1}", "amount": amount.to_json(), "status": "pending",
                      "msisdn": caller.msisdn, "created_at": now, "updated_at": now}
            party.payouts.append(payout)
            self._by_key[request_key] = payout
            return payout

    def paid_out(self, msisdn: str) -> int:
        """Minor units that left ``msisdn``'s available balance through ``withdraw``."""
        return sum(int(p["amount"]["amount"]) for p in self.parties[msisdn].payouts)
