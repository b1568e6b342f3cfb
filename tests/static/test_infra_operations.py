"""Operations in the merge template (issue 16): stage throttling from the stage's configuration,
API Gateway's own errors in our envelope, alarms on real resources, X-Ray everywhere, and a
dead-letter queue for every scheduled function. Fast: no packaging (test_infra_deploy.py packages,
translates and deploys)."""
import copy
import json
import re
from pathlib import Path

import pytest

from infra import alarms, build, gateway, policies, statemachines

ROOT = Path(__file__).resolve().parents[2]
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
#: API Gateway's gateway response types and their default statuses (API Gateway developer guide,
#: "Gateway response types for API Gateway"); None: the DEFAULT_* fallbacks keep the actual status
GATEWAY_RESPONSE_TYPES = {
    "ACCESS_DENIED": 403, "API_CONFIGURATION_ERROR": 500, "AUTHORIZER_CONFIGURATION_ERROR": 500,
    "AUTHORIZER_FAILURE": 500, "BAD_REQUEST_PARAMETERS": 400, "BAD_REQUEST_BODY": 400, "DEFAULT_4XX": None,
    "DEFAULT_5XX": None, "EXPIRED_TOKEN": 403, "INTEGRATION_FAILURE": 504, "INTEGRATION_TIMEOUT": 504,
    "INVALID_API_KEY": 403, "INVALID_SIGNATURE": 403, "MISSING_AUTHENTICATION_TOKEN": 403, "QUOTA_EXCEEDED": 429,
    "REQUEST_TOO_LARGE": 413, "RESOURCE_NOT_FOUND": 404, "THROTTLED": 429, "UNAUTHORIZED": 401,
    "UNSUPPORTED_MEDIA_TYPE": 415, "WAF_FILTERED": 403,
}
REQUEST_ID = "c0ffee00-1234-4abc-8def-000000000001"


@pytest.fixture(scope="module", params=policies.STAGES)
def stage(request):
    return request.param


@pytest.fixture(scope="module")
def template(stage):
    return build.build(stage=stage)


def _app_function_logical_ids():
    import app as mizani
    from sandbox.aws_local import app_function_names

    names = set(app_function_names(mizani.app)) | {"api_handler"}
    return {statemachines.to_cfn_resource_name(n) for n in names} | {"APIHandler"}


def _references(value):
    """Every logical id a value names through Ref, Fn::GetAtt or Fn::Sub."""
    found = set()
    if isinstance(value, dict):
        if "Ref" in value:
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            found.add(value["Fn::GetAtt"][0])
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            found |= {m.split(".")[0] for m in re.findall(r"\$\{([A-Za-z0-9_.:]+)\}", text) if "::" not in m}
        for v in value.values():
            found |= _references(v)
    elif isinstance(value, list):
        for v in value:
            found |= _references(v)
    return found


# -- throttling -------------------------------------------------------------------------------------


def test_the_stage_throttle_comes_from_the_stage_configuration(stage, template):
    configured = CONFIG["stages"][stage]["api_throttling"]
    params = template["Parameters"]
    assert params[gateway.RATE_PARAMETER]["Default"] == configured["rate_limit"]
    assert params[gateway.BURST_PARAMETER]["Default"] == configured["burst_limit"]
    settings = template["Resources"]["RestAPI"]["Properties"]["MethodSettings"]
    assert settings == [
        {
            "ResourcePath": "/*",
            "HttpMethod": "*",
            "ThrottlingRateLimit": {"Ref": gateway.RATE_PARAMETER},
            "ThrottlingBurstLimit": {"Ref": gateway.BURST_PARAMETER},
        }
    ]


