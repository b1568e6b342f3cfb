"""Exchange rates: the ``Rates`` value, the ``RateSource`` port, cross rates and rebasing.

A ``Rates`` says "1 unit of ``base`` = ``rates[cur]`` units of ``cur``" (major units,
mid-market). Rates are ``Decimal`` built from strings only; a float, an integer, a
zero or a negative rate makes the whole payload invalid (``InvalidRates``).

Cross rates go through the source's base (USD for every source Mizani ships):
``rate(rates, "CNY", "RWF") = rates["RWF"] / rates["CNY"]``. Arithmetic runs in
``FX_CONTEXT`` (50 significant digits); anything shown to people is rounded to a
fixed number of significant digits with a named mode.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation, Overflow, localcontext
from typing import Mapping, Protocol

from chalicelib.errors import ValidationError
from chalicelib.fx.errors import InvalidRates, RateUnavailable
from chalicelib.money import SUPPORTED_CURRENCIES, check_currency

#: Decimal arithmetic for FX: 50 significant digits, traps on anything inexact-looking
#: that would hide a bug (invalid operations, division by zero, overflow).
FX_CONTEXT = Context(prec=50, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])

#: Significant digits of the rates published by ``GET /v1/fx/rates`` (rounded HALF_EVEN).
#: Indicative only: a quote, not this table, is what money moves at.
DISPLAY_SIGNIFICANT_DIGITS = 8

# A rate on the wire: a plain positive decimal string. No sign, no exponent, no NaN/Infinity.
_RATE_RE = re.compile(r"^\d{1,20}(\.\d{1,20})?$")
_CODE_RE = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class Rates:
    """Mid-market rates at one moment: 1 ``base`` = ``rates[cur]`` units of ``cur``.

    ``rates`` never lists the base itself (its rate is 1 by definition) and holds only
    currencies the platform trades (``money.SUPPORTED_CURRENCIES``).
    """

    base: str
    as_of: datetime  # timezone-aware, UTC
    source: str  # where the figures come from, for the record and for finance
    rates: Mapping[str, Decimal]

    def currencies(self) -> frozenset[str]:
        """Every currency these rates can price, the base included."""
        return frozenset(self.rates) | {self.base}

    def to_json(self) -> dict:
        """The wire shape shared by the snapshot file and the HTTP source (full precision)."""
        return {
            "base": self.base,
            "as_of": iso_utc(self.as_of),
            "source": self.source,
            "rates": {cur: format(value, "f") for cur, value in sorted(self.rates.items())},
        }


class RateSource(Protocol):
    """Port: where mid-market rates come from (snapshot file, live HTTP feed, a fake in tests)."""

    def latest(self) -> Rates:
        """The most recent rates; raises a ``ProviderUnavailable`` subclass if there are none."""
        ...


class FixedRateSource:
    """A ``RateSource`` that always answers the ``Rates`` it was given: the fake twin for tests."""

    def __init__(self, rates: Rates):
        self.rates = rates

    def latest(self) -> Rates:
        return self.rates


# -- parsing -----------------------------------------------------------------


def iso_utc(moment: datetime) -> str:
    """``2026-11-27T16:00:00Z``: whole seconds, UTC, the format of every timestamp on the wire."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rates(payload: object) -> Rates:
    """Validate a rates payload (``{"base", "as_of", "source", "rates": {cur: "decimal"}}``).

    Strict: rates are decimal strings (never JSON numbers), positive and non-zero; ``as_of``
    is ISO 8601 with a timezone. Well-formed codes the platform does not trade are skipped;
    a malformed entry anywhere rejects the whole payload (``InvalidRates``). Extra top-level
    keys (a ``note``, say) are ignored.
    """
    if not isinstance(payload, dict):
        raise InvalidRates(message="the rates payload is not a JSON object")
    missing = [key for key in ("base", "as_of", "source", "rates") if key not in payload]
    if missing:
        raise InvalidRates(message=f"the rates payload lacks {', '.join(missing)}", missing=missing)

    base = payload["base"]
    if not isinstance(base, str) or base not in SUPPORTED_CURRENCIES:
        raise InvalidRates(message=f"base {base!r} is not a currency the platform trades")

    source = payload["source"]
    if not isinstance(source, str) or not source.strip():
        raise InvalidRates(message="the rates payload does not say where its figures come from (source)")

    as_of = _parse_as_of(payload["as_of"])

    raw = payload["rates"]
    if not isinstance(raw, dict) or not raw:
        raise InvalidRates(message="rates must be a non-empty object of currency -> decimal string")
    rates: dict[str, Decimal] = {}
    for cur, text in raw.items():
        if not isinstance(cur, str) or not _CODE_RE.fullmatch(cur):
            raise InvalidRates(message=f"{cur!r} is not a currency code", currency=str(cur))
        # bool and int and float are all refused: only strings carry an exact decimal.
        if not isinstance(text, str) or not _RATE_RE.fullmatch(text):
            raise InvalidRates(message=f"the rate for {cur} must be a positive decimal string, got {text!r}", currency=cur)
        value = Decimal(text)
        if value <= 0:
            raise InvalidRates(message=f"the rate for {cur} must be greater than zero", currency=cur)
        if cur == base:
            if value != 1:
                raise InvalidRates(message=f"the base {base} is listed with rate {text}, not 1", currency=cur)
            continue
        if cur in SUPPORTED_CURRENCIES:
            rates[cur] = value
    if not rates:
        raise InvalidRates(message="the rates payload prices no currency the platform trades")
    return Rates(base=base, as_of=as_of, source=source.strip(), rates=rates)


