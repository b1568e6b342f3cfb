"""The foundation routes over HTTP (``chalice.test.Client``, stage ``local``) against moto.

Health, OpenAPI, FX rates and quotes, ledger accounts and the trial balance; the
shared edge (auth, validation, Idempotency-Key) exercised through real routes with
the DynamoDB adapters behind them.
"""
import json
from decimal import Decimal

import pytest
from openapi_spec_validator import validate

import app as mizani
from chalicelib import bootstrap, settings
from chalicelib.api.idempotency import DynamoIdempotencyStore, IdempotencyRecord, Status
from chalicelib.ledger import Transfer
from helpers import auth_headers, body, post_headers, token

QUOTE = {"from_currency": "USD", "to_currency": "RWF", "from_amount": 120000}


def reply(response) -> dict:
    return json.loads(response.body)


def error_code(response) -> str:
    return reply(response)["error"]["code"]


def post_quote(client, payload, headers=None):
    return client.http.post("/v1/fx/quotes", headers=headers or post_headers("buyer"), body=body(payload))


# -- meta ---------------------------------------------------------------------------------


def test_health_needs_no_token(client):
    response = client.http.get("/v1/health")
    assert (response.status_code, reply(response)) == (200, {"status": "ok"})


def test_the_openapi_document_is_served_valid_and_complete(client):
    response = client.http.get("/v1/openapi.json")
    assert response.status_code == 200
    document = reply(response)
    validate(document)
    for path, methods in mizani.app.routes.items():
        for method in methods:
            assert method.lower() in document["paths"][path]


# -- FX rates -----------------------------------------------------------------------------


def test_any_role_reads_the_rates_as_decimal_strings(client):
    for role in ("buyer", "seller", "finance", "admin"):
        response = client.http.get("/v1/fx/rates?base=USD", headers=auth_headers(role))
        assert response.status_code == 200
    rates = reply(response)
    assert rates["base"] == "USD"
    assert rates["as_of"].endswith("Z") and rates["source"]
    assert {"CNY", "RWF", "KES"} <= set(rates["rates"])
    assert all(isinstance(v, str) and Decimal(v) > 0 for v in rates["rates"].values())
    assert "USD" not in rates["rates"]


def test_rates_default_to_usd_and_rebase_on_request(client):
    assert reply(client.http.get("/v1/fx/rates", headers=auth_headers()))["base"] == "USD"
    rwf = reply(client.http.get("/v1/fx/rates?base=RWF", headers=auth_headers()))
    assert rwf["base"] == "RWF" and "USD" in rwf["rates"]


def test_rates_for_an_unsupported_base_are_400(client):
    response = client.http.get("/v1/fx/rates?base=JPY", headers=auth_headers())
    assert response.status_code == 400
    assert reply(response)["error"]["fields"][0]["path"] == "query.base"


def test_rates_need_a_token(client):
    assert client.http.get("/v1/fx/rates?base=USD").status_code == 401


# -- FX quotes -------------------------------------------------------------------------------


def test_a_quote_for_a_from_amount_is_created_and_stored(client):
    response = post_quote(client, QUOTE)
    assert response.status_code == 201
    quote = reply(response)
    assert quote["from"] == {"amount": 120000, "currency": "USD"}
    assert quote["to"]["currency"] == "RWF" and isinstance(quote["to"]["amount"], int) and quote["to"]["amount"] > 0
    assert isinstance(quote["rate"], str) and isinstance(quote["mid_rate"], str)
    assert isinstance(quote["spread_bps"], int)
    assert quote["expires_at"].endswith("Z")
    stored = bootstrap.quotes().get(quote["quote_id"])
    assert stored.to_money.minor == quote["to"]["amount"]


def test_a_quote_for_a_to_amount_fixes_what_is_received(client):
    response = post_quote(client, {"from_currency": "CNY", "to_currency": "RWF", "to_amount": 1_500_000})
    assert response.status_code == 201
    quote = reply(response)
    assert quote["to"] == {"amount": 1_500_000, "currency": "RWF"}
    assert quote["from"]["currency"] == "CNY"


@pytest.mark.parametrize(
    "raw, path",
    [
        (b'{"from_currency": "USD", "to_currency": "RWF", "from_amount": 1', "body"),
        (body({**QUOTE, "note": "hi"}), "note"),
        (body({"from_currency": "USD", "to_currency": "RWF"}), "body"),
        (body({**QUOTE, "to_amount": 5}), "body"),
        (body({**QUOTE, "from_amount": 1200.50}), "from_amount"),
        (body({**QUOTE, "to_currency": "JPY"}), "to_currency"),
    ],
    ids=["malformed-json", "unknown-field", "missing-amount", "both-amounts", "float-amount", "unsupported-currency"],
)
def test_a_bad_quote_request_is_400_with_fields(client, raw, path):
    response = client.http.post("/v1/fx/quotes", headers=post_headers("buyer"), body=raw)
    assert response.status_code == 400
    error = reply(response)["error"]
    assert error["code"] == "validation_error"
    assert path in [f["path"] for f in error["fields"]]
    assert error["request_id"] == response.headers["X-Request-Id"]


def test_a_quote_without_a_token_or_with_a_bad_one_is_401(client):
    no_token = client.http.post("/v1/fx/quotes", headers={"Idempotency-Key": "k"}, body=body(QUOTE))
    assert (no_token.status_code, error_code(no_token)) == (401, "unauthorized")
    forged = {**post_headers("buyer"), "Authorization": f"Bearer {token('buyer', secret='x' * 32)}"}
    assert error_code(post_quote(client, QUOTE, forged)) == "unauthorized"
    expired = {**post_headers("buyer"), "Authorization": f"Bearer {token('buyer', expires_in=-60)}"}
    assert post_quote(client, QUOTE, expired).status_code == 401


