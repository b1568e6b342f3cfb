"""Webhook signatures of the customs authority (``Mizani-Signature``).

``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`` with the shared
secret; a timestamp more than ``tolerance`` seconds old *or in the future* is
refused, so a captured request cannot be replayed later. Several ``v1`` values
are allowed (secret rotation): one match is enough. Comparison is constant-time.
"""
from __future__ import annotations

import hashlib
import hmac
import time

from chalicelib.errors import InvalidSignature


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The header value a sender computes (used by the sandbox and tests)."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(body: bytes, header: str | None, secret: str, tolerance: int = 300, now: float | None = None) -> None:
    """Raise ``InvalidSignature`` unless ``header`` signs ``body`` with ``secret`` within ``tolerance``."""
    if not header:
        raise InvalidSignature("invalid_signature", "the Mizani-Signature header is missing")
    timestamp, candidates = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():  # str.isdigit() alone admits "²", "١", "１"
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise InvalidSignature("invalid_signature", "the signature header is malformed")
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise InvalidSignature("invalid_signature", "the signature's timestamp is outside the allowed window")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise InvalidSignature("invalid_signature", "the signature does not match")
