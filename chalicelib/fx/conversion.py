"""Conversion through FX liquidity accounts, after TigerBeetle's currency-exchange recipe.

A ledger account holds one currency, so money never moves from a CNY account to a USD
account directly. A conversion is two linked transfers through the platform's liquidity
account in each currency (``fx:<CUR>``)::

    source (FROM)  --quote.from-->  fx:FROM        "fx-in":  the platform receives FROM
    fx:TO          --quote.to---->  destination    "fx-out": the platform delivers TO

Committed together (``Ledger.transfer(*transfers)``: one linked chain, all or nothing), each
currency's ledger stays balanced on its own and the liquidity accounts carry the platform's
FX position. The amounts are the quote's, already rounded in the house's favour.
"""
from __future__ import annotations

from chalicelib.errors import InvalidState
from chalicelib.fx.quotes import Quote
from chalicelib.ledger.model import Transfer, TransferKind
from chalicelib.money import Money
from chalicelib.accounts import fx_account_id

#: The ``code`` of both legs of a conversion.
FX_LEG_CODE = "fx_leg"


def conversion_transfers(
    quote: Quote,
    source_account_id: str,
    dest_account_id: str,
    transfer_id_prefix: str,
    reference: str = "",
) -> list[Transfer]:
    """The two linked transfers converting ``quote.from_money`` (taken from ``source_account_id``)
    into ``quote.to_money`` (given to ``dest_account_id``).

    Ids are ``f"{transfer_id_prefix}:fx-in"`` and ``f"{transfer_id_prefix}:fx-out"``: derive
    the prefix deterministically (order id + step) so a retried step replays, never repeats.
    The quote must have been consumed (locked) first, else ``InvalidState``
    (``quote_not_consumed``); its expiry no longer matters once it is locked.
    """
    if quote.consumed_by is None:
        raise InvalidState(
            "quote_not_consumed",
            f"quote {quote.quote_id} must be consumed before money converts at its rate",
            quote_id=quote.quote_id,
        )
    meta = {"quote_id": quote.quote_id, "rate": format(quote.rate, "f")}
    return conversion_legs(quote.from_money, quote.to_money, source_account_id, dest_account_id, transfer_id_prefix,
                           reference, meta)


def conversion_legs(from_money: Money, to_money: Money, source_account_id: str, dest_account_id: str,
                    transfer_id_prefix: str, reference: str = "", meta: dict | None = None) -> list[Transfer]:
    """The two legs converting ``from_money`` into ``to_money`` through ``fx:<FROM>`` and ``fx:<TO>``,
    at amounts already fixed (and rounded in the house's favour) by the caller's locked rates."""
    return [
        Transfer(
            transfer_id=f"{transfer_id_prefix}:fx-in",
            debit_account_id=source_account_id,
            credit_account_id=fx_account_id(from_money.currency),
            amount=from_money.minor,
            currency=from_money.currency,
            kind=TransferKind.POSTED,
            code=FX_LEG_CODE,
            reference=reference,
            meta=dict(meta or {}),
        ),
        Transfer(
            transfer_id=f"{transfer_id_prefix}:fx-out",
            debit_account_id=fx_account_id(to_money.currency),
            credit_account_id=dest_account_id,
            amount=to_money.minor,
            currency=to_money.currency,
            kind=TransferKind.POSTED,
            code=FX_LEG_CODE,
            reference=reference,
            meta=dict(meta or {}),
        ),
    ]
