"""Shared fixtures: moto's server for the session, a fresh set of tables per test.

``moto_server`` (session)
    moto's threaded server on a free 127.0.0.1 port (never 8000-8002), Step Functions
    execution on, ``MOTO_PORT`` set, fake credentials in the environment. ``.url``, ``.port``.

``aws_env`` (function) -> ``AwsEnv``
    A unique ``MIZANI_TABLE_PREFIX`` with every table of ``infra/resources.base.json``
    created on the session's moto; ``AWS_ENDPOINT_URL`` points there; ``MIZANI_STAGE=local``;
    settings / boto3 clients / bootstrap services are reset before and after; the
    environment is restored afterwards (monkeypatch). It also makes
    ``chalice.test.Client(app, stage_name="local")`` respect the test's environment: the
    client normally overlays the stage's ``environment_variables`` (``mizani-local``,
    port 8002) on every request; under ``aws_env`` variables already set in ``os.environ``
    win and the stage only fills in the rest.

    aws_env.prefix / .endpoint_url / .region / .tables ({"app": "<prefix>-app", ...})
    aws_env.buckets                       ["<prefix>-statements", ...] (S3 buckets of the template)
    aws_env.table("app")                  physical name
    aws_env.client("dynamodb")            boto3 client for moto (cached)
    aws_env.reset_tables()                drop and recreate this test's tables (empty again)
    aws_env.install_workflow(app)         in-process Lambda dispatch + state machines from
                                          infra/*.asl.json; sets MIZANI_STATE_MACHINE_ARN;
                                          returns {name: arn}; undone at teardown
    aws_env.wait_for_execution(arn, timeout=30)   poll until not RUNNING; the description

Markers: ``packaging`` (runs ``chalice package``: slow the first time, needs the package
registry or a wheel cache) - deselect with ``-m "not packaging"``.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}
#: variables that would send boto3 somewhere other than the test's moto
_STRAY_AWS_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "packaging: runs `chalice package` (slow on the first run; needs the package registry or a wheel cache)"
    )


def _reset_app_caches() -> None:
    from chalicelib import aws, settings

    settings.get.cache_clear()
    aws.reset()
    try:
        from chalicelib import bootstrap
    except ImportError:  # pragma: no cover
        return
    if hasattr(bootstrap, "reset"):
        bootstrap.reset()


@pytest.fixture(scope="session")
def moto_server():
    """moto's server on a free port for the whole session (stopped at the end)."""
    from sandbox import aws_local

    with pytest.MonkeyPatch.context() as mp:
        for name, value in FAKE_AWS_ENV.items():
            mp.setenv(name, value)
        for name in _STRAY_AWS_ENV:
            mp.delenv(name, raising=False)
        server = aws_local.MotoServer(port=0).start()
        try:
            yield server
        finally:
            aws_local.reset_moto(server.url)  # moto's backends are process-global: leave nothing behind
            server.stop()


@dataclass
class AwsEnv:
    """One test's slice of local AWS (see the module docstring)."""

    endpoint_url: str
    prefix: str
    region: str
    tables: dict[str, str] = field(default_factory=dict)
    buckets: list[str] = field(default_factory=list)
    _monkeypatch: pytest.MonkeyPatch | None = None
    _workflow_installed: bool = False

    def table(self, name: str) -> str:
        return self.tables[name]

    def client(self, service: str):
        from sandbox import aws_local

        return aws_local.client(service, self.endpoint_url, self.region)

    def create_tables(self) -> None:
        from sandbox import aws_local

        self.tables = aws_local.create_tables(self.prefix, self.endpoint_url)
        self.buckets = aws_local.create_buckets(self.prefix, self.endpoint_url)

    def delete_tables(self) -> None:
        from sandbox import aws_local

        aws_local.delete_tables(self.prefix, self.endpoint_url)

    def reset_tables(self) -> None:
        """Drop and recreate this test's tables; cached clients and services are reset too."""
        self.delete_tables()
        self.create_tables()
        _reset_app_caches()

    def install_workflow(self, app=None) -> dict[str, str]:
        """Dispatch moto Lambda to ``app`` (default: ``import app``) and create the state machines."""
        from sandbox import aws_local

        if app is None:
            import app as app_module

            app = app_module.app
        arns = aws_local.install_lambda_dispatch(app, self.prefix, self.endpoint_url)
        self._workflow_installed = True
        for name, value in aws_local.state_machine_env(arns).items():
            self._monkeypatch.setenv(name, value)
        _reset_app_caches()
        return arns

    def wait_for_execution(self, execution_arn: str, timeout: float = 30.0) -> dict:
        """Poll ``describe_execution`` until the execution is no longer RUNNING."""
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            if time.monotonic() > deadline:
                history = sfn.get_execution_history(executionArn=execution_arn, reverseOrder=True, maxResults=5)
                raise AssertionError(
                    f"execution still RUNNING after {timeout}s; last events: "
                    + json.dumps([e["type"] for e in history["events"]])
                )
            time.sleep(0.05)

    def _teardown(self) -> None:
        # Tables are not deleted one test at a time (~50 ms each): the prefix is unique and the
        # session's moto is reset and stopped at the end.
        if self._workflow_installed:
            from sandbox import aws_local

            aws_local.uninstall_lambda_dispatch(self.prefix)


def _environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make chalice.test.Client overlay the stage's variables only where the test set none."""
    from chalice import test as chalice_test

    original = chalice_test.BaseClient._patched_env_vars
    if not callable(original):  # pragma: no cover - guarded by tests/static
        raise RuntimeError("chalice.test.BaseClient._patched_env_vars changed: update tests/conftest.py")

    @contextlib.contextmanager
    def patched_env_vars(self, environment_variables):
        saved = os.environ
        patched = os.environ.copy()
        for name, value in environment_variables.items():
            patched.setdefault(name, value)
        os.environ = patched
        try:
            yield
        finally:
            os.environ = saved

    monkeypatch.setattr(chalice_test.BaseClient, "_patched_env_vars", patched_env_vars)


@pytest.fixture
def aws_env(moto_server, monkeypatch):
    """A fresh, uniquely prefixed set of tables on the session's moto, and the env pointing at it."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL_") or name in _STRAY_AWS_ENV:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    monkeypatch.setenv("MOTO_PORT", str(moto_server.port))
    monkeypatch.setenv("MIZANI_STAGE", "local")
    monkeypatch.setenv("MIZANI_TABLE_PREFIX", prefix)
    # no workflow unless the test installs one (install_workflow sets the real ARN)
    monkeypatch.setenv("MIZANI_STATE_MACHINE_ARN", "")
    _environment_wins(monkeypatch)
    env = AwsEnv(endpoint_url=moto_server.url, prefix=prefix, region=FAKE_AWS_ENV["AWS_DEFAULT_REGION"], _monkeypatch=monkeypatch)
    env.create_tables()
    _reset_app_caches()
    try:
        yield env
    finally:
        env._teardown()
        _reset_app_caches()


@pytest.fixture
def client(aws_env):
    """Chalice's test client of the app on the ``local`` stage, over ``aws_env``'s tables, with the
    container's services built afresh (a test module that needs other wiring defines its own)."""
    from chalice.test import Client

    import app as mizani
    from chalicelib import bootstrap

    bootstrap.reset()
    with Client(mizani.app, stage_name="local") as test_client:
        yield test_client
    bootstrap.reset()
