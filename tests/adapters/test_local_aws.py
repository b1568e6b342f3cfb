"""The local AWS harness: tables from infra/ on moto, Lambda dispatched in-process to Chalice
handlers, Step Functions Retry/Catch/task tokens on the handlers' exception names."""
import json
import threading

import pytest
from chalice import Chalice
from chalice.test import Client

from infra import tables
from sandbox import aws_local

RETRY = [{"ErrorEquals": ["TransientError"], "IntervalSeconds": 1, "BackoffRate": 1.0, "MaxAttempts": 2}]


class TransientError(Exception):
    pass


class CustomsRejected(Exception):
    pass


def _task(fn, nxt=None, **extra):
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "${" + fn + "Arn}", "Payload.$": "$"},
        "ResultSelector": {"value.$": "$.Payload"},
        **extra,
    }
    state.update({"Next": nxt} if nxt else {"End": True})
    return state


@pytest.fixture
def world(aws_env, tmp_path):
    """A tiny Chalice app with three handlers and a state machine exercising them."""
    app = Chalice(app_name="harness")
    calls = {"flaky": 0}
    tokens = []

    @app.lambda_function(name="double_it")
    def double_it(event, context):
        return {"n": event["n"] * 2, "fn": context.function_name}

    @app.lambda_function(name="flaky_step")
    def flaky_step(event, context):
        calls["flaky"] += 1
        if calls["flaky"] < 2:
            raise TransientError("provider hiccup")
        if event.get("reject"):
            raise CustomsRejected("declaration refused")
        return {"ok": True}

    @app.lambda_function(name="await_token")
    def await_token(event, context):
        tokens.append(event["token"])
        return {}

    definition = {
        "StartAt": "Double",
        "States": {
            "Double": _task("DoubleIt", "Flaky", ResultPath="$.doubled"),
            "Flaky": _task(
                "FlakyStep",
                "Wait",
                ResultPath="$.flaky",
                Retry=RETRY,
                Catch=[{"ErrorEquals": ["CustomsRejected"], "ResultPath": "$.error", "Next": "Rejected"}],
            ),
            "Wait": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": "${AwaitTokenArn}", "Payload": {"token.$": "$$.Task.Token"}},
                "ResultPath": "$.answer",
                "TimeoutSeconds": 30,
                "End": True,
            },
            "Rejected": {"Type": "Pass", "End": True},
        },
    }
    (tmp_path / "harness.asl.json").write_text(json.dumps(definition))
    arns = aws_local.install_lambda_dispatch(app, aws_env.prefix, aws_env.endpoint_url, infra_dir=tmp_path)
    yield {"arn": arns["harness"], "calls": calls, "tokens": tokens, "sfn": aws_env.client("stepfunctions")}
    aws_local.uninstall_lambda_dispatch(aws_env.prefix)


def _answer_when_asked(world, output):
    def answer():
        for _ in range(400):
            if world["tokens"]:
                world["sfn"].send_task_success(taskToken=world["tokens"][0], output=json.dumps(output))
                return
            threading.Event().wait(0.05)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return thread


def test_the_tables_on_moto_are_the_template_tables(aws_env):
    ddb = aws_env.client("dynamodb")
    for name, table in tables.table_defs().items():
        described = ddb.describe_table(TableName=aws_env.table(name))["Table"]
        assert described["KeySchema"] == table.properties["KeySchema"]
        assert sorted(described["AttributeDefinitions"], key=str) == sorted(table.properties["AttributeDefinitions"], key=str)
        assert sorted(i["IndexName"] for i in described.get("GlobalSecondaryIndexes", [])) == sorted(table.index_names)
        assert ("LatestStreamArn" in described) == table.has_stream
    s3 = aws_env.client("s3")
    assert aws_env.buckets == [f"{aws_env.prefix}-statements"]
    for bucket in aws_env.buckets:
        s3.head_bucket(Bucket=bucket)


def test_a_workflow_runs_the_chalice_handlers_retries_transient_errors_and_waits_for_its_token(aws_env, world):
    sfn = world["sfn"]
    answering = _answer_when_asked(world, {"status": "cleared"})
    started = sfn.start_execution(stateMachineArn=world["arn"], name="order-1", input=json.dumps({"n": 21}))
    done = aws_env.wait_for_execution(started["executionArn"])
    answering.join(timeout=5)
    assert done["status"] == "SUCCEEDED"
    output = json.loads(done["output"])
    assert output["doubled"] == {"value": {"n": 42, "fn": f"{aws_env.prefix}-double_it"}}
    assert output["answer"] == {"status": "cleared"}
    assert world["calls"]["flaky"] == 2  # TransientError once, retried by the state machine


def test_a_handlers_exception_class_is_the_error_a_catch_matches(aws_env, world):
    started = world["sfn"].start_execution(
        stateMachineArn=world["arn"], name="order-2", input=json.dumps({"n": 1, "reject": True})
    )
    done = aws_env.wait_for_execution(started["executionArn"])
    assert done["status"] == "SUCCEEDED"
    error = json.loads(done["output"])["error"]
    assert error["Error"] == "CustomsRejected"
    assert json.loads(error["Cause"])["errorMessage"] == "declaration refused"


