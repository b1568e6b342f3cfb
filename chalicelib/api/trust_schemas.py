"""Schemas of the trust routes: disputes, sanctions screening cases, sealed books.

Same rules as ``schemas.py``: strict requests (unknown fields are a 400), responses built from
the services' documents.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictStr

from chalicelib.api.schemas import Money, MoneyOrZero, RequestModel, ResponseModel
from chalicelib.api.trade_schemas import PageQuery

DisputeStatus = Literal["warning_needs_response", "warning_under_review", "warning_closed", "needs_response",
                        "under_review", "won", "lost", "prevented"]


# -- disputes -----------------------------------------------------------------------------
class DisputesQuery(PageQuery):
    status: DisputeStatus | None = None


class DisputeResponse(ResponseModel):
    dispute_id: str
    order_id: str
    amount: Money
    reason: str
    status: DisputeStatus
    evidence_submitted: bool
    due_by: str | None = None
    created_at: str
    updated_at: str | None = None
    stage: Literal["escrow", "released"] | None = Field(
        default=None, description="escrow: disputed before release; released: after (reserve, balance, loss)")
    recovered: dict[str, MoneyOrZero] | None = Field(
        default=None, description="where the withdrawn amount came from: escrow | reserve, balance, and loss")


class DisputesResponse(ResponseModel):
    disputes: list[DisputeResponse]
    has_more: bool
    next_cursor: str | None = None


# -- screening ----------------------------------------------------------------------------------
class ScreeningCasesQuery(PageQuery):
    status: Literal["open", "cleared", "blocked"] | None = None


class ScreeningMatch(ResponseModel):
    entry_id: str
    list: str
    name: str
    score: float
    programs: list[str] = []


class ScreeningCaseResponse(ResponseModel):
    case_id: str
    party: dict = Field(description="{kind: seller | member, seller_id, member_id, name}")
    status: Literal["open", "cleared", "blocked"]
    reason: str = Field(description="registration, payout, or list_update")
    list_version: str
    threshold: float
    matches: list[ScreeningMatch]
    decision: dict | None = None
    created_at: str
    updated_at: str | None = None


class ScreeningCasesResponse(ResponseModel):
    cases: list[ScreeningCaseResponse]
    has_more: bool
    next_cursor: str | None = None


class ScreeningDecisionRequest(RequestModel):
    decision: Literal["clear", "block"]
    note: Annotated[StrictStr, Field(min_length=1, max_length=1000)]
