"""``Api.route``: the one edge every route shares (auth, parsing, idempotency, errors, JSON)."""
import json

import pytest
from chalice import Chalice
from chalice.test import Client
from pydantic import BaseModel

from chalicelib import settings
from chalicelib.api.auth import ANY_ROLE, STAFF
from chalicelib.api.idempotency import FakeIdempotencyStore
from chalicelib.api.routing import PUBLIC, Api, Call, Reply
from chalicelib.api.schemas import Money, RequestModel
from chalicelib.errors import BusinessRuleViolation, NotFound, ProviderUnavailable
from helpers import auth_headers, body, post_headers


class PayRequest(RequestModel):
    amount: Money
    note: str = ""


class PayResponse(BaseModel):
    payment_id: str
    amount: Money


class Search(RequestModel):
    q: str
    limit: int = 10


@pytest.fixture(autouse=True)
def local_settings(monkeypatch):
    for name in ("MIZANI_STAGE", "MIZANI_JWT_SECRET", "MIZANI_JWKS_URL", "MIZANI_JWT_AUDIENCE", "MIZANI_JWT_ISSUER"):
        monkeypatch.delenv(name, raising=False)
    settings.get.cache_clear()
    yield
    settings.get.cache_clear()


@pytest.fixture
def world(tmp_path):
    """A tiny app on the real edge, with a fake idempotency store and call counters."""
    app = Chalice(app_name="edge-test")
    store = FakeIdempotencyStore()
    api = Api(app, idempotency_store=lambda: store)
    calls = {"pay": 0}
    behaviour = {"raise": None}

    @api.post("/v1/payments", roles={"buyer"}, body=PayRequest, response=PayResponse, status=201)
    def pay(call: Call):
        calls["pay"] += 1
        if behaviour["raise"] is not None:
            raise behaviour["raise"]
        return {"payment_id": f"p{calls['pay']}", "amount": call.body.amount}

    @api.get("/v1/things/{thing_id}", roles=STAFF)
    def get_thing(call: Call, thing_id: str):
        if thing_id == "missing":
            raise NotFound(message=f"no thing {thing_id}")
        return {"thing_id": thing_id, "by": call.principal.sub}

    @api.get("/v1/search", roles=ANY_ROLE, query=Search)
    def search(call: Call):
        return {"q": call.query.q, "limit": call.query.limit}

    @api.get("/v1/export.csv", roles=PUBLIC)
    def export(call: Call):
        return Reply("a,b\n1,2\n", content_type="text/csv")

    @api.post("/v1/hooks", roles=PUBLIC, idempotent=False)
    def hook(call: Call):
        return Reply({"received": len(call.raw_body)}, status=202)

    return Client(app, project_dir=str(tmp_path)), calls, behaviour, store, api


def error_of(response) -> dict:
    return json.loads(response.body)["error"]


PAY = {"amount": {"amount": 1500, "currency": "USD"}}


# -- success and serialization --------------------------------------------------------


def test_a_route_answers_its_status_and_json_with_a_request_id(world):
    client, *_ = world
    response = client.http.post("/v1/payments", headers=post_headers("buyer"), body=body(PAY))
    assert response.status_code == 201
    assert json.loads(response.body) == {"payment_id": "p1", "amount": {"amount": 1500, "currency": "USD"}}
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Request-Id"]


def test_path_parameters_reach_the_view_decoded(world):
    client, *_ = world
    response = client.http.get("/v1/things/psp%3Astripe%3AUSD", headers=auth_headers("admin", "ops-1"))
    assert json.loads(response.body) == {"thing_id": "psp:stripe:USD", "by": "ops-1"}


def test_query_strings_are_parsed_into_their_model(world):
    client, *_ = world
    response = client.http.get("/v1/search?q=coffee&limit=3", headers=auth_headers("buyer"))
    assert json.loads(response.body) == {"q": "coffee", "limit": 3}
    bad = client.http.get("/v1/search?q=coffee&colour=red", headers=auth_headers("buyer"))
    assert bad.status_code == 400
    assert error_of(bad)["fields"][0]["path"] == "query.colour"


def test_a_view_may_answer_another_content_type(world):
    client, *_ = world
    response = client.http.get("/v1/export.csv")
    assert (response.status_code, response.headers["Content-Type"], response.body) == (200, "text/csv", b"a,b\n1,2\n")


