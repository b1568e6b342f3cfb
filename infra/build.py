"""Build the final merge template for ``chalice package --merge-template``.

    python -m infra.build build/resources.json [--stage dev]

Output = ``infra/resources.base.json`` (tables, ``Stage`` parameter) plus, for every
``infra/<name>.asl.json``:

- ``<Name>StateMachine`` (``AWS::StepFunctions::StateMachine``, STANDARD), named
  ``mizani-${Stage}-<name>``, whose ``DefinitionSubstitutions`` map ``${<Fn>Arn}`` to
  ``{"Fn::GetAtt": ["<Fn>", "Arn"]}`` (the Chalice-generated function) and
  ``${<Table>}`` to ``{"Ref": "<Table>"}``;
- ``<Name>StateMachineRole``: may invoke exactly those functions and perform exactly
  the DynamoDB actions its Task states use; for a Distributed Map, read the objects of the
  bucket its ItemReader names (``${<Bucket>}`` -> ``{"Ref": "<Bucket>"}``) and run its own
  child executions;
- the ARN handed to the API Lambda: ``Resources.APIHandler.Properties.Environment.Variables.
  MIZANI_STATE_MACHINE_ARN = {"Ref": "EscrowStateMachine"}`` (chalice deep-merges this
  into its own ``APIHandler``), and an output ``<Name>StateMachineArn``.

Operations (issue 16), each described in its module:

- ``infra/gateway.py``: deep-merged into Chalice's ``RestAPI``: stage throttling (parameters
  ``ApiThrottleRateLimit`` / ``ApiThrottleBurstLimit``, defaults from ``.chalice/config.json``
  ``stages.<stage>.api_throttling``), X-Ray on the stage, ``GatewayResponses`` in the app's error
  envelope, and the API's name ``mizani-${Stage}``;
- ``infra/alarms.py``: the alarms, their SNS topic, and the dead-letter queue that every scheduled
  function (``"dlq": True`` in ``infra/policies.py``) sends its failed events to;
- X-Ray on every state machine (``TracingConfiguration``; its role may write traces); the
  functions trace through Chalice's own ``"xray": true`` (``.chalice/config.json``).

``--stage`` sets the ``Stage`` parameter's default, so ``aws cloudformation deploy``
needs no override when the package was built for that stage.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from infra import alarms, gateway
from infra.policies import ACCESS
from infra.statemachines import INFRA_DIR, discover
from infra.tables import load_base_template

API_HANDLER_LOGICAL_ID = "APIHandler"
XRAY_STATE_MACHINE_ACTIONS = [
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
]


def _state_machine_role(sm, grants) -> dict:
    statements = []
    if grants.functions:
        arns = []
        for fn in sorted(grants.functions):
            arns.append({"Fn::GetAtt": [fn, "Arn"]})
            arns.append({"Fn::Sub": "${" + fn + ".Arn}:*"})  # versions / aliases of the same function
        statements.append({"Sid": "InvokeWorkflowTasks", "Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": arns})
    for table, actions in sorted(grants.table_actions.items()):
        statements.append(
            {
                "Sid": f"{table}Access",
                "Effect": "Allow",
                "Action": sorted(actions),
                "Resource": [{"Fn::GetAtt": [table, "Arn"]}],
            }
        )
    for bucket, actions in sorted(grants.bucket_actions.items()):
        statements.append(
            {
                "Sid": f"{bucket}Objects",
                "Effect": "Allow",
                "Action": sorted(actions),
                "Resource": [{"Fn::Sub": "${" + bucket + ".Arn}/*"}],
            }
        )
    if grants.distributed_map:
        # the name is fixed (mizani-<stage>-<name>): no reference to the state machine, so no cycle
        arn = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
        statements.append(
            {
                "Sid": "StartMapRunChildren",
                "Effect": "Allow",
                "Action": ["states:StartExecution"],
                "Resource": [{"Fn::Sub": f"{arn}:stateMachine:mizani-${{Stage}}-{sm.name}"}],
            }
        )
        statements.append(
            {
                "Sid": "ManageMapRunChildren",
                "Effect": "Allow",
                "Action": ["states:DescribeExecution", "states:StopExecution"],
                "Resource": [{"Fn::Sub": f"{arn}:execution:mizani-${{Stage}}-{sm.name}/*"}],
            }
        )
    # X-Ray (TracingConfiguration): the actions Step Functions needs, none scoped to a resource
    statements.append(
        {
            "Sid": "XRayTraces",
            "Effect": "Allow",
            "Action": XRAY_STATE_MACHINE_ACTIONS,
            "Resource": "*",
        }
    )
    role = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "states.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
        },
    }
    if statements:
        role["Properties"]["Policies"] = [
            {"PolicyName": f"{sm.name}-state-machine", "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}
        ]
    return role


def build(stage: str = "dev", infra_dir: Path | str = INFRA_DIR, chalice_config: dict | None = None) -> dict:
    """The merge template as a dict (``chalice_config``: default ``.chalice/config.json``)."""
    template = load_base_template(Path(infra_dir) / "resources.base.json")
    param = template["Parameters"]["Stage"]
    if stage not in param.get("AllowedValues", [stage]):
        raise ValueError(f"stage {stage!r} is not one of {param['AllowedValues']}")
    param["Default"] = stage
    config = gateway.load_chalice_config() if chalice_config is None else chalice_config
    template["Parameters"].update(gateway.parameters(stage, config))
    resources = template["Resources"]
    outputs = template.setdefault("Outputs", {})
    api_env = {}
    machines = discover(infra_dir)
    for sm in machines:
        sm.check_placeholders()
        grants = sm.grants()
        substitutions = {f + "Arn": {"Fn::GetAtt": [f, "Arn"]} for f in sorted(sm.function_logical_ids())}
        substitutions.update({t: {"Ref": t} for t in sorted(sm.table_logical_ids())})
        substitutions.update({b: {"Ref": b} for b in sorted(sm.bucket_logical_ids())})
        resources[sm.role_logical_id] = _state_machine_role(sm, grants)
        props = {
            "StateMachineName": {"Fn::Sub": "mizani-${Stage}-" + sm.name},
            "StateMachineType": "STANDARD",
            "DefinitionString": json.dumps(sm.definition, indent=2, sort_keys=False),
            "RoleArn": {"Fn::GetAtt": [sm.role_logical_id, "Arn"]},
            "TracingConfiguration": {"Enabled": True},
        }
        if substitutions:
            props["DefinitionSubstitutions"] = substitutions
        resources[sm.logical_id] = {"Type": "AWS::StepFunctions::StateMachine", "Properties": props}
        outputs[sm.logical_id + "Arn"] = {"Value": {"Ref": sm.logical_id}}
        api_env[sm.env_var] = {"Ref": sm.logical_id}
    if api_env:
        # Deep-merged by chalice into its APIHandler function (the merge file wins on conflicts).
        resources[API_HANDLER_LOGICAL_ID] = {"Properties": {"Environment": {"Variables": api_env}}}
    # Deep-merged into Chalice's RestAPI: name, throttling, X-Ray, gateway errors in our envelope.
    resources[gateway.REST_API_LOGICAL_ID] = {"Properties": gateway.rest_api_properties()}
    resources.update(alarms.resources(machines, gateway.api_name(), gateway.api_gateway_stage(stage, config)))
    for fn in alarms.scheduled_function_logical_ids(ACCESS):
        resources[fn] = {"Properties": alarms.function_dead_letter_queue()}
    outputs["AlarmTopicArn"] = {"Value": {"Ref": alarms.TOPIC_LOGICAL_ID}}
    outputs["DeadLetterQueueUrl"] = {"Value": {"Ref": alarms.DLQ_LOGICAL_ID}}
    return template


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.build", description=__doc__.splitlines()[0])
    parser.add_argument("out_path", help="where to write the merge template (JSON)")
    parser.add_argument("--stage", default="dev", help="default of the Stage parameter (dev|prod)")
    args = parser.parse_args(argv)
    template = build(stage=args.stage)
    out = Path(args.out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(template, indent=2) + "\n", encoding="utf-8")
    machines = [r for r, v in template["Resources"].items() if v.get("Type") == "AWS::StepFunctions::StateMachine"]
    print(f"wrote {out} (stage {args.stage}; state machines: {', '.join(machines) or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
