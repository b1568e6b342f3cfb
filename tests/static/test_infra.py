"""The merge template: tables defined once, state machines wired to the app's functions."""
import json
import re
from pathlib import Path

import pytest

from infra import build, statemachines, tables

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_TABLES = {
    "accounts": ("AccountsTable", [("account_id", "HASH")]),
    "transfers": ("TransfersTable", [("transfer_id", "HASH")]),
    "entries": ("EntriesTable", [("account_id", "HASH"), ("seq", "RANGE")]),
    "app": ("AppTable", [("pk", "HASH"), ("sk", "RANGE")]),
}


@pytest.fixture(scope="module")
def template():
    return build.build(stage="dev")


def _keys(schema):
    return [(k["AttributeName"], k["KeyType"]) for k in schema]


def test_the_four_tables_have_explicit_names_and_their_keys():
    defs = tables.table_defs()
    assert {n: (d.logical_id, _keys(d.properties["KeySchema"])) for n, d in defs.items()} == EXPECTED_TABLES


@pytest.mark.parametrize("name", sorted(EXPECTED_TABLES))
def test_every_table_is_on_demand_encrypted_recoverable_and_named_by_stage(name):
    props = tables.table_defs()[name].properties
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["TableName"] == {"Fn::Sub": f"mizani-${{Stage}}-{name}"}


