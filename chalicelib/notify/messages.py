"""What the platform tells a seller or a member by SMS, in plain words and in their language.

``compose(event, order, ..., language="en")`` is the text of one notification. The texts are
msgids of the message catalogues (``chalicelib/i18n``): English in the code, Kinyarwanda,
Kiswahili and Français in ``locale/``. Every text is one SMS: at most ``SMS_MAX_CHARS``
characters of GSM 03.38 (``gsm7`` replaces what is outside it), amounts in the payout currency
with the order's short reference. To fit, names are shortened (the co-operative's, the rail's) and
a provider reference that does not fit whole is left out; amounts are never cut.
"""
from __future__ import annotations

import os

from chalicelib.i18n import N_, fit, format_money, septets, translator
from chalicelib.money import Money
from chalicelib.rails import RAILS, display_name

SMS_MAX_CHARS = 160

#: The USSD code members dial to withdraw (``MIZANI_USSD_CODE``, e.g. ``*384*2026#``); without
#: one the SMS names "the Mizani USSD code" in words.
USSD_CODE_ENV = "MIZANI_USSD_CODE"
LOCAL_USSD_CODE = "*384*2026#"  # the local sandbox's service code (sandbox/ussd_phone.py dials it)

_TEXTS = {
    "paid": N_("Mizani: order {ref} is paid. {amount} is held in escrow for you. Ship it and declare it to customs."),
    "cleared": N_("Mizani: customs cleared order {ref}. {amount} is on its way to your {rail} wallet."),
    "payout_sent": N_("Mizani: {amount} sent to your {rail} wallet for order {ref}."),
    "payout_partial": N_("Mizani: {amount} sent to your {rail} wallet for order {ref}. {unpaid} could not be sent;"
                         " withdraw it from your Mizani balance."),
    "payout_failed": N_("Mizani: we could not send {amount} for order {ref}. It is safe in your Mizani balance"
                        " and you can withdraw it."),
    "member_paid": N_("Mizani: {amount} sent to your {rail} wallet for your coffee at {coop}, order {ref}."),
    "member_payout_partial": N_("Mizani: {amount} sent to your {rail} wallet for order {ref}. {unpaid} is in your"
                                " Mizani balance; dial {ussd_code} to withdraw it."),
    "member_payout_failed": N_("Mizani: we could not send {amount} for your coffee at {coop}, order {ref}. It is in"
                               " your Mizani balance; dial {ussd_code} to withdraw."),
}
#: Events whose text names the provider's reference when there is one.
_WITH_REFERENCE = frozenset({"payout_sent", "member_paid"})
_REFERENCE = N_("Ref {provider_ref}.")
_NO_USSD_CODE = N_("the Mizani USSD code")
_UNKNOWN_RAIL = N_("mobile money")

EVENTS = frozenset(_TEXTS)
#: With a provider reference, the co-operative's name keeps at least this many characters (else the
#: reference is left out).
MIN_COOP_CHARS = 16


def order_ref(order_id: str) -> str:
    """The short reference a farmer can read out on the phone."""
    return order_id[-8:].upper()


def ussd_code() -> str | None:
    """The configured USSD code; the sandbox's in the local stage; else None."""
    code = os.environ.get(USSD_CODE_ENV, "").strip()
    if code:
        return code
    return LOCAL_USSD_CODE if os.environ.get("MIZANI_STAGE", "local") == "local" else None


def compose(event: str, order: dict, amount: Money | None = None, provider_ref: str | None = None,
            unpaid: Money | None = None, *, language: str = "en", rail: str | None = None,
            coop_name: str | None = None) -> str:
    """The message for ``event`` in ``language`` (English for an unknown code).

    Events: ``paid``, ``cleared``, ``payout_sent``, ``payout_partial`` (``amount`` reached the wallet,
    ``unpaid`` did not), ``payout_failed`` (the seller's); ``member_paid``, ``member_payout_partial``,
    ``member_payout_failed`` (a co-operative member's share: ``amount`` and ``unpaid`` as above,
    ``rail`` the member's rail (its id, e.g. ``airtel_money``, or display name), ``coop_name`` the
    co-operative's). ``amount`` defaults to the order's guaranteed payout; ``rail`` to the order's
    payout rail. A text says only what has happened: nothing retries a failed payout on its own,
    so it says where the money is and that it can be withdrawn."""
    if event not in _TEXTS:
        raise ValueError(f"unknown SMS event {event!r}")
    _ = translator(language).gettext
    payout = amount or Money(order["payout"]["amount"], order["payout"]["currency"])
    rail = rail if rail is not None else (order.get("payout_route") or {}).get("rail", "")
    fields = {
        "ref": order_ref(order["order_id"]),
        "amount": format_money(payout),
        "unpaid": format_money(unpaid) if unpaid is not None else "",
        "rail": display_name(rail) if rail in RAILS else (rail or _(_UNKNOWN_RAIL)),
        "coop": coop_name or "",
        "ussd_code": ussd_code() or _(_NO_USSD_CODE),
    }
    template = _(_TEXTS[event])
    if event in _WITH_REFERENCE and provider_ref:
        # The reference only when it fits whole and leaves the co-operative's name recognisable: a cut
        # reference is no use to anyone, and the rest of the text says what happened.
        with_ref = fit(f"{template} {_(_REFERENCE)}", SMS_MAX_CHARS, {**fields, "provider_ref": provider_ref},
                       shrinkable=("coop", "rail"), min_chars=MIN_COOP_CHARS)
        if septets(with_ref) <= SMS_MAX_CHARS:
            return with_ref
    return fit(template, SMS_MAX_CHARS, fields, shrinkable=("coop", "rail"))
