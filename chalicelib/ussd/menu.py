"""The USSD menu as a state machine: one input at a time, from a state to the next state and a screen.

A state is a small JSON-able dict (``{"at": "withdraw_pin", "amount": 52000}``) and never holds a
PIN: while a PIN is being chosen, the state names the *position* of the first entry in the
session's inputs (the gateway sends them all again with every request), so the second entry can
be compared with it. Side effects go through ports only: the ``Directory`` (balances, lists, a
withdrawal), the ``UssdStore`` (PINs and their lockout), the language preferences.

    pin_new -> pin_confirm -> main                       (first use: choose the PIN twice)
    main: 1 Balance | 2 Payments | 3 Withdraw | 4 Language | 5 Change PIN | 6 Orders (co-operative)
    withdraw_amount -> withdraw_pin -> END               (more than available: END, nothing moves)
    language -> END                                      (remembered for the number; SMS use it)
    change_pin_current -> change_pin_new -> change_pin_confirm -> END
    resume: 1 Continue (the state where the last session stopped) | 2 Start again
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from chalicelib.errors import BusinessRuleViolation, MizaniError, ProviderUnavailable
from chalicelib.i18n import LANGUAGES, LanguagePreferences
from chalicelib.money import Money, exponent
from chalicelib.ussd import screens
from chalicelib.ussd.directory import Caller, Directory
from chalicelib.ussd.pins import PinHasher, is_valid_pin
from chalicelib.ussd.screens import Screen, Texts, menu_for
from chalicelib.ussd.store import PinFailure, UssdStore

ENDED = {"at": "ended"}

#: Where a session that stopped in a state resumes. Entering a new PIN resumes at the current
#: PIN (its first entry was in the other session's inputs); states not listed are not resumed.
_RESUME_AT = {
    "withdraw_amount": "withdraw_amount",
    "withdraw_pin": "withdraw_pin",
    "language": "language",
    "change_pin_current": "change_pin_current",
    "change_pin_new": "change_pin_current",
    "change_pin_confirm": "change_pin_current",
}
#: Whole units only: an amount has at most this many digits (10^12 RWF is far past any limit).
_MAX_AMOUNT_DIGITS = 12


def resume_point(state: dict | None) -> dict | None:
    """The state a session interrupted in ``state`` continues from, or None."""
    at = _RESUME_AT.get((state or {}).get("at", ""))
    if at is None:
        return None
    resumed = {"at": at}
    if at == "withdraw_pin":
        resumed["amount"] = int(state["amount"])
    return resumed


@dataclass(frozen=True)
class Context:
    """One request's facts: who calls, in which language, the session's inputs and this one's position."""

    caller: Caller
    texts: Texts
    session_id: str
    inputs: tuple[str, ...]
    now: int
    index: int = 0  # position of the input being handled in ``inputs``

    def at(self, index: int) -> "Context":
        return replace(self, index=index)

    @property
    def step_id(self) -> str:
        """This input's identity: the session and its position (a gateway retry has the same)."""
        return f"{self.session_id}:{self.index}"


