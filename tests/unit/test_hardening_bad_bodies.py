"""Every route that takes a JSON body, sent a malformed, an oversized and a wrongly typed one, as a role it
admits: a 400 ``validation_error`` naming where, and nothing written anywhere (no DynamoDB write, no S3
object, no workflow started), as issue 16 asks of bad input. The routes are read from the app's own
registry, so a route added later is covered without touching this file."""
from __future__ import annotations

import json

import pytest

import app as mizani
from chalicelib import aws
from helpers import post_headers

READS = {"GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "GetObject", "HeadObject", "ListObjectsV2",
         "DescribeExecution", "ListExecutions"}
BODY_ROUTES = [spec for spec in mizani.api.routes if spec.body is not None]


def _fields(model) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def bad_bodies(model) -> dict[str, bytes]:
    fields = _fields(model)
    return {
        "malformed": b'{"' + (fields[0] if fields else "a").encode() + b'": ',  # cut off mid-object
        "oversized": json.dumps({f: "9" * 200_000 for f in fields}).encode(),  # every field a 200 kB string
        "wrongly-typed": json.dumps({f: [[{}]] for f in fields}).encode(),  # every field a nested list
        "not-an-object": json.dumps([{f: 1 for f in fields}]).encode(),
    }


@pytest.fixture
def writes(client):
    """The write requests the container's AWS clients send while a test runs."""
    sent: list[str] = []
    for service in ("dynamodb", "s3", "stepfunctions"):
        aws.client(service).meta.events.register(
            f"before-call.{service}.*", lambda model, **_: None if model.name in READS else sent.append(model.name))
    return sent


def _path(spec) -> str:
    path = spec.path
    for name in spec.path_params:
        path = path.replace("{" + name + "}", f"{name}-bad-body-1")
    return path


@pytest.mark.parametrize("kind", ["malformed", "oversized", "wrongly-typed", "not-an-object"])
@pytest.mark.parametrize("spec", BODY_ROUTES, ids=[f"{s.method} {s.path}" for s in BODY_ROUTES])
def test_a_bad_body_is_a_400_naming_it_and_writes_nothing(client, writes, spec, kind):
    role = sorted(spec.roles)[0] if spec.roles else "buyer"
    headers = post_headers(role, f"{role}-bad-body", key="auto" if spec.idempotent else None)
    reply = client.http.request(spec.method, _path(spec), body=bad_bodies(spec.body)[kind], headers=headers)
    assert reply.status_code == 400, (reply.status_code, reply.body[:300])
    error = reply.json_body["error"]
    assert error["code"] == "validation_error" and error["message"]
    assert writes == [], f"{spec.method} {spec.path} wrote {writes} for a {kind} body"


def test_the_routes_that_move_money_or_register_parties_are_among_them():
    covered = {f"{s.method} {s.path}" for s in BODY_ROUTES}
    assert {"POST /v1/orders", "POST /v1/sellers", "POST /v1/sellers/{seller_id}/payouts",
            "POST /v1/sellers/{seller_id}/members", "PUT /v1/orders/{order_id}/allocation",
            "POST /v1/orders/{order_id}/refund/paid", "POST /v1/reconciliations"} <= covered
