"""Request and response schemas (pydantic v2) of the public API.

Requests are strict: unknown fields are rejected (``extra="forbid"``), amounts are
JSON integers of minor units (``120.0`` and ``"120"`` are refused), currencies are
ISO 4217 codes the platform supports (checked by ``chalicelib.money``, the one
authority). Responses are built from domain objects with ``from_*`` constructors,
so a view never assembles wire dicts by hand.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator
from pydantic_core import PydanticCustomError

from chalicelib import money
from chalicelib.errors import MizaniError


class RequestModel(BaseModel):
    """Base of request bodies and query strings: unknown fields are a 400."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ResponseModel(BaseModel):
    """Base of response bodies: fields serialize by alias (``from``), read by name."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True, defer_build=True)


# -- shared field types ---------------------------------------------------------


def _supported_currency(value: str) -> str:
    try:
        return money.check_currency(value)
    except MizaniError as exc:  # a domain error: tell pydantic, which reports the field path
        raise PydanticCustomError(exc.code, exc.message) from None


#: An ISO 4217 code the platform trades (``chalicelib.money.SUPPORTED_CURRENCIES``).
Currency = Annotated[
    StrictStr,
    Field(pattern=r"^[A-Z]{3}$", json_schema_extra={"enum": sorted(money.SUPPORTED_CURRENCIES)}),
    AfterValidator(_supported_currency),
]
#: A positive amount of minor units within the platform's bounds.
MinorAmount = Annotated[StrictInt, Field(gt=0, le=money.MAX_MINOR, description="integer minor units")]
#: A balance or total: zero allowed.
MinorAmountOrZero = Annotated[StrictInt, Field(ge=0, le=money.MAX_MINOR, description="integer minor units")]
#: A rate, as a decimal string (never a float).
DecimalString = Annotated[StrictStr, Field(pattern=r"^\d+(\.\d+)?$", examples=["7.1200"])]
#: An RFC 3339 UTC time.
Timestamp = datetime


def decimal_string(value: Decimal) -> str:
    """A ``Decimal`` rate on the wire: fixed-point, no exponent."""
    return format(value, "f")


def utc(value) -> datetime:
    """An RFC 3339 UTC time from a ``datetime``, unix seconds, or an ISO string."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    return utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


class Money(BaseModel):
    """``{"amount": <int minor units>, "currency": "<ISO 4217>"}``; the amount is positive."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    amount: MinorAmount
    currency: Currency

    @classmethod
    def of(cls, value: money.Money) -> "Money":
        return cls(amount=value.minor, currency=value.currency)

    def to_money(self) -> money.Money:
        return money.Money.of(self.amount, self.currency)


class MoneyOrZero(BaseModel):
    """Money where zero is meaningful (a balance, a total owed)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    amount: MinorAmountOrZero
    currency: Currency

    @classmethod
    def of(cls, value: money.Money) -> "MoneyOrZero":
        return cls(amount=value.minor, currency=value.currency)


# -- errors -----------------------------------------------------------------------


class FieldError(ResponseModel):
    path: str
    message: str


class ErrorDetail(ResponseModel):
    code: str = Field(description="stable snake_case code, e.g. insufficient_funds")
    message: str
    request_id: str
    fields: list[FieldError] | None = Field(default=None, description="validation errors only")
    retryable: bool | None = Field(default=None, description="true when a retry may succeed (provider trouble)")
    methods: list[str] | None = Field(default=None, description="limit_exceeded at checkout: the payment methods "
                                      "that can take the amount")


class ErrorResponse(ResponseModel):
    """Every error: ``{"error": {...}}``."""

    error: ErrorDetail


# -- health ------------------------------------------------------------------------


class HealthResponse(ResponseModel):
    status: Literal["ok"] = "ok"


# -- FX ------------------------------------------------------------------------------


class RatesQuery(RequestModel):
    base: Currency = "USD"


class RatesResponse(ResponseModel):
    base: Currency
    as_of: Timestamp
    source: str
    rates: dict[str, DecimalString] = Field(description="units of each currency per one unit of base")


class QuoteRequest(RequestModel):
    """Exactly one of ``from_amount`` (what you give) or ``to_amount`` (what you want), in minor units."""

    from_currency: Currency
    to_currency: Currency
    from_amount: MinorAmount | None = None
    to_amount: MinorAmount | None = None

    @model_validator(mode="after")
    def _exactly_one_amount(self) -> "QuoteRequest":
        if (self.from_amount is None) == (self.to_amount is None):
            raise PydanticCustomError("exactly_one_amount", "give exactly one of from_amount or to_amount")
        if self.from_currency == self.to_currency:
            raise PydanticCustomError("same_currency", "from_currency and to_currency must differ")
        return self


class QuoteResponse(ResponseModel):
    quote_id: str
    from_: Money = Field(alias="from")
    to: Money
    rate: DecimalString = Field(description="to units per from unit, spread included")
    mid_rate: DecimalString
    spread_bps: StrictInt
    created_at: Timestamp | None = None
    expires_at: Timestamp

    @classmethod
    def of(cls, quote) -> "QuoteResponse":
        """From an ``fx.quotes.Quote``."""
        return cls(
            quote_id=quote.quote_id,
            from_=Money.of(quote.from_money),
            to=Money.of(quote.to_money),
            rate=decimal_string(quote.rate),
            mid_rate=decimal_string(quote.mid_rate),
            spread_bps=quote.spread_bps,
            created_at=utc(quote.created_at),
            expires_at=utc(quote.expires_at),
        )


# -- ledger ------------------------------------------------------------------------------


class LedgerAccountResponse(ResponseModel):
    account_id: str
    currency: str
    kind: str
    debits_posted: StrictInt
    credits_posted: StrictInt
    debits_pending: StrictInt
    credits_pending: StrictInt
    balance: StrictInt = Field(description="posted balance on the account's normal side")

    @classmethod
    def of(cls, account) -> "LedgerAccountResponse":
        return cls(
            account_id=account.account_id,
            currency=account.currency,
            kind=account.kind,
            debits_posted=account.debits_posted,
            credits_posted=account.credits_posted,
            debits_pending=account.debits_pending,
            credits_pending=account.credits_pending,
            balance=account.balance,
        )


class DebitsCredits(ResponseModel):
    debits: StrictInt = Field(description="posted debits")
    credits: StrictInt = Field(description="posted credits")
    debits_pending: StrictInt = 0
    credits_pending: StrictInt = 0


class TrialBalanceResponse(ResponseModel):
    currencies: dict[str, DebitsCredits]
    balanced: StrictBool = Field(description="every currency's debits equal its credits, posted and pending")

    @classmethod
    def of(cls, trial_balance) -> "TrialBalanceResponse":
        """From the ledger's ``TrialBalance`` (or a plain ``{cur: {"debits", "credits", ...}}``)."""
        totals = getattr(trial_balance, "currencies", trial_balance)
        currencies = {
            cur: DebitsCredits(
                debits=int(t["debits"]),
                credits=int(t["credits"]),
                debits_pending=int(t.get("debits_pending", 0)),
                credits_pending=int(t.get("credits_pending", 0)),
            )
            for cur, t in sorted(totals.items())
        }
        balanced = all(
            c.debits == c.credits and c.debits_pending == c.credits_pending for c in currencies.values()
        )
        return cls(currencies=currencies, balanced=balanced)