class Menu:
    """The transitions (see the module docstring)."""

    def __init__(self, directory: Directory, store: UssdStore, hasher: PinHasher, languages: LanguagePreferences):
        self.directory = directory
        self.store = store
        self.hasher = hasher
        self.languages = languages

    @staticmethod
    def first_state(has_pin: bool) -> dict:
        return {"at": "main"} if has_pin else {"at": "pin_new"}

    # -- what a state asks ---------------------------------------------------------------
    def prompt(self, state: dict, ctx: Context) -> Screen:
        """The question ``state`` waits on (the screen shown when a session enters or resumes it)."""
        at, texts = state["at"], ctx.texts
        if at == "pin_new":
            return texts.welcome(ctx.caller.name)
        if at == "withdraw_amount":
            return self._ask_amount(ctx)
        if at == "withdraw_pin":
            return texts.withdraw_pin(Money(int(state["amount"]), ctx.caller.currency))
        if at == "language":
            return texts.language_menu()
        if at == "change_pin_current":
            return texts.change_current()
        if at == "resume":
            return texts.resume_offer()
        return texts.main_menu(ctx.caller)

    # -- one input -------------------------------------------------------------------------
    def on_input(self, state: dict, value: str, ctx: Context) -> tuple[dict, Screen]:
        handler = getattr(self, f"_on_{state['at']}", None)
        if handler is None:  # an unknown stored state (an older release's): start from the menu
            return {"at": "main"}, ctx.texts.main_menu(ctx.caller, screens.INVALID_CHOICE)
        return handler(state, value.strip(), ctx)

    def _on_resume(self, state, value, ctx):
        if value == "1":
            saved = resume_point(state.get("saved")) or {"at": "main"}
            return saved, self.prompt(saved, ctx)
        if value == "2":
            fresh = self.first_state(self.store.get_pin(ctx.caller.msisdn) is not None)
            return fresh, self.prompt(fresh, ctx)
        return state, ctx.texts.resume_offer(screens.INVALID_CHOICE)

    # first use
    def _on_pin_new(self, state, value, ctx):
        if not is_valid_pin(value):
            return state, ctx.texts.pin_invalid()
        return {"at": "pin_confirm", "first": ctx.index}, ctx.texts.pin_again()

    def _on_pin_confirm(self, state, value, ctx):
        first = ctx.inputs[int(state["first"])].strip()
        if value != first:
            return {"at": "pin_new"}, ctx.texts.pin_mismatch()
        if not self.store.create_pin(ctx.caller.msisdn, self.hasher.hash(ctx.caller.msisdn, value), ctx.now):
            return ENDED, ctx.texts.pin_exists()
        return {"at": "main"}, ctx.texts.main_menu(ctx.caller, screens.PIN_SET)

    # the main menu
    def _on_main(self, state, value, ctx):
        options = menu_for(ctx.caller)
        if not (value.isascii() and value.isdigit() and 1 <= int(value) <= len(options)):
            return state, ctx.texts.main_menu(ctx.caller, screens.INVALID_CHOICE)
        choice = options[int(value) - 1][0]
        caller, texts = ctx.caller, ctx.texts
        if choice == "balance":
            return ENDED, texts.balance(caller, self.directory.balance(caller))
        if choice == "payments":
            return ENDED, texts.payments(self.directory.recent_payouts(caller, limit=3))
        if choice == "orders":
            return ENDED, texts.orders(self.directory.recent_orders(caller, limit=3))
        if choice == "withdraw":
            available = self._available(caller)
            if available.minor <= 0:
                return ENDED, texts.withdraw_nothing(available)
            return {"at": "withdraw_amount"}, texts.withdraw_ask(available)
        if choice == "language":
            return {"at": "language"}, texts.language_menu()
        return {"at": "change_pin_current"}, texts.change_current()

    # Withdraw
    def _available(self, caller: Caller) -> Money:
        return self.directory.balance(caller)["available"]

    def _ask_amount(self, ctx: Context) -> Screen:
        return ctx.texts.withdraw_ask(self._available(ctx.caller))

    def _on_withdraw_amount(self, state, value, ctx):
        caller, texts = ctx.caller, ctx.texts
        available = self._available(caller)
        if not (value.isascii() and value.isdigit() and len(value) <= _MAX_AMOUNT_DIGITS and int(value) > 0):
            return state, texts.withdraw_invalid(available)
        amount = Money(int(value) * 10 ** exponent(caller.currency), caller.currency)  # whole units, as typed
        if amount.minor > available.minor:
            return ENDED, texts.withdraw_not_enough(available)  # nothing moves
        return {"at": "withdraw_pin", "amount": amount.minor}, texts.withdraw_pin(amount)

    def _on_withdraw_pin(self, state, value, ctx):
        again = self.prompt(state, ctx)
        failure = self._check_pin(value, ctx)
        if failure is not None:
            return self._after_wrong_pin(state, failure, again, ctx)
        amount = Money(int(state["amount"]), ctx.caller.currency)
        try:
            # The key is this input's identity: a gateway retry of this request replays, never pays twice.
            payout = self.directory.withdraw(ctx.caller, amount, request_key=f"ussd:{ctx.step_id}")
        except BusinessRuleViolation as refused:
            if refused.code == "insufficient_funds":
                return ENDED, ctx.texts.withdraw_not_enough(self._available(ctx.caller))
            return ENDED, ctx.texts.withdraw_refused(refused.code)
        except ProviderUnavailable:
            return ENDED, ctx.texts.withdraw_refused("provider_unavailable")
        except MizaniError as error:
            return ENDED, ctx.texts.withdraw_refused(error.code)
        # Several parts (a wallet's per-transfer limit): the view lists them in ``batch``.
        statuses = {str(part.get("status")) for part in payout.get("batch") or [payout]}
        status = "succeeded" if statuses == {"succeeded"} else "failed" if statuses == {"failed"} else "pending"
        return ENDED, ctx.texts.withdraw_done(amount, status)

    # PINs
    def _check_pin(self, value: str, ctx: Context) -> PinFailure | None:
        """None when ``value`` is the number's PIN (the row of failures ends); else what the failure did."""
        msisdn = ctx.caller.msisdn
        record = self.store.get_pin(msisdn)
        if record is None:
            return PinFailure(0)
        if record.locked(ctx.now):
            return PinFailure(0, record.locked_until)
        if self.hasher.verify(msisdn, value, record.pin_hash):
            if record.fails and not self.store.right_pin(msisdn, ctx.now):
                latest = self.store.get_pin(msisdn)  # locked meanwhile (another session): the lock holds
                return PinFailure(0, latest.locked_until if latest else 0)
            return None
        return self.store.wrong_pin(msisdn, ctx.step_id, ctx.now)

    @staticmethod
    def _after_wrong_pin(state, failure: PinFailure, again: Screen, ctx):
        if failure.locked:
            return ENDED, ctx.texts.locked(failure.locked_until, ctx.now)
        return state, ctx.texts.wrong_pin(failure.attempts_left, again)

    # Language
    def _on_language(self, state, value, ctx):
        codes = list(LANGUAGES)
        if not (value.isascii() and value.isdigit() and 1 <= int(value) <= len(codes)):
            return state, ctx.texts.language_menu(screens.INVALID_CHOICE)
        chosen = codes[int(value) - 1]
        self.languages.set(ctx.caller.msisdn, chosen)
        return ENDED, Texts(chosen).language_set()

    # Change PIN
    def _on_change_pin_current(self, state, value, ctx):
        failure = self._check_pin(value, ctx)
        if failure is not None:
            return self._after_wrong_pin(state, failure, ctx.texts.change_current(), ctx)
        return {"at": "change_pin_new"}, ctx.texts.change_new()

    def _on_change_pin_new(self, state, value, ctx):
        if not is_valid_pin(value):
            return state, ctx.texts.change_new(screens.A_PIN_IS)
        return {"at": "change_pin_confirm", "first": ctx.index}, ctx.texts.change_again()

    def _on_change_pin_confirm(self, state, value, ctx):
        if value != ctx.inputs[int(state["first"])].strip():
            return {"at": "change_pin_new"}, ctx.texts.change_new(screens.PINS_DIFFERENT)
        if not self.store.replace_pin(ctx.caller.msisdn, self.hasher.hash(ctx.caller.msisdn, value), ctx.now):
            record = self.store.get_pin(ctx.caller.msisdn)
            if record is not None and record.locked(ctx.now):
                return ENDED, ctx.texts.locked(record.locked_until, ctx.now)
            return ENDED, ctx.texts.unavailable()
        return ENDED, ctx.texts.pin_changed()

    def _on_ended(self, state, value, ctx):
        return ENDED, ctx.texts.unavailable()
