"""Deterministic ids from several parts, without ambiguity.

``"<a>|<b>"`` is ambiguous as soon as a part may contain ``|`` (buyer ``X`` with key
``cart|42`` and buyer ``X|cart`` with key ``42`` would share an order). The digest is
taken over a JSON array of the parts instead, which no two different lists of strings
share.
"""
from __future__ import annotations

import hashlib
import json


def derived_id(prefix: str, *parts: str, length: int = 20) -> str:
    """``prefix`` + the first ``length`` hex digits of SHA-256 over the JSON array of ``parts``."""
    encoded = json.dumps([str(p) for p in parts], ensure_ascii=False, separators=(",", ":"))
    return prefix + hashlib.sha256(encoded.encode()).hexdigest()[:length]


#: A party id (a seller's, taken from its token's ``sub`` when it registers itself) ends up in
#: document keys and ledger account ids (``seller:<id>``, at most 200 characters): at most this long.
PARTY_ID_MAX = 100


def check_party_id(value: object, path: str = "seller_id") -> str:
    """``value`` if it can be a party id (1-100 characters, none of them whitespace or control), else a
    ``ValidationError`` naming ``path``. Called before anything is asked or written for that party."""
    from chalicelib.errors import ValidationError

    if (not isinstance(value, str) or not 1 <= len(value) <= PARTY_ID_MAX
            or any(ch.isspace() or not ch.isprintable() for ch in value)):
        raise ValidationError("validation_error",
                              f"{path} (a seller's own token sub) must be 1-{PARTY_ID_MAX} visible characters", path=path)
    return value
