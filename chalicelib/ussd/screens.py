"""Every USSD screen, in the caller's language, at most ``SCREEN_MAX`` characters of GSM 03.38.

Texts are catalogue msgids (``chalicelib/i18n``). Names are shortened to fit a screen, amounts
never. ``Screen`` is one answer to the gateway: ``CON <text>`` (more input expected) or
``END <text>`` (the session is over).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from chalicelib.i18n import LANGUAGES, N_, fit, format_money, septets, shorten, translator
from chalicelib.money import Money
from chalicelib.ussd.directory import Caller

logger = logging.getLogger("mizani.ussd")

#: Africa's Talking shows at most 182 characters (GSM 03.38 septets) on a screen.
SCREEN_MAX = 182
#: A name above the menu takes at most this many characters: a basic phone shows ~20 a line, and
#: the menu below it should not scroll away.
NAME_MAX = 24

#: The main menu, in this order; ``Orders`` only for a co-operative's own number, last, so that
#: every number shares the same first five choices.
MENU = (
    ("balance", N_("Balance")),
    ("payments", N_("Payments")),
    ("withdraw", N_("Withdraw")),
    ("language", N_("Language")),
    ("change_pin", N_("Change PIN")),
)
COOPERATIVE_MENU = MENU + (("orders", N_("Orders")),)


def menu_for(caller: Caller) -> tuple[tuple[str, str], ...]:
    return COOPERATIVE_MENU if caller.is_cooperative else MENU


@dataclass(frozen=True)
class Screen:
    """One answer: its text (already GSM 03.38) and whether it ends the session. ``code``: the API's
    error code an error screen stands for (``pin_locked``, ...), for the log line; never shown."""

    text: str
    end: bool
    code: str = field(default="", compare=False)

    def __str__(self) -> str:
        return ("END " if self.end else "CON ") + self.text

    @classmethod
    def parse(cls, answer: str) -> "Screen":
        """The inverse of ``str``: a stored answer back as a ``Screen``."""
        return cls(answer[4:], answer.startswith("END "))


def _guard(text: str) -> str:
    """The last line of defence (the tests prove every screen fits): cut at ``SCREEN_MAX`` septets."""
    if septets(text) <= SCREEN_MAX:
        return text
    logger.warning("ussd screen of %d septets cut to %d", septets(text), SCREEN_MAX)
    kept, used = [], 0
    for ch in text:
        used += septets(ch)
        if used > SCREEN_MAX:
            break
        kept.append(ch)
    return "".join(kept)


def _date(value: object) -> str:
    return str(value or "")[:10]  # RFC 3339 -> YYYY-MM-DD: the same in every language


class Texts:
    """The screens in one language (``lang``; English for an unknown code)."""

    def __init__(self, lang: str):
        catalogue = translator(lang)
        self.lang = lang
        self._ = catalogue.gettext
        self._p = catalogue.pgettext

    # -- building ---------------------------------------------------------------------
    def _screen(self, lines: Sequence[str], end: bool, fields: Mapping[str, object] | None = None,
                shrinkable: Sequence[str] = ()) -> Screen:
        """``lines`` (translated templates) joined by newlines, filled and fitted."""
        template = "\n".join(line for line in lines if line)
        return Screen(_guard(fit(template, SCREEN_MAX, fields, shrinkable)), end)

    @staticmethod
    def _literal(text: str) -> str:
        """A value shown inside a template (escaped so that its braces are not placeholders)."""
        return text.replace("{", "{{").replace("}", "}}")

    # -- before the menu ----------------------------------------------------------------
    def malformed(self) -> Screen:
        screen = self._screen([self._("Sorry, Mizani could not read this request. Please dial again.")], True)
        return replace(screen, code="validation_error")

    def unavailable(self) -> Screen:
        screen = self._screen([self._("Sorry, Mizani cannot answer now. Please try again later.")], True)
        return replace(screen, code="internal_error")

    def not_registered(self) -> Screen:
        screen = self._screen([self._("This number is not registered with Mizani. Ask your co-operative to register it.")],
                              True)
        return replace(screen, code="not_found")

    def locked(self, locked_until: int, now: int) -> Screen:
        minutes = max(1, math.ceil((locked_until - now) / 60))
        screen = self._screen([self._("Too many wrong PINs. This number is locked. Try again in {minutes} minutes.")],
                              True, {"minutes": minutes})
        return replace(screen, code="pin_locked")

    # -- first use: choosing the PIN ------------------------------------------------------
    def welcome(self, name: str) -> Screen:
        return self._screen([self._("Welcome to Mizani, {name}."), self._("Choose a PIN of 4 to 6 digits:")], False,
                            {"name": shorten(name, NAME_MAX)}, ("name",))

    def pin_invalid(self) -> Screen:
        return self._screen([self._("A PIN is 4 to 6 digits."), self._("Choose a PIN of 4 to 6 digits:")], False)

    def pin_again(self) -> Screen:
        return self._screen([self._("Enter the same PIN again:")], False)

    def pin_mismatch(self) -> Screen:
        return self._screen([self._("The two PINs are different."), self._("Choose a PIN of 4 to 6 digits:")], False)

    def pin_exists(self) -> Screen:
        return self._screen([self._("This number already has a PIN. Please dial again.")], True)

    # -- the main menu ----------------------------------------------------------------------
    def main_menu(self, caller: Caller, notice: str | None = None) -> Screen:
        """``notice``: a msgid shown above the menu ("Your PIN is set.", "Invalid choice.")."""
        options = [f"{n}. {self._literal(self._(label))}" for n, (_, label) in enumerate(menu_for(caller), start=1)]
        return self._screen([self._(notice) if notice else "", self._("Mizani: {name}"), *options], False,
                            {"name": shorten(caller.name, NAME_MAX)}, ("name",))

    def balance(self, caller: Caller, balance: Mapping) -> Screen:
        lines = [self._("Available: {available}")]
        fields = {"available": format_money(balance["available"]),
                  "pending": format_money(balance["payout_pending"])}
        if caller.is_cooperative:
            held = [format_money(m) for m in balance.get("in_escrow") or []]
            fields["in_escrow"] = ", ".join(held) or format_money(Money.zero(caller.currency))
            lines.append(self._("In escrow: {in_escrow}"))
        lines.append(self._("Being paid out: {pending}"))
        return self._screen(lines, True, fields)

    def _payout_status(self, status: str) -> str:
        words = {"succeeded": self._p("payout status", "sent"), "pending": self._p("payout status", "pending"),
                 "failed": self._p("payout status", "failed")}
        return words.get(status, words["pending"])

    def payments(self, payouts: Sequence[Mapping]) -> Screen:
        if not payouts:
            return self._screen([self._("No payments yet.")], True)
        lines = [self._("Last payments:")]
        for p in payouts:
            lines.append(self._literal(f"{format_money(p['amount'])} {_date(p.get('created_at'))} "
                                       f"{self._payout_status(str(p.get('status')))}"))
        return self._screen(lines, True)

    def _order_status(self, status: str) -> str:
        words = {
            "awaiting_payment": self._p("order status", "awaiting payment"),
            "paid": self._p("order status", "paid"),
            "shipped": self._p("order status", "shipped"),
            "customs_cleared": self._p("order status", "cleared by customs"),
            "released": self._p("order status", "released"),
            "payout_pending": self._p("order status", "being paid out"),
            "settled": self._p("order status", "paid out"),
            "refunded": self._p("order status", "refunded"),
            "payout_failed": self._p("order status", "payout failed"),
            "manual_review": self._p("order status", "under review"),
        }
        return words.get(status, status.replace("_", " "))

    def orders(self, orders: Sequence[Mapping]) -> Screen:
        from chalicelib.notify.messages import order_ref

        if not orders:
            return self._screen([self._("No orders yet.")], True)
        lines = [self._("Last orders:")]
        for order in orders:
            payout = f" {format_money(order['payout'])}" if order.get("payout") else ""
            lines.append(self._literal(f"{order_ref(str(order['order_id']))} {self._order_status(str(order.get('status')))}"
                                       f"{payout}"))
        return self._screen(lines, True)

    # -- Withdraw ---------------------------------------------------------------------------
    def withdraw_ask(self, available: Money, notice: str | None = None) -> Screen:
        return self._screen([self._(notice) if notice else "", self._("Available: {available}"),
                             self._("Amount to withdraw in {currency}:")], False,
                            {"available": format_money(available), "currency": available.currency})

    def withdraw_invalid(self, available: Money) -> Screen:
        return self._screen([self._("Enter the amount in {currency}, digits only."), self._("Available: {available}"),
                             self._("Amount to withdraw in {currency}:")], False,
                            {"available": format_money(available), "currency": available.currency})

    def withdraw_nothing(self, available: Money) -> Screen:
        return self._screen([self._("There is nothing to withdraw. Available: {available}")], True,
                            {"available": format_money(available)})

    def withdraw_not_enough(self, available: Money) -> Screen:
        return self._screen([self._("Not enough money. Available: {available}. Nothing was sent.")], True,
                            {"available": format_money(available)})

    def withdraw_pin(self, amount: Money) -> Screen:
        return self._screen([self._("Withdraw {amount} to your wallet."), self._("Enter your PIN:")], False,
                            {"amount": format_money(amount)})

    def wrong_pin(self, attempts_left: int, then: Screen) -> Screen:
        """A wrong PIN, and the same question again (``then``)."""
        return Screen(_guard(fit(self._("Wrong PIN. Attempts left: {left}"), SCREEN_MAX, {"left": attempts_left})
                             + "\n" + then.text), False)

    def withdraw_done(self, amount: Money, status: str) -> Screen:
        text = {
            "succeeded": self._("{amount} sent to your wallet."),
            "failed": self._("{amount} could not be sent. It is safe in your Mizani balance."),
        }.get(status, self._("{amount} is on its way to your wallet."))
        return self._screen([text], True, {"amount": format_money(amount)})

    def withdraw_refused(self, code: str) -> Screen:
        text = {
            "limit_exceeded": self._("This amount is outside your wallet's limits. Nothing was sent."),
            "amount_not_whole_units": self._("This amount is outside your wallet's limits. Nothing was sent."),
            "payee_in_review": self._("Your wallet is being checked. You can withdraw once it is cleared."),
            "payee_blocked": self._("Withdrawals to this wallet are blocked. Please call your co-operative."),
            "provider_unavailable": self._("Mobile money is not answering. Nothing was sent. Please try again later."),
        }.get(code, self._("Sorry, the withdrawal could not be made. Please try again later."))
        return self._screen([text], True)

    # -- Language -----------------------------------------------------------------------------
    def language_menu(self, notice: str | None = None) -> Screen:
        options = [f"{n}. {name}" for n, name in enumerate(LANGUAGES.values(), start=1)]
        return self._screen([self._(notice) if notice else "", self._("Choose a language:"), *options], False)

    def language_set(self) -> Screen:
        """In the language just chosen (build ``Texts(new_lang).language_set()``)."""
        return self._screen([self._("Your language is now {language}.")], True, {"language": LANGUAGES[self.lang]})

    # -- Change PIN --------------------------------------------------------------------------------
    def change_current(self) -> Screen:
        return self._screen([self._("Enter your current PIN:")], False)

    def change_new(self, notice: str | None = None) -> Screen:
        return self._screen([self._(notice) if notice else "", self._("Choose a new PIN of 4 to 6 digits:")], False)

    def change_again(self) -> Screen:
        return self._screen([self._("Enter the new PIN again:")], False)

    def pin_changed(self) -> Screen:
        return self._screen([self._("Your PIN is changed.")], True)

    # -- resuming a session that timed out --------------------------------------------------------
    def resume_offer(self, notice: str | None = None) -> Screen:
        options = (self._("Continue"), self._("Start again"))
        return self._screen([self._(notice) if notice else "", self._("You did not finish last time."),
                             *(f"{n}. {self._literal(label)}" for n, label in enumerate(options, start=1))], False)


#: Notices shown above a repeated question (msgids; translated where shown).
PIN_SET = N_("Your PIN is set.")
INVALID_CHOICE = N_("Invalid choice.")
PINS_DIFFERENT = N_("The two PINs are different.")
A_PIN_IS = N_("A PIN is 4 to 6 digits.")
