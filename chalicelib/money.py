"""Money: an integer number of minor units and an ISO 4217 currency.

Floats never touch money. Minor-unit exponents come from the maintained
``iso4217`` package. Every rounding names its mode: what the platform collects
rounds ``UP`` (away from zero), what it pays out rounds ``DOWN`` (toward zero).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal
from enum import Enum
from functools import lru_cache

from iso4217 import Currency as _Iso4217

from chalicelib.errors import ValidationError

#: The largest amount, in minor units, that the platform accepts anywhere (10^15).
MAX_MINOR = 10**15

#: Currencies the platform trades. Others are valid ISO 4217 codes but unsupported.
SUPPORTED_CURRENCIES = frozenset(
    ["USD", "EUR", "CNY", "RWF", "KES", "UGX", "TZS", "GHS", "NGN", "XOF", "ZAR", "GBP"]
)

_DECIMAL_RE = re.compile(r"^-?\d{1,20}(\.\d{1,20})?$")


class Rounding(Enum):
    """Named rounding modes; every conversion to minor units says which one it uses."""

    UP = ROUND_UP  # away from zero: what the platform collects
    DOWN = ROUND_DOWN  # toward zero: what the platform pays out
    CEILING = ROUND_CEILING
    FLOOR = ROUND_FLOOR
    HALF_EVEN = ROUND_HALF_EVEN  # banker's rounding, for reporting only
    HALF_UP = ROUND_HALF_UP


def exponent(currency: str) -> int:
    """Number of minor-unit digits of ``currency`` (2 for USD, 0 for RWF), per ISO 4217."""
    return _iso(currency).exponent or 0


def _iso(currency: str) -> _Iso4217:
    if not isinstance(currency, str):
        raise ValidationError("unknown_currency", f"{currency!r} is not an ISO 4217 currency code", path="currency")
    return _iso_of(currency)


@lru_cache(maxsize=256)  # a few dozen codes, looked up on every amount: a valid one is answered once
def _iso_of(currency: str) -> _Iso4217:
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ValidationError("unknown_currency", f"{currency!r} is not an ISO 4217 currency code", path="currency")
    try:
        iso = _Iso4217(currency)
    except ValueError:
        raise ValidationError("unknown_currency", f"{currency} is not an ISO 4217 currency code", path="currency") from None
    if iso.exponent is None:  # funds codes, precious metals: not money we move
        raise ValidationError("unknown_currency", f"{currency} has no minor unit and is not tradable", path="currency")
    return iso


def check_currency(currency: str) -> str:
    """Return ``currency`` if it is an ISO 4217 code the platform supports, else raise."""
    _iso(currency)
    if currency not in SUPPORTED_CURRENCIES:
        raise ValidationError(
            "unsupported_currency", f"{currency} is a valid ISO 4217 code but Mizani does not trade it", path="currency"
        )
    return currency


@dataclass(frozen=True, order=True)
class Money:
    """An amount in integer minor units of an ISO 4217 currency.

    ``Money(120000, "USD")`` is 1,200.00 USD; ``Money(1500000, "RWF")`` is 1,500,000 RWF.
    """

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.minor, bool) or not isinstance(self.minor, int):
            raise ValidationError("invalid_amount", "amounts are integers of minor units, never floats", path="amount")
        if abs(self.minor) > MAX_MINOR:
            raise ValidationError("amount_too_large", f"amounts are at most {MAX_MINOR} minor units", path="amount")
        _iso(self.currency)

    # -- construction -------------------------------------------------
    @classmethod
    def of(cls, minor: int, currency: str) -> "Money":
        """A supported, positive amount: what a request may carry."""
        money = cls(minor, check_currency(currency))
        money.require_positive()
        return money

    @classmethod
    def parse(cls, text: str, currency: str) -> "Money":
        """Parse a decimal string (``"1200.50"``) exactly; more decimals than the currency has is an error."""
        if not isinstance(text, str) or not _DECIMAL_RE.fullmatch(text.strip()):
            raise ValidationError("invalid_amount", f"{text!r} is not a decimal amount", path="amount")
        value = Decimal(text.strip())
        exp = exponent(currency)
        scaled = value.scaleb(exp)
        if scaled != scaled.to_integral_value():
            raise ValidationError(
                "too_many_decimals", f"{currency} has {exp} decimal places; {text} has more", path="amount"
            )
        return cls(int(scaled), currency)

    @classmethod
    def from_decimal(cls, value: Decimal, currency: str, rounding: Rounding) -> "Money":
        """Round a major-unit ``Decimal`` to minor units with the named mode."""
        if not isinstance(value, Decimal):
            raise ValidationError("invalid_amount", "amounts are computed with Decimal, never floats", path="amount")
        minor = value.scaleb(exponent(currency)).quantize(Decimal(1), rounding=rounding.value)
        return cls(int(minor), currency)

    @classmethod
    def zero(cls, currency: str) -> "Money":
        return cls(0, currency)

    # -- views --------------------------------------------------------
    def to_decimal(self) -> Decimal:
        return Decimal(self.minor).scaleb(-exponent(self.currency))

    def format(self) -> str:
        """``"1,200.00 USD"``: for people (SMS, CLI), never for machines."""
        exp = exponent(self.currency)
        return f"{self.to_decimal():,.{exp}f} {self.currency}"

    def to_json(self) -> dict:
        return {"amount": self.minor, "currency": self.currency}

    def require_positive(self) -> "Money":
        if self.minor <= 0:
            raise ValidationError("invalid_amount", "the amount must be a positive number of minor units", path="amount")
        return self

    # -- arithmetic (same currency only) --------------------------------
    def _same(self, other: "Money") -> None:
        if not isinstance(other, Money) or other.currency != self.currency:
            raise ValidationError("currency_mismatch", f"cannot combine {self.currency} with {other!r}")

    def __add__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __str__(self) -> str:
        return self.format()
