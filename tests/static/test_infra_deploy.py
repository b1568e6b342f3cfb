"""Deploy, checked: the packaged template deployed into moto's CloudFormation.

``chalice package`` with the merge template (``make package STAGE=dev``), then AWS's SAM translator
(``aws-sam-translator``) to plain CloudFormation, the two zips uploaded to an S3 bucket in moto,
and ``create_stack``. Then what a person would check after a deploy, read back from moto's services:

- tables: keys, attribute types, GSIs (keys, projection), stream, billing;
- state machines: name, role, the definition with every ``DefinitionSubstitutions`` value resolved
  against the deployed stack: each Task's function ARN is a function moto holds, running the handler
  the ASL means, each table name a table moto holds; the role may invoke exactly those ARNs;
- functions: handler, runtime, timeout/memory from ``.chalice/config.json``, role whose inline policy
  is exactly ``policies/dev/<fn>.json``, environment (the API's state machine ARNs resolved);
- schedules: each rule's expression is the app's and targets its function; the queue, the topic,
  the REST API by name.

What moto (5.2.5) cannot create, and how it is covered instead (``infra.sam.MOTO_CANNOT_CREATE`` /
``MOTO_DROPS``; a test fails if moto starts supporting one, so the list stays true):

- ``AWS::CloudWatch::Alarm`` (no CloudFormation model): every Ref / GetAtt in each alarm is resolved
  against the deployed stack, each dimension must name a resource moto created (the state machine,
  the function, the queue, the API by name), and the resolved alarm is created through CloudWatch's
  own ``PutMetricAlarm``;
- ``AWS::ApiGateway::Stage`` (no model) and ``AWS::ApiGateway::Deployment`` (moto does not import
  Chalice's Swagger 2.0 body into methods, so it refuses any deployment of the API: checked): the
  translated Stage is checked statically: throttle = the stage's ``api_throttling``, X-Ray on, the
  API Gateway stage name; the body's gateway responses are ours and every route integrates with the
  deployed API function's ARN;
- properties moto's CloudFormation drops (functions' ``TracingConfig``, ``DeadLetterConfig``,
  ``Layers``; state machines' ``DefinitionSubstitutions``, ``TracingConfiguration``; tables' TTL and
  point-in-time recovery): checked on the translated template, with references resolved against moto.

About 10-20 s once the layer is cached (the first ``chalice package`` downloads the wheels of
requirements.txt, ~30-60 s; without the package registry the test skips, like test_packaging.py).
"""
from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from infra import alarms, gateway, policies, sam, statemachines, tables

ROOT = Path(__file__).resolve().parents[2]
STAGE = "dev"
REGION = "us-east-1"
ARTIFACT_BUCKET = "mizani-deploy-check-artifacts"
STACK = f"mizani-{STAGE}"
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
NETWORK_SYMPTOMS = ("Could not find a version", "No matching distribution", "NewConnectionError",
                    "Max retries exceeded", "Temporary failure in name resolution", "Network is unreachable")

pytestmark = pytest.mark.packaging


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    work = tmp_path_factory.mktemp("deploy")
    try:
        return sam.package(STAGE, work)
    except sam.PackageError as error:
        if any(s in error.output for s in NETWORK_SYMPTOMS):
            pytest.skip("chalice package needs the package registry (wheels for requirements.txt) and it is unreachable")
        raise


@pytest.fixture(scope="module")
def translated(packaged):
    template, uploads = sam.with_s3_artifacts(json.loads(packaged.read_text()), ARTIFACT_BUCKET)
    assert set(uploads) == {"deployment.zip", "layer-deployment.zip"}
    return sam.translate(template), {packaged.parent / name: key for name, key in uploads.items()}


