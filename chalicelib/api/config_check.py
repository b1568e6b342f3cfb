"""Refuse to serve a stage whose secrets are missing or left at their public local defaults.

The local defaults (``local-dev-secret``, ``customs-local-secret``, ``whsec_local``,
``bank-local-secret``) are published in the docs: outside the ``local`` stage a request
signed or a token minted with one of them would be trusted. So outside ``local`` every
request is answered ``503 not_configured`` until each webhook secret, and the JWT secret
when tokens are not verified against a JWKS URL, is set to something else. The problem
is logged once per container (with the variables' names, never their values). A secret given
as an SSM or Secrets Manager ARN is judged by what it holds (fetched once per container); one
that cannot be read counts as missing.
"""
from __future__ import annotations

import logging
import os
import threading

from chalicelib import settings as settings_mod
from chalicelib.errors import NotConfigured

logger = logging.getLogger("mizani.api")

_logged: set[tuple[str, tuple[str, ...]]] = set()
_lock = threading.Lock()


def unsafe_secrets(settings: settings_mod.Settings) -> list[str]:
    """The environment variables of the secrets this stage cannot serve with ([] in the local stage)."""
    if settings.is_local:
        return []
    from chalicelib.payments.bank import LOCAL_BANK_SECRET

    from chalicelib.secrets import resolve

    checks = [
        ("MIZANI_CUSTOMS_SECRET", settings.customs_secret, settings_mod.LOCAL_CUSTOMS_SECRET),
        ("MIZANI_STRIPE_WEBHOOK_SECRET", settings.stripe_webhook_secret, settings_mod.LOCAL_STRIPE_WEBHOOK_SECRET),
    ]
    if not settings.jwks_url:  # tokens are HS256 with this secret
        checks.append(("MIZANI_JWT_SECRET", settings.jwt_secret, settings_mod.LOCAL_JWT_SECRET))
    bank_secret = os.environ.get("MIZANI_BANK_SECRET", "")
    if bank_secret:  # unset, the bank webhook already refuses every notification
        checks.append(("MIZANI_BANK_SECRET", bank_secret, LOCAL_BANK_SECRET))
    unsafe = []
    for name, raw, local_default in checks:
        try:
            # What a reference (SSM / Secrets Manager ARN) holds is checked too: fetched once, cached.
            value = resolve(raw, name) if raw.strip() else ""
        except Exception as error:  # a reference that cannot be read is a secret this stage does not have
            logger.error("%s: its secret reference cannot be read (%s)", name, type(error).__name__)
            value = ""
        if not value.strip() or value == local_default:
            unsafe.append(name)
    return unsafe


def require_safe_secrets(settings: settings_mod.Settings | None = None) -> None:
    """``NotConfigured`` if this stage has an unsafe secret; the first refusal is logged."""
    settings = settings or settings_mod.get()
    unsafe = unsafe_secrets(settings)
    if not unsafe:
        return
    seen = (settings.stage, tuple(unsafe))
    with _lock:
        first = seen not in _logged
        _logged.add(seen)
    if first:
        logger.error("stage %s refuses every request: %s missing or left at the public local default",
                     settings.stage, ", ".join(unsafe))
    raise NotConfigured("not_configured", "this service is not configured for this stage; the operator has been told")


def reset() -> None:
    """Forget what was logged (tests)."""
    with _lock:
        _logged.clear()
