"""The SMS a co-operative's member gets when an order's share is paid (or could not be sent).

Kept apart from ``messages`` until the member texts join the catalogues there.
"""
from __future__ import annotations

from chalicelib.money import Money
from chalicelib.notify.messages import SMS_MAX_CHARS, order_ref
from chalicelib.rails import display_name


def compose_member(order: dict, member: dict, coop_name: str, language: str = "en") -> str:
    """``member``: what payouts reports for one member (``paid``, ``unpaid`` Money, ``rail``)."""
    ref = order_ref(order["order_id"])
    rail = display_name(member.get("rail", ""))
    coop = coop_name[:40]
    paid: Money = member["paid"]
    unpaid: Money = member["unpaid"]
    if not unpaid.minor:
        text = f"Mizani: {paid} sent to your {rail} wallet for your coffee at {coop}, order {ref}."
    elif paid.minor:
        text = f"Mizani: {paid} sent to your {rail} wallet for order {ref}. {unpaid} is safe in your Mizani balance; dial to withdraw."
    else:
        text = f"Mizani: we could not send {unpaid} for order {ref}. It is safe in your Mizani balance; dial to withdraw."
    return text if len(text) <= SMS_MAX_CHARS else text[: SMS_MAX_CHARS - 1] + "."
