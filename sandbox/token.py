"""Mint a local-stage JWT: ``python -m sandbox.token ROLE SUB`` (``make token ROLE=buyer SUB=buyer-1``).

HS256 with ``MIZANI_JWT_SECRET`` (default ``local-dev-secret``, the local stage's
documented sandbox secret); claims ``sub``, ``role``, ``iat`` and ``exp`` (+12 h).
Prints only the token, so ``TOKEN=$(make -s token ROLE=finance SUB=fin-1)`` works.
"""
from __future__ import annotations

import os
import sys
import time
import warnings

ROLES = ("buyer", "seller", "finance", "admin")
LOCAL_JWT_SECRET = "local-dev-secret"  # same value as chalicelib.settings.LOCAL_JWT_SECRET
TTL_SECONDS = 12 * 3600


def mint(role: str, sub: str, *, secret: str | None = None, ttl_seconds: int = TTL_SECONDS, now: int | None = None) -> str:
    """A bearer token for ``sub`` acting as ``role`` in the local stage."""
    import jwt

    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not sub:
        raise ValueError("sub (the party id) must not be empty")
    issued = int(time.time()) if now is None else now
    claims = {"sub": sub, "role": role, "iat": issued, "exp": issued + ttl_seconds}
    with warnings.catch_warnings():  # the local secret is short on purpose; it only signs 127.0.0.1 traffic
        warnings.simplefilter("ignore")
        return jwt.encode(claims, secret or os.environ.get("MIZANI_JWT_SECRET") or LOCAL_JWT_SECRET, algorithm="HS256")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m sandbox.token ROLE SUB   (ROLE: buyer | seller | finance | admin)", file=sys.stderr)
        return 2
    try:
        print(mint(args[0], args[1]))
    except ValueError as error:
        print(f"token: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
