"""Schemas of the finance views: FX exposure and positions, the order story, customs clearance."""
from __future__ import annotations

from pydantic import Field, StrictInt

from chalicelib.api.schemas import ResponseModel


class Amount(ResponseModel):
    """Money that may be zero or negative (a P&L, a net position): ``{"amount": int, "currency"}``."""

    amount: StrictInt
    currency: str


class CurrencyExposure(ResponseModel):
    guaranteed: Amount = Field(description="owed to sellers in this currency at the locked rates (orders not yet released)")
    held: Amount = Field(description="held in escrow in this currency against them (nothing before the buyer pays)")
    mark_to_market: Amount = Field(description="the locked net position (to_convert - guaranteed) in USD at today's mid")
    limit: Amount | None = Field(description="the stage's limit on guaranteed; null: none")
    to_convert: Amount | None = Field(default=None, description="what release will convert out of this currency")
    orders: int | None = Field(default=None, description="open orders guaranteeing a payout in this currency")
    fx_account: Amount | None = Field(default=None, description="the ledger's fx:<CUR> balance: already converted")
    capacity_used: Amount | None = Field(default=None, description="the capacity counter the limit is checked on")
    mid_usd: str | None = Field(default=None, description="today's mid rate: 1 unit = mid_usd USD")


class ExposureResponse(ResponseModel):
    as_of: str
    currencies: dict[str, CurrencyExposure]
    unrealized_pnl: Amount = Field(description="USD: the sum of mark_to_market, if every open order released today")
    realized_pnl: Amount = Field(description="USD: every released order's locked rate against the rate at release")
    rates_as_of: str | None = None
    rates_source: str | None = None
    open_orders: int | None = None


class PositionView(ResponseModel):
    order_id: str
    state: str = Field(description="open | released | cancelled (refunded)")
    convert: Amount
    payout: Amount
    locked_rate: str = Field(description="payout per unit converted, spreads included")
    locked_mid_usd: dict[str, str]
    release_mid_usd: dict[str, str] | None = None
    opened_at: str
    closed_at: str | None = None
    realized_pnl: Amount | None = None


class PositionsResponse(ResponseModel):
    positions: list[PositionView]
    has_more: bool
    next_cursor: str | None = None
