"""The USSD service's one port to the rest of Mizani: who is calling, what they have, and a withdrawal.

The members package implements it (``chalicelib/members/directory.py``, ``bootstrap.directory()``):
``Caller`` for a wallet number (a co-operative's own or a member's), balances and lists as the
HTTP API shows them, and ``withdraw`` on the same payout service as
``POST /v1/sellers/{seller_id}/payouts`` (limits, splitting, holds, idempotency under
``request_key``). The USSD code never touches the ledger or a payout document itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from chalicelib.money import Money

SELLER = "seller"
MEMBER = "member"


@dataclass(frozen=True)
class Caller:
    """The party a wallet number belongs to."""

    kind: str  # "seller" (a co-operative's own number) or "member"
    seller_id: str
    member_id: str | None
    name: str
    msisdn: str  # E.164 digits, no "+"
    currency: str  # the wallet's (payout) currency

    @property
    def is_cooperative(self) -> bool:
        return self.kind == SELLER


@runtime_checkable
class Directory(Protocol):
    """What the USSD menu may ask of the platform (see the module docstring)."""

    def caller(self, msisdn: str) -> Caller | None:
        """The party registered with this wallet number (E.164 digits), or None."""

    def balance(self, caller: Caller) -> dict:
        """``{"available": Money, "in_escrow": list[Money], "payout_pending": Money}``
        (``in_escrow`` is empty for a member)."""

    def recent_payouts(self, caller: Caller, limit: int = 3) -> list[dict]:
        """The caller's newest payouts as the API shows them: ``amount`` ``{"amount", "currency"}``,
        ``status`` (pending, succeeded, failed), ``created_at`` (RFC 3339)."""

    def recent_orders(self, caller: Caller, limit: int = 3) -> list[dict]:
        """A co-operative's newest orders: ``order_id``, ``status``, ``payout`` ``{"amount", "currency"}``."""

    def withdraw(self, caller: Caller, amount: Money, request_key: str) -> dict:
        """Pay ``amount`` from the caller's available balance to their own wallet; the payout view
        (``amount``, ``status``, ...). The same ``request_key`` replays the first withdrawal.
        Raises ``BusinessRuleViolation`` (``insufficient_funds``, ``limit_exceeded``,
        ``payee_in_review``, ``payee_blocked``) or ``ProviderUnavailable``."""
