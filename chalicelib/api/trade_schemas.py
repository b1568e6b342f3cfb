"""Schemas of the trade routes: sellers, orders, shipments, webhooks, payouts, reconciliations.

Same rules as ``schemas.py``: strict requests (unknown fields are a 400, amounts are
integers of minor units), responses built from the service's documents.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictInt, StrictStr, model_validator

from chalicelib.api.schemas import Currency, Money, MoneyOrZero, RequestModel, ResponseModel
from chalicelib.payments.methods import METHOD_NAMES
from chalicelib.rails import RAIL_NAMES
from chalicelib.recon.model import SOURCES, declared_period

#: One of the registry's rails (``chalicelib.rails``).
RailName = Literal[RAIL_NAMES]  # type: ignore[valid-type]

#: E.164 digits (country code first), 8 to 15 of them; a leading "+" is not part of it.
Msisdn = Annotated[StrictStr, Field(pattern=r"^[1-9]\d{7,14}$", examples=["250788123456"])]
Text = Annotated[StrictStr, Field(min_length=1, max_length=200)]
Id = Annotated[StrictStr, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]


# -- sellers -------------------------------------------------------------------------
class PayoutRoute(RequestModel):
    rail: RailName
    msisdn: Msisdn
    currency: Currency


class SellerRequest(RequestModel):
    name: Text
    country: Annotated[StrictStr, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]
    payout: PayoutRoute
    seller_id: Id | None = Field(default=None, description="admins only: the id to register (sellers register as themselves)")


class PayoutRouteView(ResponseModel):
    rail: str
    msisdn: str
    currency: str


class NameCheck(ResponseModel):
    provider_name: str | None = None
    score: int


class SellerResponse(ResponseModel):
    seller_id: str
    name: str
    country: str
    payout: PayoutRouteView
    status: Literal["active", "pending_review", "blocked"] = "active"
    name_check: NameCheck | None = None
    payee_checked_at: str | None = Field(default=None, description="when the rail last confirmed the wallet")
    created_at: str | None = None
    reserve_bps: int = Field(default=0, description="share of each payout held 120 days against chargebacks")
    kyc_tier: int = Field(default=0, description="0 a phone number, 1 identity checked by the co-operative, "
                          "2 a registered business: bounds what it may be paid per day and month")
    screening: dict | None = Field(default=None, description="the last sanctions screening: result, list version, case")


class SellerPatch(RequestModel):
    """An admin's change to a party: at least one field."""

    status: Literal["active", "blocked"] | None = None
    reserve_bps: Annotated[StrictInt, Field(ge=0, le=10_000)] | None = Field(
        default=None, description="sellers only: basis points of each payout held 120 days after the card payment")
    kyc_tier: Literal[0, 1, 2] | None = None


class BalanceResponse(ResponseModel):
    available: MoneyOrZero
    in_escrow: list[MoneyOrZero]
    payout_pending: MoneyOrZero
    reserved: MoneyOrZero | None = Field(default=None, description="held against chargebacks (reserve_bps)")


# -- orders ----------------------------------------------------------------------------
class OrderLineRequest(RequestModel):
    description: Text
    hs_code: Annotated[StrictStr, Field(pattern=r"^\d{4}(\.?\d{2}){1,3}$", description="Harmonized System code, e.g. 0901.11")]
    quantity: StrictInt | Annotated[StrictStr, Field(pattern=r"^\d{1,9}(\.\d{1,3})?$")] = Field(
        description="a positive integer or decimal string (at most 3 places)"
    )
    unit: Annotated[StrictStr, Field(min_length=1, max_length=20)]
    unit_price: Money


#: One of the payment-method registry's methods (``chalicelib.payments.methods``).
PaymentMethodName = Literal[METHOD_NAMES]  # type: ignore[valid-type]