def test_the_indexes_and_the_stream():
    defs = tables.table_defs()
    pending = defs["transfers"].properties["GlobalSecondaryIndexes"]
    assert [(g["IndexName"], _keys(g["KeySchema"]), g["Projection"]) for g in pending] == [
        ("open_pending", [("pending_open", "HASH"), ("expires_at", "RANGE")], {"ProjectionType": "ALL"}),
        ("by_code_day", [("code_day", "HASH"), ("transfer_id", "RANGE")], {"ProjectionType": "ALL"}),
        ("by_seal_day", [("seal_day", "HASH"), ("transfer_id", "RANGE")], {"ProjectionType": "ALL"}),
    ]
    gsi1 = defs["app"].properties["GlobalSecondaryIndexes"]
    assert [(g["IndexName"], _keys(g["KeySchema"]), g["Projection"]) for g in gsi1] == [
        ("gsi1", [("gsi1pk", "HASH"), ("gsi1sk", "RANGE")], {"ProjectionType": "ALL"})
    ]
    assert defs["app"].properties["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    types = {a["AttributeName"]: a["AttributeType"] for a in defs["transfers"].properties["AttributeDefinitions"]}
    assert types == {"transfer_id": "S", "pending_open": "S", "expires_at": "N", "code_day": "S", "seal_day": "S"}


def test_every_bucket_is_named_by_stage_private_and_encrypted():
    buckets = {
        logical_id: resource
        for logical_id, resource in tables.load_base_template()["Resources"].items()
        if resource["Type"] == "AWS::S3::Bucket"
    }
    for logical_id, resource in buckets.items():
        name = resource["Metadata"]["Mizani::BucketName"]
        props = resource["Properties"]
        assert props["BucketName"] == {"Fn::Sub": f"mizani-${{Stage}}-{name}"}, logical_id
        assert all(props["PublicAccessBlockConfiguration"].values()), logical_id
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"], logical_id


def test_the_merge_template_carries_the_base_tables_unchanged(template):
    base = tables.load_base_template()
    for logical_id, resource in base["Resources"].items():
        assert template["Resources"][logical_id] == resource
    assert tables.table_defs(template) == tables.table_defs()


def test_the_sandbox_creates_exactly_the_template_tables():
    """The sandbox/tests table kwargs are derived from the same resources, nothing hand-written."""
    for name, table in tables.table_defs().items():
        kwargs = tables.create_table_kwargs(table, "mizani-local")
        props = table.properties
        assert kwargs["TableName"] == f"mizani-local-{name}"
        assert kwargs["KeySchema"] == props["KeySchema"]
        assert kwargs["AttributeDefinitions"] == props["AttributeDefinitions"]
        assert kwargs["BillingMode"] == props["BillingMode"]
        assert [g["IndexName"] for g in kwargs.get("GlobalSecondaryIndexes", [])] == table.index_names
        assert ("StreamSpecification" in kwargs) == table.has_stream


def test_settings_name_tables_the_same_way():
    from chalicelib.settings import Settings

    for name in tables.table_defs():
        assert Settings(table_prefix="mizani-dev").table(name) == tables.physical_name("mizani-dev", name)


def test_nothing_else_creates_tables():
    """Tables come from infra/ only: no create_table in the app, the sandbox runner or the benches."""
    offenders = []
    for folder in ("chalicelib", "sandbox", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            if "create_table(" in path.read_text(encoding="utf-8"):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_the_stage_parameter_defaults_to_the_stage_built_for():
    assert build.build(stage="prod")["Parameters"]["Stage"]["Default"] == "prod"
    with pytest.raises(ValueError):
        build.build(stage="local")


# -- state machines -------------------------------------------------------------------------------

MACHINES = statemachines.discover()


def test_placeholders_are_named_with_chalices_own_logical_ids():
    assert statemachines.to_cfn_resource_name("release_escrow") == "ReleaseEscrow"
    assert statemachines.to_cfn_resource_name("customs_wait") == "CustomsWait"
    assert statemachines.env_var_for("escrow") == "MIZANI_STATE_MACHINE_ARN"


@pytest.mark.parametrize("sm", MACHINES, ids=[m.name for m in MACHINES])
def test_each_state_machine_is_wired_to_the_functions_it_names(template, sm):
    resource = template["Resources"][sm.logical_id]
    props = resource["Properties"]
    assert resource["Type"] == "AWS::StepFunctions::StateMachine"
    assert props["StateMachineName"] == {"Fn::Sub": f"mizani-${{Stage}}-{sm.name}"}
    assert json.loads(props["DefinitionString"]) == sm.definition
    placeholders = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", props["DefinitionString"]))
    assert placeholders == set(props.get("DefinitionSubstitutions", {}))
    for key, value in props.get("DefinitionSubstitutions", {}).items():
        if key.endswith("Arn"):
            assert value == {"Fn::GetAtt": [key[:-3], "Arn"]}


@pytest.mark.parametrize("sm", MACHINES, ids=[m.name for m in MACHINES])
def test_the_state_machine_role_may_invoke_exactly_its_functions(template, sm):
    role = template["Resources"][sm.role_logical_id]
    principal = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert principal == {"Service": "states.amazonaws.com"}
    statements = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    invoked = {
        r["Fn::GetAtt"][0]
        for s in statements
        if s["Action"] == ["lambda:InvokeFunction"]
        for r in s["Resource"]
        if "Fn::GetAtt" in r
    }
    assert invoked == sm.function_logical_ids()
    for statement in statements:
        if statement["Resource"] == "*":  # X-Ray's actions have no resource type
            assert statement["Action"] == build.XRAY_STATE_MACHINE_ACTIONS
        else:
            assert "*" not in statement["Resource"]


@pytest.mark.parametrize("sm", MACHINES, ids=[m.name for m in MACHINES])
def test_the_api_lambda_receives_the_state_machine_arn(template, sm):
    variables = template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert variables[sm.env_var] == {"Ref": sm.logical_id}


@pytest.mark.parametrize("sm", MACHINES, ids=[m.name for m in MACHINES])
def test_every_task_names_a_real_app_function(sm):
    """Every ${XxxArn} is the Chalice logical id of an @app.lambda_function (or event handler)."""
    if not (ROOT / "app.py").exists():
        pytest.skip("app.py does not exist yet")
    import app as mizani
    from sandbox.aws_local import app_function_names

    known = {statemachines.to_cfn_resource_name(n) for n in app_function_names(mizani.app)}
    missing = sm.function_logical_ids() - known
    assert not missing, f"infra/{sm.path.name} invokes {sorted(missing)}, which app.py does not define"


@pytest.mark.parametrize("sm", MACHINES, ids=[m.name for m in MACHINES])
def test_every_state_is_reachable_and_every_next_exists(sm):
    """A quick structural check (asl-validator does the full one when node is available)."""
    states = sm.definition["States"]
    assert sm.definition["StartAt"] in states
    targets = {sm.definition["StartAt"]}
    for state in states.values():
        targets |= {state.get("Next"), state.get("Default")} - {None}
        targets |= {c["Next"] for c in state.get("Choices", [])}
        targets |= {c["Next"] for c in state.get("Catch", [])}
    assert targets <= set(states), f"unknown targets {targets - set(states)}"
    assert set(states) <= targets, f"unreachable states {set(states) - targets}"


def test_an_unknown_placeholder_is_refused(tmp_path):
    (tmp_path / "resources.base.json").write_text((ROOT / "infra" / "resources.base.json").read_text())
    (tmp_path / "bad.asl.json").write_text(
        json.dumps(
            {
                "StartAt": "A",
                "States": {
                    "A": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {"FunctionName": "${Bogus}"},
                        "End": True,
                    }
                },
            }
        )
    )
    with pytest.raises(ValueError):
        build.build(infra_dir=tmp_path)


def test_an_integration_without_a_known_iam_rule_is_refused(tmp_path):
    (tmp_path / "resources.base.json").write_text((ROOT / "infra" / "resources.base.json").read_text())
    (tmp_path / "q.asl.json").write_text(
        json.dumps({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "End": True}}})
    )
    with pytest.raises(statemachines.UnsupportedTask):
        build.build(infra_dir=tmp_path)


def test_a_dynamodb_task_gets_exactly_its_action_on_its_table(tmp_path):
    (tmp_path / "resources.base.json").write_text((ROOT / "infra" / "resources.base.json").read_text())
    (tmp_path / "d.asl.json").write_text(
        json.dumps(
            {
                "StartAt": "A",
                "States": {
                    "A": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::dynamodb:putItem",
                        "Parameters": {"TableName": "${AppTable}", "Item": {"pk": {"S": "x"}, "sk": {"S": "y"}}},
                        "End": True,
                    }
                },
            }
        )
    )
    built = build.build(infra_dir=tmp_path)
    props = built["Resources"]["DStateMachine"]["Properties"]
    assert props["DefinitionSubstitutions"] == {"AppTable": {"Ref": "AppTable"}}
    statements = built["Resources"]["DStateMachineRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert [s for s in statements if s["Sid"] != "XRayTraces"] == [
        {"Sid": "AppTableAccess", "Effect": "Allow", "Action": ["dynamodb:PutItem"], "Resource": [{"Fn::GetAtt": ["AppTable", "Arn"]}]}
    ]
