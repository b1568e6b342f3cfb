"""Fixtures for the flow tests: one embedded Sandbox, driven over HTTP like a client would.

``sandbox`` -> ``sandbox.run.Sandbox(ports=0)``, one for the whole session, started lazily
    moto (DynamoDB + Step Functions executing the real ``infra/escrow.asl.json``), the
    workflow's Lambda tasks dispatched in-process to the Chalice app, the provider simulators,
    and the API, all on free 127.0.0.1 ports (the timer that fires scheduled functions is off:
    ``World.sweep`` runs the sweeper when a test wants it). Starting it costs
    seconds, so the flow modules share one. It is stopped as soon as the next test does not
    use it (so other folders never run inside its environment, which it writes into
    ``os.environ``) and started again if a later test does.

``world`` (function) / ``module_world`` (module) -> ``World``
    A client of that sandbox: the API with tokens, the simulators, waits with deadlines.
    Ids are unique per test (sellers, buyers, wallets, Idempotency-Keys) so that tests sharing
    the sandbox cannot see each other's money; one-shot MTN faults are cleared after each test.

``coffee`` -> the story's coffee order, settled once per sandbox and shared by the tests
    that only read it (pricing, timeline, wallet, split payout, SMS).

Every wait polls with a deadline; nothing asserts on timing. Test modules cannot import
this file by name (``conftest`` is tests/conftest.py on the path): what they share comes
through fixtures and ``World``.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
import time
import uuid
import pytest
import requests

from helpers import token

#: Statuses an order does not leave on its own.
TERMINAL = frozenset({"settled", "refunded", "payout_failed", "manual_review"})
#: The coffee of the story: 100 kg of washed arabica at 12.00 USD/kg.
COFFEE_KG = "100"
PRICE_PER_KG = {"amount": 1200, "currency": "USD"}

WAIT_SECONDS = 60.0
POLL_SECONDS = 0.2


# -- the sandbox ---------------------------------------------------------------------------


#: The sandbox's EventBridge stand-in fires the scheduled functions on a timer; here it is off
#: (``0``) and tests run the sweeper themselves (``World.sweep``), so that no background sweep
#: races a test's own steps.
SCHEDULE_ENV = "MIZANI_SCHEDULE_SECONDS"


class SandboxHolder:
    """Starts the Sandbox on first use; ``stop()`` is safe to call any number of times."""

    def __init__(self) -> None:
        self.sandbox = None
        self._schedule_before: str | None = None
        self._logged = False

    def get(self):
        if self.sandbox is None:
            from chalicelib.observability import logs
            from sandbox.run import Sandbox

            self._schedule_before = os.environ.get(SCHEDULE_ENV)
            os.environ[SCHEDULE_ENV] = "0"
            # The sandbox's JSON lines (its threads answer the simulators' late callbacks between
            # tests) go to a file, not between pytest's progress dots: its path is in the summary.
            self._log = open(SANDBOX_LOG, "a" if self._logged else "w", encoding="utf-8")  # this session's only
            self._logged = True
            self._routing = logs.route(self._log)
            self._routing.__enter__()
            try:
                self.sandbox = Sandbox(ports=0).start()
            except BaseException:
                self._unroute()
                self._restore_schedule()
                raise
        return self.sandbox

    def stop(self) -> None:
        sandbox, self.sandbox = self.sandbox, None
        if sandbox is not None:
            sandbox.stop()  # puts back the environment as it was at start (with our SCHEDULE_ENV)
            self._unroute()
            self._restore_schedule()

    def _unroute(self) -> None:
        self._routing.__exit__(None, None, None)
        self._log.close()

    def _restore_schedule(self) -> None:
        if self._schedule_before is None:
            os.environ.pop(SCHEDULE_ENV, None)
        else:
            os.environ[SCHEDULE_ENV] = self._schedule_before


_holder = SandboxHolder()
#: where the flow tests' sandbox writes its log lines (the last session's; replaced by the next)
SANDBOX_LOG = os.path.join(tempfile.gettempdir(), "mizani-flows-sandbox.log")


def pytest_terminal_summary(terminalreporter):
    if os.path.exists(SANDBOX_LOG):
        terminalreporter.write_line(f"flow tests' sandbox log: {SANDBOX_LOG}")


@pytest.fixture(scope="session")
def sandbox_holder():
    try:
        yield _holder
    finally:
        _holder.stop()


@pytest.fixture
def sandbox(sandbox_holder):
    return sandbox_holder.get()


def _uses_sandbox(item) -> bool:
    return item is not None and "sandbox_holder" in getattr(item, "fixturenames", ())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    if _holder.sandbox is not None and not _uses_sandbox(nextitem):
        _holder.stop()


def reset_app_caches() -> None:
    """Settings, boto3 clients and services are cached per container: drop them after env changes."""
    from chalicelib import aws, bootstrap, settings

    settings.get.cache_clear()
    aws.reset()
    bootstrap.reset()


# -- the world as a client sees it -----------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def fresh_msisdn() -> str:
    """An ordinary Rwandan MTN number no other test uses: the simulator pays it."""
    return "25078" + "".join(random.choices("0123456789", k=7))


class World:
    """A client of the sandbox: the API (with tokens), the simulators, and a few waits."""

    def __init__(self, sandbox) -> None:
        self.sb = sandbox
        self.api = sandbox.api_url
        self.sim = sandbox.sandbox_url
        self.http = requests.Session()
        self.http.trust_env = False  # 127.0.0.1 only, never through a proxy

    # -- raw HTTP ----------------------------------------------------------------------
    def request(self, method: str, path: str, role: str | None = None, sub: str | None = None, *,
                json_body=None, key: str | None = "auto", headers: dict | None = None) -> requests.Response:
        sent = dict(headers or {})
        if role is not None:
            sent["Authorization"] = f"Bearer {token(role, sub)}"
        if method == "POST" and key is not None:
            sent["Idempotency-Key"] = uuid.uuid4().hex if key == "auto" else key
        return self.http.request(method, self.api + path, json=json_body, headers=sent, timeout=30)

    def get(self, path: str, role: str, sub: str | None = None) -> requests.Response:
        return self.request("GET", path, role, sub)

    def post(self, path: str, role: str, sub: str | None, body, key: str | None = "auto") -> requests.Response:
        return self.request("POST", path, role, sub, json_body=body, key=key)

    def ok(self, response: requests.Response, status: int = 200) -> dict:
        assert response.status_code == status, \
            f"{response.request.method} {response.url}: {response.status_code} {response.text}"
        return response.json()

    # -- sellers, buyers, orders --------------------------------------------------------------
    def seller(self, msisdn: str | None = None, *, rail: str = "mtn_momo", currency: str = "RWF",
               country: str = "RW") -> dict:
        seller_id = unique("seller")
        body = {"name": f"Co-operative {seller_id}", "country": country,
                "payout": {"rail": rail, "msisdn": msisdn or fresh_msisdn(), "currency": currency}}
        return self.ok(self.post("/v1/sellers", "seller", seller_id, body), 201)

    @staticmethod
    def buyer() -> str:
        return unique("buyer")

    def order(self, seller: dict, buyer_id: str | None = None, *, kg: str = "1", pay_currency: str = "CNY",
              unit_price: dict = PRICE_PER_KG) -> dict:
        lines = [{"description": "Washed arabica, grade A1", "hs_code": "0901.11", "quantity": kg, "unit": "kg",
                  "unit_price": unit_price}]
        body = {"seller_id": seller["seller_id"], "pay_currency": pay_currency, "lines": lines}
        return self.ok(self.post("/v1/orders", "buyer", buyer_id or self.buyer(), body), 201)

    def read(self, order_id: str) -> dict:
        return self.ok(self.get(f"/v1/orders/{order_id}", "admin", "ops"))

    def pay(self, order: dict, outcome: str = "succeeded") -> dict:
        """The buyer pays through the Stripe simulator; the reply carries the webhook delivery."""
        pi = order["payment"]["payment_intent_id"]
        reply = self.http.post(f"{self.sim}/sandbox/payments/{pi}/pay", json={"outcome": outcome}, timeout=30)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def paid(self, seller: dict, **kwargs) -> dict:
        order = self.order(seller, **kwargs)
        delivery = self.pay(order)["webhook"]
        assert delivery["status"] == 200, delivery
        return self.wait_for(order["order_id"], {"paid"})

    def ship(self, order: dict, role: str = "seller", sub: str | None = None) -> requests.Response:
        body = {"carrier": "Ethiopian Cargo", "tracking_number": unique("ET"),
                "customs_declaration_ref": "RW-KGL-" + order["order_id"][-10:]}
        return self.post(f"/v1/orders/{order['order_id']}/shipment", role, sub or order["seller_id"], body)

    def shipped(self, seller: dict, **kwargs) -> dict:
        order = self.paid(seller, **kwargs)
        return self.ok(self.ship(order))

    def cleared(self, seller: dict, **kwargs) -> dict:
        """An order paid, shipped and cleared by customs (the workflow then releases and pays out)."""
        order = self.shipped(seller, **kwargs)
        assert self.customs(order, "cleared").status_code == 200
        return order

    # -- webhooks -----------------------------------------------------------------------------
    def customs(self, order: dict, status: str, event_id: str | None = None, *, order_id: str | None = None,
                declaration_ref: str | None = None, offset: int = 0, secret: str | None = None) -> requests.Response:
        from chalicelib.api.signatures import sign

        body = json.dumps({
            "event_id": event_id or unique("cust"),
            "order_id": order_id or order["order_id"],
            "customs_declaration_ref": declaration_ref or (order.get("shipment") or {}).get("customs_declaration_ref")
            or "RW-KGL-none",
            "status": status,
            "office": "Kigali International Airport",
            "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }).encode()
        secret = secret or self.sb.env.get("MIZANI_CUSTOMS_SECRET") or "customs-local-secret"
        signature = sign(body, secret, int(time.time()) + offset)
        return self.http.post(self.api + "/v1/webhooks/customs", data=body, timeout=30,
                              headers={"Content-Type": "application/json", "Mizani-Signature": signature})

    def stripe_webhook(self, event: dict, *, offset: int = 0, secret: str | None = None) -> requests.Response:
        """POST a Stripe event we signed ourselves, as Stripe would sign it."""
        from chalicelib.api.signatures import sign

        payload = json.dumps(event).encode()
        secret = secret or self.sb.env.get("MIZANI_STRIPE_WEBHOOK_SECRET") or "whsec_local"
        return self.http.post(self.api + "/v1/webhooks/stripe", data=payload, timeout=30,
                              headers={"Content-Type": "application/json",
                                       "Stripe-Signature": sign(payload, secret, int(time.time()) + offset)})

    def stripe_events(self, payment_intent_id: str, event_type: str | None = None) -> list[dict]:
        events = self.sim_get("/sandbox/stripe/events")["events"]
        return [e for e in events
                if e["payment_intent"] == payment_intent_id and (event_type is None or e["type"] == event_type)]

    def stripe_resend(self, event_id: str, **body) -> dict:
        reply = self.http.post(f"{self.sim}/sandbox/stripe/events/{event_id}/resend", json=body, timeout=30)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def stripe_api(self, path: str) -> dict:
        """Stripe's own view (the simulator's /v1 API, with the sandbox's secret key)."""
        key = self.sb.env.get("MIZANI_STRIPE_API_KEY") or "sk_test_local_sandbox"
        reply = self.http.get(self.sim + path, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert reply.status_code == 200, reply.text
        return reply.json()

    # -- simulators -------------------------------------------------------------------------
    def sim_get(self, path: str) -> dict:
        reply = self.http.get(self.sim + path, timeout=30)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def wallet(self, msisdn: str) -> dict:
        return self.sim_get(f"/sandbox/wallets/{msisdn}")

    def wallet_transfers(self, msisdn: str, order_id: str) -> list[dict]:
        """The MTN transfers made to ``msisdn`` for one order (our payout id is MTN's externalId)."""
        return [t for t in self.wallet(msisdn)["transactions"] if t["externalId"].startswith(f"po_{order_id}_")]

    def sent_to_mtn(self, msisdn: str, order_id: str, parts: int = 1) -> list[dict]:
        """Wait until the order's payout transfers reached MTN (the order is ``payout_pending`` a moment before)."""
        return self.until(lambda: (found := self.wallet_transfers(msisdn, order_id)) and len(found) >= parts and found,
                          f"{parts} MTN transfer(s) for {order_id}")

    def sms(self, msisdn: str) -> list[dict]:
        return [m for m in self.sim_get("/sandbox/sms")["messages"] if m["to"] == "+" + msisdn]

    def texted(self, msisdn: str, words: str, what: str = "", timeout: float | None = None) -> list[dict]:
        """The SMS to ``msisdn`` containing ``words``, once at least one reached the gateway.

        A text goes out from the invocation that queued it or, when that one lost the race or the
        gateway was slow, from the every-minute sweeper; on a shared sandbox a few sweeps may pass
        before it is this message's turn, so this sweeps as EventBridge would while it waits.
        """
        def found():
            hits = [m for m in self.sms(msisdn) if words in m["message"]]
            if not hits:
                self.sweep()
            return hits

        return self.until(found, what or f"an SMS with {words!r} to {msisdn}", timeout or WAIT_SECONDS)

    def momo_faults(self, **faults) -> dict:
        reply = self.http.post(f"{self.sim}/sandbox/faults/momo", json=faults, timeout=30)
        assert reply.status_code == 200, reply.text
        return reply.json()

    @staticmethod
    def momo_reference(payout_id: str) -> str:
        """MTN's X-Reference-Id for one of our payouts (the rail derives it from the payout id)."""
        from chalicelib.payouts.rails.momo import momo_reference_id

        return momo_reference_id(payout_id)

    def momo_settle(self, reference_id: str, status: str, reason: str | None = None) -> dict:
        """Finish a transfer that MTN left pending (what MTN would eventually do)."""
        reply = self.http.post(f"{self.sim}/sandbox/momo/transfers/{reference_id}/settle",
                               json={"status": status, **({"reason": reason} if reason else {})}, timeout=30)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def sweep(self) -> None:
        """Run the scheduled sweeper (``drain_outbox``: queued SMS, open payouts) now, as EventBridge would."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.sb.invoke("drain_outbox", {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": now, "region": "us-east-1",
            "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{self.sb.table_prefix}-drain_outbox"],
            "detail": {},
        })

    # -- ledger (finance's view) -----------------------------------------------------------------
    def account(self, account_id: str) -> dict:
        return self.ok(self.get(f"/v1/ledger/accounts/{account_id}", "finance", "fin-1"))

    def trial_balance(self) -> dict:
        return self.ok(self.get("/v1/ledger/trial-balance", "finance", "fin-1"))

    def balance(self, seller_id: str) -> dict:
        return self.ok(self.get(f"/v1/sellers/{seller_id}/balance", "seller", seller_id))

    def payouts(self, seller_id: str) -> list[dict]:
        """Every payout of the seller (and its members), newest first, following the list's cursors."""
        found, cursor = [], None
        while True:
            page = self.ok(self.get(f"/v1/sellers/{seller_id}/payouts?limit=100"
                                    + (f"&cursor={cursor}" if cursor else ""), "seller", seller_id))
            found += page["payouts"]
            if not page["has_more"]:
                return found
            cursor = page["next_cursor"]

    # -- the workflow (Step Functions' own record) ----------------------------------------------
    def states_entered(self, order_id: str, state: str) -> int:
        """How many times the order's execution (named after the order) entered ``state``."""
        arn = self.sb.state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + order_id
        events = self.sb.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
        return sum(1 for e in events if (e.get("stateEnteredEventDetails") or {}).get("name") == state)

    # -- waiting -------------------------------------------------------------------------------
    def wait_for(self, order_id: str, statuses, timeout: float = WAIT_SECONDS) -> dict:
        """Poll the order until its status is one of ``statuses`` (fails with the last state otherwise)."""
        statuses = {statuses} if isinstance(statuses, str) else set(statuses)
        deadline = time.monotonic() + timeout
        while True:
            order = self.read(order_id)
            if order["status"] in statuses:
                return order
            if order["status"] in TERMINAL or time.monotonic() > deadline:
                timeline = [(e["status"], e.get("detail")) for e in order["timeline"]]
                raise AssertionError(f"order {order_id} is {order['status']}, expected {sorted(statuses)}; {timeline}")
            time.sleep(POLL_SECONDS)

    @staticmethod
    def until(check, what: str, timeout: float = WAIT_SECONDS):
        """Poll ``check()`` until it returns something truthy; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            found = check()
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting for {what}")
            time.sleep(POLL_SECONDS)

    # -- settings ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def settings(self, **env: str):
        """Run with these environment variables (read by ``settings`` and the adapters) in force.

        The Sandbox writes the ``local`` stage's variables over ``os.environ`` when it starts, so a
        variable exported before the start would be overwritten; everything runs in this process,
        so changing ``os.environ`` and dropping the cached settings/services takes effect at once.
        """
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        reset_app_caches()
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            reset_app_caches()


class Coffee:
    """The story's settled coffee order: 100 kg at 12.00 USD/kg, paid in CNY, paid out in RWF."""

    def __init__(self, world: World) -> None:
        self.sandbox = world.sb
        self.seller = world.seller()
        self.buyer_id = world.buyer()
        started = world.cleared(self.seller, buyer_id=self.buyer_id, kg=COFFEE_KG)
        self.order = world.wait_for(started["order_id"], "settled")
        self.msisdn = self.seller["payout"]["msisdn"]


_coffee: list[Coffee] = []


@pytest.fixture
def coffee(sandbox, world) -> Coffee:
    """One settled coffee order per sandbox, shared by the tests that only read it."""
    if not _coffee or _coffee[0].sandbox is not sandbox:
        _coffee[:] = [Coffee(world)]
    return _coffee[0]


@pytest.fixture(scope="module")
def module_world(sandbox_holder):
    """A ``World`` for module-scoped fixtures (state that several read-only tests share)."""
    w = World(sandbox_holder.get())
    yield w
    w.http.close()


@pytest.fixture
def world(sandbox):
    w = World(sandbox)
    try:
        yield w
    finally:
        w.http.delete(f"{w.sim}/sandbox/faults/momo", timeout=30)  # one-shot faults never leak into the next test
        w.http.close()
