"""One typed settings object, read from the environment once per container.

Every knob lives here so that a reader finds them all in one place. In AWS the
values come from the stage's ``environment_variables`` in ``.chalice/config.json``
(secrets by reference: a secret's variable may hold an SSM or Secrets Manager ARN, see
``chalicelib.secrets.secret_of()``); in the ``local`` stage from the same
file, with the clearly marked local-sandbox defaults below.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache

# Local-sandbox defaults. NOT secrets: they only ever sign traffic on 127.0.0.1.
LOCAL_JWT_SECRET = "local-dev-secret"
LOCAL_CUSTOMS_SECRET = "customs-local-secret"
LOCAL_STRIPE_WEBHOOK_SECRET = "whsec_local"
LOCAL_STRIPE_API_KEY = "sk_test_local_sandbox"
LOCAL_SEAL_SECRET = "seal-local-secret"
#: The fields that hold a secret or a reference to one: read them with ``chalicelib.secrets.secret_of``.
SECRET_FIELDS = frozenset({"jwt_secret", "customs_secret", "stripe_webhook_secret", "stripe_api_key", "seal_secret"})


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _limits(name: str) -> dict:
    """``{"RWF": 5000000000, ...}``: positive integers of minor units per ISO 4217 code (a deploy bug otherwise)."""
    raw = json.loads(os.environ.get(name) or "{}")
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and len(k) == 3 and k.isupper() and isinstance(v, int) and not isinstance(v, bool) and v > 0
        for k, v in raw.items()
    ):
        raise ValueError(f"{name} must be a JSON object of currency code -> positive integer of minor units")
    return raw


@dataclass(frozen=True)
class Settings:
    stage: str = "local"
    table_prefix: str = "mizani-local"
    region: str = "us-east-1"

    # auth
    jwt_secret: str = LOCAL_JWT_SECRET
    jwks_url: str = ""
    jwt_audience: str = ""
    jwt_issuer: str = ""

    # webhooks
    customs_secret: str = LOCAL_CUSTOMS_SECRET
    stripe_webhook_secret: str = LOCAL_STRIPE_WEBHOOK_SECRET
    webhook_tolerance_seconds: int = 300

    # stripe
    stripe_api_key: str = LOCAL_STRIPE_API_KEY
    stripe_api_base: str = ""  # empty: Stripe's own; the sandbox sets http://127.0.0.1:8001

    # fx
    fx_source: str = "snapshot"  # snapshot | http
    fx_url: str = ""
    fx_default_spread_bps: int = 50
    fx_spreads: dict = field(default_factory=dict)  # {"USD/RWF": 120, ...}
    quote_ttl_seconds: int = 1800
    # FX capacity: {"<CUR>": minor units} the platform may guarantee in CUR to sellers of orders not yet
    # released (MIZANI_FX_EXPOSURE_LIMITS, JSON); a currency not listed has no limit (the local stage sets none)
    fx_exposure_limits: dict = field(default_factory=dict)

    # escrow
    fee_bps: int = 150
    state_machine_arn: str = ""
    customs_timeout_seconds: int = 14 * 24 * 3600
    # eWTP's promise: an order still at customs this long after shipping is texted to its seller (once)
    customs_promise_seconds: int = 24 * 3600
    payout_poll_seconds: int = 60

    # trust (issue 13): the chargeback reserve, KYC tier limits, sanctions lists, sealed books
    reserve_days: int = 120  # a reserve is released this many days after the card payment
    tier_limits: dict = field(default_factory=dict)  # {"<tier>:<CUR>": {"per_day", "per_month"}} over the defaults
    sanctions_s3_key: str = ""  # where an operator loads the lists (statements bucket); empty: the shipped sample
    seal_kms_key_id: str = ""  # a KMS HMAC key signs each day's seal in AWS; empty: HMAC with seal_secret
    seal_secret: str = LOCAL_SEAL_SECRET

    # reconciliation: statements and results (S3); large statements run in the reconcile state machine
    statements_bucket: str = ""
    reconcile_state_machine_arn: str = ""  # empty (and always in the local stage): in one process
    recon_distributed_lines: int = 200_000  # statements with at least this many lines are chunked
    recon_chunk_lines: int = 50_000  # statement lines per chunk (one Lambda each)

    # payouts: per-stage limits over the rail registry's defaults, {"<rail>:<CUR>": {"min", "max_per_tx",
    # "max_per_day"}} in minor units; repeats of MTN's transfer POST under the same X-Reference-Id
    payout_limits: dict = field(default_factory=dict)
    momo_send_retries: int = 0

    # ledger: hot platform accounts stored as N shards each, by account id prefix (chalicelib/ledger/shards.py)
    ledger_shards: dict = field(default_factory=lambda: dict(DEFAULT_LEDGER_SHARDS))

    # outbound HTTP (providers)
    http_timeout_seconds: float = 10.0
    # chalicelib/http.py: a provider's Retry-After is honoured up to this cap, and one request with all
    # its retries ends within the deadline (below the API's 30-second Lambda timeout)
    http_retry_after_cap_seconds: float = 5.0
    http_deadline_seconds: float = 20.0
    sandbox_base_url: str = ""  # local stage: the provider simulators

    @property
    def is_local(self) -> bool:
        return self.stage == "local"

    def table(self, name: str) -> str:
        """Physical name of one of the tables defined in ``infra/resources.base.json``."""
        return f"{self.table_prefix}-{name}"


def load() -> Settings:
    """Read the environment now (tests call this after changing it)."""
    return Settings(
        stage=_env("MIZANI_STAGE", "local"),
        table_prefix=_env("MIZANI_TABLE_PREFIX", "mizani-local"),
        region=_env("AWS_DEFAULT_REGION", _env("AWS_REGION", "us-east-1")),
        jwt_secret=_env("MIZANI_JWT_SECRET", LOCAL_JWT_SECRET),
        jwks_url=_env("MIZANI_JWKS_URL"),
        jwt_audience=_env("MIZANI_JWT_AUDIENCE"),
        jwt_issuer=_env("MIZANI_JWT_ISSUER"),
        customs_secret=_env("MIZANI_CUSTOMS_SECRET", LOCAL_CUSTOMS_SECRET),
        stripe_webhook_secret=_env("MIZANI_STRIPE_WEBHOOK_SECRET", LOCAL_STRIPE_WEBHOOK_SECRET),
        webhook_tolerance_seconds=_int("MIZANI_WEBHOOK_TOLERANCE_SECONDS", 300),
        stripe_api_key=_env("MIZANI_STRIPE_API_KEY", LOCAL_STRIPE_API_KEY),
        stripe_api_base=_env("MIZANI_STRIPE_API_BASE"),
        fx_source=_env("MIZANI_FX_SOURCE", "snapshot"),
        fx_url=_env("MIZANI_FX_URL"),
        fx_default_spread_bps=_int("MIZANI_FX_SPREAD_BPS", 50),
        fx_spreads=json.loads(_env("MIZANI_FX_SPREADS", "{}") or "{}"),
        quote_ttl_seconds=_int("MIZANI_QUOTE_TTL_SECONDS", 1800),
        fx_exposure_limits=_limits("MIZANI_FX_EXPOSURE_LIMITS"),
        fee_bps=_int("MIZANI_FEE_BPS", 150),
        state_machine_arn=_env("MIZANI_STATE_MACHINE_ARN"),
        customs_timeout_seconds=_int("MIZANI_CUSTOMS_TIMEOUT_SECONDS", 14 * 24 * 3600),
        customs_promise_seconds=_int("MIZANI_CUSTOMS_PROMISE_SECONDS", 24 * 3600),
        payout_poll_seconds=_int("MIZANI_PAYOUT_POLL_SECONDS", 60),
        reserve_days=_int("MIZANI_RESERVE_DAYS", 120),
        tier_limits=json.loads(_env("MIZANI_TIER_LIMITS", "{}") or "{}"),
        sanctions_s3_key=_env("MIZANI_SANCTIONS_S3_KEY"),
        seal_kms_key_id=_env("MIZANI_SEAL_KMS_KEY_ID"),
        seal_secret=_env("MIZANI_SEAL_SECRET", LOCAL_SEAL_SECRET),
        statements_bucket=_env("MIZANI_STATEMENTS_BUCKET") or f"{_env('MIZANI_TABLE_PREFIX', 'mizani-local')}-statements",
        reconcile_state_machine_arn=_env("MIZANI_RECONCILE_STATE_MACHINE_ARN"),
        recon_distributed_lines=_int("MIZANI_RECON_DISTRIBUTED_LINES", 200_000),
        recon_chunk_lines=_int("MIZANI_RECON_CHUNK_LINES", 50_000),
        payout_limits=json.loads(_env("MIZANI_PAYOUT_LIMITS", "{}") or "{}"),
        momo_send_retries=_int("MIZANI_MOMO_SEND_RETRIES", 0),
        ledger_shards=json.loads(_env("MIZANI_LEDGER_SHARDS", "") or "null") or dict(DEFAULT_LEDGER_SHARDS),
        http_timeout_seconds=float(_env("MIZANI_HTTP_TIMEOUT_SECONDS", "10") or 10),
        http_retry_after_cap_seconds=float(_env("MIZANI_HTTP_RETRY_AFTER_CAP_SECONDS", "5") or 5),
        http_deadline_seconds=float(_env("MIZANI_HTTP_DEADLINE_SECONDS", "20") or 20),
        sandbox_base_url=_env("MIZANI_SANDBOX_BASE_URL"),
    )


#: Every platform movement touches one of these; 4 shards each spread them over 4 items (each item
#: takes ~1,000 WCU/s, a transactional write costing 2). A rail's float takes each payout's hold, its
#: swap and its post: 16 (674 WCU/s on its hottest shard in
#: ``make scale RATE=10000``, 1,078 with 8). ``MIZANI_LEDGER_SHARDS`` (JSON) overrides.
DEFAULT_LEDGER_SHARDS = {"psp:": 4, "fx:": 4, "float:": 16, "revenue:": 4, "loss:": 4}


@lru_cache(maxsize=1)
def get() -> Settings:
    """The container's settings, read once (``get.cache_clear()`` in tests)."""
    return load()
