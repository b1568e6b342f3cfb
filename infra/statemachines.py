"""Step Functions definitions: ``infra/<name>.asl.json``, one state machine each.

Placeholders in a definition are filled at deploy time by CloudFormation
(``DefinitionSubstitutions``, see ``infra/build.py``) and locally by the sandbox
(``sandbox/aws_local.py``). Two kinds exist:

- ``${<FunctionLogicalId>Arn}``: a Chalice ``@app.lambda_function``; the logical id is
  Chalice's CamelCase of the function name (``release_escrow`` -> ``ReleaseEscrow``,
  so ``${ReleaseEscrowArn}``). Used as ``Parameters.FunctionName`` of
  ``arn:aws:states:::lambda:invoke[.waitForTaskToken]`` tasks.
- ``${<TableLogicalId>}``: a table's physical name (``${AppTable}`` -> ``mizani-dev-app``),
  for direct DynamoDB service integrations.
- ``${<BucketLogicalId>}``: a bucket's physical name (``${StatementsBucket}`` ->
  ``mizani-dev-statements``), for a Distributed Map's ``ItemReader``.

Distributed Map states: the role may ``s3:GetObject`` in the bucket its ``ItemReader``
names, and start (``states:StartExecution``), describe and stop the child executions of
its own state machine, as AWS requires for a Distributed Map.

Naming: ``escrow.asl.json`` -> logical id ``EscrowStateMachine``, physical name
``mizani-<stage>-escrow`` (fixed, so policies can name it), and the API Lambda gets its
ARN in ``MIZANI_STATE_MACHINE_ARN`` (other machines: ``MIZANI_<NAME>_STATE_MACHINE_ARN``).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from infra.tables import load_base_template, table_defs

INFRA_DIR = Path(__file__).resolve().parent
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
ASL_SUFFIX = ".asl.json"
LAMBDA_INVOKE_RESOURCES = {
    "arn:aws:states:::lambda:invoke",
    "arn:aws:states:::lambda:invoke.waitForTaskToken",
}
#: optimised DynamoDB integrations -> the IAM action each needs
DYNAMODB_OPTIMISED = {
    "arn:aws:states:::dynamodb:getItem": ["dynamodb:GetItem"],
    "arn:aws:states:::dynamodb:putItem": ["dynamodb:PutItem"],
    "arn:aws:states:::dynamodb:updateItem": ["dynamodb:UpdateItem"],
    "arn:aws:states:::dynamodb:deleteItem": ["dynamodb:DeleteItem"],
}
AWS_SDK_DYNAMODB = "arn:aws:states:::aws-sdk:dynamodb:"
#: Distributed Map ``ItemReader`` resources -> the IAM action each needs on the bucket's objects
ITEM_READERS = {"arn:aws:states:::s3:getObject": "s3:GetObject"}
BUCKET_NAME_METADATA = "Mizani::BucketName"
#: TransactItems member -> IAM action (TransactWriteItems is authorised per item)
TRANSACT_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}


class UnsupportedTask(ValueError):
    """A Task resource whose IAM the build cannot derive: extend ``infra/statemachines.py``."""


def to_cfn_resource_name(name: str) -> str:
    """Chalice's own CamelCase rule for logical ids (``release_escrow`` -> ``ReleaseEscrow``)."""
    from chalice.utils import to_cfn_resource_name as chalice_rule

    return chalice_rule(name)


def env_var_for(name: str) -> str:
    """Environment variable carrying the ARN of state machine ``name``."""
    if name == "escrow":
        return "MIZANI_STATE_MACHINE_ARN"
    return f"MIZANI_{re.sub(r'[^A-Za-z0-9]+', '_', name).upper()}_STATE_MACHINE_ARN"


