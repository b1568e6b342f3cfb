"""The provider simulators' server: every simulator or a loud error; health and reset."""
import sys

import pytest
import requests

from sandbox.providers import ALLOW_MISSING_ENV, ProviderServer, load_simulators
from sandbox.simulators import SimulatorContext

CTX = SimulatorContext(api_base_url="http://127.0.0.1:9", sandbox_base_url="http://127.0.0.1:9")


@pytest.fixture
def fake_simulators(tmp_path, monkeypatch):
    """A package with one working simulator and one whose own import is broken."""
    package = tmp_path / "fakesims"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "good.py").write_text(
        "from flask import Blueprint\n"
        "class Sim:\n"
        "    def __init__(self):\n"
        "        self.blueprint = Blueprint('good', __name__)\n"
        "        self.resets = 0\n"
        "        self.blueprint.get('/good/ping')(lambda: {'pong': True})\n"
        "    def reset(self):\n"
        "        self.resets += 1\n"
        "def make(ctx):\n"
        "    return Sim()\n"
    )
    (package / "broken.py").write_text("import a_dependency_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in [m for m in sys.modules if m.startswith("fakesims")]:
        del sys.modules[name]


def test_a_missing_simulator_module_is_an_error(monkeypatch):
    monkeypatch.delenv(ALLOW_MISSING_ENV, raising=False)
    with pytest.raises(ModuleNotFoundError):
        load_simulators(CTX, ["sandbox.simulators.does_not_exist"])


def test_a_missing_simulator_is_skipped_only_when_allowed(monkeypatch, fake_simulators):
    monkeypatch.setenv(ALLOW_MISSING_ENV, "1")
    with pytest.warns(UserWarning, match="does_not_exist"):
        loaded, missing = load_simulators(CTX, ["fakesims.good", "fakesims.does_not_exist"])
    assert list(loaded) == ["fakesims.good"] and missing == ["fakesims.does_not_exist"]


def test_a_broken_import_inside_a_simulator_propagates_even_when_missing_ones_are_allowed(monkeypatch, fake_simulators):
    monkeypatch.setenv(ALLOW_MISSING_ENV, "1")
    with pytest.raises(ModuleNotFoundError, match="a_dependency_that_is_not_installed"):
        load_simulators(CTX, ["fakesims.broken"])


def test_the_server_serves_the_blueprints_health_and_reset(fake_simulators):
    server = ProviderServer(port=0, modules=["fakesims.good"]).start(api_base_url="http://127.0.0.1:9")
    try:
        assert requests.get(server.url + "/good/ping", timeout=5).json() == {"pong": True}
        health = requests.get(server.url + "/sandbox/health", timeout=5).json()
        assert health == {"status": "ok", "simulators": ["fakesims.good"], "missing": []}
        assert requests.post(server.url + "/sandbox/reset", timeout=5).status_code == 200
        assert server.simulators["fakesims.good"].resets == 1
    finally:
        server.stop()