def test_a_public_post_that_is_not_idempotent_needs_no_key_nor_token(world):
    client, *_ = world
    response = client.http.post("/v1/hooks", headers={"Content-Type": "application/json"}, body=b"{}")
    assert (response.status_code, json.loads(response.body)) == (202, {"received": 2})


def test_a_json_route_refuses_a_body_sent_as_another_media_type(world):
    client, *_ = world
    headers = {**post_headers("buyer"), "Content-Type": "application/x-www-form-urlencoded"}  # curl -d
    response = client.http.post("/v1/payments", headers=headers, body=body(PAY))
    assert response.status_code == 415 and json.loads(response.body)["error"]["code"] == "unsupported_media_type"


def test_a_json_body_without_a_content_type_is_read_as_json(world):
    client, *_ = world
    headers = {k: v for k, v in post_headers("buyer").items() if k != "Content-Type"}
    assert client.http.post("/v1/payments", headers=headers, body=body(PAY)).status_code == 201


# -- auth --------------------------------------------------------------------------------


def test_no_token_is_401_and_a_wrong_role_is_403(world):
    client, calls, *_ = world
    no_token = client.http.post("/v1/payments", headers={"Idempotency-Key": "k"}, body=body(PAY))
    assert (no_token.status_code, error_of(no_token)["code"]) == (401, "unauthorized")
    assert no_token.headers["WWW-Authenticate"] == "Bearer"
    wrong_role = client.http.post("/v1/payments", headers=post_headers("seller"), body=body(PAY))
    assert (wrong_role.status_code, error_of(wrong_role)["code"]) == (403, "forbidden")
    assert calls["pay"] == 0


def test_auth_is_checked_before_the_body(world):
    client, *_ = world
    response = client.http.post("/v1/payments", headers={"Idempotency-Key": "k"}, body=b"{not json")
    assert response.status_code == 401


# -- body validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, path",
    [
        (b"{not json", "body"),
        (b"", "body"),
        (b"[1, 2]", "body"),
        (b'{"amount": {"amount": 1, "currency": "USD"}, "amount": {"amount": 2, "currency": "USD"}}', "body"),
        (b'{"amount": {"amount": NaN, "currency": "USD"}}', "body"),
        (body({**PAY, "tip": 5}), "tip"),
        (body({"amount": {"amount": 1500.0, "currency": "USD"}}), "amount.amount"),
        (body({"amount": {"amount": "1500", "currency": "USD"}}), "amount.amount"),
        (body({"amount": {"amount": 0, "currency": "USD"}}), "amount.amount"),
        (body({"amount": {"amount": 10**15 + 1, "currency": "USD"}}), "amount.amount"),
        (body({"amount": {"amount": 1500, "currency": "JPY"}}), "amount.currency"),
        (body({"amount": {"amount": 1500, "currency": "usd"}}), "amount.currency"),
        (body({"note": "x"}), "amount"),
    ],
)
def test_a_malformed_or_invalid_body_is_400_with_the_offending_field(world, raw, path):
    client, calls, *_ = world
    response = client.http.post("/v1/payments", headers=post_headers("buyer"), body=raw)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert path in [f["path"] for f in error["fields"]]
    assert calls["pay"] == 0


def test_every_invalid_field_is_listed_at_once(world):
    client, *_ = world
    response = client.http.post(
        "/v1/payments", headers=post_headers("buyer"), body=body({"amount": {"amount": -1, "currency": "XYZ"}, "x": 1})
    )
    assert {f["path"] for f in error_of(response)["fields"]} == {"amount.amount", "amount.currency", "x"}


# -- idempotency --------------------------------------------------------------------------


def test_a_post_without_an_idempotency_key_is_400(world):
    client, calls, *_ = world
    response = client.http.post("/v1/payments", headers=post_headers("buyer", key=None), body=body(PAY))
    assert (response.status_code, error_of(response)["code"]) == (400, "idempotency_key_required")
    assert calls["pay"] == 0


def test_the_same_key_and_body_replays_the_first_response(world):
    client, calls, *_ = world
    headers = post_headers("buyer", key="k-1")
    first = client.http.post("/v1/payments", headers=headers, body=body(PAY))
    again = client.http.post("/v1/payments", headers=headers, body=json.dumps(PAY, indent=2).encode())
    assert calls["pay"] == 1
    assert (again.status_code, again.body) == (first.status_code, first.body)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers


