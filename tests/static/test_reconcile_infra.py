"""The reconcile state machine: a Distributed Map over S3 chunks, and the IAM it gets for that."""
import json
from pathlib import Path

import pytest

from infra import build, policies, statemachines

ROOT = Path(__file__).resolve().parents[2]
MACHINE = next(m for m in statemachines.discover() if m.name == "reconcile")


@pytest.fixture(scope="module")
def template():
    return build.build(stage="dev")


def _role_statements(template, sm_logical_id):
    role = template["Resources"][sm_logical_id + "Role"]
    return role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]


def test_the_map_runs_distributed_over_the_manifest_the_plan_writes():
    state = MACHINE.definition["States"]["ReconcileChunks"]
    assert state["Type"] == "Map"
    assert state["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert state["ItemReader"] == {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket": "${StatementsBucket}", "Key.$": "$.plan.manifest_key"},
    }
    assert state["ToleratedFailureCount"] == 0  # one failed chunk fails the reconciliation
    (task,) = state["ItemProcessor"]["States"].values()
    assert task["Parameters"]["FunctionName"] == "${ReconcileChunkArn}"
    assert MACHINE.function_logical_ids() == {"ReconcilePlan", "ReconcileChunk", "ReconcileFinish", "ReconcileFailed"}


def test_the_plan_step_reads_the_ledger_in_a_long_lambda_not_in_the_api():
    states = MACHINE.definition["States"]
    assert MACHINE.definition["StartAt"] == "Plan" and states["Plan"]["Next"] == "ReconcileChunks"
    assert states["Plan"]["Parameters"]["FunctionName"] == "${ReconcilePlanArn}"
    assert states["Plan"]["ResultPath"] == "$.plan"
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    for stage in ("dev", "prod"):
        fn = config["stages"][stage]["lambda_functions"]["reconcile_plan"]
        assert fn["lambda_timeout"] == 900  # the API's 30 s would not read a million ledger lines
    access = policies.ACCESS["reconcile_plan"]
    assert access["dynamodb"] == {"transfers/index/by_code_day": ["dynamodb:Query"]}


def test_every_failure_is_recorded_before_the_execution_fails():
    states = MACHINE.definition["States"]
    for name in ("Plan", "ReconcileChunks", "Finish"):
        assert states[name]["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "MarkFailed"}]
    assert states["MarkFailed"]["Parameters"]["FunctionName"] == "${ReconcileFailedArn}"
    assert states[states["MarkFailed"]["Next"]]["Type"] == "Fail"


def test_the_bucket_placeholder_becomes_a_reference_to_the_statements_bucket(template):
    props = template["Resources"][MACHINE.logical_id]["Properties"]
    assert props["DefinitionSubstitutions"]["StatementsBucket"] == {"Ref": "StatementsBucket"}


def test_the_role_reads_the_bucket_its_item_reader_names_and_runs_only_its_own_children(template):
    statements = {s["Sid"]: s for s in _role_statements(template, MACHINE.logical_id)}
    assert statements["StatementsBucketObjects"]["Action"] == ["s3:GetObject"]
    assert statements["StatementsBucketObjects"]["Resource"] == [{"Fn::Sub": "${StatementsBucket.Arn}/*"}]
    arn = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
    assert statements["StartMapRunChildren"]["Action"] == ["states:StartExecution"]
    assert statements["StartMapRunChildren"]["Resource"] == [{"Fn::Sub": f"{arn}:stateMachine:mizani-${{Stage}}-reconcile"}]
    assert statements["ManageMapRunChildren"]["Action"] == ["states:DescribeExecution", "states:StopExecution"]
    assert statements["ManageMapRunChildren"]["Resource"] == [{"Fn::Sub": f"{arn}:execution:mizani-${{Stage}}-reconcile/*"}]


def test_a_machine_without_a_distributed_map_gets_no_s3_or_states_access(template):
    escrow = next(m for m in statemachines.discover() if m.name == "escrow")
    actions = {a for s in _role_statements(template, escrow.logical_id) for a in s["Action"]}
    assert not {a for a in actions if a.startswith(("s3:", "states:"))}


def _map(reader=None, **extra):
    state = {
        "Type": "Map",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "P",
            "States": {"P": {"Type": "Pass", "End": True}},
        },
        "End": True,
        **extra,
    }
    if reader is not None:
        state["ItemReader"] = reader
    return {"StartAt": "M", "States": {"M": state}}


@pytest.mark.parametrize(
    "definition",
    [
        _map({"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
              "Parameters": {"Bucket.$": "$.bucket", "Key.$": "$.key"}}),
        _map({"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": "${StatementsBucket}"}}),
        _map(ResultWriter={"Resource": "arn:aws:states:::s3:putObject",
                           "Parameters": {"Bucket": "${StatementsBucket}", "Prefix": "x"}}),
    ],
    ids=["bucket-from-input", "unknown-reader", "result-writer"],
)
def test_a_map_whose_s3_access_the_build_cannot_scope_is_refused(tmp_path, definition):
    (tmp_path / "resources.base.json").write_text((ROOT / "infra" / "resources.base.json").read_text())
    (tmp_path / "m.asl.json").write_text(json.dumps(definition))
    with pytest.raises(statemachines.UnsupportedTask):
        build.build(infra_dir=tmp_path)


def test_the_api_may_start_the_reconcile_state_machine_and_the_chunk_functions_touch_only_the_bucket():
    for stage in policies.STAGES:
        api = json.loads(policies.policy_path(stage, "api_handler").read_text())
        starts = next(s for s in api["Statement"] if s["Sid"] == "StartWorkflow")
        assert f"arn:aws:states:*:*:stateMachine:mizani-{stage}-reconcile" in starts["Resource"]
        for fn in ("reconcile_chunk", "reconcile_finish", "reconcile_failed"):
            doc = json.loads(policies.policy_path(stage, fn).read_text())
            resources = {r for s in doc["Statement"] if s["Sid"] not in ("Logs", "XRayTraces") for r in s["Resource"]}
            assert resources <= {f"arn:aws:s3:::mizani-{stage}-statements/*", f"arn:aws:s3:::mizani-{stage}-statements"}, fn
