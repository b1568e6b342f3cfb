"""KYC tiers: what a party may be paid per day and per month, on the daily limit's own counters.

Every seller and member has a ``kyc_tier`` (0: a phone number only, 1: identity checked by the
co-operative, 2: a registered business; an admin sets it with ``PATCH``). ``MIZANI_TIER_LIMITS``
bounds each tier per currency, in minor units: ``{"0:RWF": {"per_day": 2000000, "per_month": 10000000},
"1:RWF": {...}}`` (a tier or currency not named is unbounded, beyond the rail's wallet limits).

The counters are ``Documents.add_within``/``add_all_within``, the conditional writes the wallet's
daily limit uses: ``tierday#<party>#<YYYY-MM-DD>`` and ``tiermonth#<party>#<YYYY-MM>``, each payout
counted once by its id, never past the limit. A withdrawal is counted whole before anything is
reserved (refused: ``422 limit_exceeded``, nothing counted stays); an order's payout over a limit
waits (``scheduled``, for the next day or the next month) as it does for the daily wallet limit. A
payout counted on one day and sent on another is counted again on the day it is sent; a failed
one gives its count back. (A count and the give-back of another are two writes: a crash between
leaves a count too high until the payout is advanced again, never one too low.)
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from chalicelib.errors import BusinessRuleViolation
from chalicelib.money import Money


@dataclass(frozen=True)
class TierLimits:
    per_day: int | None
    per_month: int | None


@dataclass(frozen=True)
class Refusal:
    reason: str  # tier_daily_limit | tier_monthly_limit
    not_before: str  # when a waiting payout may be tried again
    message: str

    def error(self) -> BusinessRuleViolation:
        return BusinessRuleViolation("limit_exceeded", self.message, reason=self.reason)


def tier_limits(tier: int, currency: str, configured: dict | None = None) -> TierLimits | None:
    """The limits of ``tier`` in ``currency`` (``Settings.tier_limits``), ``None`` when unbounded."""
    if configured is None:
        from chalicelib import settings

        configured = settings.get().tier_limits
    found = configured.get(f"{int(tier)}:{currency}")
    if not found:
        return None
    day, month = found.get("per_day"), found.get("per_month")
    return TierLimits(int(day) if day is not None else None, int(month) if month is not None else None)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def counter_keys(party: str, now: datetime) -> list[str]:
    day = now.astimezone(timezone.utc).date()
    return [f"tierday#{party}#{day.isoformat()}", f"tiermonth#{party}#{day.isoformat()[:7]}"]


class TierCounters:
    """The tier counters beside the documents (``docs``: the ``Documents`` port)."""

    def __init__(self, docs, configured: dict | None = None):
        self.docs = docs
        self.configured = configured

    def _limits_of(self, party_key: str, currency: str, party: dict | None = None) -> TierLimits | None:
        party = (party if party is not None else self.docs.get(party_key)) or {}
        return tier_limits(party.get("kyc_tier", 0) or 0, currency, self.configured)

    def admit(self, party_key: str, currency: str, parts: dict[str, int], now: datetime,
              party: dict | None = None) -> tuple[Refusal | None, list[str]]:
        """Count ``parts`` (payout id -> amount) against the party's day and month, all or none:
        (None, the counters' keys) if they fit, else (the refusal, []) with nothing counted.
        ``party``: its document as the caller just read it (spares a read)."""
        limits = self._limits_of(party_key, currency, party)
        if limits is None:
            return None, []
        day_key, month_key = counter_keys(party_key, now)
        total = Money(sum(parts.values()), currency)
        if limits.per_day is not None and not self.docs.add_all_within(day_key, parts, limits.per_day):
            tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), timezone.utc)
            return Refusal("tier_daily_limit", _iso(tomorrow),
                           f"this party's KYC tier may be paid at most {Money(limits.per_day, currency)} a day "
                           f"({total} would exceed it)"), []
        if limits.per_month is not None and not self.docs.add_all_within(month_key, parts, limits.per_month):
            for payout_id, amount in parts.items():  # all or none: the day's count is given back
                self.docs.remove_from(day_key, payout_id, amount)
            first = (now.date().replace(day=1) + timedelta(days=32)).replace(day=1)
            return Refusal("tier_monthly_limit", _iso(datetime.combine(first, datetime.min.time(), timezone.utc)),
                           f"this party's KYC tier may be paid at most {Money(limits.per_month, currency)} a month "
                           f"({total} would exceed it)"), []
        return None, [k for k, limit in ((day_key, limits.per_day), (month_key, limits.per_month)) if limit is not None]

    def admit_payout(self, payout: dict, party_key: str, amount: Money, now: datetime,
                     party: dict | None = None) -> tuple[Refusal | None, list[str]]:
        """A payout about to be sent: counted for today (again, if it was counted on another day)."""
        counted = payout.get("tier_keys") or []
        if counted and counted == [k for k in counter_keys(party_key, now) if k in counted]:
            return None, counted  # counted for today and this month already
        self.give_back(counted, payout["payout_id"], amount.minor)
        return self.admit(party_key, amount.currency, {payout["payout_id"]: amount.minor}, now, party=party)

    def give_back(self, keys: list[str], payout_id: str, amount: int) -> None:
        for key in keys or []:
            self.docs.remove_from(key, payout_id, amount)
