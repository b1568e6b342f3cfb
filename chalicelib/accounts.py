"""Every ledger account id format, in one place.

The ledger knows accounts only by id; these functions are the only places that spell
them, so that a reader (or a reconciliation) can tell what an account is from its id:

    psp:stripe:<CUR>        money held at the card processor
    escrow:<order_id>       a buyer's money held for one order (pay currency)
    fx:<CUR>                the platform's FX liquidity in one currency
    revenue:fees:<CUR>      platform fees earned
    seller:<seller_id>      what the platform owes a seller (payout currency)
    member:<member_id>      what the platform owes a co-operative's member (the co-operative's payout currency)
    allocation:<order_id>   a released order's payout while it is shared out among the members it is allocated to
    float:<rail>:<CUR>      prefunded float at a mobile-money rail
"""
from __future__ import annotations


def psp_account_id(currency: str) -> str:
    return f"psp:stripe:{currency}"


def escrow_account_id(order_id: str) -> str:
    return f"escrow:{order_id}"


def fx_account_id(currency: str) -> str:
    """The platform's liquidity account for ``currency`` (a supported one, else ``validation_error``)."""
    from chalicelib.money import check_currency

    return f"fx:{check_currency(currency)}"


def fee_account_id(currency: str) -> str:
    return f"revenue:fees:{currency}"


def seller_account_id(seller_id: str) -> str:
    return f"seller:{seller_id}"


def member_account_id(member_id: str) -> str:
    return f"member:{member_id}"


def allocation_account_id(order_id: str) -> str:
    return f"allocation:{order_id}"


def party_account_id(seller_id: str, member_id: str | None) -> str:
    """The account of a payee: a co-operative member's own, else the seller's."""
    return member_account_id(member_id) if member_id else seller_account_id(seller_id)


def float_account_id(rail: str, currency: str) -> str:
    return f"float:{rail}:{currency}"


def platform_accounts(currency: str, rail_names) -> list[tuple[str, str]]:
    """The platform's own accounts in ``currency``, as (account id, ledger kind): the card processor,
    FX liquidity, fees, and one prefunded float per rail (``chalicelib.rails``)."""
    return [
        (psp_account_id(currency), "asset"),
        (fx_account_id(currency), "asset"),
        (fee_account_id(currency), "revenue"),
        *((float_account_id(rail, currency), "asset") for rail in rail_names),
    ]
