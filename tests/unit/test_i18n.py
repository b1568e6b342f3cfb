"""The GSM 03.38 alphabet and ``gsm7``, money for people, fitting texts, languages per number."""
import pytest
from hypothesis import given, strategies as st

from chalicelib.documents import MemoryDocuments
from chalicelib.i18n import (GSM7_BASIC, GSM7_EXTENSION, LANGUAGES, LanguagePreferences, fit, format_money, gsm7,
                             is_gsm7, septets, translator)
from chalicelib.money import Money
from chalicelib.notify import sms_gateway


def test_the_languages_and_their_own_names():
    assert LANGUAGES == {"en": "English", "rw": "Kinyarwanda", "sw": "Kiswahili", "fr": "Français"}


def test_the_sms_gateway_counts_with_the_same_alphabet():
    assert all(sms_gateway.sms_length(ch * 10).encoding == "GSM-7" for ch in GSM7_BASIC | GSM7_EXTENSION)
    assert sms_gateway.sms_length("€" * 80).units == 160 == sms_gateway.sms_length("e" * 160).units


@pytest.mark.parametrize("text, expected", [
    ("Français", "Francais"),  # ç is not GSM 03.38 ...
    ("Ça coûte", "Ça coute"),  # ... but Ç is; û is not
    ("été à l'hôtel", "été à l'hotel"),  # é è à ù ì ò are
    ("œuvre « prête »", 'oeuvre " prete "'),
    ("l’envoi – fini…", "l'envoi - fini..."),
    ("Mizani\u00a0: oui", "Mizani : oui"),
    ("咖啡 Ngoma", "?? Ngoma"),
    ("Müller Ñandú Øre", "Müller Ñandu Øre"),  # ú is not GSM 03.38 (ù is)
])
def test_gsm7_keeps_what_gsm_has_and_transliterates_the_rest(text, expected):
    assert gsm7(text) == expected


@given(st.text(max_size=200))
def test_gsm7_always_yields_gsm_text(text):
    assert is_gsm7(gsm7(text))


def test_extension_characters_take_two_septets():
    assert septets("a€[") == 5 and septets("abc") == 3


@pytest.mark.parametrize("money, text", [
    (Money(1_707_447, "RWF"), "1,707,447 RWF"),
    (Money(150_050, "KES"), "1,500.50 KES"),
    (Money(0, "UGX"), "0 UGX"),
    ({"amount": 52_000, "currency": "RWF"}, "52,000 RWF"),
])
def test_format_money_in_major_units(money, text):
    assert format_money(money) == text


def test_fit_shortens_only_the_names_it_may_and_never_an_amount():
    template = "{amount} for {coop}, order {ref}."
    fields = {"amount": "99,999,999,999 RWF", "coop": "A very long co-operative name indeed", "ref": "ABCDEFGH"}
    text = fit(template, 50, fields, shrinkable=("coop",))
    assert septets(text) <= 50 and text.startswith("99,999,999,999 RWF for A very") and text.endswith("order ABCDEFGH.")
    assert fit(template, 500, fields, shrinkable=("coop",)) == template.format(**fields)
    # what cannot shrink stays whole, even past the limit (the callers' tests hold them to it)
    assert "99,999,999,999 RWF" in fit(template, 10, fields, shrinkable=("coop",))


def test_an_unknown_language_reads_english():
    assert translator("xx").gettext("Balance") == "Balance" == translator(None).gettext("Balance")
    assert translator("sw").gettext("Balance") == "Salio"


def test_a_number_speaks_english_until_it_chooses():
    prefs = LanguagePreferences(MemoryDocuments())
    assert prefs.get("250788123456") == "en"
    prefs.set("+250788123456", "rw")
    assert prefs.get("250788123456") == "rw"
    prefs.set("250788123456", "fr")
    assert prefs.get("+250788123456") == "fr"
    with pytest.raises(ValueError):
        prefs.set("250788123456", "de")
    assert prefs.get("250788123456") == "fr"