def bucket_logical_ids(template: dict | None = None) -> dict[str, str]:
    """``{logical id: short name}`` of every S3 bucket with ``Metadata.Mizani::BucketName``."""
    template = load_base_template() if template is None else template
    return {
        logical_id: resource["Metadata"][BUCKET_NAME_METADATA]
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == "AWS::S3::Bucket" and (resource.get("Metadata") or {}).get(BUCKET_NAME_METADATA)
    }


@dataclass
class TaskGrant:
    """What the states need: functions to invoke, DynamoDB actions on tables, S3 object actions
    on buckets, and (``distributed_map``) running the state machine's own child executions."""

    functions: set[str] = field(default_factory=set)  # function logical ids
    table_actions: dict[str, set[str]] = field(default_factory=dict)  # table logical id -> actions
    bucket_actions: dict[str, set[str]] = field(default_factory=dict)  # bucket logical id -> object actions
    distributed_map: bool = False


@dataclass(frozen=True)
class StateMachineDef:
    """One ``infra/<name>.asl.json`` file."""

    name: str
    path: Path
    definition: dict

    @property
    def logical_id(self) -> str:
        return to_cfn_resource_name(self.name) + "StateMachine"

    @property
    def role_logical_id(self) -> str:
        return self.logical_id + "Role"

    @property
    def env_var(self) -> str:
        return env_var_for(self.name)

    def physical_name(self, prefix: str) -> str:
        return f"{prefix}-{self.name}"

    @property
    def placeholders(self) -> set[str]:
        return set(PLACEHOLDER.findall(json.dumps(self.definition)))

    def function_logical_ids(self) -> set[str]:
        """Logical ids of every function referenced by ``${XxxArn}``."""
        return {p[: -len("Arn")] for p in self.placeholders if p.endswith("Arn") and len(p) > 3}

    def table_logical_ids(self) -> set[str]:
        tables = {t.logical_id for t in table_defs().values()}
        return {p for p in self.placeholders if p in tables}

    def bucket_logical_ids(self) -> set[str]:
        return self.placeholders & set(bucket_logical_ids())

    def check_placeholders(self) -> None:
        unknown = (
            self.placeholders
            - {f + "Arn" for f in self.function_logical_ids()}
            - self.table_logical_ids()
            - self.bucket_logical_ids()
        )
        if unknown:
            raise ValueError(
                f"{self.path.name}: unknown placeholders {sorted(unknown)}; use ${{<FunctionLogicalId>Arn}}, "
                "${<TableLogicalId>} (e.g. ${AppTable}) or ${<BucketLogicalId>} (e.g. ${StatementsBucket})"
            )

    def grants(self) -> TaskGrant:
        """Everything the state machine's role must allow, derived from its Task states."""
        grant = TaskGrant()
        for state_name, state in iter_states(self.definition):
            if state.get("Type") == "Task":
                _grant_task(self.path.name, state_name, state, grant)
            elif state.get("Type") == "Map":
                _grant_map(self.path.name, state_name, state, grant)
        return grant

    def substituted(self, values: dict[str, str]) -> dict:
        """The definition with ``${key}`` replaced by ``values[key]`` (for the sandbox)."""
        missing = self.placeholders - set(values)
        if missing:
            raise KeyError(f"{self.path.name}: no value for placeholders {sorted(missing)}")
        return _replace_strings(self.definition, lambda s: PLACEHOLDER.sub(lambda m: values[m.group(1)], s))


def discover(infra_dir: Path | str = INFRA_DIR) -> list[StateMachineDef]:
    """Every ``*.asl.json`` under ``infra_dir``, sorted by name."""
    found = []
    for path in sorted(Path(infra_dir).glob("*" + ASL_SUFFIX)):
        with open(path, encoding="utf-8") as fh:
            definition = json.load(fh)
        found.append(StateMachineDef(name=path.name[: -len(ASL_SUFFIX)], path=path, definition=definition))
    return found


