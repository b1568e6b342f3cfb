"""Outside the local stage every token must expire (``exp``) and may not be issued in the future
(``iat``); a token whose ``role`` is not a string (a list or object of groups) is a 401, not a 500."""
from __future__ import annotations

import time
import warnings

import jwt
import pytest
from chalice.test import Client

import app as mizani
from chalicelib import bootstrap, settings
from chalicelib.api import config_check
from helpers import auth_headers

DEV_SECRET = "a-dev-stage-jwt-secret-of-32-bytes!!"


@pytest.fixture
def dev_client(monkeypatch):
    """The dev stage with real (non-default) secrets and HS256 tokens (no JWKS URL)."""
    monkeypatch.setenv("MIZANI_STAGE", "dev")
    monkeypatch.delenv("MIZANI_JWKS_URL", raising=False)
    monkeypatch.delenv("MIZANI_BANK_SECRET", raising=False)
    monkeypatch.setenv("MIZANI_JWT_SECRET", DEV_SECRET)
    monkeypatch.setenv("MIZANI_CUSTOMS_SECRET", "a-dev-stage-customs-secret-0123456789")
    monkeypatch.setenv("MIZANI_STRIPE_WEBHOOK_SECRET", "whsec_a-dev-stage-secret-0123456789")
    settings.get.cache_clear()
    config_check.reset()
    bootstrap.reset()
    with Client(mizani.app, stage_name="dev") as client:
        yield client
    settings.get.cache_clear()
    bootstrap.reset()


def rates(client, **token_kwargs):
    return client.http.get("/v1/fx/rates?base=USD", headers=auth_headers("buyer", secret=DEV_SECRET, **token_kwargs))


def test_outside_local_a_token_that_expires_is_accepted(dev_client):
    assert rates(dev_client).status_code == 200


def test_outside_local_a_token_without_exp_is_unauthorized(dev_client):
    reply = rates(dev_client, expires_in=None)
    assert reply.status_code == 401 and reply.json_body["error"]["code"] == "unauthorized"


def test_outside_local_a_token_issued_in_the_future_is_unauthorized(dev_client):
    reply = rates(dev_client, iat=int(time.time()) + 3600)
    assert reply.status_code == 401 and reply.json_body["error"]["code"] == "unauthorized"


def test_in_the_local_stage_a_token_without_exp_still_works_for_the_sandbox(monkeypatch):
    monkeypatch.setenv("MIZANI_STAGE", "local")
    monkeypatch.delenv("MIZANI_JWT_SECRET", raising=False)
    settings.get.cache_clear()
    with Client(mizani.app, stage_name="local") as client:
        assert client.http.get("/v1/fx/rates?base=USD", headers=auth_headers(expires_in=None)).status_code == 200
    settings.get.cache_clear()


@pytest.mark.parametrize("role", [["admin"], {"name": "admin"}, ["buyer", "admin"], 7, None],
                         ids=["list", "object", "groups", "number", "null"])
def test_a_token_whose_role_is_not_a_string_is_unauthorized(monkeypatch, role):
    monkeypatch.setenv("MIZANI_STAGE", "local")
    monkeypatch.delenv("MIZANI_JWT_SECRET", raising=False)
    settings.get.cache_clear()
    with Client(mizani.app, stage_name="local") as client:
        with warnings.catch_warnings():  # the local secret is short on purpose
            warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
            raw = jwt.encode({"sub": "buyer-1", "role": role, "iat": int(time.time()), "exp": int(time.time()) + 600},
                             settings.LOCAL_JWT_SECRET, algorithm="HS256")
        reply = client.http.get("/v1/fx/rates?base=USD", headers={"Authorization": f"Bearer {raw}"})
    settings.get.cache_clear()
    assert reply.status_code == 401 and reply.json_body["error"]["code"] == "unauthorized"
