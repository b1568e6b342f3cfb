"""The embedded local world in one process: ``python -m sandbox.run`` (``make run``).

``Sandbox`` starts, in this order:

1. moto's server (DynamoDB, Step Functions with execution on, Lambda registry, IAM, S3)
   on ``MIZANI_MOTO_PORT`` (8002);
2. the Chalice app loaded with the ``local`` stage of ``.chalice/config.json`` (its
   ``environment_variables`` applied to ``os.environ``, endpoint URLs rewritten to the
   ports actually used) and its API server bound on ``MIZANI_PORT`` (8000);
3. the tables from ``infra/resources.base.json``, the app's Lambda handlers registered in
   moto and dispatched in-process, the state machines from ``infra/*.asl.json``
   (``MIZANI_STATE_MACHINE_ARN`` set to the one created);
4. the platform's ledger accounts (``chalicelib.bootstrap.ensure_platform_accounts()``);
5. the provider simulators on ``MIZANI_SANDBOX_PORT`` (8001), then the API.

``Sandbox(ports=0)`` picks free ports (tests) and a unique table prefix; ``stop()`` (or
leaving the ``with`` block) shuts everything down and restores ``os.environ``.

    with Sandbox(ports=0) as sb:
        requests.get(sb.api_url + "/v1/health")
        requests.get(sb.sandbox_url + "/sandbox/health")
"""
from __future__ import annotations

import errno
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

from sandbox import aws_local
from sandbox.providers import ProviderServer

log = logging.getLogger("sandbox")  # not "mizani.*": Chalice sets the "mizani" app logger to ERROR

PROJECT_DIR = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
STAGE = "local"
#: role -> (environment variable, default port)
PORTS = {
    "api": ("MIZANI_PORT", 8000),
    "sandbox": ("MIZANI_SANDBOX_PORT", 8001),
    "moto": ("MIZANI_MOTO_PORT", 8002),
}


def _port_from_env(role: str) -> int:
    name, default = PORTS[role]
    raw = os.environ.get(name)
    return int(raw) if raw else default


def _clear_app_caches() -> None:
    """Settings, boto3 clients and services are cached per container: drop them after env changes."""
    try:
        from chalicelib import aws, settings

        settings.get.cache_clear()
        aws.reset()
    except ImportError:  # pragma: no cover - chalicelib always exists in this repo
        pass
    try:
        from chalicelib import bootstrap

        if hasattr(bootstrap, "reset"):
            bootstrap.reset()
    except ImportError:
        pass


def _quiet_handler_class():
    from chalice.local import ChaliceRequestHandler

    class QuietRequestHandler(ChaliceRequestHandler):
        """No per-request access log line (tests, demo, benchmarks)."""

        def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
            pass

    return QuietRequestHandler


