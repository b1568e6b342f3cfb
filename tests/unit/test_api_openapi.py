"""The OpenAPI document is generated from the registry, valid, and complete."""
import subprocess
import sys

import pytest
from openapi_spec_validator import validate

import app as mizani
from chalicelib.api import openapi


@pytest.fixture(scope="module")
def document():
    return openapi.document(mizani.api)


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_the_document_lists_every_route_the_app_serves(document):
    served = {(method, path) for path, methods in mizani.app.routes.items() for method in methods}
    documented = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    assert documented == served
    assert ("POST", "/v1/fx/quotes") in served and ("GET", "/v1/openapi.json") in served


def test_every_route_goes_through_the_registrar():
    registered = {(r.method, r.path) for r in mizani.api.routes}
    served = {(method, path) for path, methods in mizani.app.routes.items() for method in methods}
    assert registered == served


def test_the_quote_route_documents_its_body_key_roles_and_errors(document):
    op = document["paths"]["/v1/fx/quotes"]["post"]
    schemas = document["components"]["schemas"]
    body_ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = schemas[body_ref.rsplit("/", 1)[1]]
    assert body["additionalProperties"] is False
    assert {"from_currency", "to_currency", "from_amount", "to_amount"} <= set(body["properties"])
    assert {"name": "Idempotency-Key", "in": "header", "required": True}.items() <= op["parameters"][0].items()
    assert op["security"] == [{"bearerAuth": []}]
    assert {"201", "400", "401", "403", "409", "422", "500"} <= set(op["responses"])
    reply_ref = op["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    assert "from" in schemas[reply_ref.rsplit("/", 1)[1]]["properties"]


def test_public_routes_need_no_token_and_staff_routes_say_who(document):
    assert document["paths"]["/v1/health"]["get"]["security"] == []
    ledger = document["paths"]["/v1/ledger/trial-balance"]["get"]
    assert ledger["x-mizani-roles"] == ["admin", "finance"]
    account = document["paths"]["/v1/ledger/accounts/{account_id}"]["get"]
    assert account["parameters"][0] == {"name": "account_id", "in": "path", "required": True, "schema": {"type": "string"}}
    assert "404" in account["responses"]


def test_errors_share_one_schema(document):
    error = document["components"]["schemas"]["ErrorResponse"]
    assert error["required"] == ["error"]
    detail = document["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"code", "message", "request_id"}


def test_importing_the_app_loads_neither_boto3_nor_stripe_nor_builds_services():
    probe = (
        "import sys, app; from chalicelib import bootstrap; "
        "print(sorted(m for m in ('boto3', 'botocore', 'stripe', 'jwt') if m in sys.modules), bootstrap._services)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=mizani.__file__.rsplit("/", 1)[0])
    assert out.stdout.strip() == "[] {}"


# -- every response a route can give (issue 16, item 8) ------------------------------------------


def _statuses(document, method: str, path: str) -> set[str]:
    return set(document["paths"][path][method]["responses"])


def test_every_operation_lists_throttling_provider_trouble_and_internal_errors(document):
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            assert {"429", "500", "502", "503", "504"} <= set(op["responses"]), f"{method} {path}"
    throttled = document["components"]["responses"]["Error429"]
    assert "throttled" in throttled["description"] and "Retry-After" in throttled["headers"]
    assert "not_configured" in document["components"]["responses"]["Error503"]["description"]


def test_json_bodies_list_415_and_413_and_private_routes_401_403(document):
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            json_body = "application/json" in op.get("requestBody", {}).get("content", {})
            if json_body and op["operationId"] in {r.name for r in mizani.api.routes if r.body is not None}:
                assert {"400", "413", "415"} <= set(op["responses"]), f"{method} {path}"
            if op["security"]:
                assert {"401", "403"} <= set(op["responses"]), f"{method} {path}"
    assert "WWW-Authenticate" in document["components"]["responses"]["Error401"]["headers"]


def test_webhooks_describe_their_signature_headers_bodies_and_a_bad_signature(document):
    for path, header in [("/v1/webhooks/stripe", "Stripe-Signature"), ("/v1/webhooks/customs", "Mizani-Signature"),
                         ("/v1/webhooks/bank", "Mizani-Signature")]:
        op = document["paths"][path]["post"]
        params = {p["name"]: p for p in op["parameters"] if p["in"] == "header"}
        assert params[header]["required"] is True and "invalid_signature" in params[header]["description"]
        assert "400" in op["responses"] and "invalid_signature" in document["components"]["responses"]["Error400"]["description"]
        assert op["requestBody"]["content"]
    schemas = document["components"]["schemas"]
    stripe = document["paths"]["/v1/webhooks/stripe"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"id", "type", "data"} <= set(schemas[stripe["$ref"].rsplit("/", 1)[1]]["properties"])
    customs = document["paths"]["/v1/webhooks/customs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"event_id", "order_id", "status"} <= set(schemas[customs["$ref"].rsplit("/", 1)[1]]["properties"])
    assert set(document["paths"]["/v1/webhooks/bank"]["post"]["requestBody"]["content"]) == {"application/xml",
                                                                                             "text/xml"}


def test_provider_callbacks_describe_the_bodies_their_adapters_read(document):
    schemas = document["components"]["schemas"]

    def body_schema(path, method="post", media="application/json"):
        ref = document["paths"][path][method]["requestBody"]["content"][media]["schema"]["$ref"]
        return schemas[ref.rsplit("/", 1)[1]]

    assert "externalId" in body_schema("/v1/webhooks/momo", "put")["properties"]
    assert "Result" in body_schema("/v1/webhooks/mpesa/result/{payout_id}/{token}")["properties"]
    assert "transaction" in body_schema("/v1/webhooks/rails/{rail}")["properties"]
    assert "phoneNumber" in body_schema("/v1/webhooks/sms/delivery", media="application/x-www-form-urlencoded")["properties"]
    assert "sessionId" in body_schema("/v1/ussd", media="application/x-www-form-urlencoded")["properties"]
    for path in ("/v1/webhooks/stripe", "/v1/webhooks/customs", "/v1/webhooks/momo/{payout_id}",
                 "/v1/webhooks/mpesa/result", "/v1/webhooks/rails/{rail}", "/v1/webhooks/sms/delivery"):
        assert "400" in _statuses(document, "post", path), path


def test_the_breaks_csv_lists_409_while_its_reconciliation_runs(document):
    op = document["paths"]["/v1/reconciliations/{reconciliation_id}/breaks.csv"]["get"]
    assert {"200", "404", "409"} <= set(op["responses"]) and "text/csv" in op["responses"]["200"]["content"]


def test_success_responses_promise_the_request_id_header(document):
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            success = [s for s in op["responses"] if s.startswith("2")]
            assert success and all("X-Request-Id" in op["responses"][s]["headers"] for s in success), f"{method} {path}"
