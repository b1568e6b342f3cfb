"""Local AWS: moto's server, the tables from ``infra/``, and Lambda dispatched in-process.

What this module does (the sandbox and the test harness share it):

- ``MotoServer``: moto's ``ThreadedMotoServer`` on 127.0.0.1 with Step Functions
  execution turned on (``POST /moto-api/config``) and ``MOTO_PORT`` set, because moto's
  Step Functions executor calls back into ``http://localhost:$MOTO_PORT``.
- ``create_tables(prefix)``: every table of ``infra/resources.base.json`` as
  ``<prefix>-<name>`` (``infra.tables`` converts the CloudFormation properties).
- ``install_lambda_dispatch(app, prefix)``: moto runs Lambda code in Docker (absent here).
  We replace ``moto.awslambda.models.LambdaFunction._invoke_lambda`` with a dispatcher
  that calls the Chalice app's ``@app.lambda_function`` (or event handler) in this
  process, register every function in moto's Lambda (so ARNs resolve), and create the
  state machines of ``infra/*.asl.json`` with ``${XxxArn}`` filled with those ARNs.

The dispatcher keeps moto's contract ``_invoke_lambda(self, event) -> (payload_json,
errored, logs)``: on an exception the payload is ``{"errorType": <exception class name>,
"errorMessage": ..., "stackTrace": [...]}`` and ``errored`` is true, so moto answers with
``X-Amz-Function-Error`` and Step Functions reports the class name as the error name
(``Retry``/``Catch`` on ``TransientError`` or ``CustomsRejected`` work as in AWS).
This relies on a private moto method: moto is pinned exactly in requirements-dev.txt,
``check_moto_contract()`` fails loudly when the method changes, and tests/static runs it.
"""
from __future__ import annotations

import functools
import inspect
import io
import json
import logging
import os
import threading
import traceback
import zipfile
from dataclasses import dataclass

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from infra import statemachines, tables

log = logging.getLogger("sandbox.aws")

LOCAL_ACCOUNT_ID = "123456789012"  # moto's default account
LOCAL_REGION = "us-east-1"
#: Fake credentials for moto only (clearly not secrets; they never leave 127.0.0.1).
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local-sandbox-dummy-not-a-secret",
    "AWS_SECRET_ACCESS_KEY": "local-sandbox-dummy-not-a-secret",
}
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}}
LAMBDA_ROLE_ARN = f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/mizani-local-lambda"
STATES_ROLE_ARN = f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/mizani-local-states"
LAMBDA_RUNTIME = "python3.11"

#: moto's private method we replace, and the parameters we rely on.
MOTO_INVOKE_ATTR = "_invoke_lambda"
MOTO_INVOKE_PARAMS = ["self", "event"]


# -- moto server -------------------------------------------------------------------------


class MotoServer:
    """moto's threaded server on 127.0.0.1 (``port=0``: a free port).

    ``start()`` sets ``MOTO_PORT`` in ``os.environ`` (the Step Functions executor needs it)
    and turns on Step Functions execution. moto's backends are process-global: two
    servers in one process serve the same in-memory AWS.
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1"):
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self._server = None
        self._previous_moto_port: str | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("moto server not started")
        return f"http://{self.host}:{self.port}"

    def start(self) -> "MotoServer":
        from moto.server import ThreadedMotoServer

        quiet_werkzeug()
        # moto's DynamoDB is not thread-safe under concurrent transactions: serialise it
        from sandbox.moto_patches import cheap_transaction_rollback, serialize_dynamodb

        serialize_dynamodb()
        cheap_transaction_rollback()  # a transaction's cost in its own size, not its tables'

        if self.requested_port:
            # ThreadedMotoServer binds inside its thread and would wait forever on a busy port
            _check_port_free(self.host, self.requested_port)
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.requested_port, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        self._previous_moto_port = os.environ.get("MOTO_PORT")
        os.environ["MOTO_PORT"] = str(self.port)
        enable_stepfunctions_execution(self.url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if os.environ.get("MOTO_PORT") == str(self.port):
            if self._previous_moto_port is None:
                os.environ.pop("MOTO_PORT", None)
            else:
                os.environ["MOTO_PORT"] = self._previous_moto_port

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _check_port_free(host: str, port: int) -> None:
    """Raise ``OSError(EADDRINUSE)`` now if ``host:port`` cannot be listened on."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug's server does
        probe.bind((host, port))


