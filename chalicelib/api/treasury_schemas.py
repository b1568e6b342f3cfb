"""Schemas of the finance views: FX exposure and positions, the order story, customs clearance."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictInt, StrictStr

from chalicelib.api.schemas import RequestModel, ResponseModel
from chalicelib.escrow.model import OrderStatus


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


# -- the order story -------------------------------------------------------------------------------
class LegView(ResponseModel):
    side: str = Field(description="debit | credit")
    account_id: str
    amount: Amount


class LegReconciliation(ResponseModel):
    outcome: str = Field(description="matched | amount_mismatch | missing_at_provider | duplicate | not_reconciled")
    reconciliation_id: str | None = None
    source: str | None = None
    classification: str | None = None
    reconciled_at: str | None = None


class StoryTransfer(ResponseModel):
    transfer_id: str
    step: str = Field(description="what the transfer is, in words")
    code: str | None = None
    kind: str = Field(description="posted | pending | post_pending | void_pending | expire_pending")
    status: str = Field(description="posted; pending, posted, voided or expired (a reservation); released (a void)")
    amount: Amount
    at: str
    reference: str | None = None
    pending_id: str | None = None
    resolved_by: str | None = None
    legs: list[LegView]
    meta: dict[str, str] | None = None
    provider: str | None = Field(default=None, description="who reports it on a statement (stripe, a rail); null: internal")
    reconciliation: LegReconciliation | None = Field(
        default=None, description="finance and admin: the latest reconciliation outcome of a provider's movement")


class StoryPayout(ResponseModel):
    payout_id: str
    order_id: str | None = None
    member_id: str | None = None
    amount: Amount
    rail: str
    msisdn: str | None = Field(default=None, description="not shown to the buyer")
    status: str
    provider_reference: str | None = None
    reason: str | None = None
    scheduled_for: str | None = None
    hold: str | None = None
    created_at: str
    updated_at: str


class StoryReference(ResponseModel):
    kind: str = Field(description="payment_intent_id, payment_id, refund_id, payout_id, provider_reference, ...")
    provider: str
    reference: str
    payout_id: str | None = None


class OrderStoryResponse(ResponseModel):
    order_id: str
    status: str
    buyer_id: str
    seller_id: str
    total: Amount
    pay: Amount
    fee: Amount
    payout: Amount
    rates: dict[str, str] | None = None
    shipment: dict | None = None
    customs: dict | None = None
    timeline: list[dict]
    transfers: list[StoryTransfer]
    payouts: list[StoryPayout]
    references: list[StoryReference]
    fx: PositionView | None = None
    created_at: str
    updated_at: str


# -- reconciliation runs ---------------------------------------------------------------------------
class ReconciliationRun(ResponseModel):
    reconciliation_id: str
    source: str | None = None
    provider: str | None = None
    status: str | None = None
    summary: dict | None = None
    breaks: int | None = None
    first_day: str | None = None
    last_day: str | None = None
    submitted_at: str


class ReconciliationRunsResponse(ResponseModel):
    reconciliations: list[ReconciliationRun]
    has_more: bool
    next_cursor: str | None = None


# -- customs against the 24-hour promise; orders by status ----------------------------------------------
class OfficeClearance(ResponseModel):
    office: str
    decided: int = Field(description="decisions (cleared or rejected) in the window")
    median_hours: float | None = Field(description="from shipped to the decision; null: no decision in the window")
    p90_hours: float | None
    waiting_over_24h: int = Field(description="orders waiting at this office past the promise now")
    within_promise: int | None = Field(default=None, description="decisions taken within the promise")


class WaitingOrder(ResponseModel):
    order_id: str
    office: str
    hours: float


class ClearanceResponse(ResponseModel):
    offices: list[OfficeClearance]
    waiting: list[WaitingOrder] = Field(description="orders still waiting past the promise, the longest first "
                                        "(one page: ?limit=, ?cursor=)")
    as_of: str | None = None
    days: int | None = None
    promise_hours: float | None = None
    has_more: bool = False
    next_cursor: str | None = None


class ClearanceQuery(RequestModel):
    days: Annotated[StrictStr, Field(pattern=r"^([1-9]\d?|[12]\d\d|3[0-5]\d|36[0-5])$",
                                     description="the window of decisions, 1-365 days (default 30)")] | None = None
    limit: Annotated[StrictStr, Field(pattern=r"^([1-9]\d?|100)$", description="waiting orders a page, 1-100 "
                                      "(default 20)")] | None = None
    cursor: Annotated[StrictStr, Field(min_length=1, max_length=2000, pattern=r"^[A-Za-z0-9_-]+$")] | None = None


class OrderRow(ResponseModel):
    order_id: str
    status: str
    seller_id: str | None = None
    buyer_id: str | None = None
    pay: Amount | None = None
    payout: Amount | None = None
    created_at: str | None = None
    updated_at: str | None = None
    shipped_at: str | None = None
    decided_at: str | None = None
    office: str | None = None
    outcome: str | None = None


class OrdersQuery(RequestModel):
    status: Literal[tuple(s.value for s in OrderStatus)] = Field(description="the orders in this status")  # type: ignore[valid-type]
    limit: Annotated[StrictStr, Field(pattern=r"^([1-9]\d?|100)$")] | None = None
    cursor: Annotated[StrictStr, Field(min_length=1, max_length=2000, pattern=r"^[A-Za-z0-9_-]+$")] | None = None

    @property
    def page_size(self) -> int:
        return int(self.limit or 20)


class OrdersResponse(ResponseModel):
    orders: list[OrderRow]
    has_more: bool
    next_cursor: str | None = None
