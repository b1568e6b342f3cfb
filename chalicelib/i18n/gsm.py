"""The GSM 03.38 alphabet (what one SMS or USSD screen can carry in 7 bits) and ``gsm7``.

``GSM7_BASIC`` and ``GSM7_EXTENSION`` are the platform's one definition of the alphabet: the SMS
gateway counts message parts with them, the catalogues and the USSD screens are checked against
them. An extension character (``€``, ``[``, ...) costs two septets (an escape and the character).
"""
from __future__ import annotations

import unicodedata

#: The basic character set of GSM 03.38 (one septet each).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: The extension table (two septets each: the escape, then the character).
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7 = GSM7_BASIC | GSM7_EXTENSION

# What NFKD cannot bring into the alphabet but a reader expects: typographic quotes and dashes,
# the ligatures French uses, the spaces a translator may type (no-break spaces before ":" in French).
_REPLACEMENTS = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u2032": "'", "`": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2010": "-", "\u2011": "-",
    "\u2026": "...", "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\t": " ",
    "\u0153": "oe", "\u0152": "OE", "\u00f0": "d", "\u0111": "d", "\u0110": "D", "\u0142": "l", "\u0141": "L",
}
#: What stands in for a character that has no GSM 03.38 spelling at all (a Chinese name, an emoji).
UNKNOWN = "?"


def gsm7(text: str) -> str:
    """``text`` in the GSM 03.38 alphabet: characters already in it are kept (``é è à ù ì ò Ç``);
    others lose their accents by Unicode NFKD (``ç`` → ``c``, ``ê`` → ``e``), typographic marks become
    their plain forms, and anything left becomes ``?``."""
    if is_gsm7(text):  # most texts: nothing to replace
        return text
    out: list[str] = []
    for ch in text:
        if ch in GSM7:
            out.append(ch)
        elif ch in _REPLACEMENTS:
            out.append(_REPLACEMENTS[ch])
        else:
            plain = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            out.append(plain if plain and all(c in GSM7 for c in plain) else UNKNOWN)
    return "".join(out)


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in GSM 03.38 (basic or extension)."""
    return all(ch in GSM7 for ch in text)


def septets(text: str) -> int:
    """How many 7-bit characters ``text`` takes in GSM 03.38 (extension characters count two)."""
    return sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