def test_prod_and_dev_throttle_differently_and_a_change_in_the_config_reaches_the_template():
    config = copy.deepcopy(CONFIG)
    config["stages"]["dev"]["api_throttling"] = {"rate_limit": 7, "burst_limit": 11}
    params = build.build(stage="dev", chalice_config=config)["Parameters"]
    assert (params[gateway.RATE_PARAMETER]["Default"], params[gateway.BURST_PARAMETER]["Default"]) == (7, 11)
    assert CONFIG["stages"]["dev"]["api_throttling"] != CONFIG["stages"]["prod"]["api_throttling"]


@pytest.mark.parametrize("bad", [None, {"rate_limit": 10}, {"rate_limit": 0, "burst_limit": 5},
                                 {"rate_limit": 10, "burst_limit": 5}, {"rate_limit": "10", "burst_limit": 20}])
def test_a_missing_or_odd_throttle_refuses_to_build(bad):
    config = copy.deepcopy(CONFIG)
    if bad is None:
        del config["stages"]["dev"]["api_throttling"]
    else:
        config["stages"]["dev"]["api_throttling"] = bad
    with pytest.raises(ValueError):
        build.build(stage="dev", chalice_config=config)


# -- gateway responses ------------------------------------------------------------------------------


def _rendered(template_text: str) -> dict:
    """What API Gateway sends: the mapping template with its one variable filled."""
    assert set(re.findall(r"\$[A-Za-z.{}]+", template_text)) == {gateway.REQUEST_ID_VARIABLE}
    assert "#" not in template_text  # no VTL directive
    return json.loads(template_text.replace(gateway.REQUEST_ID_VARIABLE, REQUEST_ID))


def test_every_gateway_response_type_is_answered(template):
    responses = template["Resources"]["RestAPI"]["Properties"]["GatewayResponses"]
    assert set(responses) == set(GATEWAY_RESPONSE_TYPES)


@pytest.mark.parametrize("kind", sorted(GATEWAY_RESPONSE_TYPES))
def test_every_gateway_response_is_our_error_envelope(kind):
    from chalicelib.api.errors import error_body
    from chalicelib.api.schemas import ErrorResponse

    response = gateway.gateway_responses()[kind]
    body = _rendered(response["ResponseTemplates"]["application/json"])
    ErrorResponse.model_validate(body)  # extra="forbid": exactly the envelope's members
    error = body["error"]
    assert body == error_body(error["code"], error["message"], REQUEST_ID, retryable=error.get("retryable"))
    assert re.fullmatch(r"[a-z]+(_[a-z]+)*", error["code"])
    headers = response["ResponseParameters"]["Headers"]
    assert headers["X-Request-Id"] == "context.requestId"  # the same id the app sends
    assert headers["Cache-Control"] == "'no-store'"
    status = response.get("StatusCode")
    if GATEWAY_RESPONSE_TYPES[kind] is None:
        assert status is None  # keep the actual 4xx/5xx
    else:
        assert 400 <= int(status) <= 599


def test_an_unknown_route_is_404_not_found_and_throttling_is_429_throttled():
    responses = gateway.gateway_responses()
    for kind in ("MISSING_AUTHENTICATION_TOKEN", "RESOURCE_NOT_FOUND"):
        assert responses[kind]["StatusCode"] == "404"
        assert _rendered(responses[kind]["ResponseTemplates"]["application/json"])["error"]["code"] == "not_found"
    throttled = responses["THROTTLED"]
    assert throttled["StatusCode"] == "429"
    error = _rendered(throttled["ResponseTemplates"]["application/json"])["error"]
    assert (error["code"], error["retryable"]) == ("throttled", True)
    assert throttled["ResponseParameters"]["Headers"]["Retry-After"] == "'1'"
    assert responses["UNAUTHORIZED"]["ResponseParameters"]["Headers"]["WWW-Authenticate"] == "'Bearer'"