@dataclass
class Stack:
    """The deployed stack in moto: physical ids by logical id, and a resolver for references."""

    template: dict
    physical: dict
    clients: dict = field(default_factory=dict)

    def client(self, service):
        import boto3

        if service not in self.clients:
            self.clients[service] = boto3.client(service, region_name=REGION)
        return self.clients[service]

    def type_of(self, logical_id):
        return self.template["Resources"][logical_id]["Type"]

    def function_arn(self, logical_id):
        return self.client("lambda").get_function(FunctionName=self.physical[logical_id])["Configuration"]["FunctionArn"]

    def get_att(self, logical_id, attribute):
        kind = self.type_of(logical_id)
        if kind == "AWS::Lambda::Function" and attribute == "Arn":
            return self.function_arn(logical_id)
        if kind == "AWS::IAM::Role" and attribute == "Arn":
            return self.client("iam").get_role(RoleName=self.physical[logical_id])["Role"]["Arn"]
        if kind == "AWS::SQS::Queue":
            attrs = self.client("sqs").get_queue_attributes(QueueUrl=self.physical[logical_id], AttributeNames=["QueueArn"])
            return {"Arn": attrs["Attributes"]["QueueArn"], "QueueName": self.physical[logical_id].rsplit("/", 1)[1]}[attribute]
        if kind == "AWS::DynamoDB::Table":
            table = self.client("dynamodb").describe_table(TableName=self.physical[logical_id])["Table"]
            return {"Arn": table["TableArn"], "StreamArn": table.get("LatestStreamArn")}[attribute]
        if kind == "AWS::S3::Bucket" and attribute == "Arn":
            return f"arn:aws:s3:::{self.physical[logical_id]}"
        raise AssertionError(f"no resolver for GetAtt {logical_id}.{attribute} ({kind})")

    def ref(self, name):
        pseudo = {"AWS::Region": REGION, "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
                  "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": STACK}
        if name in pseudo:
            return pseudo[name]
        if name in self.template.get("Parameters", {}):
            return self.template["Parameters"][name].get("Default")
        assert name in self.physical, f"Ref {name}: no such deployed resource"
        if self.type_of(name) == "AWS::Lambda::LayerVersion" and not self.physical[name]:
            # moto's CloudFormation gives a layer version an empty physical id; find it by its generated name
            (layer,) = [l for l in self.client("lambda").list_layers()["Layers"] if f"-{name}-" in l["LayerName"]]
            return layer["LatestMatchingVersion"]["LayerVersionArn"]
        return self.physical[name]

    def resolve(self, value):
        """``value`` with Ref / Fn::GetAtt / Fn::Sub replaced by what moto created."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            return self.ref(value["Ref"])
        if set(value) == {"Fn::GetAtt"}:
            logical_id, attribute = value["Fn::GetAtt"]
            return self.get_att(logical_id, attribute)
        if set(value) == {"Fn::Sub"}:
            text, variables = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
            variables = {k: self.resolve(v) for k, v in variables.items()}

            def one(match):
                name = match.group(1)
                if name in variables:
                    return str(variables[name])
                if "." in name and "::" not in name:
                    return str(self.get_att(*name.split(".", 1)))
                return str(self.ref(name))

            return re.sub(r"\$\{([A-Za-z0-9_.:]+)\}", one, text)
        return {k: self.resolve(v) for k, v in value.items()}


def _deployable(template):
    """The translated template less what moto cannot create (checked statically below)."""
    resources = {k: v for k, v in template["Resources"].items() if v["Type"] not in sam.MOTO_CANNOT_CREATE}
    return {**template, "Resources": resources}


@pytest.fixture(scope="module")
def stack(translated):
    import boto3
    from moto import mock_aws

    template, uploads = translated
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}
    # moto's backends and its user config are process-global: a sandbox started earlier in this
    # session switched Step Functions to its interpreter backend, where CloudFormation's machines
    # are not found. This deploy reads them from the plain backend, whatever ran before.
    with pytest.MonkeyPatch.context() as mp, mock_aws(config={"stepfunctions": {"execute_state_machine": False}}):
        for name in list(os.environ):
            if name.startswith("AWS_ENDPOINT_URL") or name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
                mp.delenv(name)
        for name, value in env.items():
            mp.setenv(name, value)
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=ARTIFACT_BUCKET)
        for path, key in uploads.items():
            s3.upload_file(str(path), ARTIFACT_BUCKET, key)
        cfn = boto3.client("cloudformation", region_name=REGION)
        cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(_deployable(template)), Capabilities=["CAPABILITY_IAM"])
        status = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
        assert status["StackStatus"] == "CREATE_COMPLETE", status.get("StackStatusReason")
        summaries = cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
        assert {s["ResourceStatus"] for s in summaries} == {"CREATE_COMPLETE"}
        yield Stack(template=template, physical={s["LogicalResourceId"]: s["PhysicalResourceId"] for s in summaries})


def _document(doc):
    """An inline policy as moto returns it: moto's CloudFormation stores the template's dict as its
    Python repr (a moto quirk), the IAM API as JSON."""
    if isinstance(doc, dict):
        return doc
    try:
        return json.loads(doc)
    except ValueError:
        return ast.literal_eval(doc)


def _of_type(template, kind):
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _app_names():
    import app as mizani
    from sandbox.aws_local import app_function_names

    names = app_function_names(mizani.app) + ["api_handler"]
    return {("APIHandler" if n == "api_handler" else statemachines.to_cfn_resource_name(n)): n for n in names}


def _handler(name):
    """``app.<python function>`` of the Chalice function ``name``."""
    import app as mizani

    for fn in list(mizani.app.pure_lambda_functions) + list(mizani.app.event_sources):
        if fn.name == name:
            return fn.handler_string
    raise AssertionError(name)


def _stage_function_setting(fn, key):
    stage = CONFIG["stages"][STAGE]
    return (stage.get("lambda_functions", {}).get(fn, {}).get(key) or stage.get(key) or CONFIG.get(key))


# -- the deploy itself --------------------------------------------------------------------------------


def test_every_resource_moto_can_create_is_created(stack):
    expected = set(_deployable(stack.template)["Resources"])
    assert set(stack.physical) == expected
    counts = {}
    for logical_id in expected:
        counts[stack.type_of(logical_id)] = counts.get(stack.type_of(logical_id), 0) + 1
    assert counts["AWS::Lambda::Function"] == len(_app_names())
    assert counts["AWS::DynamoDB::Table"] == len(tables.table_defs())
    assert counts["AWS::StepFunctions::StateMachine"] == len(statemachines.discover())


def test_what_moto_cannot_create_is_really_beyond_it(stack):
    """If moto learns one of these, this fails: deploy it then, instead of checking it statically."""
    from moto.cloudformation.parsing import get_model_map

    left_out = {v["Type"] for v in stack.template["Resources"].values()} & set(sam.MOTO_CANNOT_CREATE)
    assert left_out == set(sam.MOTO_CANNOT_CREATE)
    assert not {"AWS::CloudWatch::Alarm", "AWS::ApiGateway::Stage"} & set(get_model_map())
    apigw = stack.client("apigateway")
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="doesn't contain any methods"):
        apigw.create_deployment(restApiId=stack.physical["RestAPI"], stageName="api")


# -- tables -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(tables.table_defs()))
def test_each_table_is_deployed_with_its_keys_indexes_and_stream(stack, name):
    table_def = tables.table_defs()[name]
    props = table_def.properties
    described = stack.client("dynamodb").describe_table(TableName=stack.physical[table_def.logical_id])["Table"]
    assert described["TableName"] == f"mizani-{STAGE}-{name}"
    assert described["KeySchema"] == props["KeySchema"]
    assert sorted(described["AttributeDefinitions"], key=str) == sorted(props["AttributeDefinitions"], key=str)
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    deployed_gsis = {g["IndexName"]: (g["KeySchema"], g["Projection"]) for g in described.get("GlobalSecondaryIndexes", [])}
    assert deployed_gsis == {g["IndexName"]: (g["KeySchema"], g["Projection"]) for g in props.get("GlobalSecondaryIndexes", [])}
    if "StreamSpecification" in props:
        assert described["StreamSpecification"] == {"StreamEnabled": True, **props["StreamSpecification"]}
    # dropped by moto's CloudFormation: as the translated template says it
    translated = stack.template["Resources"][table_def.logical_id]["Properties"]
    assert translated.get("TimeToLiveSpecification") == props.get("TimeToLiveSpecification")
    assert translated["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_the_app_table_expires_items_by_ttl(stack):
    assert stack.template["Resources"]["AppTable"]["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}


# -- state machines -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sm", statemachines.discover(), ids=lambda sm: sm.name)
def test_each_state_machine_runs_the_deployed_functions_on_the_deployed_tables(stack, sm):
    sfn, lam = stack.client("stepfunctions"), stack.client("lambda")
    described = sfn.describe_state_machine(stateMachineArn=stack.physical[sm.logical_id])
    assert described["name"] == f"mizani-{STAGE}-{sm.name}"
    assert described["roleArn"] == stack.get_att(sm.role_logical_id, "Arn")
    props = stack.template["Resources"][sm.logical_id]["Properties"]
    # moto keeps DefinitionString but drops DefinitionSubstitutions: resolve them against the stack
    values = {k: stack.resolve(v) for k, v in props["DefinitionSubstitutions"].items()}
    definition = json.loads(re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: values[m.group(1)], described["definition"]))
    assert "${" not in json.dumps(definition)
    names = _app_names()
    invoked = set()
    for state_name, state in statemachines.iter_states(definition):
        params = state.get("Parameters") or {}
        original = dict(statemachines.iter_states(sm.definition))[state_name]
        if state.get("Resource", "").startswith("arn:aws:states:::lambda:invoke"):
            arn = params["FunctionName"]
            fn = lam.get_function(FunctionName=arn)["Configuration"]  # exists in moto
            logical_id = original["Parameters"]["FunctionName"][2:-len("Arn}")]
            assert logical_id in names, f"{state_name}: {logical_id} is no function of app.py"
            assert fn["FunctionArn"] == arn == stack.function_arn(logical_id), state_name
            assert fn["Handler"] == stack.template["Resources"][logical_id]["Properties"]["Handler"]
            invoked.add(arn)
        for key in ("TableName",):
            if key in params:
                stack.client("dynamodb").describe_table(TableName=params[key])  # exists in moto
    # the role may invoke exactly those functions (and their versions)
    role = stack.physical[sm.role_logical_id]
    iam = stack.client("iam")
    (policy_name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = _document(iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"])
    allowed = {r for s in document["Statement"] if s["Action"] == ["lambda:InvokeFunction"] for r in s["Resource"]}
    assert allowed == invoked | {a + ":*" for a in invoked}
    assert props["TracingConfiguration"] == {"Enabled": True}  # dropped by moto: as the template says


def test_the_api_function_is_handed_the_deployed_state_machines(stack):
    env = stack.client("lambda").get_function(FunctionName=stack.physical["APIHandler"])["Configuration"]["Environment"]["Variables"]
    for sm in statemachines.discover():
        arn = env[sm.env_var]
        assert arn == stack.physical[sm.logical_id]
        stack.client("stepfunctions").describe_state_machine(stateMachineArn=arn)


# -- functions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("logical_id,name", sorted(_app_names().items()))
def test_each_function_is_deployed_with_its_role_policy_and_environment(stack, logical_id, name):
    lam, iam = stack.client("lambda"), stack.client("iam")
    fn = lam.get_function(FunctionName=stack.physical[logical_id])["Configuration"]
    assert fn["Handler"] == ("app.app" if name == "api_handler" else _handler(name))
    assert fn["Runtime"] == "python3.11"
    assert fn["Timeout"] == _stage_function_setting(name, "lambda_timeout")
    assert fn["MemorySize"] == _stage_function_setting(name, "lambda_memory_size")
    # the role: exactly the generated least-privilege policy
    role_id = stack.template["Resources"][logical_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    assert fn["Role"] == stack.get_att(role_id, "Arn")
    role = stack.physical[role_id]
    documents = []
    for policy_name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        documents.append(_document(iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]))
    assert documents == [json.loads(policies.policy_path(STAGE, name).read_text())]
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    # the environment: the stage's variables, and the API's state machine ARNs
    expected = dict(CONFIG["stages"][STAGE]["environment_variables"])
    if name == "api_handler":
        expected.update({sm.env_var: stack.physical[sm.logical_id] for sm in statemachines.discover()})
    assert fn["Environment"]["Variables"] == expected
    # dropped by moto's CloudFormation: checked on the translated function, references resolved
    props = stack.template["Resources"][logical_id]["Properties"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    (layer,) = props["Layers"]
    layer_arn = stack.resolve(layer)
    versions = lam.list_layer_versions(LayerName=layer_arn.split(":")[6])["LayerVersions"]
    assert layer_arn in {v["LayerVersionArn"] for v in versions}
    queue_arn = stack.get_att(alarms.DLQ_LOGICAL_ID, "Arn")
    if policies.ACCESS[name].get("dlq"):
        assert stack.resolve(props["DeadLetterConfig"]) == {"TargetArn": queue_arn}
    else:
        assert "DeadLetterConfig" not in props


def test_each_schedule_invokes_its_function(stack):
    import app as mizani

    events, lam = stack.client("events"), stack.client("lambda")
    schedules = {e.name: e.schedule_expression for e in mizani.app.event_sources if hasattr(e, "schedule_expression")}
    seen = {}
    for logical_id in _of_type(stack.template, "AWS::Events::Rule"):
        rule = events.describe_rule(Name=stack.physical[logical_id])
        (target,) = events.list_targets_by_rule(Rule=stack.physical[logical_id])["Targets"]
        fn = lam.get_function(FunctionName=target["Arn"])["Configuration"]
        seen[fn["Handler"].split(".", 1)[1]] = rule["ScheduleExpression"]
        assert json.loads(lam.get_policy(FunctionName=target["Arn"])["Policy"])["Statement"], "no invoke permission"
    assert seen == {name: str(expr if isinstance(expr, str) else expr.to_string()) for name, expr in schedules.items()}


# -- the API: its Stage and Deployment are beyond moto ----------------------------------------------


def test_the_api_is_named_for_the_stage_and_its_stage_throttles_and_traces(stack):
    apis = stack.client("apigateway").get_rest_apis()["items"]
    assert [a["name"] for a in apis if a["id"] == stack.physical["RestAPI"]] == [f"mizani-{STAGE}"]
    (stage,) = _of_type(stack.template, "AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == CONFIG["stages"][STAGE]["api_gateway_stage"]
    assert props["TracingEnabled"] is True
    throttle = CONFIG["stages"][STAGE]["api_throttling"]
    assert stack.resolve(props["MethodSettings"]) == [{"HttpMethod": "*", "ResourcePath": "/*",
                                                       "ThrottlingRateLimit": throttle["rate_limit"],
                                                       "ThrottlingBurstLimit": throttle["burst_limit"]}]
    deployment = stack.template["Resources"][props["DeploymentId"]["Ref"]]
    assert deployment["Properties"]["RestApiId"] == {"Ref": "RestAPI"} == props["RestApiId"]


def test_the_deployed_api_body_carries_our_gateway_responses_and_routes_to_the_api_function(stack):
    body = stack.template["Resources"]["RestAPI"]["Properties"]["Body"]
    responses = body["x-amazon-apigateway-gateway-responses"]
    expected = gateway.gateway_responses()
    assert set(responses) == set(expected)
    for kind, response in responses.items():
        assert response["responseTemplates"] == expected[kind]["ResponseTemplates"], kind
        headers = {k.removeprefix("gatewayresponse.header."): v for k, v in response["responseParameters"].items()}
        assert headers == expected[kind]["ResponseParameters"]["Headers"], kind
        assert response.get("statusCode") == expected[kind].get("StatusCode"), kind
    api_arn = stack.function_arn("APIHandler")
    uris = {stack.resolve(op["x-amazon-apigateway-integration"]["uri"])
            for path in body["paths"].values() for op in path.values() if isinstance(op, dict) and "x-amazon-apigateway-integration" in op}
    assert uris == {f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{api_arn}/invocations"}


# -- alarms: beyond moto's CloudFormation, created through CloudWatch's API ---------------------------


def test_every_alarm_names_deployed_resources_and_cloudwatch_accepts_it(stack):
    cloudwatch = stack.client("cloudwatch")
    apis = {a["name"] for a in stack.client("apigateway").get_rest_apis()["items"]}
    created = set()
    for logical_id, alarm in _of_type(stack.template, "AWS::CloudWatch::Alarm").items():
        props = stack.resolve(alarm["Properties"])
        for topic in props["AlarmActions"] + props["OKActions"]:
            stack.client("sns").get_topic_attributes(TopicArn=topic)  # exists in moto
        dimensions = list(props.get("Dimensions", []))
        for metric in props.get("Metrics", []):
            dimensions += metric.get("MetricStat", {}).get("Metric", {}).get("Dimensions", [])
        checks = {  # each raises (or fails) unless the dimension names a resource moto created
            "StateMachineArn": lambda v: stack.client("stepfunctions").describe_state_machine(stateMachineArn=v),
            "FunctionName": lambda v: stack.client("lambda").get_function(FunctionName=v),
            "QueueName": lambda v: stack.client("sqs").get_queue_url(QueueName=v),
            "ApiName": lambda v: v in apis or pytest.fail(f"{logical_id}: no API named {v}"),
            "Stage": lambda v: v == CONFIG["stages"][STAGE]["api_gateway_stage"] or pytest.fail(f"{logical_id}: {v}"),
        }
        for dim in dimensions:
            assert dim["Name"] in checks, f"{logical_id}: no check for dimension {dim['Name']}"
            checks[dim["Name"]](dim["Value"])
        assert all(isinstance(d["Value"], str) for d in dimensions), logical_id
        cloudwatch.put_metric_alarm(**props)
        created.add(props["AlarmName"])
    described = {a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert described == created and len(created) == 4 + len(statemachines.discover())


def test_the_dead_letter_queue_and_the_alarm_topic_exist(stack):
    assert stack.physical[alarms.DLQ_LOGICAL_ID].endswith(f"/mizani-{STAGE}-dlq")
    attrs = stack.client("sqs").get_queue_attributes(QueueUrl=stack.physical[alarms.DLQ_LOGICAL_ID], AttributeNames=["All"])
    assert attrs["Attributes"]["MessageRetentionPeriod"] == str(14 * 24 * 3600)
    assert stack.physical[alarms.TOPIC_LOGICAL_ID].endswith(f":mizani-{STAGE}-alarms")


# -- what a cold start loads ------------------------------------------------------------------------

COLD_START = r"""
import importlib._bootstrap_external as ext, json, sys
task, layer = sys.argv[1], sys.argv[2]
sys.path[:0] = [task, layer + "/python", layer + f"/python/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages"]
compiled = []
original = ext.SourceLoader.source_to_code
def source_to_code(self, data, path, *, _optimize=-1):
    compiled.append(path)  # a module without usable bytecode: compiled at every cold start
    return original(self, data, path, _optimize=_optimize)
