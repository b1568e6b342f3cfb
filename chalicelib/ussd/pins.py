"""USSD PINs: 4 to 6 digits, kept only as a slow salted hash keyed with a server-side secret.

``hash_pin`` = scrypt (stdlib ``hashlib.scrypt``, a fresh 16-byte salt per PIN) over
HMAC-SHA256(pepper, "<msisdn>:<pin>"). The pepper (``MIZANI_PIN_PEPPER``, an SSM or Secrets
Manager reference outside the local stage) never sits beside the hashes, so a copy of the table
alone cannot be searched for the 10^6 possible PINs; binding the number means a hash copied onto
another number does not verify. The encoded hash names its parameters, so they can be raised
later without breaking the stored ones.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Callable

#: scrypt cost: N=2^14, r=8, p=1 (16 MiB, ~80 ms on the test machines). The pepper, not the cost,
#: is what keeps a 4-6 digit PIN space out of reach; raise N when the Lambda can afford it.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_SCHEME = "scrypt-hmac-sha256"
_MAXMEM = 64 * 1024 * 1024

PIN_MIN_DIGITS, PIN_MAX_DIGITS = 4, 6

# Local-sandbox default. NOT a secret: it only keys PINs of the local stage's test numbers.
LOCAL_PIN_PEPPER = "local-pin-pepper-not-a-secret"


def is_valid_pin(text: str) -> bool:
    """4 to 6 ASCII digits."""
    return isinstance(text, str) and PIN_MIN_DIGITS <= len(text) <= PIN_MAX_DIGITS and text.isascii() and text.isdigit()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class PinHasher:
    """Hashes and verifies PINs with the pepper (a value, or a callable such as ``SecretRef``
    resolved on first use). ``n``/``r``/``p``: the scrypt cost of new hashes (tests lower it; a
    stored hash is verified with the cost written in it)."""

    def __init__(self, pepper: str | Callable[[], str], *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P):
        self._pepper = pepper
        self.cost = (n, r, p)

    def _keyed(self, msisdn: str, pin: str) -> bytes:
        pepper = self._pepper() if callable(self._pepper) else self._pepper
        if not pepper:
            raise ValueError("the PIN pepper is empty")
        return hmac.new(pepper.encode("utf-8"), f"{msisdn}:{pin}".encode("utf-8"), hashlib.sha256).digest()

    def hash(self, msisdn: str, pin: str) -> str:
        if not is_valid_pin(pin):
            raise ValueError("a PIN is 4 to 6 digits")
        n, r, p = self.cost
        salt = os.urandom(16)
        digest = hashlib.scrypt(self._keyed(msisdn, pin), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=_MAXMEM)
        return f"{_SCHEME}${n}${r}${p}${_b64(salt)}${_b64(digest)}"

    def verify(self, msisdn: str, pin: str, encoded: str) -> bool:
        """True when ``pin`` is the PIN ``encoded`` was made from for ``msisdn`` (constant-time compare)."""
        if not is_valid_pin(pin):
            return False
        try:
            scheme, n, r, p, salt, digest = encoded.split("$")
            if scheme != _SCHEME:
                return False
            expected = base64.b64decode(digest, validate=True)
            actual = hashlib.scrypt(self._keyed(msisdn, pin), salt=base64.b64decode(salt, validate=True),
                                    n=int(n), r=int(r), p=int(p), dklen=len(expected), maxmem=_MAXMEM)
        except (ValueError, TypeError):
            return False
        return hmac.compare_digest(actual, expected)
