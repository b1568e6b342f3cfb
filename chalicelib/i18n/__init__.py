"""Speaking the farmer's language: message catalogues (gettext), the GSM 03.38 alphabet, money for
people, and the language each wallet number chose.

    translator("rw").gettext("Balance")       -> the Kinyarwanda label
    gsm7("Français")                          -> "Francais" (ç is not GSM 03.38; é è à ù ì ò are)
    format_money(Money(1707447, "RWF"))       -> "1,707,447 RWF"
    LanguagePreferences(docs).get("250788123456")   -> "en" until the number chooses

Catalogues live in ``locale/<lang>/LC_MESSAGES/mizani.po`` (sources) beside their compiled
``.mo``; ``python -m infra.i18n`` extracts, compiles and checks them (Babel, a development tool).
"""
from chalicelib.i18n.catalogue import DEFAULT_LANGUAGE, LANGUAGES, N_, language_or_default, translator
from chalicelib.i18n.gsm import GSM7, GSM7_BASIC, GSM7_EXTENSION, gsm7, is_gsm7, septets
from chalicelib.i18n.preferences import LanguagePreferences
from chalicelib.i18n.text import fit, format_money, shorten

__all__ = [
    "DEFAULT_LANGUAGE", "GSM7", "GSM7_BASIC", "GSM7_EXTENSION", "LANGUAGES", "LanguagePreferences", "N_", "fit",
    "format_money", "gsm7", "is_gsm7", "language_or_default", "septets", "shorten", "translator",
]