def test_the_same_key_with_another_body_is_422_reused(world):
    client, calls, *_ = world
    headers = post_headers("buyer", key="k-2")
    client.http.post("/v1/payments", headers=headers, body=body(PAY))
    other = client.http.post("/v1/payments", headers=headers, body=body({**PAY, "note": "again"}))
    assert (other.status_code, error_of(other)["code"]) == (422, "idempotency_key_reused")
    assert calls["pay"] == 1


def test_two_callers_may_use_the_same_key(world):
    client, calls, *_ = world
    client.http.post("/v1/payments", headers=post_headers("buyer", "b1", key="same"), body=body(PAY))
    second = client.http.post("/v1/payments", headers=post_headers("buyer", "b2", key="same"), body=body(PAY))
    assert "Idempotent-Replayed" not in second.headers
    assert calls["pay"] == 2


def test_a_domain_error_is_stored_and_replayed(world):
    client, calls, behaviour, *_ = world
    behaviour["raise"] = BusinessRuleViolation("limit_exceeded", "over the daily limit")
    headers = post_headers("buyer", key="k-3")
    first = client.http.post("/v1/payments", headers=headers, body=body(PAY))
    behaviour["raise"] = None
    again = client.http.post("/v1/payments", headers=headers, body=body(PAY))
    assert (first.status_code, again.status_code) == (422, 422)
    assert again.body == first.body
    assert calls["pay"] == 1


@pytest.mark.parametrize(
    "failure, status, code",
    [(RuntimeError("db exploded"), 500, "internal_error"), (ProviderUnavailable(message="down"), 503, "provider_unavailable")],
)
def test_an_unexpected_failure_releases_the_key_so_the_client_can_retry(world, failure, status, code):
    client, calls, behaviour, store, _ = world
    behaviour["raise"] = failure
    headers = post_headers("buyer", key="k-4")
    failed = client.http.post("/v1/payments", headers=headers, body=body(PAY))
    assert (failed.status_code, error_of(failed)["code"]) == (status, code)
    assert store.records == {}
    behaviour["raise"] = None
    retried = client.http.post("/v1/payments", headers=headers, body=body(PAY))
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
    assert calls["pay"] == 2


def test_an_invalid_body_does_not_burn_the_key(world):
    client, calls, *_ = world
    headers = post_headers("buyer", key="k-5")
    assert client.http.post("/v1/payments", headers=headers, body=body({"amount": 5})).status_code == 400
    assert client.http.post("/v1/payments", headers=headers, body=body(PAY)).status_code == 201


# -- errors ---------------------------------------------------------------------------------


def test_a_500_carries_the_request_id_and_no_stack_trace(world):
    client, _, behaviour, *_ = world
    behaviour["raise"] = ZeroDivisionError("secret detail")
    response = client.http.post("/v1/payments", headers=post_headers("buyer"), body=body(PAY))
    error = error_of(response)
    assert response.status_code == 500
    assert error["request_id"] == response.headers["X-Request-Id"]
    assert b"secret detail" not in response.body and b"Traceback" not in response.body


def test_a_domain_not_found_is_404(world):
    client, *_ = world
    response = client.http.get("/v1/things/missing", headers=auth_headers("finance"))
    assert (response.status_code, error_of(response)["code"]) == (404, "not_found")


# -- registration ----------------------------------------------------------------------------


def test_every_registration_is_recorded_for_the_openapi_document(world):
    *_, api = world
    assert [(r.method, r.path) for r in api.routes] == [
        ("POST", "/v1/payments"),
        ("GET", "/v1/things/{thing_id}"),
        ("GET", "/v1/search"),
        ("GET", "/v1/export.csv"),
        ("POST", "/v1/hooks"),
    ]
    pay = api.routes[0]
    assert (pay.roles, pay.idempotent, pay.status, pay.body) == (frozenset({"buyer"}), True, 201, PayRequest)


def test_misdeclared_routes_fail_at_import():
    api = Api(Chalice(app_name="t"))
    with pytest.raises(ValueError):
        api.get("/v1/x", roles={"root"})(lambda call: None)
    with pytest.raises(ValueError):
        api.get("/v1/x", roles=set())(lambda call: None)
    with pytest.raises(ValueError):
        api.get("/v1/x", roles=PUBLIC, body=PayRequest)(lambda call: None)

    def view(call):
        return None

    api.get("/v1/a", roles=PUBLIC)(view)
    with pytest.raises(ValueError, match="view name"):
        api.get("/v1/b", roles=PUBLIC)(view)
