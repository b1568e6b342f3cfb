"""Every ledger account id format, in one place.

The ledger knows accounts only by id; these functions are the only places that spell
them, so that a reader (or a reconciliation) can tell what an account is from its id:

    psp:stripe:<CUR>        money held at the card processor (card, Alipay and WeChat Pay through Stripe)
    psp:<rail>:<CUR>        money buyers paid into Mizani's collection account at a mobile-money rail
    psp:bank:<CUR>          money buyers paid by bank transfer into Mizani's bank account
    refunds:owed:<CUR>      bank-transfer refunds owed to buyers until finance has paid them
    escrow:<order_id>       a buyer's money held for one order (pay currency)
    fx:<CUR>                the platform's FX liquidity in one currency
    revenue:fees:<CUR>      platform fees earned
    seller:<seller_id>      what the platform owes a seller (payout currency)
    member:<member_id>      what the platform owes a co-operative's member (the co-operative's payout currency)
    allocation:<order_id>   a released order's payout while it is shared out among the members it is allocated to
    float:<rail>:<CUR>      prefunded float at a mobile-money rail
    reserve:<seller_id>     part of a seller's payouts held against chargebacks (its payout currency)
    loss:chargebacks:<CUR>  chargebacks the platform bore (reserve and balance exhausted)
    expense:dispute_fees:<CUR>  the card processor's dispute fees
"""
from __future__ import annotations


def psp_account_id(currency: str, provider: str = "stripe") -> str:
    """Money of buyers held at ``provider`` (``stripe``, a collecting rail, ``bank``): a payment method's
    ``provider`` (``chalicelib.payments.methods``)."""
    return f"psp:{provider}:{currency}"


def refunds_owed_account_id(currency: str) -> str:
    """Bank-transfer refunds recorded as owed to buyers, until finance marks them paid."""
    return f"refunds:owed:{currency}"


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


def platform_accounts(currency: str, rail_names, payment_providers=()) -> list[tuple[str, str]]:
    """The platform's own accounts in ``currency``, as (account id, ledger kind): the card processor,
    FX liquidity, fees, one prefunded float per rail (``chalicelib.rails``), and, for each other provider
    buyers pay ``currency`` through (``payment_providers``: collecting rails, the bank;
    ``chalicelib.payments.methods.providers_for``), its account and the bank refunds owed."""
    return [
        (psp_account_id(currency), "asset"),
        (fx_account_id(currency), "asset"),
        (fee_account_id(currency), "revenue"),
        *((float_account_id(rail, currency), "asset") for rail in rail_names),
        *((psp_account_id(currency, p), "asset") for p in payment_providers if p != "stripe"),
        *([(refunds_owed_account_id(currency), "liability")] if "bank" in payment_providers else []),
    ]


def reserve_account_id(seller_id: str) -> str:
    """Part of a seller's payouts held against chargebacks (``reserve_bps``), released after 120 days."""
    return f"reserve:{seller_id}"


def chargeback_loss_account_id(currency: str) -> str:
    """What chargebacks cost the platform once a seller's reserve and balance could not cover them."""
    return f"loss:chargebacks:{currency}"


def dispute_fee_account_id(currency: str) -> str:
    """The card processor's dispute fees, an expense of the platform."""
    return f"expense:dispute_fees:{currency}"
