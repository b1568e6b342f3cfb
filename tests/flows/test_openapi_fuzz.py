"""Schemathesis fuzzes the served OpenAPI document: every operation, as every role and as nobody.

The API is served over HTTP on 127.0.0.1 by its own Sandbox (moto, the provider simulators, the
Chalice local server) with tables of its own, so what the fuzzer writes is seen by no other test.
The document is read from ``GET /v1/openapi.json`` as a client would read it; each operation gets a
few generated requests (valid ones, invalid ones, and valid ones whose path ids name objects that
exist: a seller, an order, a reconciliation; Hypothesis derandomized: the same requests every run), each sent once per role (``buyer``, ``seller``, ``finance``, ``admin``, with local-stage
tokens) and once without a token. Every answer must be no 5xx, and conform to the document: a
status code it lists, the content type it names, its declared headers, a body matching its schema.

Bounded on purpose (``FUZZ_EXAMPLES`` per operation) so that ``make test`` stays quick; raise it
(``MIZANI_FUZZ_EXAMPLES=200``) for a long hunt.
"""
from __future__ import annotations

import os
import time
import uuid

import pytest
import requests
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from helpers import token

FUZZ_EXAMPLES = int(os.environ.get("MIZANI_FUZZ_EXAMPLES", "4"))
ROLES = ("buyer", "seller", "finance", "admin")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_sandbox():
    from sandbox.run import Sandbox

    schedule_before = os.environ.get("MIZANI_SCHEDULE_SECONDS")
    os.environ["MIZANI_SCHEDULE_SECONDS"] = "0"  # no background sweeps racing the requests
    sandbox = Sandbox(ports=0, table_prefix=f"mizani-fuzz-{uuid.uuid4().hex[:8]}", access_log=False)
    try:
        sandbox.start()
        _no_nagle(sandbox)
        yield sandbox
    finally:
        sandbox.stop()
        if schedule_before is None:
            os.environ.pop("MIZANI_SCHEDULE_SECONDS", None)
        else:
            os.environ["MIZANI_SCHEDULE_SECONDS"] = schedule_before


def _no_nagle(sandbox) -> None:
    """Chalice's local server writes a reply's head and body in separate small writes; with Nagle's
    algorithm on, the second waits for the client's delayed ACK (~40 ms a request on Linux). Off for
    this sandbox's connections (TCP_NODELAY, ``socketserver.StreamRequestHandler``'s own switch), so
    the fuzz's thousands of requests take seconds, not minutes. Changes no answer."""
    handler = sandbox._api_server.server.RequestHandlerClass
    handler = getattr(handler, "func", handler)  # a functools.partial when the access log is off
    handler.disable_nagle_algorithm = True


@pytest.fixture(scope="module")
def fuzz_session():
    session = requests.Session()
    session.trust_env = False  # 127.0.0.1 only, never through a proxy
    yield session
    session.close()


@pytest.fixture(scope="module")
def served_schema(fuzz_sandbox, fuzz_session):
    """The document as the running API serves it (not the one built in this process)."""
    reply = fuzz_session.get(f"{fuzz_sandbox.api_url}/v1/openapi.json", timeout=30)
    assert reply.status_code == 200, reply.text
    schema = schemathesis.openapi.from_dict(reply.json())
    schema.config.update(base_url=fuzz_sandbox.api_url)
    return schema


@pytest.fixture(scope="module")
def known_ids(fuzz_sandbox, fuzz_session) -> dict:
    """Objects that exist, so the fuzz also reaches past "not found": the fuzz seller (registered as
    itself), an order of the fuzz buyer's to it, a reconciliation with breaks, a ledger account."""
    api = fuzz_sandbox.api_url

    def post(path: str, role: str, body: dict) -> dict:
        headers = {**dict(IDENTITIES)[role], "Idempotency-Key": uuid.uuid4().hex}
        reply = fuzz_session.post(api + path, json=body, headers=headers, timeout=30)
        assert reply.status_code == 201, (path, reply.status_code, reply.text)
        return reply.json()

    msisdn = "25078" + str(uuid.uuid4().int)[:7]  # an ordinary MTN Rwanda number: the simulator pays it
    seller = post("/v1/sellers", "seller", {"name": "Fuzz co-operative", "country": "RW",
                                           "payout": {"rail": "mtn_momo", "msisdn": msisdn, "currency": "RWF"}})
    order = post("/v1/orders", "buyer", {"seller_id": seller["seller_id"], "pay_currency": "CNY", "lines": [
        {"description": "Washed arabica", "hs_code": "0901.11", "quantity": "1", "unit": "kg",
         "unit_price": {"amount": 1200, "currency": "USD"}}]})
    statement = "financialTransactionId,externalId,amount,currency,status,date\n" + "".join(
        f"{100 + i},po_fuzz_{i},{1000 + i},RWF,SUCCESSFUL,{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n"
        for i in range(3))
    rec = post("/v1/reconciliations", "finance", {"source": "mtn_momo", "content": statement})
    return {"seller_id": seller["seller_id"], "order_id": order["order_id"], "reconciliation_id": rec["reconciliation_id"],
            "payment_id": order["payment"].get("payment_intent_id") or order["order_id"], "account_id": "fx:USD",
            "rail": "mtn_momo", "asset": "docs.js"}


def _cases() -> list:
    """(method, path, mode) for every documented operation: valid requests, and invalid ones where the
    operation takes any input to get wrong."""
    import app as mizani
    from chalicelib.api import openapi

    cases = []
    for path, ops in openapi.document(mizani.api)["paths"].items():
        for method, op in ops.items():
            cases.append(pytest.param(method.upper(), path, GenerationMode.POSITIVE, id=f"{method.upper()} {path} valid"))
            if any(p["in"] == "path" for p in op.get("parameters", ())):
                cases.append(pytest.param(method.upper(), path, "known", id=f"{method.upper()} {path} known ids"))
            if op.get("requestBody") or any(p["in"] != "path" or p["schema"] != {"type": "string"}
                                            for p in op.get("parameters", ())):  # any string is a valid path id
                cases.append(pytest.param(method.upper(), path, GenerationMode.NEGATIVE,
                                          id=f"{method.upper()} {path} invalid"))
    return cases


# Every role's token, and no token at all (a public route must not need one; a private one must say 401).
IDENTITIES = [(role, {"Authorization": f"Bearer {token(role, f'fuzz-{role}', expires_in=24 * 3600)}"}) for role in ROLES]
IDENTITIES.append(("anonymous", {}))


@pytest.mark.parametrize("method,path,mode", _cases())
def test_no_operation_answers_5xx_or_off_its_document(served_schema, fuzz_session, known_ids, method, path, mode):
    operation = served_schema[path][method]
    if mode == "known":  # the path's ids name objects that exist; the rest of the request is generated
        names = {p["name"] for p in served_schema.raw_schema["paths"][path][method.lower()].get("parameters", ())
                 if p["in"] == "path"}
        strategy = operation.as_strategy(path_parameters={n: known_ids[n] for n in names if n in known_ids})
    else:
        strategy = operation.as_strategy(generation_mode=mode)

    @given(case=strategy)
    @settings(max_examples=FUZZ_EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def fuzz(case):
        for _who, headers in IDENTITIES:
            response = case.call(session=fuzz_session, headers=headers, timeout=30)
            case.validate_response(response, checks=CHECKS)

    fuzz()
