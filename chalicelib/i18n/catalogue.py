"""The message catalogues: gettext ``.mo`` files compiled from ``locale/<lang>/LC_MESSAGES/mizani.po``.

Loaded with the standard library's ``gettext`` (no Babel at run time; Babel only compiles and checks
them: ``python -m infra.i18n``). A msgid is the English text; placeholders are ``str.format`` names
(``{amount}``), the same in every translation. ``N_`` marks a text for extraction where it is
defined (a menu label) and ``translator(lang).gettext`` translates it where it is shown.
"""
from __future__ import annotations

import gettext
from functools import lru_cache
from pathlib import Path

DOMAIN = "mizani"
LOCALE_DIR = Path(__file__).with_name("locale")
DEFAULT_LANGUAGE = "en"

#: Language code -> its name in that language, in the order the Language menu offers them.
LANGUAGES: dict[str, str] = {
    "en": "English",
    "rw": "Kinyarwanda",
    "sw": "Kiswahili",
    "fr": "Français",
}


def N_(message: str) -> str:
    """Mark ``message`` for the catalogues without translating it here (gettext's ``N_``)."""
    return message


def language_or_default(lang: str | None) -> str:
    """``lang`` if the platform speaks it, else the default (English)."""
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


@lru_cache(maxsize=len(LANGUAGES))
def translator(lang: str | None) -> gettext.GNUTranslations:
    """The catalogue of ``lang`` (English for an unknown code): ``translator("sw").gettext(msgid)``.

    A missing ``.mo`` raises ``FileNotFoundError``: the catalogues ship with the code, so that is a
    packaging bug to find at once, not a reason to answer in another language."""
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[language_or_default(lang)])
