"""Money <-> Stripe amounts.

Stripe takes amounts as integers in "the currency's smallest unit", but its idea of
that unit is its own list, not always ISO 4217's (docs.stripe.com/currencies):

- zero-decimal at Stripe: BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF;
- three-decimal: BHD JOD KWD OMR TND, and the last digit must be 0;
- every other currency is two-decimal at Stripe, including ISK, which ISO gives no
  minor unit (Stripe keeps ISK two-decimal for backwards compatibility: 5 ISK is 500).

For every currency Mizani trades (``SUPPORTED_CURRENCIES``: RWF, UGX and XOF are
zero-decimal in both lists; CNY, KES, TZS... two-decimal in both) the two agree and
the conversion is the identity; a unit test pins that. The conversion exists so a
currency where they disagree (ISK, MGA) cannot be charged 100 times too much or too little.
"""
from __future__ import annotations

from chalicelib.errors import ValidationError
from chalicelib.money import Money, exponent

STRIPE_ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()
)
STRIPE_THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())


def stripe_exponent(currency: str) -> int:
    """Decimal places of ``currency`` in Stripe's API amounts."""
    currency = currency.upper()
    if currency in STRIPE_ZERO_DECIMAL:
        return 0
    if currency in STRIPE_THREE_DECIMAL:
        return 3
    return 2


def to_stripe_amount(money: Money) -> int:
    """The integer Stripe expects for ``money`` (raises if Stripe cannot express it exactly)."""
    shift = stripe_exponent(money.currency) - exponent(money.currency)
    if shift >= 0:
        amount = money.minor * 10**shift
    else:
        factor = 10**-shift
        if money.minor % factor:
            raise ValidationError(
                "amount_not_chargeable",
                f"Stripe charges {money.currency} in whole units only; {money} has a fraction",
                path="amount",
            )
        amount = money.minor // factor
    if money.currency in STRIPE_THREE_DECIMAL and amount % 10:
        raise ValidationError(
            "amount_not_chargeable",
            f"Stripe needs {money.currency} amounts rounded to the nearest ten of the minor unit; {money} is not",
            path="amount",
        )
    return amount


def from_stripe_amount(amount: int, currency: str) -> Money:
    """The ``Money`` that a Stripe ``amount`` in ``currency`` (any case) stands for."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationError("invalid_amount", f"Stripe amount {amount!r} is not an integer", path="amount")
    currency = str(currency).upper()
    shift = exponent(currency) - stripe_exponent(currency)
    if shift >= 0:
        return Money(amount * 10**shift, currency)
    factor = 10**-shift
    if amount % factor:
        raise ValidationError(
            "invalid_amount", f"Stripe amount {amount} {currency} is finer than the currency's minor unit", path="amount"
        )
    return Money(amount // factor, currency)
