"""Settings read from the environment when an adapter is built, and credentials by reference.

Every value is a plain environment variable. In the ``local`` stage each has a clearly
marked sandbox default that only works against the simulators on 127.0.0.1; in any other
stage a missing value is a ``RailConfigError`` (fail at build, not halfway through a payout):
no default secret is ever trusted outside the local stage.

Secrets by reference: a credential variable may hold an ARN instead of the value,
``arn:aws:ssm:...:parameter/...`` (read with ``GetParameter``, decrypted) or
``arn:aws:secretsmanager:...`` (``GetSecretValue``, the whole ``SecretString``). It is
fetched lazily on first use, then cached for the container's life.
"""
from __future__ import annotations

import os
import threading
from typing import Callable

from chalicelib.errors import MizaniError


class RailConfigError(MizaniError):
    """A provider adapter is missing configuration (credentials, URLs) outside the local stage."""

    code = "rail_not_configured"


class SecretRef:
    """A credential that may live in SSM or Secrets Manager; resolved on first call, then cached."""

    def __init__(self, value: str, env_name: str = ""):
        self._value = value
        self._env_name = env_name
        self._resolved: str | None = None
        self._lock = threading.Lock()

    @property
    def is_reference(self) -> bool:
        return self._value.startswith(("arn:aws:ssm:", "arn:aws:secretsmanager:"))

    def __call__(self) -> str:
        if not self.is_reference:
            return self._value
        with self._lock:
            if self._resolved is None:
                self._resolved = _fetch_secret(self._value)
            return self._resolved

    def __repr__(self) -> str:  # never print a credential
        return f"SecretRef({self._env_name or '?'}, {'arn' if self.is_reference else 'value'})"


_refs: dict[str, SecretRef] = {}
_refs_lock = threading.Lock()


def resolve(value: str, env_name: str = "") -> str:
    """The secret ``value`` names: itself, or what its SSM / Secrets Manager ARN holds, fetched once
    per container (one ``SecretRef`` per distinct value, so every caller shares the cached answer)."""
    with _refs_lock:
        ref = _refs.get(value)
        if ref is None:
            ref = _refs[value] = SecretRef(value, env_name)
    return ref()


def secret_of(settings, name: str) -> str:
    """The secret field ``name`` of ``settings`` (``jwt_secret``, ``customs_secret``,
    ``stripe_webhook_secret``, ``stripe_api_key``, ``seal_secret``) as a value: an SSM / Secrets
    Manager ARN in its variable is fetched on first use and cached for the container."""
    from chalicelib.settings import SECRET_FIELDS

    if name not in SECRET_FIELDS:
        raise KeyError(name)
    return resolve(getattr(settings, name), f"MIZANI_{name.upper()}")


def forget_resolved() -> None:
    """Drop the cached secrets (tests; a container never needs to)."""
    with _refs_lock:
        _refs.clear()


def _fetch_secret(arn: str) -> str:
    from chalicelib import aws  # boto3 only when a secret is actually referenced

    if arn.startswith("arn:aws:ssm:"):
        # GetParameter accepts the parameter's ARN as its Name.
        return aws.client("ssm").get_parameter(Name=arn, WithDecryption=True)["Parameter"]["Value"]
    return aws.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]


def _stage_is_local(settings) -> bool:
    return bool(getattr(settings, "is_local", False))


def env_value(name: str, settings, local_default: str | None = None, *, required: bool = True) -> str | None:
    """``os.environ[name]``; the local default only in the local stage; missing and required -> ``RailConfigError``."""
    value = os.environ.get(name, "")
    if value:
        return value
    if _stage_is_local(settings) and local_default is not None:
        return local_default
    if required:
        raise RailConfigError("rail_not_configured", f"{name} is not set (stage {getattr(settings, 'stage', '?')})")
    return None


def secret_value(name: str, settings, local_default: str | None = None) -> Callable[[], str]:
    value = env_value(name, settings, local_default)
    return lambda: resolve(value, name)


def local_sandbox_url(settings) -> str:
    return (getattr(settings, "sandbox_base_url", "") or f"http://127.0.0.1:{os.environ.get('MIZANI_SANDBOX_PORT', '8001')}").rstrip("/")


def local_api_url() -> str:
    return os.environ.get("MIZANI_API_BASE_URL", f"http://127.0.0.1:{os.environ.get('MIZANI_PORT', '8000')}").rstrip("/")


