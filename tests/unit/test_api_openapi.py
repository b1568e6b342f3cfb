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
