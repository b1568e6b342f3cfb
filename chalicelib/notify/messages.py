"""What the platform tells a seller or a member by SMS, in plain words.

``compose(event, order, ...)`` is the text of one notification. Texts are at most one SMS
(``SMS_MAX_CHARS``), amounts in the payout currency, with the order's short reference.
"""
from __future__ import annotations

from chalicelib.money import Money
from chalicelib.rails import display_name

SMS_MAX_CHARS = 160


def order_ref(order_id: str) -> str:
    """The short reference a farmer can read out on the phone."""
    return order_id[-8:].upper()


def compose(event: str, order: dict, amount: Money | None = None, provider_ref: str | None = None,
            unpaid: Money | None = None) -> str:
    """The message for ``event``: one of paid, cleared, payout_sent, payout_partial (``amount`` reached
    the wallet, ``unpaid`` did not), payout_failed. It says only what has happened: nothing retries a
    failed payout on its own, so the message says where the money is and that it can be withdrawn."""
    ref = order_ref(order["order_id"])
    payout = amount or Money(order["payout"]["amount"], order["payout"]["currency"])
    rail = display_name((order.get("payout_route") or {}).get("rail", ""))
    texts = {
        "paid": f"Mizani: order {ref} is paid. {payout} is held in escrow for you. Ship it and declare it to customs.",
        "cleared": f"Mizani: customs cleared order {ref}. {payout} is on its way to your {rail} wallet.",
        "payout_sent": f"Mizani: {payout} sent to your {rail} wallet for order {ref}." + (f" Ref {provider_ref}." if provider_ref else ""),
        "payout_partial": f"Mizani: {payout} sent to your {rail} wallet for order {ref}. {unpaid} could not be sent;"
                          f" it is safe in your Mizani balance and you can withdraw it.",
        "payout_failed": f"Mizani: we could not send {payout} for order {ref}. It is safe in your Mizani balance"
                         f" and you can withdraw it.",
    }
    text = texts[event]
    if len(text) > SMS_MAX_CHARS:
        text = text[: SMS_MAX_CHARS - 1] + "."
    return text
