"""Payout limits per rail and currency, and splitting a payout to fit them.

Configured with ``MIZANI_PAYOUT_LIMITS`` (JSON, ``{"mtn_momo:RWF": {"min": 100,
"max_per_tx": 1000000, "max_per_day": 5000000}}``, minor units); the defaults are
each rail's registry entry (``chalicelib.rails``), shaped like the providers' wallet tiers.
"""
from __future__ import annotations

from chalicelib.errors import BusinessRuleViolation
from chalicelib.rails import RAILS, Limits

__all__ = ["Limits", "MAX_WITHDRAWAL_PARTS", "limits_for", "split"]


def limits_for(rail: str, currency: str, configured: dict | None = None) -> Limits:
    """The stage's limits for ``rail`` in ``currency`` (``Settings.payout_limits``), else the registry's."""
    if configured is None:
        from chalicelib import settings

        configured = settings.get().payout_limits
    key = f"{rail}:{currency}"
    if key in configured:
        c = configured[key]
        return Limits(int(c["min"]), int(c["max_per_tx"]), int(c["max_per_day"]))
    default = RAILS[rail].limits.get(currency) if rail in RAILS else None
    if default is None:
        raise BusinessRuleViolation("limit_exceeded", f"{rail} has no payout limits configured for {currency}")
    return default


#: At most this many parts for one withdrawal: its reservations are one linked ledger chain
#: (one ``TransactWriteItems``, 100 items), and the count is known before anything is built.
MAX_WITHDRAWAL_PARTS = 20


def split(amount: int, limits: Limits, step: int = 1, max_parts: int | None = None) -> list[int]:
    """Split ``amount`` into the fewest near-equal parts that each fit ``max_per_tx``.

    The parts add up to ``amount`` exactly, each is at least ``min_per_tx``, and each is a
    multiple of ``step`` (a rail that pays whole units: ``step`` = 100 for KES). With
    ``max_parts``, an amount that needs more parts is refused (``limit_exceeded``) before
    any part is built.
    """
    if amount < limits.min_per_tx:
        raise BusinessRuleViolation(
            "limit_exceeded", f"the smallest payout on this rail is {limits.min_per_tx} minor units", amount=amount
        )
    if amount % step:
        raise BusinessRuleViolation("amount_not_whole_units", "this rail pays whole units of the currency only")
    steps = amount // step
    parts = -(-amount // (limits.max_per_tx // step * step))
    if max_parts is not None and parts > max_parts:
        raise BusinessRuleViolation(
            "limit_exceeded", f"this amount would need {parts} payouts; at most {max_parts} are sent at once", amount=amount
        )
    base, extra = divmod(steps, parts)
    return [(base + (1 if i < extra else 0)) * step for i in range(parts)]