class Sandbox:
    """Moto + tables + in-process Lambda + state machines + simulators + the Chalice API.

    ``ports``: ``None`` reads ``MIZANI_PORT`` / ``MIZANI_SANDBOX_PORT`` / ``MIZANI_MOTO_PORT``
    (defaults 8000 / 8001 / 8002); ``0`` picks free ports. ``api_port`` / ``sandbox_port`` /
    ``moto_port`` override one each. ``table_prefix`` defaults to the stage's
    ``MIZANI_TABLE_PREFIX`` (``mizani-local``), or a unique ``mizani-sbx<hex>`` with ``ports=0``.
    ``bootstrap_ledger``: create the platform accounts; ``access_log``: one line per API request
    (on for ``make run``).
    """

    def __init__(
        self,
        ports: int | None = None,
        *,
        api_port: int | None = None,
        sandbox_port: int | None = None,
        moto_port: int | None = None,
        table_prefix: str | None = None,
        project_dir: Path | str = PROJECT_DIR,
        bootstrap_ledger: bool = True,
        access_log: bool = False,
    ):
        def pick(role: str, explicit: int | None) -> int:
            if explicit is not None:
                return explicit
            return 0 if ports == 0 else (ports if ports else _port_from_env(role))

        if ports not in (None, 0):
            raise ValueError("ports must be None (environment/defaults) or 0 (free ports); use api_port=... etc.")
        self.requested = {"api": pick("api", api_port), "sandbox": pick("sandbox", sandbox_port), "moto": pick("moto", moto_port)}
        self.project_dir = str(Path(project_dir).resolve())
        self.bootstrap_ledger = bootstrap_ledger
        self.access_log = access_log
        self._table_prefix = table_prefix or (f"mizani-sbx{uuid.uuid4().hex[:8]}" if ports == 0 else None)
        self.app = None
        self.config = None
        self.env: dict[str, str] = {}
        self.state_machine_arns: dict[str, str] = {}
        self.moto: aws_local.MotoServer | None = None
        self.providers: ProviderServer | None = None
        self._api_server = None
        self._api_thread = None
        self._saved_environ: dict[str, str] | None = None
        self._dispatch_installed = False
        self._schedule_stop = threading.Event()
        self._schedule_thread: threading.Thread | None = None

    # -- what a caller reads -----------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self._api_server.server.server_port}"

    @property
    def sandbox_url(self) -> str:
        return self.providers.url

    @property
    def moto_url(self) -> str:
        return self.moto.url

    @property
    def table_prefix(self) -> str:
        return self.env["MIZANI_TABLE_PREFIX"]

    @property
    def state_machine_arn(self) -> str | None:
        """The escrow state machine's ARN (``None`` until ``infra/escrow.asl.json`` exists)."""
        return self.state_machine_arns.get("escrow")

    def client(self, service: str):
        """A boto3 client for this sandbox's moto (cached)."""
        return aws_local.client(service, self.moto_url)

    def invoke(self, function_name: str, payload: dict | None = None) -> dict:
        """Invoke one of the app's Lambda handlers through moto (as Step Functions or a schedule would)."""
        reply = self.client("lambda").invoke(
            FunctionName=f"{self.table_prefix}-{function_name}", Payload=json.dumps(payload or {}).encode()
        )
        body = json.loads(reply["Payload"].read() or b"null")
        if reply.get("FunctionError"):
            raise RuntimeError(f"{function_name} failed: {body}")
        return body

    def scheduled_functions(self) -> list[str]:
        """The app's ``@app.schedule`` functions (EventBridge rules in AWS)."""
        return [e.name for e in self.app.event_sources if type(e).__name__ == "ScheduledEventConfig"]

    def _run_schedules(self, every_seconds: float) -> None:
        """Stand-in for EventBridge: invoke every scheduled function through moto's Lambda, on a timer."""
        while not self._schedule_stop.wait(every_seconds):
            for name in self.scheduled_functions():
                event = {  # the shape EventBridge delivers for a scheduled rule
                    "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
                    "source": "aws.events", "account": "123456789012", "region": self.env.get("AWS_DEFAULT_REGION", "us-east-1"),
                    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{name}"], "detail": {},
                }
                try:
                    self.invoke(name, event)
                except Exception as error:  # a failed tick is retried on the next one, as EventBridge would
                    log.warning("scheduled %s failed: %s", name, error)

    def reset_simulators(self) -> None:
        self.providers.reset()

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> "Sandbox":
        self._saved_environ = dict(os.environ)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _bind_error(self, role: str, error: OSError) -> RuntimeError:
        name, _ = PORTS[role]
        return RuntimeError(f"cannot listen on {HOST}:{self.requested[role]} ({error.strerror}); set {name} to another port")

    def _start(self) -> None:
        t0 = time.perf_counter()
        # 1. moto (sets MOTO_PORT for the Step Functions executor)
        self.moto = aws_local.MotoServer(port=self.requested["moto"], host=HOST)
        try:
            self.moto.start()
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise self._bind_error("moto", error) from error
            raise
        # the simulators' socket first: the app's environment must carry its URL
        self.providers = ProviderServer(port=self.requested["sandbox"], host=HOST)
        try:
            self.providers.bind()
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise self._bind_error("sandbox", error) from error
            raise

        # 2. the Chalice app with the local stage's environment, URLs rewritten to the real ports
        if self.project_dir not in sys.path:
            sys.path.insert(0, self.project_dir)
        from chalice.cli.factory import CLIFactory

        factory = CLIFactory(self.project_dir, environ=os.environ)
        self.config = factory.create_config_obj(chalice_stage_name=STAGE)
        stage_env = dict(self.config.environment_variables)
        self.env = self._rewrite_urls(stage_env, {"moto": self.moto.url, "sandbox": self.providers.url})
        self.env["AWS_ENDPOINT_URL"] = self.moto.url
        self.env["MIZANI_STRIPE_API_BASE"] = self.providers.url
        self.env["MIZANI_SANDBOX_BASE_URL"] = self.providers.url
        if self._table_prefix:
            self.env["MIZANI_TABLE_PREFIX"] = self._table_prefix
        self.env.setdefault("MIZANI_TABLE_PREFIX", "mizani-local")
        self.env.setdefault("AWS_DEFAULT_REGION", aws_local.LOCAL_REGION)
        self._apply_env()
        self.app = factory.load_chalice_app(environment_variables=self.env)
        self._apply_env()  # loading may have imported modules that read settings

        self._api_server = self._create_api_server()
        self._api_server.port = self._api_server.server.server_port  # the port actually bound (0: a free one)
        api_url = self.api_url
        self.env = self._rewrite_urls(self.env, {"api": api_url})
        self.env["MIZANI_API_BASE_URL"] = api_url
        self._apply_env()

        # 3. tables, Lambda dispatch, state machines
        t1 = time.perf_counter()
        aws_local.create_tables(self.table_prefix, self.moto.url)
        aws_local.create_buckets(self.table_prefix, self.moto.url)
        t2 = time.perf_counter()
        self._dispatch_installed = True
        self.state_machine_arns = aws_local.install_lambda_dispatch(self.app, self.table_prefix, self.moto.url)
        self.env.update(aws_local.state_machine_env(self.state_machine_arns))
        self._apply_env()
        t3 = time.perf_counter()

        # 4. platform ledger accounts, if the hook exists
        if self.bootstrap_ledger:
            self._bootstrap_ledger()
        t4 = time.perf_counter()

        # 5. simulators, then the API
        self.providers.start(api_base_url=api_url, env=dict(os.environ))
        from chalice.local import HTTPServerThread

        # The HTTP server itself, not chalice's LocalDevServer: its serve_forever() prints "Serving on ..."
        # from this thread, which landed in the middle of the banner's lines (describe() names the URL).
        server = self._api_server.server
        self._api_thread = HTTPServerThread(lambda: server)
        self._api_thread.start()

        # 6. EventBridge stand-in: scheduled functions every few seconds (0 turns it off)
        every = float(os.environ.get("MIZANI_SCHEDULE_SECONDS", "2") or 0)
        if every > 0:
            self._schedule_thread = threading.Thread(target=self._run_schedules, args=(every,), daemon=True,
                                                     name="sandbox-schedules")
            self._schedule_thread.start()
        log.info(
            "sandbox up in %.2fs (moto+app %.2fs, tables %.2fs, lambdas+state machines %.2fs, ledger %.2fs)",
            time.perf_counter() - t0, t1 - t0, t2 - t1, t3 - t2, t4 - t3,
        )

    def _rewrite_urls(self, env: dict, actual: dict[str, str]) -> dict:
        """Replace the default ``http://127.0.0.1:<8000|8001|8002>`` in values with the real URLs."""
        out = {}
        for key, value in env.items():
            for role, url in actual.items():
                default = f"http://{HOST}:{PORTS[role][1]}"
                if isinstance(value, str) and value.startswith(default) and url != default:
                    value = url + value[len(default):]
            out[key] = value
        return out

    def _apply_env(self) -> None:
        os.environ.update(self.env)
        _clear_app_caches()

    def _create_api_server(self):
        import functools

        from chalice.local import LocalChalice, LocalDevServer, create_local_server

        try:
            if isinstance(self.app, LocalChalice):  # already adapted by an earlier Sandbox in this process
                server = LocalDevServer(self.app, self.config, HOST, self.requested["api"])
            else:
                server = create_local_server(self.app, self.config, HOST, self.requested["api"])
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise self._bind_error("api", error) from error
            raise
        handler = _quiet_handler_class() if not self.access_log else server.server.RequestHandlerClass
        handler = getattr(handler, "func", handler)
        # Chalice's handler writes a reply's head and body in separate small writes; with Nagle's
        # algorithm on, the body waits for the client's delayed ACK (~40 ms a request on Linux).
        # TCP_NODELAY (socketserver's own switch) changes no answer, only when it leaves.
        fast = type(handler.__name__, (handler,), {"disable_nagle_algorithm": True})
        server.server.RequestHandlerClass = functools.partial(fast, app_object=self.app, config=self.config)
        return server

    def _bootstrap_ledger(self) -> None:
        try:
            from chalicelib import bootstrap
        except ImportError:
            return
        hook = getattr(bootstrap, "ensure_platform_accounts", None)
        if callable(hook):
            hook()

    def stop(self) -> None:
        self._schedule_stop.set()
        if self._schedule_thread is not None:
            self._schedule_thread.join(timeout=10)
            self._schedule_thread = None
        if self._api_thread is not None:
            self._api_thread.shutdown()
            self._api_thread.join(timeout=5)
            self._api_thread = None
        if self._api_server is not None:
            self._api_server.server.server_close()
        if self.providers is not None:
            self.providers.stop()
        if self._dispatch_installed:
            self._stop_executions()
            aws_local.uninstall_lambda_dispatch(self.table_prefix)
            self._dispatch_installed = False
        if self.moto is not None:
            self.moto.stop()
        if self._saved_environ is not None:
            os.environ.clear()
            os.environ.update(self._saved_environ)
            self._saved_environ = None
            _clear_app_caches()

    def _stop_executions(self) -> None:
        """Abort this sandbox's executions still running (an order a test left at customs, a task in its
        retry backoff): moto's threads would go on running them, and invoking functions that are gone."""
        if self.moto is None:
            return
        try:
            sfn = aws_local.client("stepfunctions", self.moto.url)
            for arn in self.state_machine_arns.values():
                for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn, statusFilter="RUNNING"):
                    for execution in page["executions"]:
                        sfn.stop_execution(executionArn=execution["executionArn"], error="SandboxStopped",
                                           cause="the sandbox stopped")
        except Exception as error:  # noqa: BLE001 - stopping must go on; what is left dies with the process
            log.debug("sandbox: could not stop the running executions: %s", error)

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def describe(self) -> str:
        lines = [
            f"Mizani API         {self.api_url}   (GET /v1/health, /v1/openapi.json)",
            f"Provider sandbox   {self.sandbox_url}   (GET /sandbox/health; Stripe, MTN MoMo, M-Pesa, SMS)",
            f"moto (local AWS)   {self.moto_url}   (DynamoDB, Step Functions, Lambda)",
            f"tables             {self.table_prefix}-{{accounts,transfers,entries,app}}",
        ]
        for name, arn in sorted(self.state_machine_arns.items()):
            lines.append(f"state machine      {arn}")
        if self.providers.missing:
            lines.append(f"MISSING simulators {', '.join(self.providers.missing)}")
        lines.append("token              make token ROLE=buyer SUB=buyer-1")
        return "\n".join(lines)


#: make run's banner says it: moto, the simulators and the app keep everything in this process's memory.
IN_MEMORY_NOTICE = (
    "state              in memory only: stopping make run forgets every order, seller, balance, payout,\n"
    "                   idempotency record and the simulators' wallets (the next start is empty)"
)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    aws_local.quiet_werkzeug()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        sandbox = Sandbox(access_log=True).start()
    except RuntimeError as error:
        print(f"sandbox: {error}", file=sys.stderr)
        return 1
    try:
        print(sandbox.describe(), flush=True)
        print(IN_MEMORY_NOTICE, flush=True)
        print("Ctrl-C to stop.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