class OrderRequest(RequestModel):
    seller_id: Id
    pay_currency: Currency
    lines: list[OrderLineRequest] = Field(min_length=1, max_length=100)
    payment_method: PaymentMethodName = Field(default="card", description="how the buyer pays (default card)")
    payer_msisdn: Msisdn | None = Field(default=None, description="mtn_momo / mpesa: the wallet the buyer pays from "
                                        "(E.164 digits); the pay currency is the wallet's")


class ShipmentRequest(RequestModel):
    carrier: Text
    tracking_number: Text
    customs_declaration_ref: Text
    customs_office: Text | None = Field(default=None, description="the customs office that clears the goods "
                                        "(e.g. Kigali International Airport); shown while the order waits there")


class OrderLineView(ResponseModel):
    description: str
    hs_code: str
    quantity: str
    unit: str
    unit_price: Money
    amount: Money


class BankAccountView(ResponseModel):
    holder: str
    bank: str
    iban: str | None = None
    account_number: str | None = None
    bic: str | None = None
    currency: str | None = None


class BankTransferView(ResponseModel):
    reference: str = Field(description="ISO 11649 creditor reference: quote it in the transfer's remittance information")
    amount: Money
    account: BankAccountView


class PaymentView(ResponseModel):
    provider: str = Field(description="stripe, a mobile-money rail (mtn_momo, mpesa) or bank")
    method: str = "card"
    payment_id: str | None = Field(default=None, description="the PaymentIntent id, the collection reference, "
                                   "or the bank reference")
    payment_intent_id: str | None = Field(default=None, description="Stripe methods only")
    client_secret: str | None = None
    next_action: dict | None = Field(default=None, description="alipay / wechat_pay: Stripe's next_action "
                                     "(alipay_handle_redirect or wechat_pay_display_qr_code)")
    payer_msisdn: str | None = None
    status: str | None = Field(default=None, description="mobile money: pending, succeeded, failed")
    bank_transfer: BankTransferView | None = None


class TimelineEntry(ResponseModel):
    status: str
    at: str
    detail: str | None = None


class OrderResponse(ResponseModel):
    order_id: str
    buyer_id: str
    seller_id: str
    status: str
    lines: list[OrderLineView]
    total: Money
    pay: Money
    fee: MoneyOrZero
    payout: Money
    tariff_free: bool
    quotes: dict[str, str | None]
    payment: PaymentView
    shipment: dict | None = None
    customs: dict | None = None
    timeline: list[TimelineEntry]
    allocation: "AllocationResponse | None" = None
    tariff_reason: str | None = Field(default=None, description="why the order is or is not tariff-free (eWTP)")
    reserve: MoneyOrZero | None = Field(default=None, description="held from the payout against chargebacks")
    dispute: dict | None = Field(default=None, description="the card dispute of this order: dispute_id, status")
    refund: "RefundView | None" = Field(default=None, description="once refunded: a bank transfer's refund is owed "
                                        "until finance marks it paid")
    created_at: str
    updated_at: str


class RefundView(ResponseModel):
    status: Literal["owed", "paid", "succeeded"]
    amount: Money
    reference: str | None = Field(default=None, description="bank transfer: the order's reference, to quote "
                                  "on the transfer back")
    provider_reference: str | None = None
    owed_at: str | None = None
    paid_at: str | None = None
    paid_by: str | None = None
    bank_reference: str | None = Field(default=None, description="finance's own reference of the transfer sent back")


class OwedRefundView(RefundView):
    order_id: str
    buyer_id: str


class RefundsQuery(RequestModel):
    """``?status=owed|paid`` (default owed), ``?limit=``, ``?cursor=``."""

    status: Literal["owed", "paid"] = "owed"
    limit: Annotated[StrictStr, Field(pattern=r"^([1-9]\d?|100)$")] | None = None
    cursor: Annotated[StrictStr, Field(min_length=1, max_length=2000, pattern=r"^[A-Za-z0-9_-]+$")] | None = None

    @property
    def page_size(self) -> int:
        return int(self.limit or 20)


class RefundsResponse(ResponseModel):
    refunds: list[OwedRefundView]
    has_more: bool = False
    next_cursor: str | None = None


