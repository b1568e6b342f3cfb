"""A ``Mizani-Signature`` whose timestamp has a non-ASCII digit (``t=²``, Arabic-Indic, full-width)
is a 400 ``invalid_signature`` on the customs and bank webhooks, never a 500."""
from __future__ import annotations

import json

import pytest
from chalice.test import Client

import app as mizani
from chalicelib import bootstrap, settings
from chalicelib.api import signatures
from chalicelib.errors import InvalidSignature

BODY = json.dumps({"event_id": "ev-1", "order_id": "o-1", "customs_declaration_ref": "D1", "status": "cleared",
                   "office": "KGL", "occurred_at": "2026-01-01T00:00:00Z"}).encode()
NON_ASCII_DIGITS = ["²", "١٧٠٠٠٠٠٠٠٠", "１７００００００００", "17000000²"]


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setenv("MIZANI_STAGE", "local")
    settings.get.cache_clear()
    bootstrap.reset()
    with Client(mizani.app, stage_name="local") as c:
        yield c
    bootstrap.reset()
    settings.get.cache_clear()


@pytest.mark.parametrize("t", NON_ASCII_DIGITS)
@pytest.mark.parametrize("path", ["/v1/webhooks/customs", "/v1/webhooks/bank"])
def test_a_timestamp_with_a_non_ascii_digit_is_an_invalid_signature(client, path, t):
    header = f"t={t},v1={'0' * 64}"
    reply = client.http.post(path, body=BODY, headers={"Content-Type": "application/json", "Mizani-Signature": header})
    assert reply.status_code == 400
    assert reply.json_body["error"]["code"] == "invalid_signature"


@pytest.mark.parametrize("t", NON_ASCII_DIGITS)
def test_verify_refuses_a_non_ascii_timestamp_even_when_the_mac_matches_its_text(t):
    mac = signatures.sign(BODY, "s3cret").split("v1=")[1]
    with pytest.raises(InvalidSignature):
        signatures.verify(BODY, f"t={t},v1={mac}", "s3cret")
