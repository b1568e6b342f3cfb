"""The platform's FX exposure: open positions marked to market (``GET /v1/treasury/exposure``).

Per currency ``C``, over the positions still open (orders not yet released nor refunded):

``guaranteed``      what the platform owes in ``C`` at the locked rates (payouts in ``C``)
``held``            what it holds in ``C`` against them: the orders' escrow balances in the ledger
                    (nothing until the buyer has paid)
``to_convert``      what release will convert out of ``C`` (those orders' pay less the fee)
``mark_to_market``  the locked net position in ``C``, ``to_convert − guaranteed``, in USD at today's
                    mid rate (negative: the platform is short ``C``)
``limit``           the stage's limit on ``guaranteed`` (``null``: none)
``fx_account``      the ledger's ``fx:C`` account, credits less debits: what conversions so far took in
                    (+) or gave out (−) in ``C`` (released orders: the position already realized)

``unrealized_pnl`` is the sum of the ``mark_to_market`` figures (each rounded HALF_EVEN once, so the
sum is exact): what the open orders would earn if all were released at today's rates.
``realized_pnl`` is the running total of the released orders' P&L (``positions``).
Pure: the caller reads the positions, balances and rates.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from chalicelib.fx.rates import Rates, iso_utc, rate
from chalicelib.ledger import Account
from chalicelib.money import Money, Rounding
from chalicelib.treasury.positions import Position


def mids_to_usd(rates: Rates, currencies: Iterable[str]) -> dict[str, Decimal]:
    """Mid rate to USD of each currency (1 unit of C = mid USD)."""
    return {c: rate(rates, c, "USD") for c in currencies}


def compute_exposure(positions: Iterable[Position], escrow_balances: Mapping[str, int],
                     fx_accounts: Mapping[str, Account], rates: Rates, limits: Mapping[str, int],
                     realized_total_minor: int, as_of) -> dict:
    """The exposure document (see the module docstring).

    ``escrow_balances``: order id → its escrow account's posted balance (pay currency; absent: 0).
    ``fx_accounts``: currency → the ``fx:<CUR>`` account. ``limits``: currency → minor units."""
    guaranteed: dict[str, int] = {}
    held: dict[str, int] = {}
    to_convert: dict[str, int] = {}
    owing_orders: dict[str, int] = {}
    count = 0
    for p in positions:
        count += 1
        guaranteed[p.payout_currency] = guaranteed.get(p.payout_currency, 0) + p.payout_minor
        owing_orders[p.payout_currency] = owing_orders.get(p.payout_currency, 0) + 1
        to_convert[p.pay_currency] = to_convert.get(p.pay_currency, 0) + p.convert_minor
        held[p.pay_currency] = held.get(p.pay_currency, 0) + max(0, escrow_balances.get(p.order_id, 0))
    # What the conversions so far took in (+) or gave out (−) in each currency, whatever the account's kind.
    fx_balance = {c: a.credits_posted - a.debits_posted for c, a in fx_accounts.items() if a.credits_posted - a.debits_posted}
    currencies = sorted(set(guaranteed) | set(held) | set(to_convert) | set(limits) | set(fx_balance))
    mids = mids_to_usd(rates, currencies)
    rows: dict[str, dict] = {}
    unrealized = 0
    for c in currencies:
        net = Money(to_convert.get(c, 0) - guaranteed.get(c, 0), c)
        mtm = Money.from_decimal(net.to_decimal() * mids[c], "USD", Rounding.HALF_EVEN)
        unrealized += mtm.minor
        limit = limits.get(c)
        rows[c] = {
            "guaranteed": Money(guaranteed.get(c, 0), c).to_json(),
            "held": Money(held.get(c, 0), c).to_json(),
            "to_convert": Money(to_convert.get(c, 0), c).to_json(),
            "mark_to_market": mtm.to_json(),
            "limit": Money(limit, c).to_json() if limit is not None else None,
            "orders": owing_orders.get(c, 0),
            "fx_account": Money(fx_balance.get(c, 0), c).to_json(),
            "mid_usd": format(mids[c], "f")[:20],
        }
    return {
        "as_of": iso_utc(as_of),
        "rates_as_of": iso_utc(rates.as_of),
        "rates_source": rates.source,
        "open_orders": count,
        "currencies": rows,
        "unrealized_pnl": Money(unrealized, "USD").to_json(),
        "realized_pnl": Money(realized_total_minor, "USD").to_json(),
    }
