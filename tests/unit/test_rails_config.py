"""build_rail: local-sandbox defaults only in the local stage, secrets by ARN resolved lazily."""
import pytest

from chalicelib import settings as settings_module
from chalicelib.payouts.rails import RailConfigError, build_rail
from chalicelib.payouts.rails import config as rail_config
from chalicelib.payouts.rails.momo import MtnMomoRail
from chalicelib.payouts.rails.mpesa import MpesaB2CRail
from chalicelib.secrets import secret_of

RAIL_ENV = [
    "MIZANI_MOMO_BASE_URL", "MIZANI_MOMO_API_USER", "MIZANI_MOMO_API_KEY", "MIZANI_MOMO_SUBSCRIPTION_KEY",
    "MIZANI_MOMO_TARGET_ENVIRONMENT", "MIZANI_MOMO_CALLBACK_URL", "MIZANI_MOMO_SEND_RETRIES",
    "MIZANI_MPESA_BASE_URL", "MIZANI_MPESA_CONSUMER_KEY", "MIZANI_MPESA_CONSUMER_SECRET",
    "MIZANI_MPESA_INITIATOR_NAME", "MIZANI_MPESA_SECURITY_CREDENTIAL", "MIZANI_MPESA_SHORTCODE",
    "MIZANI_MPESA_RESULT_URL", "MIZANI_MPESA_QUEUE_TIMEOUT_URL", "MIZANI_MPESA_STATUS_RESULT_URL",
    "MIZANI_SANDBOX_PORT", "MIZANI_PORT", "MIZANI_API_BASE_URL",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in RAIL_ENV:
        monkeypatch.delenv(name, raising=False)


def local(**overrides):
    return settings_module.Settings(stage="local", sandbox_base_url="http://127.0.0.1:8001", **overrides)


def test_the_local_stage_talks_to_the_sandbox_with_its_marked_defaults():
    momo = build_rail("mtn_momo", local(http_timeout_seconds=2.5))
    assert isinstance(momo, MtnMomoRail)
    assert momo.base_url == "http://127.0.0.1:8001" and momo.target_environment == "sandbox"
    assert momo._api_user() == rail_config.LOCAL_MOMO_API_USER
    assert momo.http.timeout.read_timeout == 2.5
    mpesa = build_rail("mpesa", local())
    assert isinstance(mpesa, MpesaB2CRail)
    assert mpesa.result_url == "http://127.0.0.1:8000/v1/webhooks/mpesa/result"
    assert mpesa.queue_timeout_url == "http://127.0.0.1:8000/v1/webhooks/mpesa/timeout"


def test_outside_the_local_stage_a_missing_credential_stops_the_build():
    with pytest.raises(RailConfigError) as err:
        build_rail("mtn_momo", settings_module.Settings(stage="prod"))
    assert "MIZANI_MOMO_BASE_URL" in err.value.message


def test_an_unknown_rail_name_is_a_configuration_error():
    with pytest.raises(RailConfigError):
        build_rail("paypal", local())


def test_a_credential_given_as_an_ssm_arn_is_fetched_on_first_use_only(monkeypatch):
    arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/mizani/prod/momo-api-key"
    for name, value in {
        "MIZANI_MOMO_BASE_URL": "https://proxy.momoapi.mtn.com", "MIZANI_MOMO_API_USER": "user",
        "MIZANI_MOMO_API_KEY": arn, "MIZANI_MOMO_SUBSCRIPTION_KEY": "sub", "MIZANI_MOMO_TARGET_ENVIRONMENT": "mtnrwanda",
        "MIZANI_CALLBACK_SECRET": "a-real-callback-key",
    }.items():
        monkeypatch.setenv(name, value)
    fetched = []

    def fake_fetch(reference):
        fetched.append(reference)
        return "the-real-key"

    from chalicelib import secrets

    monkeypatch.setattr(secrets, "_fetch_secret", fake_fetch)
    momo = build_rail("mtn_momo", settings_module.Settings(stage="prod"))
    assert fetched == []  # building does not touch AWS
    assert momo._api_key() == "the-real-key" and momo._api_key() == "the-real-key"
    assert fetched == [arn]
    assert "the-real-key" not in repr(momo._api_key) and arn not in repr(momo._api_key)


def test_outside_the_local_stage_the_callback_token_key_has_no_default(monkeypatch):
    for name, value in {
        "MIZANI_MOMO_BASE_URL": "https://proxy.momoapi.mtn.com", "MIZANI_MOMO_API_USER": "user",
        "MIZANI_MOMO_API_KEY": "key", "MIZANI_MOMO_SUBSCRIPTION_KEY": "sub", "MIZANI_MOMO_TARGET_ENVIRONMENT": "mtnrwanda",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MIZANI_CALLBACK_SECRET", raising=False)
    with pytest.raises(RailConfigError) as missing:
        build_rail("mtn_momo", settings_module.Settings(stage="prod"))
    assert "MIZANI_CALLBACK_SECRET" in str(missing.value)


def test_the_api_secrets_given_as_references_are_fetched_once_and_judged_by_what_they_hold(monkeypatch):
    from chalicelib import secrets
    from chalicelib.api import config_check

    held = {"arn:aws:ssm:eu-west-1:123456789012:parameter/mizani/prod/jwt": "a-long-real-jwt-secret-of-32-bytes",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:stripe-whsec": "whsec_real",
            "arn:aws:ssm:eu-west-1:123456789012:parameter/mizani/prod/customs": settings_module.LOCAL_CUSTOMS_SECRET}
    fetched = []

    def fake_fetch(reference):
        fetched.append(reference)
        return held[reference]

    monkeypatch.setattr(secrets, "_fetch_secret", fake_fetch)
    secrets.forget_resolved()
    arns = list(held)
    cfg = settings_module.Settings(stage="prod", jwt_secret=arns[0], stripe_webhook_secret=arns[1], customs_secret=arns[2])
    try:
        assert secret_of(cfg, "jwt_secret") == held[arns[0]] and secret_of(cfg, "stripe_webhook_secret") == "whsec_real"
        # The customs reference holds the public local default: refused as if it were set to it.
        assert config_check.unsafe_secrets(cfg) == ["MIZANI_CUSTOMS_SECRET"]
        assert sorted(fetched) == sorted(arns)  # each fetched once, however often it is read
        assert "a-long-real-jwt-secret" not in repr(secrets._refs)
    finally:
        secrets.forget_resolved()


def test_a_secret_reference_that_cannot_be_read_counts_as_missing(monkeypatch):
    from chalicelib import secrets
    from chalicelib.api import config_check

    def unreachable(reference):
        raise ConnectionError("no route to SSM")

    monkeypatch.setattr(secrets, "_fetch_secret", unreachable)
    secrets.forget_resolved()
    cfg = settings_module.Settings(stage="prod", jwt_secret="a-long-real-jwt-secret-of-32-bytes", customs_secret="real-customs",
                                   stripe_webhook_secret="arn:aws:ssm:eu-west-1:123456789012:parameter/whsec")
    try:
        assert config_check.unsafe_secrets(cfg) == ["MIZANI_STRIPE_WEBHOOK_SECRET"]
    finally:
        secrets.forget_resolved()
