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