def test_a_code_the_app_also_uses_has_the_apps_status():
    """not_found is 404 whoever answers; internal_error carries the app's own message."""
    from chalicelib import errors
    from chalicelib.api import errors as http_errors

    app_status = {cls.code: status for cls, status in http_errors.STATUS_BY_ERROR.items()}
    app_status["internal_error"] = 500
    for kind, error in gateway.GATEWAY_ERRORS.items():
        if error.code in app_status and error.status is not None and error.code != "internal_error":
            assert error.status == app_status[error.code], kind
    assert gateway.INTERNAL_ERROR_MESSAGE == http_errors.INTERNAL_ERROR_MESSAGE
    assert errors.Unauthorized.code == "unauthorized" and errors.NotFound.code == "not_found"


# -- alarms -----------------------------------------------------------------------------------------


def _alarms(template):
    return {k: v for k, v in template["Resources"].items() if v.get("Type") == "AWS::CloudWatch::Alarm"}


def test_the_alarms_the_issue_asks_for_exist(template):
    names = set(_alarms(template))
    expected = {sm.logical_id + "ExecutionsFailedAlarm" for sm in statemachines.discover()}
    expected |= {"EscrowManualReviewAlarm", "Api5xxRateAlarm", "PayoutsUnknownAlarm", "DeadLetterQueueDepthAlarm"}
    assert names == expected


def test_every_alarm_names_real_resources_and_pages_the_topic(template):
    known = set(template["Resources"]) | _app_function_logical_ids() | set(template["Parameters"])
    for logical_id, alarm in _alarms(template).items():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": alarms.TOPIC_LOGICAL_ID}], logical_id
        assert props["OKActions"] == [{"Ref": alarms.TOPIC_LOGICAL_ID}], logical_id
        missing = _references(props) - known
        assert not missing, f"{logical_id} names {missing}"
    assert template["Resources"][alarms.TOPIC_LOGICAL_ID]["Type"] == "AWS::SNS::Topic"


def _dimensions(props):
    if "Dimensions" in props:
        return {d["Name"]: d["Value"] for d in props["Dimensions"]}
    dims = {}
    for metric in props["Metrics"]:
        if "MetricStat" in metric:
            dims.update({d["Name"]: d["Value"] for d in metric["MetricStat"]["Metric"]["Dimensions"]})
    return dims


def test_each_state_machine_alarm_watches_its_own_machine(template):
    for sm in statemachines.discover():
        props = template["Resources"][sm.logical_id + "ExecutionsFailedAlarm"]["Properties"]
        assert _dimensions(props) == {"StateMachineArn": {"Ref": sm.logical_id}}
        metrics = {m["MetricStat"]["Metric"]["MetricName"] for m in props["Metrics"] if "MetricStat" in m}
        assert metrics == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}


def test_the_manual_review_alarm_reads_the_apps_count_of_orders_put_in_review(template):
    props = template["Resources"]["EscrowManualReviewAlarm"]["Properties"]
    (query,) = props["Metrics"]
    assert query["Expression"] == f'SELECT SUM({alarms.MANUAL_REVIEWS_METRIC}) FROM "{alarms.APP_METRICS_NAMESPACE}"'
    assert props["TreatMissingData"] == "notBreaching" and props["Threshold"] == 1
    from chalicelib.observability import metrics  # the alarm's contract with the code that counts

    assert metrics.MANUAL_REVIEWS == alarms.MANUAL_REVIEWS_METRIC


def test_the_5xx_alarm_is_a_rate_on_this_stages_api(stage, template):
    props = template["Resources"]["Api5xxRateAlarm"]["Properties"]
    api = template["Resources"]["RestAPI"]["Properties"]
    assert _dimensions(props) == {"ApiName": api["Name"], "Stage": CONFIG["stages"][stage]["api_gateway_stage"]}
    assert api["Name"] == api["DefinitionBody"]["info"]["title"] == {"Fn::Sub": "mizani-${Stage}"}
    rate = next(m for m in props["Metrics"] if m.get("ReturnData"))
    assert "errors / requests" in rate["Expression"]
    assert 0 < props["Threshold"] < 1


