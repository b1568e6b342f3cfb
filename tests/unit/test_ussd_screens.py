"""Every USSD screen in every language, with long names and large amounts: at most 182 characters of
GSM 03.38, amounts whole, names shortened only as much as needed."""
import inspect

import pytest

from chalicelib.i18n import LANGUAGES, is_gsm7, septets
from chalicelib.money import Money
from chalicelib.ussd import screens
from chalicelib.ussd.directory import MEMBER, SELLER, Caller
from chalicelib.ussd.screens import SCREEN_MAX, Screen, Texts

LONG_NAME = "Koperative y'Abahuzamugambi b'Abahinzi ba Kawa ba Maraba na Nyamagabe (Coopérative Café Ngoma)"
#: 18 characters once formatted: well past any payout the rails allow (eWTP's cap is 1,000,000 USD).
LARGE = Money(99_999_999_999, "RWF")
LARGE_KES = Money(99_999_999_999, "KES")  # 999,999,999.99 KES
COOP = Caller(SELLER, "s1", None, LONG_NAME, "250788100001", "RWF")
MEMBER_CALLER = Caller(MEMBER, "s1", "m1", LONG_NAME, "250788100002", "RWF")
PAYOUTS = [{"amount": LARGE.to_json(), "status": status, "created_at": "2026-12-31T23:59:59Z"}
           for status in ("pending", "failed", "succeeded")]
ORDER_STATUSES = ["awaiting_payment", "paid", "shipped", "customs_cleared", "released", "payout_pending", "settled",
                  "refunded", "payout_failed", "manual_review"]


def every_screen(texts: Texts) -> dict[str, list[Screen]]:
    """Each public builder of ``Texts``, called with the longest values it can be given."""
    wide_balance = {"available": LARGE, "in_escrow": [LARGE_KES, Money(99_999_999_999, "USD"), LARGE],
                    "payout_pending": LARGE}
    orders = [[{"order_id": "ord_" + "9" * 30, "status": status, "payout": LARGE.to_json()}] * 3
              for status in ORDER_STATUSES]
    question = texts.withdraw_pin(LARGE)
    return {
        "malformed": [texts.malformed()],
        "unavailable": [texts.unavailable()],
        "not_registered": [texts.not_registered()],
        "locked": [texts.locked(10_000 + 1800, 10_000), texts.locked(10_000 + 99 * 60, 10_000)],
        "welcome": [texts.welcome(LONG_NAME)],
        "pin_invalid": [texts.pin_invalid()],
        "pin_again": [texts.pin_again()],
        "pin_mismatch": [texts.pin_mismatch()],
        "pin_exists": [texts.pin_exists()],
        "main_menu": [texts.main_menu(c, notice) for c in (COOP, MEMBER_CALLER)
                      for notice in (None, screens.PIN_SET, screens.INVALID_CHOICE)],
        "balance": [texts.balance(COOP, wide_balance), texts.balance(MEMBER_CALLER, wide_balance)],
        "payments": [texts.payments(PAYOUTS), texts.payments([])],
        "orders": [texts.orders(o) for o in orders] + [texts.orders([])],
        "withdraw_ask": [texts.withdraw_ask(LARGE), texts.withdraw_ask(LARGE_KES)],
        "withdraw_invalid": [texts.withdraw_invalid(LARGE)],
        "withdraw_nothing": [texts.withdraw_nothing(Money(0, "KES"))],
        "withdraw_not_enough": [texts.withdraw_not_enough(LARGE)],
        "withdraw_pin": [question],
        "wrong_pin": [texts.wrong_pin(2, question), texts.wrong_pin(1, texts.change_current())],
        "withdraw_done": [texts.withdraw_done(LARGE_KES, s) for s in ("succeeded", "pending", "failed")],
        "withdraw_refused": [texts.withdraw_refused(code) for code in ("limit_exceeded", "amount_not_whole_units",
                                                                       "payee_in_review", "payee_blocked",
                                                                       "provider_unavailable", "other")],
        "language_menu": [texts.language_menu(), texts.language_menu(screens.INVALID_CHOICE)],
        "language_set": [texts.language_set()],
        "change_current": [texts.change_current()],
        "change_new": [texts.change_new(), texts.change_new(screens.PINS_DIFFERENT), texts.change_new(screens.A_PIN_IS)],
        "change_again": [texts.change_again()],
        "pin_changed": [texts.pin_changed()],
        "resume_offer": [texts.resume_offer(), texts.resume_offer(screens.INVALID_CHOICE)],
    }


def test_the_list_covers_every_screen_builder():
    builders = {name for name, _ in inspect.getmembers(Texts, inspect.isfunction) if not name.startswith("_")}
    assert builders == set(every_screen(Texts("en")))


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_every_screen_fits_182_gsm_characters_with_long_names_and_large_amounts(lang):
    for name, built in every_screen(Texts(lang)).items():
        for screen in built:
            assert is_gsm7(screen.text), (lang, name, screen.text)
            assert septets(screen.text) <= SCREEN_MAX, (lang, name, septets(screen.text), screen.text)
            assert "?" not in screen.text, (lang, name, screen.text)  # nothing fell outside GSM 03.38


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_amounts_are_never_cut(lang):
    texts = Texts(lang)
    assert "99,999,999,999 RWF" in texts.withdraw_pin(LARGE).text
    assert "999,999,999.99 KES" in texts.withdraw_done(LARGE_KES, "pending").text
    balance = texts.balance(COOP, {"available": LARGE, "in_escrow": [LARGE_KES], "payout_pending": LARGE}).text
    assert balance.count("99,999,999,999 RWF") == 2 and "999,999,999.99 KES" in balance
    assert texts.payments(PAYOUTS).text.count("99,999,999,999 RWF") == 3


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_a_long_name_is_shortened_to_fit_and_a_short_one_is_kept(lang):
    texts = Texts(lang)
    menu = texts.main_menu(COOP).text
    assert menu.split("\n")[0].endswith(f" {LONG_NAME[:screens.NAME_MAX - 1].rstrip()}.")
    assert texts.welcome(LONG_NAME).text.split("\n")[0].count(LONG_NAME[:screens.NAME_MAX - 1].rstrip() + ".") == 1
    assert "Uwimana Jeanne" in texts.main_menu(Caller(MEMBER, "s", "m", "Uwimana Jeanne", "2507", "RWF")).text


def test_the_menu_labels_are_exact_in_english():
    lines = Texts("en").main_menu(COOP).text.split("\n")[1:]
    assert lines == ["1. Balance", "2. Payments", "3. Withdraw", "4. Language", "5. Change PIN", "6. Orders"]


@pytest.mark.parametrize("lang", ["rw", "sw", "fr"])
def test_the_menu_is_translated(lang):
    labels = [line.split(". ", 1)[1] for line in Texts(lang).main_menu(COOP).text.split("\n")[1:]]
    english = ["Balance", "Payments", "Withdraw", "Language", "Change PIN", "Orders"]
    assert len(labels) == 6 and all(mine != theirs for mine, theirs in zip(labels, english))


def test_french_keeps_its_gsm_accents_and_transliterates_the_others():
    texts = Texts("fr")
    assert texts.welcome("Ana").text == "Bienvenue sur Mizani, Ana.\nChoisissez un PIN de 4 à 6 chiffres :"
    assert "4. Francais" in texts.language_menu().text  # ç is not GSM 03.38


def test_a_screen_answer_round_trips_through_its_stored_form():
    for screen in (Screen("Hello\nworld", False), Screen("Bye", True)):
        assert Screen.parse(str(screen)) == screen
