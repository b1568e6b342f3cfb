"""Pricing an order: lines in the listing currency, the platform fee, the eWTP rule.

Quantities are decimal (``"100"`` kg, ``"12.5"`` kg); a line's amount is
``unit_price × quantity`` rounded UP (the platform collects). The fee is a
number of basis points of the total, rounded UP. eWTP: an order whose total is
under 1,000,000 USD at the locked rate is tariff-free.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from chalicelib.errors import ValidationError
from chalicelib.money import Money, Rounding

#: eWTP threshold: orders under this many USD cents are tariff-free.
EWTP_TARIFF_FREE_UNDER_USD_MINOR = 1_000_000 * 100

_QUANTITY_RE = re.compile(r"^\d{1,9}(\.\d{1,3})?$")


@dataclass(frozen=True)
class PricedLine:
    description: str
    hs_code: str
    quantity: str
    unit: str
    unit_price: Money
    amount: Money

    def to_json(self) -> dict:
        return {
            "description": self.description,
            "hs_code": self.hs_code,
            "quantity": self.quantity,
            "unit": self.unit,
            "unit_price": self.unit_price.to_json(),
            "amount": self.amount.to_json(),
        }


def parse_quantity(value: object, path: str) -> Decimal:
    """A positive decimal with at most 3 places, given as an integer or a decimal string."""
    if isinstance(value, bool) or isinstance(value, float):
        raise ValidationError("validation_error", "quantity is an integer or a decimal string, never a float", path=path)
    text = str(value) if isinstance(value, int) else value
    if not isinstance(text, str) or not _QUANTITY_RE.fullmatch(text):
        raise ValidationError("validation_error", "quantity must be a positive decimal with at most 3 places", path=path)
    quantity = Decimal(text)
    if quantity <= 0:
        raise ValidationError("validation_error", "quantity must be positive", path=path)
    return quantity


def price_lines(lines: list[dict]) -> tuple[list[PricedLine], Money]:
    """Price each line; all lines share one listing currency. Returns the lines and the total."""
    if not lines:
        raise ValidationError("validation_error", "an order needs at least one line", path="lines")
    if len(lines) > 100:
        raise ValidationError("validation_error", "an order has at most 100 lines", path="lines")
    priced: list[PricedLine] = []
    currency = lines[0]["unit_price"].currency
    for i, line in enumerate(lines):
        unit_price: Money = line["unit_price"]
        if unit_price.currency != currency:
            raise ValidationError(
                "validation_error", "every line is priced in the same listing currency", path=f"lines[{i}].unit_price.currency"
            )
        quantity = parse_quantity(line["quantity"], f"lines[{i}].quantity")
        amount = Money.from_decimal(unit_price.to_decimal() * quantity, currency, Rounding.UP)
        priced.append(
            PricedLine(line["description"], line["hs_code"], str(quantity), line["unit"], unit_price, amount)
        )
    total = Money(sum(p.amount.minor for p in priced), currency)
    total.require_positive()
    if total.minor > 10**15:
        raise ValidationError("amount_too_large", "the order total is too large", path="lines")
    return priced, total


def platform_fee(total: Money, fee_bps: int) -> Money:
    """The platform's fee on ``total``, rounded UP (the platform collects it)."""
    return Money.from_decimal(total.to_decimal() * Decimal(fee_bps) / Decimal(10_000), total.currency, Rounding.UP)


def fee_in_pay_currency(pay: Money, fee: Money, total: Money) -> Money:
    """The platform's fee as a share of what the buyer paid (``pay × fee / total``), rounded DOWN:
    what release books as the fee; the rest of ``pay`` is what it converts for the seller."""
    return Money.from_decimal(pay.to_decimal() * Decimal(fee.minor) / Decimal(total.minor), pay.currency, Rounding.DOWN)


def is_tariff_free(total_usd: Money) -> bool:
    """eWTP: under 1,000,000 USD at the locked rate."""
    assert total_usd.currency == "USD"
    return total_usd.minor < EWTP_TARIFF_FREE_UNDER_USD_MINOR