def quiet_werkzeug() -> None:
    """moto's and the simulators' request logs drown everything else: warnings and up only."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    quiet_moto()


#: moto's Step Functions interpreter warns on every parse of a Distributed Map with ToleratedFailureCount
#: (infra/reconcile.asl.json) and on every Lambda task that raises (a handler's error the state machine
#: catches on purpose, e.g. CustomsRejected; the sandbox's dispatcher already logs it by name).
MOTO_NOISE = {
    "moto.stepfunctions.parser.asl.parse.preprocessor":
        "ToleratedFailureCount declarations currently have no effect",
    "moto.stepfunctions.parser.asl.component.state.exec.execute_state":
        "State Task encountered an unhandled exception",
}


class _DropMessage(logging.Filter):
    """Drops the records whose message starts with ``prefix``; every other record passes."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def quiet_moto() -> None:
    """Silence moto's two known warnings in the sandbox (idempotent); its other warnings still show."""
    for name, prefix in MOTO_NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessage) and f.prefix == prefix for f in logger.filters):
            logger.addFilter(_DropMessage(prefix))


def enable_stepfunctions_execution(moto_url: str) -> None:
    """Turn on moto's Step Functions interpreter (there is no environment variable for it)."""
    reply = requests.post(f"{moto_url}/moto-api/config", json=MOTO_CONFIG, timeout=10)
    reply.raise_for_status()


def reset_moto(moto_url: str) -> None:
    """Forget every resource in moto (its backends are process-global)."""
    requests.post(f"{moto_url}/moto-api/reset", timeout=30).raise_for_status()


def client(service: str, endpoint_url: str | None = None, region: str | None = None):
    """A boto3 client for moto (endpoint from the argument or ``AWS_ENDPOINT_URL``), cached.

    Building a client costs ~0.1 s, so one per (service, endpoint, region) is kept.
    """
    endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint_url:
        raise RuntimeError("no endpoint: pass endpoint_url or set AWS_ENDPOINT_URL (refusing to talk to real AWS)")
    return _client(service, endpoint_url, region or os.environ.get("AWS_DEFAULT_REGION") or LOCAL_REGION)


@functools.lru_cache(maxsize=64)
def _client(service: str, endpoint_url: str, region: str):
    return boto3.session.Session().client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        # moto accepts any credentials: fixed dummies, never the developer's real ones
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"mode": "standard", "max_attempts": 2}, account_id_endpoint_mode="disabled"),
    )


def create_tables(prefix: str, endpoint_url: str | None = None) -> dict[str, str]:
    """Create every table of ``infra/resources.base.json`` as ``<prefix>-<name>``; ``{name: physical}``."""
    return tables.create_tables(client("dynamodb", endpoint_url), prefix)


def create_buckets(prefix: str, endpoint_url: str | None = None) -> list[str]:
    """Create the S3 buckets of ``infra/resources.base.json`` (``Mizani::BucketName``) as ``<prefix>-<name>``."""
    template = tables.load_base_template()
    s3 = client("s3", endpoint_url)
    names = []
    for resource in template["Resources"].values():
        name = (resource.get("Metadata") or {}).get("Mizani::BucketName")
        if resource["Type"] == "AWS::S3::Bucket" and name:
            bucket = f"{prefix}-{name}"
            try:
                s3.create_bucket(Bucket=bucket)
            except s3.exceptions.BucketAlreadyOwnedByYou:
                pass
            names.append(bucket)
    return names


def delete_tables(prefix: str, endpoint_url: str | None = None) -> None:
    tables.delete_tables(client("dynamodb", endpoint_url), prefix)


