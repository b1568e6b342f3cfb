"""Who pays for a chargeback after release: the seller's reserve, then its available balance, then
the platform (``loss:chargebacks:<CUR>``). Pure arithmetic; the service reads the balances and the
ledger's conditions refuse a plan made from balances that moved meanwhile."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recovery:
    """How ``owed`` minor units are covered: ``reserve + balance + loss == owed``."""

    reserve: int
    balance: int
    loss: int


def split_recovery(owed: int, reserve_available: int, balance_available: int) -> Recovery:
    """The reserve first, then the available balance (money already on its way to a wallet is not
    available, so a sent payout is never reversed), then the loss account for what is left; the loss
    is more than zero only when both are exhausted."""
    if owed < 0:
        raise ValueError("owed is a non-negative amount")
    from_reserve = min(owed, max(reserve_available, 0))
    from_balance = min(owed - from_reserve, max(balance_available, 0))
    return Recovery(from_reserve, from_balance, owed - from_reserve - from_balance)
