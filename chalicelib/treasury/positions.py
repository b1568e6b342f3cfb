"""FX positions: one per order whose buyer pays in one currency and whose seller is paid in another.

A position records what the order converts at release (``convert``: the pay amount less the
platform fee, in the pay currency) and what it guarantees (``payout``, in the payout currency),
with the mid rates (to USD) at checkout. Its life::

    open ──release (FX legs committed)──> released   realized P&L at the rates of the release
      └────refund (escrow back to the card)──> cancelled  no P&L: nothing was converted

Opening counts ``payout`` against the payout currency's capacity counter ``used``, closing
takes it off, each in the same atomic write as the position's own change of state. The limit
is a condition on that counter (``used <= limit - payout``): never read-then-write. Every step
is idempotent under the order id (a retried checkout or workflow task counts once).

Realized P&L of an order, in USD at the release's mid rates::

    convert × mid(pay→USD) − payout × mid(payout→USD)

that is, the locked rate (payout / convert) against the market rate at release, applied to the
amount converted: the spread earned plus (or minus) what the market did meanwhile.
"""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from typing import Iterable, Protocol

from chalicelib.money import Money, Rounding

OPEN, RELEASED, CANCELLED = "open", "released", "cancelled"


@dataclass(frozen=True)
class Position:
    """One order's FX position (see the module docstring). Amounts are minor units."""

    order_id: str
    pay_currency: str
    payout_currency: str
    convert_minor: int  # what release converts out of the pay currency (pay less the fee)
    payout_minor: int  # what the seller is guaranteed, payout currency
    opened_at: str
    locked_mid: dict  # {"<CUR>": "<mid to USD>"} at checkout, for both currencies
    seller_id: str = ""
    state: str = OPEN
    closed_at: str | None = None
    release_mid: dict | None = None  # at release
    realized_pnl_minor: int | None = None  # USD cents, released positions only

    @property
    def convert(self) -> Money:
        return Money(self.convert_minor, self.pay_currency)

    @property
    def payout(self) -> Money:
        return Money(self.payout_minor, self.payout_currency)

    @property
    def realized_pnl(self) -> Money | None:
        return None if self.realized_pnl_minor is None else Money(self.realized_pnl_minor, "USD")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Position":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def to_json(self) -> dict:
        """The position as the API shows it (the order story, the realized list)."""
        return {
            "order_id": self.order_id,
            "state": self.state,
            "convert": self.convert.to_json(),
            "payout": self.payout.to_json(),
            "locked_rate": format(locked_rate(self), "f"),
            "locked_mid_usd": dict(self.locked_mid),
            "release_mid_usd": dict(self.release_mid) if self.release_mid else None,
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "realized_pnl": self.realized_pnl.to_json() if self.realized_pnl is not None else None,
        }


def locked_rate(position: Position) -> Decimal:
    """Payout units per unit converted, all in (both quotes' spreads and roundings): 10 significant digits."""
    from chalicelib.fx.rates import to_significant

    rate = position.payout.to_decimal() / position.convert.to_decimal()
    return to_significant(rate, 10)


def value_usd(money: Money, mid_to_usd: Decimal) -> Decimal:
    """``money`` in USD (major units, unrounded) at ``mid_to_usd``."""
    return money.to_decimal() * mid_to_usd


def pnl_usd(position: Position, mids: dict[str, Decimal]) -> Money:
    """What the position earns in USD at ``mids`` (to USD): converted value less the guarantee,
    rounded HALF_EVEN (a report, not a movement of money)."""
    value = value_usd(position.convert, mids[position.pay_currency]) - value_usd(position.payout, mids[position.payout_currency])
    return Money.from_decimal(value, "USD", Rounding.HALF_EVEN)


class PositionStore(Protocol):
    """Where positions and the capacity counters live (``MemoryPositionStore``, ``DynamoPositionStore``)."""

    def open(self, position: Position, limit_minor: int | None) -> str | bool:
        """Store ``position`` and add its payout to its currency's counter, atomically, only while the
        counter stays within ``limit_minor`` (``None``: no limit). ``"opened"`` if this call opened it,
        ``"exists"`` if it was already open or closed (both true); False if it would cross the limit
        (nothing written)."""

    def close(self, order_id: str, state: str, closed_at: str, release_mid: dict | None,
              realized_pnl_minor: int | None, found: Position | None = None) -> Position | None:
        """Move an open position to ``state`` and take its payout off the counter, atomically (the
        realized P&L added to the running total); an already closed one is returned unchanged.
        ``found``: the position as the caller just read it (spares a read; the state condition decides)."""

    def get(self, order_id: str) -> Position | None: ...

    def open_positions(self) -> Iterable[Position]: ...

    def closed_page(self, limit: int, cursor: str | None) -> tuple[list[Position], str | None]:
        """Released and cancelled positions, the latest closed first."""

    def counters(self, currencies: Iterable[str]) -> dict[str, int]:
        """``used`` per currency (what open positions guarantee), 0 where never counted."""

    def realized_total(self) -> int:
        """The sum of every released position's realized P&L, USD cents."""


class MemoryPositionStore:
    """The in-memory twin: the same conditions, under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.positions: dict[str, Position] = {}
        self.used: dict[str, int] = {}
        self.realized = 0
        self._closed_order: list[str] = []

    def open(self, position, limit_minor):
        with self._lock:
            if position.order_id in self.positions:
                return "exists"
            used = self.used.get(position.payout_currency, 0)
            if limit_minor is not None and used + position.payout_minor > limit_minor:
                return False
            self.positions[position.order_id] = position
            self.used[position.payout_currency] = used + position.payout_minor
            return "opened"

    def close(self, order_id, state, closed_at, release_mid, realized_pnl_minor, found=None):
        with self._lock:
            found = self.positions.get(order_id)
            if found is None or found.state != OPEN:
                return found
            closed = replace(found, state=state, closed_at=closed_at, release_mid=release_mid,
                             realized_pnl_minor=realized_pnl_minor)
            self.positions[order_id] = closed
            self.used[found.payout_currency] -= found.payout_minor
            self.realized += realized_pnl_minor or 0
            self._closed_order.append(order_id)
            return closed

    def get(self, order_id):
        with self._lock:
            return self.positions.get(order_id)

    def open_positions(self):
        with self._lock:
            return [p for p in self.positions.values() if p.state == OPEN]

    def closed_page(self, limit, cursor):
        with self._lock:
            ids = list(reversed(self._closed_order))
        if cursor is not None and not cursor.isdigit():
            from chalicelib.errors import ValidationError

            raise ValidationError("invalid_cursor", "the cursor is not one this list gave", path="cursor")
        start = int(cursor or 0)
        page = [self.positions[i] for i in ids[start:start + limit]]
        return page, (str(start + limit) if start + limit < len(ids) else None)

    def counters(self, currencies):
        with self._lock:
            return {c: self.used.get(c, 0) for c in currencies}

    def realized_total(self):
        with self._lock:
            return self.realized
