"""Sharing an order's guaranteed payout among the members who delivered it (API.md, allocation).

The payout less ``retain_bps`` is split pro rata by quantity; each share is rounded DOWN (to
the member's rail step, for a rail that pays whole units only); whatever rounding leaves,
and the retained basis points, stay with the co-operative. So, exactly and for any
quantities, ``sum(share amounts) + retained == payout``, and no share exceeds its pro rata part.
"""
from __future__ import annotations

from dataclasses import dataclass

MAX_BPS = 10_000


@dataclass(frozen=True)
class Share:
    """One member's part of a payout: the quantity delivered and the amount it earns (minor units)."""

    member_id: str
    quantity: int
    amount: int


@dataclass(frozen=True)
class Allocation:
    """An order's payout shared out: the members' shares and what the co-operative keeps."""

    shares: tuple[Share, ...]
    retained: int

    @property
    def total(self) -> int:
        return sum(s.amount for s in self.shares) + self.retained


def allocate(payout_minor: int, quantities: list[tuple[str, int]], retain_bps: int,
             steps: dict[str, int] | None = None) -> Allocation:
    """Split ``payout_minor`` by ``quantities`` ((member_id, quantity > 0), each member once).

    ``steps``: a member's rail's smallest payable amount in minor units (default 1)."""
    if not quantities:
        raise ValueError("an allocation needs at least one share")
    if not 0 <= retain_bps <= MAX_BPS:
        raise ValueError("retain_bps is between 0 and 10000")
    if any(q <= 0 for _, q in quantities):
        raise ValueError("quantities are positive")
    distributable = payout_minor * (MAX_BPS - retain_bps) // MAX_BPS  # rounded down: the remainder is retained
    total_quantity = sum(q for _, q in quantities)
    steps = steps or {}
    shares = []
    for member_id, quantity in quantities:
        step = steps.get(member_id, 1)
        amount = distributable * quantity // total_quantity  # DOWN
        shares.append(Share(member_id, quantity, amount // step * step))
    retained = payout_minor - sum(s.amount for s in shares)
    return Allocation(tuple(shares), retained)