# -- in-process Lambda dispatch ------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    app: object  # the chalice.Chalice app
    name: str  # the handler's name in the app (``release_escrow``)


_registry: dict[str, _Target] = {}  # moto function name -> target
_registry_lock = threading.Lock()
_original_invoke = None


def check_moto_contract() -> None:
    """Fail loudly if moto's private ``LambdaFunction._invoke_lambda`` is gone or changed shape."""
    from moto.awslambda.models import LambdaFunction

    method = LambdaFunction.__dict__.get(MOTO_INVOKE_ATTR)
    if method is _dispatching_invoke:
        method = _original_invoke
    if method is None or not callable(method):
        raise RuntimeError(
            f"moto.awslambda.models.LambdaFunction.{MOTO_INVOKE_ATTR} no longer exists: the sandbox's in-process "
            "Lambda dispatch must be ported to this moto version (see sandbox/aws_local.py)"
        )
    params = list(inspect.signature(method).parameters)
    if params != MOTO_INVOKE_PARAMS:
        raise RuntimeError(
            f"moto.awslambda.models.LambdaFunction.{MOTO_INVOKE_ATTR} changed signature: {params} "
            f"(expected {MOTO_INVOKE_PARAMS}); port sandbox/aws_local.py to this moto version"
        )
    # the caller unpacks three values: (payload, errored, logs)
    import moto.awslambda.models as models

    if "res, errored, logs = self._invoke_lambda(" not in inspect.getsource(models.LambdaFunction.invoke):
        raise RuntimeError("moto's LambdaFunction.invoke no longer unpacks (payload, errored, logs) from _invoke_lambda")


def _normalise_event(event):
    if event is None:
        return {}
    if isinstance(event, bytes):
        event = event.decode("utf-8")
    if isinstance(event, str):
        try:
            return json.loads(event) if event else {}
        except json.JSONDecodeError:
            return event
    return event


def _error_payload(error_type: str, message: str, stack: list[str] | None = None) -> str:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": stack or []})


def _dispatching_invoke(self, event=None):
    """Replacement for ``LambdaFunction._invoke_lambda``: run the Chalice handler in-process."""
    target = _registry.get(self.function_name)
    if target is None:
        message = (
            f"function {self.function_name!r} is not a Chalice handler known to the sandbox "
            f"(registered: {sorted(_registry)})"
        )
        return _error_payload("Sandbox.UnknownFunction", message), True, message
    from chalice.local import LambdaContext

    handler = target.app.handler_map[target.name]
    context = LambdaContext(
        function_name=self.function_name,
        memory_size=int(self.memory_size or 128),
        max_runtime_ms=int(self.timeout or 3) * 1000,
    )
    context.invoked_function_arn = self.function_arn
    try:
        result = handler(_normalise_event(event), context)
    except Exception as error:  # the Lambda runtime's view: any exception is a function error
        stack = traceback.format_exception(type(error), error, error.__traceback__)
        log.warning("lambda %s raised %s: %s", target.name, type(error).__name__, error)
        return _error_payload(type(error).__name__, str(error), stack), True, "".join(stack)
    try:
        return json.dumps(result), False, ""
    except (TypeError, ValueError) as error:
        message = f"Unable to marshal response: {error}"
        return _error_payload("Runtime.MarshalError", message), True, message


def patch_moto_lambda() -> None:
    """Install the dispatcher on moto's ``LambdaFunction`` (idempotent)."""
    global _original_invoke
    from moto.awslambda.models import LambdaFunction

    with _registry_lock:
        if LambdaFunction.__dict__.get(MOTO_INVOKE_ATTR) is _dispatching_invoke:
            return
        check_moto_contract()
        _original_invoke = LambdaFunction.__dict__[MOTO_INVOKE_ATTR]
        setattr(LambdaFunction, MOTO_INVOKE_ATTR, _dispatching_invoke)


def unpatch_moto_lambda() -> None:
    """Put moto's own method back (only when nothing is registered any more)."""
    global _original_invoke
    from moto.awslambda.models import LambdaFunction

    with _registry_lock:
        if _registry or _original_invoke is None:
            return
        setattr(LambdaFunction, MOTO_INVOKE_ATTR, _original_invoke)
        _original_invoke = None


