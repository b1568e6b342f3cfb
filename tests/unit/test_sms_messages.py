"""SMS texts in four languages: one GSM-7 part each, amounts whole, names shortened to fit."""
import pytest

from chalicelib.i18n import LANGUAGES, is_gsm7, septets
from chalicelib.money import Money
from chalicelib.notify.messages import EVENTS, SMS_MAX_CHARS, compose

ORDER = {"order_id": "ord_7f3a9c21e4b8d602", "payout": {"amount": 1_707_447, "currency": "RWF"},
         "payout_route": {"rail": "mtn_momo", "msisdn": "250788123456"}}
REF = "E4B8D602"
LONG_COOP = "Koperative y'Abahuzamugambi b'Abahinzi ba Kawa ba Maraba na Nyamagabe"
LARGE = Money(99_999_999_999, "RWF")  # 99,999,999,999 RWF: 18 characters, far past any payout a rail allows
LONG_REF = "3f9c2a1e-7b4d-4e8a-9c61-2d5f8a0b7e13, MP98765432"


def test_member_paid_reads_as_the_co_operative_expects():
    text = compose("member_paid", ORDER, Money(52_000, "RWF"), rail="mtn_momo", coop_name="Maraba Coffee")
    assert text == "Mizani: 52,000 RWF sent to your MTN MoMo wallet for your coffee at Maraba Coffee, order E4B8D602."


def test_member_paid_names_the_provider_reference_and_takes_a_display_name():
    text = compose("member_paid", ORDER, Money(52_000, "RWF"), "AM123456", rail="Airtel Money", coop_name="Maraba")
    assert text.endswith("Airtel Money wallet for your coffee at Maraba, order E4B8D602. Ref AM123456.")


def test_member_payout_failed_says_the_money_is_safe_and_how_to_withdraw(monkeypatch):
    monkeypatch.setenv("MIZANI_USSD_CODE", "*384*77#")
    text = compose("member_payout_failed", ORDER, Money(52_000, "RWF"), coop_name="Maraba")
    assert text == ("Mizani: we could not send 52,000 RWF for your coffee at Maraba, order E4B8D602. "
                    "It is in your Mizani balance; dial *384*77# to withdraw.")


def test_without_a_configured_code_outside_the_sandbox_the_code_is_named_in_words(monkeypatch):
    monkeypatch.delenv("MIZANI_USSD_CODE", raising=False)
    monkeypatch.setenv("MIZANI_STAGE", "prod")
    assert "dial the Mizani USSD code to withdraw" in compose("member_payout_failed", ORDER, coop_name="Maraba")
    monkeypatch.setenv("MIZANI_STAGE", "local")
    assert "dial *384*2026# to withdraw" in compose("member_payout_failed", ORDER, coop_name="Maraba")


def test_the_sellers_english_texts_are_unchanged():
    assert compose("paid", ORDER) == ("Mizani: order E4B8D602 is paid. 1,707,447 RWF is held in escrow for you. "
                                      "Ship it and declare it to customs.")
    assert compose("payout_sent", ORDER, provider_ref="MP1") == ("Mizani: 1,707,447 RWF sent to your MTN MoMo wallet "
                                                                 "for order E4B8D602. Ref MP1.")


def test_compose_speaks_the_language_asked_and_english_by_default():
    assert compose("cleared", ORDER, language="sw") == ("Mizani: forodha imeruhusu oda E4B8D602. 1,707,447 RWF iko "
                                                        "njiani kwenda kwenye akaunti yako ya MTN MoMo.")
    assert compose("cleared", ORDER, language="xx") == compose("cleared", ORDER)
    assert compose("payout_failed", ORDER, language="fr").startswith("Mizani : l'envoi de 1,707,447 RWF")


def test_an_unknown_event_is_a_bug():
    with pytest.raises(ValueError):
        compose("payout_maybe", ORDER)


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
@pytest.mark.parametrize("event", sorted(EVENTS))
def test_every_text_is_one_gsm7_sms_with_long_names_and_large_amounts(lang, event):
    text = compose(event, ORDER, LARGE, LONG_REF, unpaid=LARGE, language=lang, rail="airtel_money",
                   coop_name=LONG_COOP)
    assert is_gsm7(text) and "?" not in text, text
    assert septets(text) <= SMS_MAX_CHARS, (septets(text), text)
    assert "99,999,999,999 RWF" in text and REF in text
    if "unpaid" in event or "partial" in event:
        assert text.count("99,999,999,999 RWF") == 2
    if event in ("member_paid", "member_payout_failed"):
        assert LONG_COOP[:15] in text  # shortened, still recognisable
    assert "3f9c2a1e" not in text or "MP98765432" in text  # the reference whole, or not at all


def test_a_fair_shortening_keeps_both_the_name_and_a_short_reference():
    text = compose("member_paid", ORDER, LARGE, "MP98765432", rail="airtel_money", coop_name=LONG_COOP, language="fr")
    assert "Réf. MP98765432." in text and LONG_COOP[:15] in text and septets(text) <= SMS_MAX_CHARS


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_a_short_name_and_reference_are_kept_whole(lang):
    text = compose("member_paid", ORDER, Money(52_000, "RWF"), "MP1234", language=lang, rail="mpesa",
                   coop_name="Maraba Coffee")
    assert "Maraba Coffee" in text and "MP1234" in text and "M-Pesa" in text and "52,000 RWF" in text