def test_a_quote_without_an_idempotency_key_is_400(client):
    response = post_quote(client, QUOTE, post_headers("buyer", key=None))
    assert (response.status_code, error_code(response)) == (400, "idempotency_key_required")


def test_the_same_key_twice_returns_the_same_quote(client):
    headers = post_headers("buyer", "buyer-7", key="checkout-42")
    first = post_quote(client, QUOTE, headers)
    again = post_quote(client, QUOTE, headers)
    assert first.status_code == again.status_code == 201
    assert reply(again)["quote_id"] == reply(first)["quote_id"]
    assert again.body == first.body
    assert again.headers["Idempotent-Replayed"] == "true"
    record = DynamoIdempotencyStore(settings.get().table("app")).get("idem#buyer-7#POST /v1/fx/quotes#checkout-42")
    assert record.status is Status.COMPLETED and record.response_status == 201


def test_the_same_key_with_another_body_is_422(client):
    headers = post_headers("buyer", key="checkout-43")
    post_quote(client, QUOTE, headers)
    other = post_quote(client, {**QUOTE, "from_amount": 130000}, headers)
    assert (other.status_code, error_code(other)) == (422, "idempotency_key_reused")


def test_a_key_in_flight_is_409(client):
    now = 2_000_000_000_000  # far future: the claim is live
    DynamoIdempotencyStore(settings.get().table("app")).claim(
        IdempotencyRecord("idem#buyer-9#POST /v1/fx/quotes#busy", Status.INPROGRESS, _hash(QUOTE), now), 0
    )
    response = post_quote(client, QUOTE, post_headers("buyer", "buyer-9", key="busy"))
    assert (response.status_code, error_code(response)) == (409, "request_in_progress")


def _hash(payload) -> str:
    from chalicelib.api.idempotency import payload_hash

    return payload_hash(payload)


# -- the DynamoDB idempotency adapter ------------------------------------------------------------


def test_the_dynamo_store_claims_once_and_reclaims_only_after_expiry(aws_env):
    store = DynamoIdempotencyStore(settings.get().table("app"))
    claim = IdempotencyRecord("idem#s#POST /x#k", Status.INPROGRESS, "h1", expires_at=1_000)
    assert store.claim(claim, now=900) is None
    held = store.claim(IdempotencyRecord("idem#s#POST /x#k", Status.INPROGRESS, "h2", 1_100), now=950)
    assert (held.payload_hash, held.status) == ("h1", Status.INPROGRESS)
    assert store.claim(IdempotencyRecord("idem#s#POST /x#k", Status.INPROGRESS, "h3", 2_000), now=1_001) is None
    store.complete(IdempotencyRecord("idem#s#POST /x#k", Status.COMPLETED, "h3", 90_000, 201, '{"ok":true}'))
    done = store.get("idem#s#POST /x#k")
    assert (done.status, done.response_status, done.response_body) == (Status.COMPLETED, 201, '{"ok":true}')
    store.release("idem#s#POST /x#k")
    assert store.get("idem#s#POST /x#k") is None


# -- ledger ------------------------------------------------------------------------------------------


@pytest.fixture
def funded(client):
    """Platform accounts exist; 5,000 USD cents of fees were earned from card money."""
    bootstrap.ensure_platform_accounts()
    bootstrap.ledger().transfer(Transfer("t-fee-1", "psp:stripe:USD", "revenue:fees:USD", 5000, "USD", code="fee"))
    return client


def test_finance_reads_a_ledger_account_with_its_balance(funded):
    response = funded.http.get("/v1/ledger/accounts/revenue:fees:USD", headers=auth_headers("finance"))
    assert response.status_code == 200
    assert reply(response) == {
        "account_id": "revenue:fees:USD",
        "currency": "USD",
        "kind": "revenue",
        "debits_posted": 0,
        "credits_posted": 5000,
        "debits_pending": 0,
        "credits_pending": 0,
        "balance": 5000,
    }
    psp = reply(funded.http.get("/v1/ledger/accounts/psp:stripe:USD", headers=auth_headers("admin")))
    assert (psp["debits_posted"], psp["balance"]) == (5000, 5000)


def test_an_unknown_ledger_account_is_404(funded):
    response = funded.http.get("/v1/ledger/accounts/seller:nobody", headers=auth_headers("admin"))
    assert (response.status_code, error_code(response)) == (404, "not_found")


def test_the_trial_balance_balances_per_currency(funded):
    response = funded.http.get("/v1/ledger/trial-balance", headers=auth_headers("finance"))
    assert response.status_code == 200
    trial = reply(response)
    assert trial["balanced"] is True
    assert (trial["currencies"]["USD"]["debits"], trial["currencies"]["USD"]["credits"]) == (5000, 5000)
    assert set(trial["currencies"]) >= {"USD", "RWF", "CNY"}


@pytest.mark.parametrize("role", ["buyer", "seller"])
def test_parties_may_not_read_the_ledger(funded, role):
    for path in ("/v1/ledger/trial-balance", "/v1/ledger/accounts/revenue:fees:USD"):
        response = funded.http.get(path, headers=auth_headers(role))
        assert (response.status_code, error_code(response)) == (403, "forbidden")
