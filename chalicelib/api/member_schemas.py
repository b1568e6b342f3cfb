"""Schemas of the bulk form of registering a co-operative's members (an extension of API.md).

``POST /v1/sellers/{seller_id}/members/batch`` takes up to ``MAX_BATCH`` entries, each exactly
the body of ``POST /v1/sellers/{seller_id}/members``, and answers the members in the order sent.
"""
from __future__ import annotations

from pydantic import Field

from chalicelib.api.schemas import RequestModel, ResponseModel
from chalicelib.api.trade_schemas import MemberRequest, MemberResponse
from chalicelib.members.batch import MAX_MEMBERS as MAX_BATCH


class MembersBatchRequest(RequestModel):
    members: list[MemberRequest] = Field(min_length=1, max_length=MAX_BATCH,
                                         description=f"at most {MAX_BATCH} members, each as POST .../members takes it")


class MembersBatchResponse(ResponseModel):
    members: list[MemberResponse] = Field(description="the members, in the order sent (one already registered: as stored)")
