"""The language each wallet number chose (USSD ``Language``), for its screens and its SMS."""
from __future__ import annotations

from chalicelib.documents import DocumentExists, Documents
from chalicelib.i18n.catalogue import DEFAULT_LANGUAGE, LANGUAGES


def _digits(msisdn: str) -> str:
    return str(msisdn or "").strip().lstrip("+")


class LanguagePreferences:
    """The language remembered per wallet number: a document ``lang#<E.164 digits>`` in the app
    table. ``get`` answers the default (English) for a number that never chose one."""

    def __init__(self, docs: Documents):
        self.docs = docs

    def get(self, msisdn: str) -> str:
        doc = self.docs.get(f"lang#{_digits(msisdn)}")
        lang = (doc or {}).get("lang")
        return lang if lang in LANGUAGES else DEFAULT_LANGUAGE

    def set(self, msisdn: str, lang: str) -> None:
        if lang not in LANGUAGES:
            raise ValueError(f"unknown language {lang!r}; one of {', '.join(LANGUAGES)}")
        key = f"lang#{_digits(msisdn)}"
        try:
            self.docs.put_new(key, {"msisdn": _digits(msisdn), "lang": lang})
        except DocumentExists:
            self.docs.update(key, lambda doc: None if doc.get("lang") == lang else {**doc, "lang": lang})
