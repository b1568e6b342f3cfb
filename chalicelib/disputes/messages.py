"""The seller's SMS about a dispute (one GSM-7 part; English: these texts are not in the message
catalogues yet, so every language gets the English one)."""
from __future__ import annotations

from chalicelib.i18n import format_money
from chalicelib.money import Money


def dispute_text(order: dict, dispute: dict, after_release: bool) -> str:
    """At most 160 GSM-7 characters for any amount up to the platform's maximum."""
    ref = order["order_id"][-8:].upper()
    amount = format_money(Money(dispute["amount"]["amount"], dispute["amount"]["currency"]))
    if after_release:
        return (f"Mizani: buyer disputed the card payment of order {ref} ({amount}). We sent the bank the"
                " shipping proof. If the buyer wins, your reserve pays")
    return (f"Mizani: buyer disputed the card payment of order {ref} ({amount}). We sent the bank the"
            " shipping proof. The money stays held meanwhile.")
