"""Test helpers for the HTTP edge: mint local-stage JWTs and build request headers."""
from __future__ import annotations

import json
import time
import uuid
import warnings

import jwt

from chalicelib.settings import LOCAL_JWT_SECRET


def token(
    role: str = "buyer",
    sub: str | None = None,
    *,
    secret: str = LOCAL_JWT_SECRET,
    expires_in: int | None = 3600,
    omit: tuple[str, ...] = (),
    **claims,
) -> str:
    """A JWT as the local stage expects it: HS256 with the local secret, claims sub + role.

    ``sub`` defaults to ``"<role>-1"``; ``omit=("role",)`` leaves claims out;
    ``expires_in`` < 0 mints an expired token, ``None`` one without ``exp``.
    """
    now = int(time.time())
    payload: dict = {"sub": sub or f"{role}-1", "role": role, "iat": now}
    if expires_in is not None:
        payload["exp"] = now + expires_in
    payload.update(claims)
    for claim in omit:
        payload.pop(claim, None)
    with warnings.catch_warnings():  # the local secret is a short, documented sandbox default
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(payload, secret, algorithm="HS256")


def auth_headers(role: str = "buyer", sub: str | None = None, **kwargs) -> dict:
    return {"Authorization": f"Bearer {token(role, sub, **kwargs)}"}


def post_headers(role: str = "buyer", sub: str | None = None, key: str | None = "auto", **kwargs) -> dict:
    """JSON POST headers with a bearer token and, unless ``key=None``, an Idempotency-Key."""
    headers = {**auth_headers(role, sub, **kwargs), "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = uuid.uuid4().hex if key == "auto" else key
    return headers


def body(data) -> bytes:
    return json.dumps(data).encode("utf-8")