class PaymentLookup(ResponseModel):
    """Which order a payment id (PaymentIntent, collection reference, bank reference) is for."""

    payment_id: str
    order_id: str
    method: str
    amount: Money
    order_status: str
    bank_transfer: BankTransferView | None = None


class BankNotificationAck(ResponseModel):
    received: bool = True
    duplicate: bool = False
    matched: int = Field(default=0, description="credits booked to an order's escrow (or already booked)")
    unmatched: int = Field(default=0, description="credits whose reference names no order: nothing moved")


class RefundPaidRequest(RequestModel):
    bank_reference: Text = Field(description="the reference of the bank transfer finance sent back to the buyer")


# -- webhooks ----------------------------------------------------------------------------
class CustomsEvent(RequestModel):
    event_id: Id
    order_id: Id
    customs_declaration_ref: Text
    status: Literal["cleared", "rejected", "inspection"]
    office: Text
    occurred_at: Annotated[StrictStr, Field(min_length=10, max_length=40)]


class Acknowledged(ResponseModel):
    received: bool = True
    duplicate: bool = False


# -- payouts ---------------------------------------------------------------------------------
class WithdrawalRequest(RequestModel):
    amount: Money


class PayoutView(ResponseModel):
    payout_id: str
    order_id: str | None = None
    member_id: str | None = Field(default=None, description="the co-operative member paid (null: the seller's own wallet)")
    amount: Money
    rail: str
    msisdn: str
    status: Literal["pending", "succeeded", "failed"]
    provider_reference: str | None = None
    reason: str | None = None
    scheduled_for: str | None = None
    hold: str | None = Field(default=None, description="why a pending payout is not sent yet: review, blocked")
    created_at: str
    updated_at: str
    batch: list["PayoutView"] | None = Field(default=None, description="the parts, when the withdrawal was split")


class PayoutsResponse(ResponseModel):
    payouts: list[PayoutView]
    has_more: bool = False
    next_cursor: str | None = None


class PageQuery(RequestModel):
    """``?limit=`` (1-100, default 20) and ``?cursor=`` (from the previous page's ``next_cursor``)."""

    limit: Annotated[StrictStr, Field(pattern=r"^([1-9]\d?|100)$")] | None = None
    cursor: Annotated[StrictStr, Field(min_length=1, max_length=2000, pattern=r"^[A-Za-z0-9_-]+$")] | None = None

    @property
    def page_size(self) -> int:
        return int(self.limit or 20)


# -- co-operatives' members and allocations -------------------------------------------------
class MemberRequest(RequestModel):
    name: Text
    payout: PayoutRoute


class MemberBalance(ResponseModel):
    available: MoneyOrZero
    payout_pending: MoneyOrZero


class MemberResponse(ResponseModel):
    member_id: str
    seller_id: str
    name: str
    payout: PayoutRouteView
    status: Literal["active", "pending_review", "blocked"]
    name_check: NameCheck | None = None
    payee_checked_at: str | None = None
    created_at: str
    kyc_tier: int = 0
    screening: dict | None = None
    balance: MemberBalance | None = Field(default=None, description="on GET of one member")


class MembersResponse(ResponseModel):
    members: list[MemberResponse]
    has_more: bool
    next_cursor: str | None = None


class ShareRequest(RequestModel):
    member_id: Id
    quantity: Annotated[StrictInt, Field(gt=0, le=1_000_000_000)]


class AllocationRequest(RequestModel):
    shares: list[ShareRequest] = Field(min_length=1, max_length=1000, description="at most 1,000 members an order")
    retain_bps: Annotated[StrictInt, Field(ge=0, le=10_000)] = 0


class ShareView(ResponseModel):
    member_id: str
    quantity: int
    amount: MoneyOrZero


class AllocationResponse(ResponseModel):
    order_id: str
    shares: list[ShareView]
    retained: MoneyOrZero
    retain_bps: int = 0