def _parse_as_of(value: object) -> datetime:
    if not isinstance(value, str):
        raise InvalidRates(message="as_of must be an ISO 8601 timestamp string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRates(message=f"as_of {value!r} is not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise InvalidRates(message=f"as_of {value!r} has no timezone")
    return moment.astimezone(timezone.utc)


# -- cross rates and rebasing ------------------------------------------------


def _units_per_base(rates: Rates, currency: str) -> Decimal:
    if currency == rates.base:
        return Decimal(1)
    try:
        return rates.rates[currency]
    except KeyError:
        raise RateUnavailable(
            message=f"the rate source ({rates.source[:60]}) has no rate for {currency}", currency=currency
        ) from None


def rate(rates: Rates, from_currency: str, to_currency: str) -> Decimal:
    """Mid rate: 1 ``from_currency`` = ``rate`` units of ``to_currency`` (50 significant digits).

    A direct pair (either side is the base) is read as is, or inverted; any other pair is
    crossed through the base (USD for every shipped source): ``rates[to] / rates[from]``.
    """
    with localcontext(FX_CONTEXT):
        if from_currency == to_currency:
            return Decimal(1)
        to_per_base = _units_per_base(rates, to_currency)
        from_per_base = _units_per_base(rates, from_currency)
        if from_currency == rates.base:
            return +to_per_base
        return to_per_base / from_per_base


def rebase(rates: Rates, base: str) -> Rates:
    """The same rates seen from ``base`` (full precision): every other currency, crossed."""
    check_currency(base)
    _units_per_base(rates, base)  # RateUnavailable if the source cannot price the new base
    return Rates(
        base=base,
        as_of=rates.as_of,
        source=rates.source,
        rates={cur: rate(rates, base, cur) for cur in sorted(rates.currencies()) if cur != base},
    )


def to_significant(value: Decimal, digits: int, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """Round a positive ``value`` to exactly ``digits`` significant digits with ``rounding``."""
    with localcontext(FX_CONTEXT):
        rounded = value.quantize(Decimal(1).scaleb(value.adjusted() - digits + 1), rounding=rounding)
        if rounded.adjusted() != value.adjusted():  # 9.9999999999 -> 10.00000000: one digit too many
            rounded = rounded.quantize(Decimal(1).scaleb(rounded.adjusted() - digits + 1), rounding=rounding)
        return rounded


def rates_view(rates: Rates, base: str | None = None) -> dict:
    """The body of ``GET /v1/fx/rates?base=XXX``.

    ``{"base", "as_of", "source", "rates": {cur: "7.1035000", ...}}``: every currency other
    than ``base``, as a plain decimal string of ``DISPLAY_SIGNIFICANT_DIGITS`` (8) significant
    digits rounded HALF_EVEN. ``base`` defaults to the source's own base; an unknown or
    unsupported one is a ``ValidationError`` (path ``base``).
    """
    base = base or rates.base
    try:
        check_currency(base)
    except ValidationError as exc:
        raise ValidationError(exc.code, exc.message, path="base") from None
    view = rebase(rates, base) if base != rates.base else rates
    return {
        "base": view.base,
        "as_of": iso_utc(view.as_of),
        "source": view.source,
        "rates": {
            cur: format(to_significant(value, DISPLAY_SIGNIFICANT_DIGITS), "f")
            for cur, value in sorted(view.rates.items())
        },
    }