def iter_states(definition: dict):
    """``(name, state)`` for every state, recursing into Parallel branches and Map processors."""
    for name, state in (definition.get("States") or {}).items():
        yield name, state
        for branch in state.get("Branches", []) or []:
            yield from iter_states(branch)
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                yield from iter_states(state[key])


def _placeholders_in(value) -> set[str]:
    return set(PLACEHOLDER.findall(json.dumps(value)))


def _grant_task(file_name: str, state_name: str, state: dict, grant: TaskGrant) -> None:
    resource = state.get("Resource", "")
    params = state.get("Parameters") or state.get("Arguments") or {}
    where = f"{file_name}: state {state_name!r}"
    if resource in LAMBDA_INVOKE_RESOURCES:
        fn = params.get("FunctionName", "")
        match = PLACEHOLDER.fullmatch(fn) if isinstance(fn, str) else None
        if not match or not match.group(1).endswith("Arn"):
            raise UnsupportedTask(f"{where}: Parameters.FunctionName must be a ${{<Function>Arn}} placeholder, got {fn!r}")
        grant.functions.add(match.group(1)[: -len("Arn")])
        return
    direct = PLACEHOLDER.fullmatch(resource)
    if direct and direct.group(1).endswith("Arn"):  # "Resource": "${ReleaseEscrowArn}"
        grant.functions.add(direct.group(1)[: -len("Arn")])
        return
    tables = {t.logical_id for t in table_defs().values()}
    if resource in DYNAMODB_OPTIMISED or resource.startswith(AWS_SDK_DYNAMODB):
        used = _placeholders_in(params) & tables
        if not used:
            raise UnsupportedTask(f"{where}: DynamoDB task must name its table as ${{<TableLogicalId>}}")
        if resource in DYNAMODB_OPTIMISED:
            actions = set(DYNAMODB_OPTIMISED[resource])
        else:
            api = resource[len(AWS_SDK_DYNAMODB):].split(".")[0]
            if api.lower() in ("transactwriteitems", "transactgetitems"):
                actions = {
                    TRANSACT_ITEM_ACTIONS[k]
                    for item in params.get("TransactItems", [])
                    for k in item
                    if k in TRANSACT_ITEM_ACTIONS
                }
                if not actions:
                    raise UnsupportedTask(f"{where}: cannot see the TransactItems' kinds")
            else:
                actions = {"dynamodb:" + api[0].upper() + api[1:]}
        for table in used:
            grant.table_actions.setdefault(table, set()).update(actions)
        return
    raise UnsupportedTask(f"{where}: no IAM rule for Task resource {resource!r}; extend infra/statemachines.py")


def _grant_map(file_name: str, state_name: str, state: dict, grant: TaskGrant) -> None:
    where = f"{file_name}: state {state_name!r}"
    processor = state.get("ItemProcessor") or {}
    if (processor.get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED":
        grant.distributed_map = True
    if "ResultWriter" in state:
        raise UnsupportedTask(f"{where}: no IAM rule for ResultWriter; extend infra/statemachines.py")
    reader = state.get("ItemReader")
    if reader is None:
        return
    resource = reader.get("Resource", "")
    action = ITEM_READERS.get(resource)
    if action is None:
        raise UnsupportedTask(f"{where}: no IAM rule for ItemReader resource {resource!r}; extend infra/statemachines.py")
    bucket = (reader.get("Parameters") or {}).get("Bucket", "")
    match = PLACEHOLDER.fullmatch(bucket) if isinstance(bucket, str) else None
    if not match or match.group(1) not in bucket_logical_ids():
        # a bucket taken from the input ("Bucket.$") could be any bucket: the role could not be scoped
        raise UnsupportedTask(f"{where}: ItemReader Parameters.Bucket must be a ${{<BucketLogicalId>}} placeholder")
    grant.bucket_actions.setdefault(match.group(1), set()).add(action)


def _replace_strings(value, fn):
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [_replace_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _replace_strings(v, fn) for k, v in value.items()}
    return value
