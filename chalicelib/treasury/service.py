"""``Treasury``: open an order's FX position at checkout, close it at release or refund, report exposure.

The escrow service calls ``reserve`` (checkout), ``settle`` (after the release chain committed)
and ``cancel`` (after the refund); each is idempotent under the order id. ``exposure()`` and
``closed_page()`` are the finance reads.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from chalicelib.accounts import escrow_account_id, fx_account_id
from chalicelib.errors import BusinessRuleViolation
from chalicelib.money import SUPPORTED_CURRENCIES, Money
from chalicelib.treasury.exposure import compute_exposure, mids_to_usd
from chalicelib.treasury.positions import CANCELLED, RELEASED, Position, PositionStore, pnl_usd

def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class FxCapacityExceeded(BusinessRuleViolation):
    """The order would take a currency's open FX exposure over the stage's limit (HTTP 422)."""

    code = "fx_capacity_exceeded"


class Treasury:
    """FX positions, capacity and exposure (``store``: a ``PositionStore``; ``limits``: currency → minor)."""

    def __init__(self, store: PositionStore, rate_source, ledger, limits: dict[str, int] | None = None,
                 clock: Callable[[], datetime] = _utc_now):
        self.store = store
        self.rate_source = rate_source
        self.ledger = ledger
        self.limits = dict(limits or {})
        self.clock = clock

    # -- the escrow journey ---------------------------------------------------------------
    def reserve(self, order_id: str, pay: Money, payout: Money, convert: Money, seller_id: str = "") -> Position | None:
        """Open the order's position at checkout, within the payout currency's limit, else
        ``fx_capacity_exceeded``. An order paid and paid out in one currency has none (``None``)."""
        if pay.currency == payout.currency:
            return None
        mids = mids_to_usd(self.rate_source.latest(), {pay.currency, payout.currency})
        position = Position(order_id=order_id, pay_currency=pay.currency, payout_currency=payout.currency,
                            convert_minor=convert.minor, payout_minor=payout.minor, opened_at=_iso(self.clock()),
                            locked_mid={c: format(m, "f")[:24] for c, m in sorted(mids.items())}, seller_id=seller_id)
        limit = self.limits.get(payout.currency)
        if limit is not None and payout.minor > limit:
            # Never fits, however empty the counter: only an earlier call may have opened it.
            if self.store.get(order_id) is None:
                raise self._exceeded(payout, limit)
            return self.store.get(order_id)
        opened = self.store.open(position, limit)
        if not opened:
            raise self._exceeded(payout, limit)
        # Opened now: it is the one just written (no read); opened before (a retried checkout): the stored one.
        return position if opened == "opened" else self.store.get(order_id)

    @staticmethod
    def _exceeded(payout: Money, limit: int) -> FxCapacityExceeded:
        return FxCapacityExceeded(
            "fx_capacity_exceeded",
            f"guaranteeing {payout} more would take the platform's open {payout.currency} exposure over its limit "
            f"of {Money(limit, payout.currency)}; try again after orders in flight are released",
            currency=payout.currency,
        )

    def settle(self, order_id: str) -> Position | None:
        """Close the position at release, recording its realized P&L at this moment's mid rates."""
        position = self.store.get(order_id)
        if position is None or position.state != "open":
            return position
        mids = mids_to_usd(self.rate_source.latest(), {position.pay_currency, position.payout_currency})
        pnl = pnl_usd(position, mids)
        return self.store.close(order_id, RELEASED, _iso(self.clock()),
                                {c: format(m, "f")[:24] for c, m in sorted(mids.items())}, pnl.minor, found=position)

    def cancel(self, order_id: str) -> Position | None:
        """Close the position of a refunded order: nothing was converted, no P&L."""
        position = self.store.get(order_id)
        if position is None or position.state != "open":
            return position
        return self.store.close(order_id, CANCELLED, _iso(self.clock()), None, None, found=position)

    # -- finance reads -------------------------------------------------------------------------
    def position(self, order_id: str) -> Position | None:
        return self.store.get(order_id)

    def exposure(self) -> dict:
        """``GET /v1/treasury/exposure``: open positions, their escrow, the fx accounts, today's rates."""
        positions = list(self.store.open_positions())
        escrows = self.ledger.get_accounts(escrow_account_id(p.order_id) for p in positions)
        balances = {a.account_id.split(":", 1)[1]: a.balance for a in escrows.values()}
        fx = self.ledger.get_accounts(fx_account_id(c) for c in sorted(SUPPORTED_CURRENCIES))
        fx_accounts = {a.currency: a for a in fx.values()}
        found = compute_exposure(positions, balances, fx_accounts, self.rate_source.latest(), self.limits,
                                 self.store.realized_total(), self.clock())
        # The capacity counters beside the sum of the positions: the two agree unless a write was lost.
        for currency, used in self.store.counters(found["currencies"]).items():
            found["currencies"][currency]["capacity_used"] = Money(used, currency).to_json()
        return found

    def closed_page(self, limit: int = 20, cursor: str | None = None) -> dict:
        """Released and cancelled positions, latest first, with each release's realized P&L."""
        found, following = self.store.closed_page(limit, cursor)
        return {"positions": [p.to_json() for p in found], "has_more": following is not None, "next_cursor": following}