def test_a_direct_invoke_reports_a_function_error_with_its_type(aws_env, world):
    lam = aws_env.client("lambda")
    reply = lam.invoke(FunctionName=f"{aws_env.prefix}-flaky_step", Payload=b"{}")
    assert reply.get("FunctionError")
    assert json.loads(reply["Payload"].read())["errorType"] == "TransientError"
    ok = lam.invoke(FunctionName=f"{aws_env.prefix}-double_it", Payload=b'{"n": 4}')
    assert "FunctionError" not in ok and json.loads(ok["Payload"].read())["n"] == 8


def test_an_asl_task_the_app_does_not_define_is_refused_by_name(aws_env, tmp_path):
    app = Chalice(app_name="empty")
    (tmp_path / "x.asl.json").write_text(json.dumps({"StartAt": "A", "States": {"A": _task("ReleaseEscrow")}}))
    with pytest.raises(RuntimeError, match="ReleaseEscrowArn"):
        aws_local.install_lambda_dispatch(app, aws_env.prefix, aws_env.endpoint_url, infra_dir=tmp_path)
    aws_local.uninstall_lambda_dispatch(aws_env.prefix)


def test_the_chalice_test_client_keeps_the_tests_environment_and_fills_in_the_stage(aws_env):
    """chalice.test.Client(stage_name="local") would otherwise point the app at mizani-local on :8002."""
    import os
    from pathlib import Path

    app = Chalice(app_name="mizani")

    @app.route("/env")
    def env():
        return {k: os.environ.get(k) for k in ("MIZANI_TABLE_PREFIX", "AWS_ENDPOINT_URL", "MIZANI_PAYOUT_POLL_SECONDS")}

    with Client(app, stage_name="local", project_dir=str(Path(__file__).resolve().parents[2])) as client:
        seen = json.loads(client.http.get("/env").body)
    assert seen == {
        "MIZANI_TABLE_PREFIX": aws_env.prefix,
        "AWS_ENDPOINT_URL": aws_env.endpoint_url,
        "MIZANI_PAYOUT_POLL_SECONDS": "1",  # from the local stage: the test did not set it
    }


def test_install_workflow_creates_the_escrow_state_machine_for_the_real_app(aws_env):
    import os

    arns = aws_env.install_workflow()
    assert os.environ["MIZANI_STATE_MACHINE_ARN"] == arns["escrow"]
    described = aws_env.client("stepfunctions").describe_state_machine(stateMachineArn=arns["escrow"])
    assert f"{aws_env.prefix}-release_escrow" in described["definition"]


def test_a_dynamodb_stream_handler_receives_writes_to_its_table(aws_env, tmp_path):
    app = Chalice(app_name="streams")
    seen = []

    @app.on_dynamodb_record(stream_arn="arn:aws:dynamodb:us-east-1:123456789012:table/mizani-local-app/stream/x")
    def on_app_change(event):
        seen.extend(record.new_image["pk"]["S"] for record in event)

    aws_local.install_lambda_dispatch(app, aws_env.prefix, aws_env.endpoint_url, infra_dir=tmp_path)
    try:
        aws_env.client("dynamodb").put_item(TableName=aws_env.table("app"), Item={"pk": {"S": "outbox#1"}, "sk": {"S": "m"}})
        assert seen == ["outbox#1"]
    finally:
        aws_local.uninstall_lambda_dispatch(aws_env.prefix)


def test_a_cancelled_transaction_on_the_sandbox_leaves_every_item_as_it_was(aws_env):
    """The sandbox backs up only the items a transaction names (sandbox/moto_patches.py): a cancelled
    one must still change nothing: not the updated item, not the new one, not the deleted one."""
    from chalicelib import aws
    from chalicelib import settings as app_settings

    client = aws.dynamodb()
    table = app_settings.get().table("app")
    for pk, n in (("a", "1"), ("c", "3"), ("d", "4")):
        client.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": "doc"}, "n": {"N": n}})
    items = [
        {"Update": {"TableName": table, "Key": {"pk": {"S": "a"}, "sk": {"S": "doc"}},
                    "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"Put": {"TableName": table, "Item": {"pk": {"S": "b"}, "sk": {"S": "doc"}, "n": {"N": "2"}}}},
        {"Delete": {"TableName": table, "Key": {"pk": {"S": "c"}, "sk": {"S": "doc"}}}},
        {"ConditionCheck": {"TableName": table, "Key": {"pk": {"S": "d"}, "sk": {"S": "doc"}},
                            "ConditionExpression": "attribute_not_exists(pk)"}},
    ]
    with pytest.raises(client.exceptions.TransactionCanceledException):
        client.transact_write_items(TransactItems=items)
    get = lambda pk: client.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": "doc"}}).get("Item")  # noqa: E731
    assert get("a")["n"] == {"N": "1"} and get("b") is None and get("c")["n"] == {"N": "3"}
    client.transact_write_items(TransactItems=items[:3])  # without the failing check: all of it
    assert get("a")["n"] == {"N": "2"} and get("b")["n"] == {"N": "2"} and get("c") is None