def app_function_names(app) -> list[str]:
    """Every non-HTTP handler of the Chalice app: ``@app.lambda_function`` and event handlers."""
    names = [f.name for f in app.pure_lambda_functions]
    names += [e.name for e in app.event_sources]
    return list(dict.fromkeys(names))


def _tiny_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "# dispatched in-process by sandbox/aws_local.py\n")
    return buf.getvalue()


def _ensure_role(endpoint_url: str | None, role_arn: str, service: str) -> None:
    """moto checks that a function's / state machine's role exists in IAM."""
    iam = client("iam", endpoint_url)
    name = role_arn.rsplit("/", 1)[1]
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }
    try:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    except iam.exceptions.EntityAlreadyExistsException:
        pass


def register_app_functions(app, prefix: str, endpoint_url: str | None = None) -> dict[str, str]:
    """Register every handler of ``app`` as moto Lambda ``<prefix>-<name>``; ``{name: ARN}``."""
    _ensure_role(endpoint_url, LAMBDA_ROLE_ARN, "lambda.amazonaws.com")
    lam = client("lambda", endpoint_url)
    code = _tiny_zip()
    arns: dict[str, str] = {}
    handler_strings = {f.name: f.handler_string for f in app.pure_lambda_functions}
    handler_strings.update({e.name: e.handler_string for e in app.event_sources})
    for name in app_function_names(app):
        function_name = f"{prefix}-{name}"
        with _registry_lock:
            _registry[function_name] = _Target(app=app, name=name)
        try:
            reply = lam.create_function(
                FunctionName=function_name,
                Runtime=LAMBDA_RUNTIME,
                Role=LAMBDA_ROLE_ARN,
                Handler=handler_strings[name],
                Code={"ZipFile": code},
                Timeout=900,
                MemorySize=512,
            )
            arns[name] = reply["FunctionArn"]
        except lam.exceptions.ResourceConflictException:
            arns[name] = lam.get_function(FunctionName=function_name)["Configuration"]["FunctionArn"]
    _map_dynamodb_streams(app, prefix, endpoint_url)
    return arns


def _map_dynamodb_streams(app, prefix: str, endpoint_url: str | None) -> None:
    """Connect ``@app.on_dynamodb_record`` handlers to the matching local table's stream.

    The handler's configured ``stream_arn`` names a table (``.../table/mizani-<stage>-app/stream/...``);
    the handler is mapped to this prefix's table with the same short name.
    """
    try:
        from chalice.app import DynamoDBEventConfig
    except ImportError:  # pragma: no cover
        return
    sources = [e for e in app.event_sources if isinstance(e, DynamoDBEventConfig)]
    if not sources:
        return
    ddb = client("dynamodb", endpoint_url)
    lam = client("lambda", endpoint_url)
    known = tables.table_defs()
    for source in sources:
        table_part = source.stream_arn.split(":table/", 1)[-1].split("/", 1)[0]
        short = next((n for n in known if table_part.endswith("-" + n) or table_part == n), None)
        if short is None:
            log.warning("on_dynamodb_record %s: no local table matches stream %s", source.name, source.stream_arn)
            continue
        stream_arn = ddb.describe_table(TableName=tables.physical_name(prefix, short))["Table"].get("LatestStreamArn")
        if not stream_arn:
            log.warning("on_dynamodb_record %s: table %s has no stream", source.name, short)
            continue
        lam.create_event_source_mapping(
            EventSourceArn=stream_arn,
            FunctionName=f"{prefix}-{source.name}",
            StartingPosition=source.starting_position or "LATEST",
            BatchSize=source.batch_size or 100,
        )


