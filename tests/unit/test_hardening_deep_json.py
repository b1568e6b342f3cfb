"""A body nested 100,000 levels deep is refused on JSON routes (400) and on the unauthenticated
webhooks (a 4xx, or acknowledged and ignored where the rail's contract says so): never a
``RecursionError`` turned 500. (The parsers were fixed in 0895721; this holds it over HTTP.)"""
from __future__ import annotations

import pytest
from chalice.test import Client

import app as mizani
from chalicelib import bootstrap, settings
from helpers import post_headers

DEPTH = 100_000
DEEP_BODIES = {"array": b"[" * DEPTH + b"]" * DEPTH, "object": b'{"a":' * DEPTH + b"1" + b"}" * DEPTH}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setenv("MIZANI_STAGE", "local")
    settings.get.cache_clear()
    bootstrap.reset()
    with Client(mizani.app, stage_name="local") as c:
        yield c
    bootstrap.reset()
    settings.get.cache_clear()


@pytest.mark.parametrize("shape", sorted(DEEP_BODIES))
@pytest.mark.parametrize("method, path, headers", [
    ("POST", "/v1/fx/quotes", "buyer"),
    ("PUT", "/v1/webhooks/momo", None),
    ("POST", "/v1/webhooks/mpesa/result", None),
    ("POST", "/v1/webhooks/customs", None),
    ("POST", "/v1/webhooks/stripe", None),
], ids=["fx-quotes", "momo", "mpesa-result", "customs", "stripe"])
def test_a_deeply_nested_body_is_a_400_never_a_500(client, method, path, headers, shape):
    sent = post_headers(headers) if headers else dict(JSON)
    reply = client.http.request(method, path, body=DEEP_BODIES[shape], headers=sent)
    assert reply.status_code < 500, reply.body[:300]
    if reply.status_code >= 400:
        assert reply.json_body["error"]["code"] in {"validation_error", "invalid_signature", "invalid_callback"}
    else:  # a callback it cannot read is only a hint: acknowledged, nothing moved
        assert reply.json_body == {"received": True, "duplicate": True}


def test_a_deeply_nested_quote_request_is_a_validation_error_naming_the_body(client):
    reply = client.http.post("/v1/fx/quotes", body=DEEP_BODIES["array"], headers=post_headers("buyer"))
    assert reply.status_code == 400 and reply.json_body["error"]["code"] == "validation_error"
