"""Outside the local stage, no public default secret is trusted: every request is refused with
``503 not_configured`` (logged once) until the webhook and JWT secrets are set to real values."""
from __future__ import annotations

import json
import logging

import pytest
from chalice.test import Client

import app as mizani
from chalicelib import bootstrap, settings
from chalicelib.api import config_check, signatures
from helpers import auth_headers

SECRET_VARS = ("MIZANI_CUSTOMS_SECRET", "MIZANI_STRIPE_WEBHOOK_SECRET", "MIZANI_JWT_SECRET", "MIZANI_JWKS_URL",
               "MIZANI_BANK_SECRET")
CUSTOMS_EVENT = {"event_id": "ev-1", "order_id": "o-1", "customs_declaration_ref": "D1", "status": "cleared",
                 "office": "KGL", "occurred_at": "2026-01-01T00:00:00Z"}


@pytest.fixture
def dev_stage(monkeypatch):
    """The dev stage with every secret unset: what a deploy that forgot them looks like."""
    for name in SECRET_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MIZANI_STAGE", "dev")
    settings.get.cache_clear()
    config_check.reset()
    bootstrap.reset()
    with Client(mizani.app, stage_name="dev") as client:
        yield client, monkeypatch
    settings.get.cache_clear()
    config_check.reset()
    bootstrap.reset()


def customs(client, secret: str):
    raw = json.dumps(CUSTOMS_EVENT).encode()
    return client.http.post("/v1/webhooks/customs", body=raw, headers={
        "Content-Type": "application/json", "Mizani-Signature": signatures.sign(raw, secret)})


def test_outside_local_a_customs_event_signed_with_the_local_default_is_refused_as_not_configured(dev_stage):
    client, _ = dev_stage
    reply = customs(client, settings.LOCAL_CUSTOMS_SECRET)
    assert reply.status_code == 503
    assert reply.json_body["error"]["code"] == "not_configured"


def test_outside_local_a_stripe_event_signed_with_whsec_local_is_refused_as_not_configured(dev_stage):
    client, _ = dev_stage
    raw = json.dumps({"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {}}}).encode()
    reply = client.http.post("/v1/webhooks/stripe", body=raw, headers={
        "Content-Type": "application/json", "Stripe-Signature": signatures.sign(raw, settings.LOCAL_STRIPE_WEBHOOK_SECRET)})  # Stripe's scheme
    assert reply.status_code == 503 and reply.json_body["error"]["code"] == "not_configured"


@pytest.mark.parametrize("missing", ["MIZANI_CUSTOMS_SECRET", "MIZANI_STRIPE_WEBHOOK_SECRET", "MIZANI_JWT_SECRET"])
def test_outside_local_each_missing_or_default_secret_refuses_every_request_and_is_logged_once(dev_stage, missing,
                                                                                               caplog):
    client, monkeypatch = dev_stage
    for name in ("MIZANI_CUSTOMS_SECRET", "MIZANI_STRIPE_WEBHOOK_SECRET", "MIZANI_JWT_SECRET"):
        if name != missing:
            monkeypatch.setenv(name, f"a-real-{name.lower()}-of-32-bytes-or-more")
    settings.get.cache_clear()
    with caplog.at_level(logging.ERROR, logger="mizani.api"):
        replies = [client.http.get("/v1/health") for _ in range(3)]
    assert [r.status_code for r in replies] == [503] * 3
    assert {r.json_body["error"]["code"] for r in replies} == {"not_configured"}
    told = [r.getMessage() for r in caplog.records if "refuses every request" in r.getMessage()]
    assert len(told) == 1 and missing in told[0]


def test_outside_local_with_real_secrets_the_api_serves_and_the_default_signature_does_not_verify(dev_stage):
    client, monkeypatch = dev_stage
    for name in ("MIZANI_CUSTOMS_SECRET", "MIZANI_STRIPE_WEBHOOK_SECRET", "MIZANI_JWT_SECRET"):
        monkeypatch.setenv(name, f"a-real-{name.lower()}-of-32-bytes-or-more")
    settings.get.cache_clear()
    assert client.http.get("/v1/health").status_code == 200
    reply = customs(client, settings.LOCAL_CUSTOMS_SECRET)
    assert reply.status_code == 400 and reply.json_body["error"]["code"] == "invalid_signature"


def test_outside_local_a_bank_secret_left_at_the_local_default_refuses_every_request(dev_stage):
    from chalicelib.payments.bank import LOCAL_BANK_SECRET

    client, monkeypatch = dev_stage
    for name in ("MIZANI_CUSTOMS_SECRET", "MIZANI_STRIPE_WEBHOOK_SECRET", "MIZANI_JWT_SECRET"):
        monkeypatch.setenv(name, f"a-real-{name.lower()}-of-32-bytes-or-more")
    monkeypatch.setenv("MIZANI_BANK_SECRET", LOCAL_BANK_SECRET)
    settings.get.cache_clear()
    assert client.http.get("/v1/health").json_body["error"]["code"] == "not_configured"


def test_the_local_stage_keeps_its_documented_defaults(monkeypatch):
    for name in SECRET_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MIZANI_STAGE", "local")
    settings.get.cache_clear()
    with Client(mizani.app, stage_name="local") as client:
        assert client.http.get("/v1/health", headers=auth_headers()).status_code == 200
    settings.get.cache_clear()
