"""The provider simulators' HTTP server (Stripe, MTN MoMo, M-Pesa, SMS) on 127.0.0.1.

One Flask app registers the blueprint of every module in
``sandbox.simulators.SIMULATORS`` (each module's ``make(ctx)`` returns an object with
``.blueprint`` and ``.reset()``) and is served by werkzeug's threaded server in a
background thread. Sandbox routes of its own:

- ``GET /sandbox/health``: ``{"status": "ok", "simulators": [...], "missing": [...]}``
- ``POST /sandbox/reset``: every simulator forgets its state (between demo runs / tests)

A simulator module that cannot be imported is an error, unless
``MIZANI_ALLOW_MISSING_SIMULATORS=1`` and the module itself is what is missing (then it is
skipped with a warning; an import error *inside* an existing module still propagates).
"""
from __future__ import annotations

import errno
import importlib
import logging
import os
import threading
import warnings

from sandbox.simulators import SIMULATORS, SimulatorContext

log = logging.getLogger("sandbox.providers")

ALLOW_MISSING_ENV = "MIZANI_ALLOW_MISSING_SIMULATORS"


class _Deferred:
    """WSGI app set after the socket is bound (the simulators need to know their own URL)."""

    def __init__(self) -> None:
        self.app = None

    def __call__(self, environ, start_response):
        if self.app is None:  # pragma: no cover - only between bind and start()
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"sandbox starting"]
        return self.app(environ, start_response)


def load_simulators(ctx: SimulatorContext, modules: list[str] | None = None) -> tuple[dict, list[str]]:
    """``({module: simulator}, [missing modules])`` for ``modules`` (default: ``SIMULATORS``)."""
    allow_missing = os.environ.get(ALLOW_MISSING_ENV) == "1"
    loaded: dict[str, object] = {}
    missing: list[str] = []
    for module_name in SIMULATORS if modules is None else modules:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if allow_missing and error.name == module_name:
                warnings.warn(f"simulator {module_name} does not exist yet: skipped ({ALLOW_MISSING_ENV}=1)", stacklevel=2)
                log.warning("simulator %s missing: skipped", module_name)
                missing.append(module_name)
                continue
            raise
        loaded[module_name] = ctx.simulators[module_name] = module.make(ctx)
    return loaded, missing


def create_app(simulators: dict, missing: list[str]):
    """The Flask app: every simulator's blueprint plus ``/sandbox/health`` and ``/sandbox/reset``."""
    from flask import Flask, jsonify

    app = Flask("mizani-sandbox")
    for simulator in simulators.values():
        app.register_blueprint(simulator.blueprint)

    @app.get("/sandbox/health")
    def sandbox_health():
        return jsonify({"status": "ok", "simulators": sorted(simulators), "missing": missing})

    @app.post("/sandbox/reset")
    def sandbox_reset():
        for simulator in simulators.values():
            simulator.reset()
        return jsonify({"status": "reset", "simulators": sorted(simulators)})

    return app


class ProviderServer:
    """The simulators served on ``http://127.0.0.1:<port>`` (``port=0``: a free port).

    ``bind()`` reserves the socket (so ``url`` is known), ``start(api_base_url, env)``
    builds the simulators with that context and serves in a daemon thread; ``stop()``.
    """

    def __init__(self, port: int = 8001, host: str = "127.0.0.1", modules: list[str] | None = None):
        self.host = host
        self.requested_port = port
        self.modules = modules
        self.simulators: dict = {}
        self.missing: list[str] = []
        self._wsgi = _Deferred()
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("provider server not bound")
        return self._server.server_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def bind(self) -> "ProviderServer":
        from werkzeug.serving import make_server

        if self._server is None:
            try:
                # werkzeug prints and calls sys.exit(1) on a busy port: turn that into an OSError
                self._server = make_server(self.host, self.requested_port, self._wsgi, threaded=True)
            except SystemExit as error:
                raise OSError(errno.EADDRINUSE, f"port {self.requested_port} is in use") from error
        return self

    def start(self, api_base_url: str, env: dict | None = None) -> "ProviderServer":
        self.bind()
        ctx = SimulatorContext(api_base_url=api_base_url, sandbox_base_url=self.url, env=dict(env or os.environ))
        self.simulators, self.missing = load_simulators(ctx, self.modules)
        self._wsgi.app = create_app(self.simulators, self.missing)
        self._thread = threading.Thread(target=self._server.serve_forever, name="mizani-providers", daemon=True)
        self._thread.start()
        return self

    def reset(self) -> None:
        for simulator in self.simulators.values():
            simulator.reset()

    def stop(self) -> None:
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
                self._thread.join(timeout=5)
            self._server.server_close()
            self._server = None
            self._thread = None
