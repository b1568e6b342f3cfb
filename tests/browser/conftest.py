"""Browser tests of the finance console: Playwright driving Debian's Chromium against a running sandbox.

``sandbox_process`` (session): ``python -m sandbox.run`` (what ``make run`` starts) in its own process
on free ports, waited for until ``/v1/health`` answers, stopped at the end. Its own process keeps the
sandbox's environment (which it writes into ``os.environ``) away from the other test folders.

``browser`` (session): ``playwright``'s Chromium launched with ``executable_path`` on the system's
``chromium`` (Playwright's own browser download is not reachable here; ``.ci/run`` installs Debian's
package). Without a Chromium on the machine, or without the ``playwright`` package, every test here
skips and says which is missing.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from helpers import token

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_path() -> str | None:
    found = os.environ.get("MIZANI_CHROMIUM") or next((shutil.which(n) for n in CHROMIUM_NAMES if shutil.which(n)), None)
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sandbox:
    """A client of the sandbox process: the API with tokens, the simulators, the coffee journey."""

    def __init__(self, api: str, sim: str):
        self.api, self.sim = api, sim
        self.http = requests.Session()
        self.http.trust_env = False

    def call(self, method: str, path: str, role: str, sub: str, body=None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token(role, sub)}"}
        if method == "POST":
            headers["Idempotency-Key"] = uuid.uuid4().hex
        return self.http.request(method, self.api + path, json=body, headers=headers, timeout=30)

    def ok(self, reply: requests.Response, status: int = 200) -> dict:
        assert reply.status_code == status, f"{reply.request.method} {reply.url}: {reply.status_code} {reply.text}"
        return reply.json()

    def paid_order(self, kg: str = "100") -> dict:
        """A seller and an order paid in CNY (held in escrow, its RWF payout guaranteed: an open FX position)."""
        seller_id = f"coop-{uuid.uuid4().hex[:8]}"
        msisdn = "25078" + str(uuid.uuid4().int)[:7]
        self.ok(self.call("POST", "/v1/sellers", "seller", seller_id, {
            "name": "Kivu Hills Coffee Co-operative", "country": "RW",
            "payout": {"rail": "mtn_momo", "msisdn": msisdn, "currency": "RWF"}}), 201)
        buyer = f"buyer-{uuid.uuid4().hex[:8]}"
        order = self.ok(self.call("POST", "/v1/orders", "buyer", buyer, {
            "seller_id": seller_id, "pay_currency": "CNY",
            "lines": [{"description": "Washed arabica, grade A1", "hs_code": "0901.11", "quantity": kg, "unit": "kg",
                       "unit_price": {"amount": 1200, "currency": "USD"}}]}), 201)
        pi = order["payment"]["payment_intent_id"]
        assert self.http.post(f"{self.sim}/sandbox/payments/{pi}/pay", json={"outcome": "succeeded"}, timeout=30).ok
        return self.wait(order["order_id"], "paid")

    def settled_order(self, kg: str = "100") -> dict:
        """The coffee story over HTTP: a seller, an order paid in CNY, shipped, cleared, paid out in RWF."""
        from chalicelib.api.signatures import sign

        order = self.paid_order(kg)
        seller_id = order["seller_id"]
        declaration = "RW-KGL-" + order["order_id"][-10:]
        self.ok(self.call("POST", f"/v1/orders/{order['order_id']}/shipment", "seller", seller_id, {
            "carrier": "RwandAir Cargo", "tracking_number": "WB" + order["order_id"][-8:],
            "customs_declaration_ref": declaration, "customs_office": "Kigali International Airport"}))
        body = json.dumps({"event_id": uuid.uuid4().hex, "order_id": order["order_id"], "customs_declaration_ref": declaration,
                           "status": "cleared", "office": "Kigali International Airport",
                           "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode()
        reply = self.http.post(self.api + "/v1/webhooks/customs", data=body, timeout=30, headers={
            "Content-Type": "application/json", "Mizani-Signature": sign(body, "customs-local-secret", int(time.time()))})
        assert reply.status_code == 200, reply.text
        return self.wait(order["order_id"], "settled")

    def wait(self, order_id: str, status: str, timeout: float = 90.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            order = self.ok(self.call("GET", f"/v1/orders/{order_id}", "admin", "ops"))
            if order["status"] == status:
                return order
            assert time.monotonic() < deadline, f"order {order_id} is {order['status']}, not {status}"
            time.sleep(0.25)


@pytest.fixture(scope="session")
def sandbox_process():
    ports = {"MIZANI_PORT": _free_port(), "MIZANI_SANDBOX_PORT": _free_port(), "MIZANI_MOTO_PORT": _free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MIZANI_", "MOTO_"))}
    env.update({k: str(v) for k, v in ports.items()})
    import tempfile

    log = tempfile.NamedTemporaryFile(prefix="mizani-browser-sandbox-", suffix=".log", delete=False)
    process = subprocess.Popen([sys.executable, "-m", "sandbox.run"], cwd=ROOT, env=env, stdout=log, stderr=log)
    api = f"http://127.0.0.1:{ports['MIZANI_PORT']}"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                if requests.get(api + "/v1/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox did not start (exit {process.poll()}; its log: {log.name})")
            time.sleep(0.3)
        yield Sandbox(api, f"http://127.0.0.1:{ports['MIZANI_SANDBOX_PORT']}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def shots(tmp_path_factory) -> Path:
    """Where the screenshots go: ``docs/`` with ``MIZANI_SCREENSHOTS=docs`` (``make screenshots``), else a
    temporary folder (a test run leaves the committed pictures alone)."""
    if os.environ.get("MIZANI_SCREENSHOTS") == "docs":
        DOCS.mkdir(exist_ok=True)
        return DOCS
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="session")
def browser():
    executable = chromium_path()
    if executable is None:
        pytest.skip("Debian's Chromium is not installed (apt-get install chromium; .ci/run installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (requirements-dev.txt pins it)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def settled(sandbox_process):
    return sandbox_process.settled_order()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    pg.problems = []  # console errors (a CSP violation is one) and dialogs (an injected alert would be one)
    pg.on("console", lambda m: pg.problems.append(m.text) if m.type == "error" else None)
    pg.on("dialog", lambda d: (pg.problems.append("dialog: " + d.message), d.dismiss()))
    yield pg
    context.close()