def create_state_machines(
    prefix: str, function_arns: dict[str, str], endpoint_url: str | None = None, infra_dir=None
) -> dict[str, str]:
    """Create ``<prefix>-<name>`` for every ``infra/<name>.asl.json``; ``{name: ARN}``.

    ``${<Fn>Arn}`` is filled with the moto ARN of the app function whose Chalice logical id is
    ``<Fn>``; ``${<Table>}`` with ``<prefix>-<table>``; ``${<Bucket>}`` with ``<prefix>-<bucket>``
    (``create_buckets``). A placeholder the app cannot satisfy raises ``RuntimeError`` (the same
    definition would not deploy either). A definition moto's parser refuses is skipped with a
    warning naming it, so one unsupported construct cannot stop the whole sandbox.
    """
    _ensure_role(endpoint_url, STATES_ROLE_ARN, "states.amazonaws.com")
    sfn = client("stepfunctions", endpoint_url)
    values = {statemachines.to_cfn_resource_name(name) + "Arn": arn for name, arn in function_arns.items()}
    values.update({t.logical_id: tables.physical_name(prefix, t.name) for t in tables.table_defs().values()})
    values.update({lid: f"{prefix}-{name}" for lid, name in statemachines.bucket_logical_ids().items()})
    arns: dict[str, str] = {}
    for sm in statemachines.discover(infra_dir or statemachines.INFRA_DIR):
        sm.check_placeholders()
        missing = sorted(p for p in sm.placeholders if p not in values)
        if missing:
            raise RuntimeError(
                f"infra/{sm.path.name} needs {missing} but the Chalice app has no handler with that logical id "
                f"(app handlers: {sorted(function_arns)}; release_escrow -> ${{ReleaseEscrowArn}})"
            )
        definition = json.dumps(sm.substituted(values))
        name = sm.physical_name(prefix)
        try:
            try:
                arns[sm.name] = sfn.create_state_machine(name=name, definition=definition, roleArn=STATES_ROLE_ARN)[
                    "stateMachineArn"
                ]
            except sfn.exceptions.StateMachineAlreadyExists:
                arn = f"arn:aws:states:{sfn.meta.region_name}:{LOCAL_ACCOUNT_ID}:stateMachine:{name}"
                sfn.update_state_machine(stateMachineArn=arn, definition=definition, roleArn=STATES_ROLE_ARN)
                arns[sm.name] = arn
        except ClientError as error:
            if not _definition_refused(error):
                raise
            log.warning(
                "infra/%s: moto cannot parse this definition, state machine %s is NOT created locally (%s)",
                sm.path.name, name, error.response.get("Error", {}).get("Message", error),
            )
    return arns


def _definition_refused(error: ClientError) -> bool:
    """moto's ASL parser refused the definition (``InvalidDefinition``, or its bare ``ASLParserException``)."""
    code = error.response.get("Error", {}).get("Code", "")
    return code == "InvalidDefinition" or "ASLParserException" in str(error)


def install_lambda_dispatch(
    app, prefix: str = "mizani-local", endpoint_url: str | None = None, infra_dir=None
) -> dict[str, str]:
    """Dispatch moto Lambda invocations to ``app`` in-process; returns ``{state machine name: ARN}``.

    Registers every handler of ``app`` as ``<prefix>-<name>`` in moto's Lambda and creates
    the state machines ``<prefix>-<name>`` from ``infra/*.asl.json`` (``infra_dir``: another
    folder of ``*.asl.json``, for tests). The tables for ``prefix`` should exist
    (``create_tables``) before a workflow runs.
    """
    patch_moto_lambda()
    function_arns = register_app_functions(app, prefix, endpoint_url)
    return create_state_machines(prefix, function_arns, endpoint_url, infra_dir)


def uninstall_lambda_dispatch(prefix: str) -> None:
    """Forget the functions registered for ``prefix``; restore moto when none remain."""
    with _registry_lock:
        for name in [n for n in _registry if n.startswith(prefix + "-")]:
            del _registry[name]
    unpatch_moto_lambda()


def state_machine_env(arns: dict[str, str]) -> dict[str, str]:
    """``{MIZANI_STATE_MACHINE_ARN: ..., ...}`` for the state machines created."""
    return {statemachines.env_var_for(name): arn for name, arn in arns.items()}