def test_the_dlq_alarm_watches_the_queue_the_scheduled_functions_use(template):
    props = template["Resources"]["DeadLetterQueueDepthAlarm"]["Properties"]
    assert _dimensions(props) == {"QueueName": {"Fn::GetAtt": [alarms.DLQ_LOGICAL_ID, "QueueName"]}}
    assert template["Resources"][alarms.DLQ_LOGICAL_ID]["Type"] == "AWS::SQS::Queue"


def test_the_payouts_unknown_alarm_reads_the_apps_gauge_and_pages_when_it_stops(template):
    props = template["Resources"]["PayoutsUnknownAlarm"]["Properties"]
    (query,) = props["Metrics"]
    assert query["Expression"] == f'SELECT MAX({alarms.PAYOUTS_UNKNOWN_METRIC}) FROM "{alarms.APP_METRICS_NAMESPACE}"'
    assert props["TreatMissingData"] == "breaching"


def test_the_app_emits_the_payouts_unknown_gauge():
    # The alarm's contract with the code: the same namespace and name (the sweeper's report is
    # tested in tests/unit/test_payout_service.py).
    from chalicelib.observability import metrics

    assert (metrics.NAMESPACE_DEFAULT, metrics.PAYOUTS_UNKNOWN) == (alarms.APP_METRICS_NAMESPACE, alarms.PAYOUTS_UNKNOWN_METRIC)


# -- dead-letter queue ------------------------------------------------------------------------------


def test_every_scheduled_function_sends_failed_events_to_the_dlq(template):
    import app as mizani

    scheduled = {e.name for e in mizani.app.event_sources if type(e).__name__ == "ScheduledEventConfig"}
    assert scheduled, "no @app.schedule functions?"
    assert {fn for fn, grant in policies.ACCESS.items() if grant.get("dlq")} == scheduled
    for name in scheduled:
        logical_id = statemachines.to_cfn_resource_name(name)
        assert template["Resources"][logical_id]["Properties"]["DeadLetterQueue"] == {
            "Type": "SQS", "TargetArn": {"Fn::GetAtt": [alarms.DLQ_LOGICAL_ID, "Arn"]}}


def test_only_scheduled_functions_may_send_to_the_stages_dlq_and_nothing_else(stage):
    for fn, grant in policies.ACCESS.items():
        doc = json.loads(policies.policy_path(stage, fn).read_text())
        sqs = [s for s in doc["Statement"] if any(a.startswith("sqs:") for a in s["Action"])]
        if grant.get("dlq"):
            assert sqs == [{"Sid": "DeadLetterQueue", "Effect": "Allow", "Action": ["sqs:SendMessage"],
                            "Resource": [f"arn:aws:sqs:*:*:mizani-{stage}-dlq"]}], fn
        else:
            assert sqs == [], fn


# -- X-Ray ------------------------------------------------------------------------------------------


def test_tracing_is_on_for_the_functions_the_api_stage_and_every_state_machine(stage, template):
    assert CONFIG["stages"][stage]["xray"] is True  # chalice package: Tracing: Active on every function
    assert template["Resources"]["RestAPI"]["Properties"]["TracingEnabled"] is True
    for sm in statemachines.discover():
        assert template["Resources"][sm.logical_id]["Properties"]["TracingConfiguration"] == {"Enabled": True}
        statements = template["Resources"][sm.role_logical_id]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        xray = [s for s in statements if s["Sid"] == "XRayTraces"]
        assert xray == [{"Sid": "XRayTraces", "Effect": "Allow", "Action": build.XRAY_STATE_MACHINE_ACTIONS, "Resource": "*"}]


def test_every_function_may_write_traces_and_nothing_more_of_xray(stage):
    for fn in policies.ACCESS:
        doc = json.loads(policies.policy_path(stage, fn).read_text())
        actions = {a for s in doc["Statement"] for a in s["Action"] if a.startswith("xray:")}
        assert actions == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}, fn