ext.SourceLoader.source_to_code = source_to_code
import app
print(json.dumps({"compiled": compiled, "app": app.__file__, "pydantic": sys.modules["pydantic"].__file__}))
"""


def test_a_cold_start_from_the_packaged_zips_compiles_no_module(packaged, tmp_path):
    """Lambda's code directories are read-only: a module shipped without its pyc is compiled on every
    cold start. ``infra.bytecode`` ships one beside each source; importing ``app`` as Lambda would
    (function zip, then the layer; no site-packages of ours) compiles nothing, ours or a dependency's."""
    import subprocess
    import sys
    import zipfile

    task, layer = tmp_path / "task", tmp_path / "opt"
    zips = {p.name: p for p in packaged.parent.glob("*.zip")}
    assert set(zips) == {"deployment.zip", "layer-deployment.zip"}
    zipfile.ZipFile(zips["deployment.zip"]).extractall(task)
    zipfile.ZipFile(zips["layer-deployment.zip"]).extractall(layer)
    env = {"PATH": os.environ.get("PATH", ""), "MIZANI_STAGE": "local", "AWS_DEFAULT_REGION": REGION,
           "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([sys.executable, "-S", "-c", COLD_START, str(task), str(layer)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["app"].startswith(str(task)) and seen["pydantic"].startswith(str(layer))  # imported from the package
    assert [p for p in seen["compiled"] if p.startswith(str(tmp_path))] == []