# -- reconciliations -------------------------------------------------------------------------------
def _printable_key(key: str) -> str:
    """An S3 key a client may name: no control character (S3 answers such a key with a bare 400/404)."""
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in key):
        raise ValueError("an S3 key may not contain control characters")
    return key


IsoDay = Annotated[StrictStr, Field(pattern=r"^\d{4}-\d{2}-\d{2}$", examples=["2026-11-27"])]


class ReconciliationPeriod(RequestModel):
    """The days a statement covers, both included (at most 92): an empty statement with a period
    reconciles against the ledger's movements of those days (each a ``missing_at_provider`` break);
    every line of a statement with one must be dated within it."""

    from_: IsoDay = Field(alias="from")
    to: IsoDay

    @model_validator(mode="after")
    def _a_real_period(self):
        declared_period(self.from_, self.to)  # ValueError: not a calendar day, backwards, too long
        return self

    def days(self) -> tuple:
        return declared_period(self.from_, self.to)


class ReconciliationRequest(RequestModel):
    source: Literal[tuple(SOURCES)]  # type: ignore[valid-type]  (the card processor, the bank, each rail)
    content: Annotated[StrictStr, Field(min_length=1, max_length=5_000_000)] | None = None
    s3_key: Annotated[StrictStr, Field(min_length=1, max_length=1024), AfterValidator(_printable_key)] | None = None
    period: ReconciliationPeriod | None = None


class ReconciliationQuery(RequestModel):
    """``?page=`` (from 1) or ``?cursor=`` (a page's ``next_cursor``), and ``?limit=`` (1-100, default 100)
    breaks a page."""

    page: Annotated[StrictStr, Field(pattern=r"^[1-9]\d{0,8}$")] | None = None
    limit: Annotated[StrictStr, Field(pattern=r"^([1-9]\d?|100)$")] | None = None
    cursor: Annotated[StrictStr, Field(min_length=1, max_length=2000, pattern=r"^[A-Za-z0-9_-]+$")] | None = None

    @model_validator(mode="after")
    def _page_or_cursor(self):
        if self.page is not None and self.cursor is not None:
            raise ValueError("give page or cursor, not both")
        return self


class SignedMoney(ResponseModel):
    """Money in a reconciliation: signed from our balance at the provider (+ in, - out)."""

    amount: StrictInt
    currency: str


class ReconciliationSummary(ResponseModel):
    lines: int
    matched: int
    amount_mismatch: int
    missing_in_ledger: int
    missing_at_provider: int
    duplicate: int
    not_settled: int | None = None
    ledger_lines: int | None = None
    outside_period: int | None = None
    classified: dict[str, int] | None = None


class SettlementRow(ResponseModel):
    provider: str
    currency: str
    day: str
    expected: SignedMoney
    reported: SignedMoney
    difference: SignedMoney
    fees: SignedMoney | None = None
    lines: int | None = None


class BreakView(ResponseModel):
    line: int | None
    reference: str
    outcome: Literal["amount_mismatch", "missing_in_ledger", "missing_at_provider", "duplicate"]
    ledger_amount: SignedMoney | None
    provider_amount: SignedMoney | None
    kind: str | None = None
    classification: str | None = None
    day: str | None = None
    transfer_id: str | None = None
    provider_id: str | None = None


class ReconciliationResponse(ResponseModel):
    """A finished reconciliation (``balanced`` | ``breaks``), or one still ``running`` / ``failed``
    (large statements run as a Distributed Map in AWS)."""

    reconciliation_id: str
    source: str
    status: Literal["balanced", "breaks", "running", "failed"]
    summary: ReconciliationSummary | None = None
    settlement: list[SettlementRow] | None = None
    breaks: list[BreakView] | None = None
    next_page: int | None = None
    has_more: bool | None = Field(default=None, description="more breaks after this page (a finished reconciliation)")
    next_cursor: str | None = None
    lines: int | None = None
    chunks: int | None = None
    error: dict | str | None = None
