"""``build_rail(rail_name, settings)``: the registry entry's adapter (``chalicelib.rails``), and
the variables of the first two rails and of every rail.

Each adapter's ``from_settings`` reads its plain environment variables when the rail is built
(``chalicelib/secrets.py``: in the ``local`` stage a clearly marked sandbox default that only
works against the simulators on 127.0.0.1; in any other stage a missing value is a
``RailConfigError``, at build, not halfway through a payout; a credential may be an SSM or
Secrets Manager ARN, fetched on first use). Airtel's variables are listed in its adapter.

MTN MoMo (rail ``mtn_momo``):
    MIZANI_MOMO_BASE_URL             e.g. https://proxy.momoapi.mtn.com (local: the sandbox)
    MIZANI_MOMO_API_USER             secret; API user (a UUID)
    MIZANI_MOMO_API_KEY              secret
    MIZANI_MOMO_SUBSCRIPTION_KEY     secret; the Disbursement product's primary key
    MIZANI_MOMO_TARGET_ENVIRONMENT   e.g. mtnrwanda (local: sandbox)
    MIZANI_MOMO_CALLBACK_URL         optional; where MTN sends its one callback (a base: ``<url>/<payout id>/<token>``)
    MIZANI_MOMO_SEND_RETRIES         optional; repeats of the transfer POST with the same X-Reference-Id (default 0;
                                     ``Settings.momo_send_retries``)

M-Pesa B2C (rail ``mpesa``):
    MIZANI_MPESA_BASE_URL            e.g. https://api.safaricom.co.ke (local: the sandbox)
    MIZANI_MPESA_CONSUMER_KEY        secret
    MIZANI_MPESA_CONSUMER_SECRET     secret
    MIZANI_MPESA_INITIATOR_NAME
    MIZANI_MPESA_SECURITY_CREDENTIAL secret; the initiator password encrypted with Safaricom's certificate
    MIZANI_MPESA_SHORTCODE           the B2C shortcode (PartyA)
    MIZANI_MPESA_RESULT_URL          our webhook, /v1/webhooks/mpesa/result
    MIZANI_MPESA_QUEUE_TIMEOUT_URL   our webhook, /v1/webhooks/mpesa/timeout
    MIZANI_MPESA_STATUS_RESULT_URL   optional; where Transaction Status answers go (default: the result URL)
    (each URL is a base: the rail sends ``<base>/<payout id>/<token>``, see ``callbacks.py``)

All rails:
    MIZANI_CALLBACK_SECRET           secret; the key of the per-payout callback tokens

Every rail: ``settings.http_timeout_seconds`` (``MIZANI_HTTP_TIMEOUT_SECONDS``) bounds connect and read.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from chalicelib.payouts.rails.port import PayoutRail, RailConfigError
# The environment and secret helpers live in the kernel (notify uses them too); the adapters reach them here.
from chalicelib.secrets import SecretRef, env_value, local_api_url, local_sandbox_url, secret_value  # noqa: F401

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.payouts.rails.callbacks import CallbackUrls

# Local-sandbox defaults. NOT secrets: they only authenticate traffic to the simulators on 127.0.0.1.
LOCAL_MOMO_API_USER = "3f0e2a1c-7b4d-4e8f-9a6b-1c2d3e4f5a6b"
LOCAL_MOMO_API_KEY = "momo-local-api-key"
LOCAL_MOMO_SUBSCRIPTION_KEY = "momo-local-subscription-key"
LOCAL_MOMO_TARGET_ENVIRONMENT = "sandbox"
LOCAL_MPESA_CONSUMER_KEY = "mpesa-local-consumer-key"
LOCAL_MPESA_CONSUMER_SECRET = "mpesa-local-consumer-secret"
LOCAL_MPESA_INITIATOR_NAME = "mizani_local_initiator"
LOCAL_MPESA_SECURITY_CREDENTIAL = "mpesa-local-security-credential"
LOCAL_MPESA_SHORTCODE = "600000"
LOCAL_CALLBACK_SECRET = "callback-local-secret"
def build_rail(rail_name: str, settings=None, **ports) -> PayoutRail:
    """The configured adapter for ``rail_name``, as its registry entry names it (``chalicelib.rails``).

    Build it once per container and reuse it: its access token is cached inside. ``ports`` go to
    the adapter's ``from_settings``: ``results`` (the M-Pesa result store), ``http`` (an
    ``HttpClient`` to share).
    """
    import importlib

    from chalicelib.rails import RAIL_NAMES, RAILS

    if settings is None:
        from chalicelib import settings as settings_module

        settings = settings_module.get()
    entry = RAILS.get(rail_name)
    if entry is None:
        raise RailConfigError("unknown_rail", f"no payout rail named {rail_name!r}; expected one of {', '.join(RAIL_NAMES)}")
    module_name, _, function = entry.adapter.partition(":")
    return getattr(importlib.import_module(module_name), function)(settings, **ports)


def callback_urls(rail_name: str, settings) -> "CallbackUrls":
    """The per-payout callback URLs of ``rail_name`` under ``MIZANI_CALLBACK_SECRET``."""
    from chalicelib.payouts.rails.callbacks import CallbackUrls

    return CallbackUrls(secret_value("MIZANI_CALLBACK_SECRET", settings, LOCAL_CALLBACK_SECRET), rail_name)


def http_timeout(settings) -> float:
    return float(getattr(settings, "http_timeout_seconds", 10.0))
