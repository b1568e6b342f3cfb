"""Structured logs and metrics (issue 16, item 6): every line of a request, a workflow task or a
scheduled function is one JSON object with that invocation's request id (and the order / payout
id where known); no PIN and no credential reaches a line; counts leave as CloudWatch EMF."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
from chalice.test import Client

from chalicelib.observability import bind, metrics, scope
from chalicelib.observability.logs import install, redact
from chalicelib.observability.middleware import task_scope
from helpers import auth_headers, body, post_headers

ROOT = Path(__file__).resolve().parents[2]


def json_lines(text: str) -> list[dict]:
    """Every non-empty line of ``text`` as JSON (a line that is not JSON fails the test)."""
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def test_every_line_of_a_request_is_json_with_its_request_id_and_the_order_id_of_its_path(client, capsys):
    capsys.readouterr()
    reply = client.http.get("/v1/orders/ord_missing1", headers=auth_headers("admin", "ops"))
    assert reply.status_code == 404
    lines = json_lines(capsys.readouterr().out)
    assert lines, "the request logged nothing"
    request_id = reply.headers["X-Request-Id"]
    assert all(line["request_id"] == request_id for line in lines)
    access = [line for line in lines if line["message"] == "request"]
    assert len(access) == 1
    assert access[0]["order_id"] == "ord_missing1" and access[0]["status"] == 404
    assert access[0]["route"] == "GET /v1/orders/{order_id}" and access[0]["role"] == "admin"
    assert access[0]["service"] == "mizani" and access[0]["level"] == "INFO"


def test_a_webhook_s_lines_carry_the_order_id_its_body_names(client, capsys):
    from chalicelib.api.signatures import sign
    from chalicelib.settings import LOCAL_CUSTOMS_SECRET

    event = body({"event_id": "ev-log-1", "order_id": "ord_fromthebody", "customs_declaration_ref": "D-1",
                  "status": "cleared", "office": "Kigali", "occurred_at": "2026-05-01T10:00:00Z"})
    capsys.readouterr()
    reply = client.http.post("/v1/webhooks/customs", body=event, headers={
        "Content-Type": "application/json", "Mizani-Signature": sign(event, LOCAL_CUSTOMS_SECRET)})
    assert reply.status_code == 404  # no such order: still, the line says which order was asked about
    [access] = [line for line in json_lines(capsys.readouterr().out) if line["message"] == "request"]
    assert access["order_id"] == "ord_fromthebody" and access["status"] == 404


def test_an_order_request_s_lines_name_the_order_it_is_for_even_when_refused(client, capsys):
    from chalicelib.ids import derived_id

    capsys.readouterr()
    reply = client.http.post("/v1/orders", headers=post_headers("buyer", "buyer-log", key="k-log-1"), body=body({
        "seller_id": "seller-nobody", "pay_currency": "CNY",
        "lines": [{"description": "Coffee", "hs_code": "0901.11", "quantity": "1", "unit": "kg",
                   "unit_price": {"amount": 1000, "currency": "USD"}}]}))
    assert reply.status_code == 404 and reply.json_body["error"]["code"] == "not_found"
    [access] = [line for line in json_lines(capsys.readouterr().out) if line["message"] == "request"]
    # the id a retry with this Idempotency-Key would create: what an operator searches the logs for
    assert access["order_id"] == derived_id("ord_", "buyer-log", "k-log-1") and access["seller_id"] == "seller-nobody"


def test_a_ussd_pin_and_an_authorization_header_appear_in_no_line(client, capsys):
    pin = "482915"
    headers = post_headers("finance", "fin-1")
    token = headers["Authorization"].split()[1]
    capsys.readouterr()
    form = urlencode({"sessionId": "s-pin", "serviceCode": "*384*2026#", "phoneNumber": "+250788000001",
                      "networkCode": "63510", "text": f"3*1000*{pin}"})
    assert client.http.post("/v1/ussd", body=form,
                            headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 200
    client.http.post("/v1/fx/quotes", body=body({"from_currency": "CNY"}), headers=headers)  # a 400, logged
    client.http.get("/v1/ledger/accounts/fx:USD", headers={"Authorization": "Bearer " + token + "x"})  # a 401
    out = capsys.readouterr().out
    lines = json_lines(out)
    assert any(line.get("ussd") == "s-pin" for line in lines)  # the USSD request was logged, masked
    assert any(line["message"] == "request" and line["status"] == 401 for line in lines)
    assert pin not in out and token not in out and "Bearer" not in out


def test_a_credential_in_any_message_or_field_is_redacted(capsys):
    install()
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJidXllci0xIn0.c2lnbmF0dXJl"
    log = logging.getLogger("mizani.test")
    with scope(request_id="r-1"):
        log.warning("upstream said: Authorization: Bearer %s", "sk_live_abcdefgh12345678")
        log.warning("token %s", jwt, extra={"header": f"Basic dXNlcjpwYXNzd29yZA=="})
    out = capsys.readouterr().out
    assert "sk_live_abcdefgh12345678" not in out and jwt not in out and "dXNlcjpwYXNzd29yZA" not in out
    assert out.count("[redacted]") == 3 and all(line["request_id"] == "r-1" for line in json_lines(out))
    assert redact("a plain sentence with 250788123456") == "a plain sentence with 250788123456"


def test_keys_bound_in_one_scope_do_not_leak_into_the_next(capsys):
    install()
    log = logging.getLogger("mizani.test")
    with scope(request_id="r-a", order_id="ord_a"):
        bind(payout_id="po_a")
        log.info("inside")
    with scope(request_id="r-b"):
        log.info("next")
    first, second = json_lines(capsys.readouterr().out)
    assert (first["request_id"], first["order_id"], first["payout_id"]) == ("r-a", "ord_a", "po_a")
    assert second["request_id"] == "r-b" and "order_id" not in second and "payout_id" not in second


def _event(name: str, payload: dict):
    context = SimpleNamespace(function_name=f"mizani-dev-{name}", aws_request_id=f"lambda-{name}")
    return SimpleNamespace(context=context, to_dict=lambda: payload)


def test_a_workflow_task_logs_json_with_its_lambda_request_id_and_order_id(capsys):
    def handler(event):
        logging.getLogger("mizani.workflow").info("releasing")
        return {"status": "released"}

    with metrics.capture() as emitted:
        assert task_scope(_event("release_escrow", {"order_id": "ord_7"}), handler) == {"status": "released"}
    lines = json_lines(capsys.readouterr().out)
    assert [line["message"] for line in lines] == ["releasing", "task"]
    assert all(line["request_id"] == "lambda-release_escrow" and line["order_id"] == "ord_7"
               and line["function"] == "release_escrow" for line in lines)
    assert lines[-1]["outcome"] == "ok" and emitted == []


def test_a_failing_task_says_so_and_a_manual_review_is_counted(capsys):
    def fails(event):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        task_scope(_event("settle", {"order_id": "ord_8"}), fails)
    (line,) = json_lines(capsys.readouterr().out)
    assert line["outcome"] == "error" and line["error"] == "RuntimeError" and line["order_id"] == "ord_8"
    with metrics.capture() as emitted:
        task_scope(_event("manual_review", {"order_id": "ord_9"}), lambda event: {"status": "manual_review"})
        # an order the review found already over is not one for an operator
        task_scope(_event("manual_review", {"order_id": "ord_10"}), lambda event: {"status": "settled"})
    assert metrics.counted(emitted, metrics.MANUAL_REVIEWS) == 1


def test_a_scheduled_function_runs_in_its_own_scope_through_the_app(aws_env, capsys):
    import app as mizani
    from chalicelib import bootstrap

    bootstrap.reset()
    with Client(mizani.app, stage_name="local") as c:
        capsys.readouterr()
        c.lambda_.invoke("expire_pending", c.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]))
    lines = json_lines(capsys.readouterr().out)
    task = [line for line in lines if line["message"] == "task"]
    assert task and task[-1]["function"] == "expire_pending" and task[-1]["outcome"] == "ok"
    assert all("request_id" in line for line in lines)


def test_metrics_are_cloudwatch_emf_documents():
    doc = metrics.document(metrics.PAYOUTS, outcome="succeeded", rail="mtn_momo")
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Mizani"
    assert directive["Metrics"] == [{"Name": "Payouts", "Unit": "Count"}]
    assert set(directive["Dimensions"][0]) == {"outcome", "rail", "service"}
    assert doc["outcome"] == "succeeded" and doc["rail"] == "mtn_momo" and doc["Payouts"] in (1, 1.0, [1.0])
    assert isinstance(doc["_aws"]["Timestamp"], int)


def test_outside_the_local_stage_a_metric_is_one_stdout_line_and_locally_a_debug_log(monkeypatch, capsys):
    from chalicelib import settings

    monkeypatch.setenv("MIZANI_STAGE", "dev")
    settings.get.cache_clear()
    try:
        metrics.ussd_session()
        (line,) = json_lines(capsys.readouterr().out)
        assert line["UssdSessions"] in (1, 1.0, [1.0]) and "_aws" in line
    finally:
        monkeypatch.setenv("MIZANI_STAGE", "local")
        settings.get.cache_clear()
    metrics.ussd_session()
    assert capsys.readouterr().out == ""  # a DEBUG line of mizani.metrics, below the default INFO


def test_a_webhook_duplicate_and_reconciliation_breaks_are_counted(client):
    with metrics.capture() as emitted:
        statement = "financialTransactionId,externalId,amount,currency,status,date\n" \
                    "MTN1,po_unknown,1000,RWF,SUCCESSFUL,2026-05-01T10:00:00Z\n"
        reply = client.http.post("/v1/reconciliations", body=body({"source": "mtn_momo", "content": statement}),
                                 headers=post_headers("finance"))
        assert reply.status_code == 201 and reply.json_body["summary"]["missing_in_ledger"] == 1
    assert metrics.counted(emitted, metrics.RECONCILIATION_BREAKS, source="mtn_momo",
                           outcome="missing_in_ledger") == 1


def test_a_new_ussd_session_is_counted_once(client):
    form = {"sessionId": "s-count", "serviceCode": "*384*2026#", "phoneNumber": "+250788000001", "networkCode": "63510"}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    with metrics.capture() as emitted:
        client.http.post("/v1/ussd", body=urlencode({**form, "text": ""}), headers=headers)
        client.http.post("/v1/ussd", body=urlencode({**form, "text": "1"}), headers=headers)
    assert metrics.counted(emitted, metrics.USSD_SESSIONS) == 1


def test_import_app_does_not_import_powertools():
    code = "import sys, app; print('aws_lambda_powertools' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_webhook_acknowledged_as_a_duplicate_is_counted_by_route(aws_env):
    from chalice import Chalice

    from chalicelib.api.routing import PUBLIC, Api

    app = Chalice(app_name="obs-test")
    api = Api(app)
    seen = {"n": 0}

    @api.post("/v1/webhooks/test", roles=PUBLIC, idempotent=False)
    def test_hook(call):
        seen["n"] += 1
        return {"received": True, "duplicate": seen["n"] > 1}

    with Client(app) as c, metrics.capture() as emitted:
        for _ in range(3):
            assert c.http.post("/v1/webhooks/test", body=b"{}").status_code == 200
    assert metrics.counted(emitted, metrics.WEBHOOK_DUPLICATES, webhook="test_hook") == 2
