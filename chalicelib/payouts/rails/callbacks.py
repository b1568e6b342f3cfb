"""Per-payout callback URLs: a secret in the path that only we and the provider know.

A provider echoes the callback URL we hand it with each request, so the URL can
carry a capability: ``<base>/<reference>/<token>`` where ``token`` is
HMAC-SHA256(server secret, ``"<rail>|<reference>"``). A callback that does not
carry the token of the payout it names is not from the provider we sent the
payout to (or is for a payout we never sent): it is acknowledged and changes
nothing. The token is derived, never stored, so it costs no write.

Even a callback with the right token is only a *hint*: each rail decides a
payout's fate from asking the provider about a payment we made (see ``port.py``).
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Callable
from urllib.parse import quote

Secret = str | Callable[[], str]

#: Hex characters of the token (128 bits).
TOKEN_CHARS = 32


class CallbackUrls:
    """Builds and checks the per-payout callback URLs of one rail."""

    def __init__(self, secret: Secret, rail: str):
        self._secret = secret
        self.rail = rail

    def _key(self) -> bytes:
        secret = self._secret() if callable(self._secret) else self._secret
        return secret.encode()

    def token(self, reference: str) -> str:
        digest = hmac.new(self._key(), f"{self.rail}|{reference}".encode(), hashlib.sha256).hexdigest()
        return digest[:TOKEN_CHARS]

    def url(self, base: str, reference: str) -> str:
        return f"{base.rstrip('/')}/{quote(reference, safe='')}/{self.token(reference)}"

    def verify(self, reference: str, token: str | None) -> bool:
        if not isinstance(reference, str) or not isinstance(token, str) or len(token) != TOKEN_CHARS:
            return False
        return hmac.compare_digest(self.token(reference), token)

    def __repr__(self) -> str:  # never print the secret
        return f"CallbackUrls({self.rail})"
