"""A co-operative's order shared among its members, on the sandbox (moto server, the real ASL, the
MTN and SMS simulators, all in this one process): registering members (one by one and in bulk),
the allocation, and what paying them costs, step by step.

Requests are counted with botocore's own event hooks and attributed to the workflow step running
(ReleaseEscrow with the share chains, StartPayout, each CheckPayout, Settle and its SMS drain) or
to the API (MTN's callbacks); each request's call site is the innermost application frame that is
not storage plumbing. ``BENCH_MEMBERS`` (default ``40,200``) sets the sizes: the cost per member
paid grows with the co-operative's size, which is what the second size shows.
"""
from __future__ import annotations

import collections
import json
import os
import sys
import threading
import time
import uuid

import requests

from bench.common import RequestCounter, row

LINES = [{"description": "Washed arabica", "hs_code": "0901.11", "quantity": "100", "unit": "kg",
          "unit_price": {"amount": 1200, "currency": "USD"}}]
SINGLY = 20  # members registered one request each; the rest in the bulk form, 100 a request
STEPS = {"release_escrow": "ReleaseEscrow (release + share chains)", "start_payout": "StartPayout",
         "check_payout": "CheckPayout", "settle": "Settle (summary, SMS queued and drained)"}
_PLUMBING = ("chalicelib/documents.py", "chalicelib/order_index.py", "chalicelib/ledger/", "chalicelib/aws.py",
             "chalicelib/http.py", "chalicelib/members/batch.py", "chalicelib/notify/sms_gateway.py")


class Attribution:
    """Which step (or the API) and which call site each DynamoDB request comes from."""

    def __init__(self, client):
        self.counter = RequestCounter(client)
        self.step: str | None = None  # the workflow runs one order's steps one after another
        self.by_step: collections.Counter[str] = collections.Counter()
        self.sites: collections.Counter[str] = collections.Counter()
        self.seconds: collections.Counter[str] = collections.Counter()
        self.runs: collections.Counter[str] = collections.Counter()
        self.settled = threading.Event()
        self.settle_started: float | None = None
        self._lock = threading.Lock()
        client.meta.events.register("before-call.*.*", self._count)

    def reset(self) -> None:
        self.counter.reset()
        for c in (self.by_step, self.sites, self.seconds, self.runs):
            c.clear()
        self.settled.clear()
        self.settle_started = None

    def _count(self, **_) -> None:
        frame, site, api = sys._getframe(1), None, False
        while frame is not None:
            path = frame.f_code.co_filename.replace(os.sep, "/")
            if "/chalicelib/" in path and "/.venv/" not in path:
                rel = "chalicelib/" + path.split("/chalicelib/", 1)[1]
                if site is None and not rel.startswith(_PLUMBING) and not frame.f_code.co_name.startswith("<"):
                    site = f"{rel.removeprefix('chalicelib/')}:{frame.f_code.co_name}"
                api = api or rel == "chalicelib/api/routing.py"
            frame = frame.f_back
        where = "API (MTN callbacks, SMS reports)" if api else STEPS.get(self.step, self.step or "other")
        with self._lock:
            self.by_step[where] += 1
            self.sites[f"{where.split(' ')[0]}: {site}"] += 1

    def wrap_tasks(self) -> None:
        import chalicelib.workflow.tasks as tasks

        for name in (*STEPS, "manual_review"):
            task = getattr(tasks, name)

            def timed(event, context=None, _task=task, _name=name):
                self.step, started = _name, time.perf_counter()
                if _name == "settle" and self.settle_started is None:
                    self.settle_started = started
                try:
                    return _task(event)
                finally:
                    self.seconds[_name] += time.perf_counter() - started
                    self.runs[_name] += 1
                    if _name in ("settle", "manual_review"):
                        self.settled.set()

            setattr(tasks, name, timed)


def main() -> None:
    sizes = [int(n) for n in os.environ.get("BENCH_MEMBERS", "40,200").split(",") if n.strip()]
    from chalicelib import aws
    from chalicelib.api.signatures import sign
    from sandbox.run import Sandbox
    from sandbox.token import mint

    print(f"A co-operative's members registered and paid for one order, {' and '.join(map(str, sizes))} members "
          "(sandbox in this process: moto server, real ASL, MTN and SMS simulators)")
    os.environ["MIZANI_LOG_LEVEL"] = "WARNING"
    os.environ["MIZANI_SCHEDULE_SECONDS"] = "0"
    with Sandbox(ports=0) as world:
        http = requests.Session()
        seen = Attribution(aws.dynamodb())
        seen.wrap_tasks()

        def call(method, path, role, sub, body=None):
            headers = {"Authorization": f"Bearer {mint(role, sub)}", "Idempotency-Key": uuid.uuid4().hex}
            reply = http.request(method, world.api_url + path, json=body, headers=headers, timeout=120)
            if reply.status_code >= 400:
                raise RuntimeError(f"{method} {path}: {reply.status_code} {reply.text}")
            return reply.json()

        for size in sizes:
            coop = f"bench-coop-{uuid.uuid4().hex[:8]}"
            call("POST", "/v1/sellers", "seller", coop,
                 {"name": "Bench Co-op", "country": "RW",
                  "payout": {"rail": "mtn_momo", "msisdn": f"2507880002{sizes.index(size):02d}", "currency": "RWF"}})
            prefix = f"250788{3 + sizes.index(size)}"  # each size its own numbers (MTN Rwanda: 250 78x xxx xxx)
            entries = [{"name": f"Farmer {i}", "payout": {"rail": "mtn_momo", "msisdn": f"{prefix}{i:05d}", "currency": "RWF"}}
                       for i in range(size)]
            print(f"  -- {size} members")
            singly = min(SINGLY, size // 2)
            seen.reset()
            started = time.perf_counter()
            members = [call("POST", f"/v1/sellers/{coop}/members", "seller", coop, e) for e in entries[:singly]]
            took, used = time.perf_counter() - started, seen.counter.total()
            row(f"register {singly} members one request each (rail's wallet check included)",
                f"{took / singly * 1000:.0f} ms, {used / singly:.1f} DynamoDB requests per member")
            seen.reset()
            started = time.perf_counter()
            for start in range(singly, size, 100):
                members += call("POST", f"/v1/sellers/{coop}/members/batch", "seller", coop,
                                {"members": entries[start:start + 100]})["members"]
            bulk = size - singly
            row(f"register {bulk} members in bulk (POST .../members/batch, 100 a request)",
                f"{(time.perf_counter() - started) / bulk * 1000:.0f} ms, {seen.counter.total() / bulk:.1f} DynamoDB requests per member")
            order = call("POST", "/v1/orders", "buyer", "bench-buyer", {"seller_id": coop, "pay_currency": "CNY", "lines": LINES})
            oid = order["order_id"]
            http.post(f"{world.sandbox_url}/sandbox/payments/{order['payment']['payment_intent_id']}/pay",
                      json={"outcome": "succeeded"}, timeout=30)
            seen.reset()
            started = time.perf_counter()
            call("PUT", f"/v1/orders/{oid}/allocation", "seller", coop,
                 {"shares": [{"member_id": m["member_id"], "quantity": 1 + i % 5} for i, m in enumerate(members)], "retain_bps": 100})
            row(f"allocation of {size} shares (one PUT)",
                f"{(time.perf_counter() - started) * 1000:.0f} ms, {seen.counter.total()} DynamoDB requests")
            call("POST", f"/v1/orders/{oid}/shipment", "seller", coop, {"carrier": "DHL", "tracking_number": "B1", "customs_declaration_ref": "D1"})
            seen.reset()
            started = time.perf_counter()
            body = json.dumps({"event_id": uuid.uuid4().hex, "order_id": oid, "customs_declaration_ref": "D1",
                               "status": "cleared", "office": "Kigali", "occurred_at": "2026-11-28T00:00:00Z"}).encode()
            http.post(world.api_url + "/v1/webhooks/customs", data=body,
                      headers={"Mizani-Signature": sign(body, world.env.get("MIZANI_CUSTOMS_SECRET", "customs-local-secret"))}, timeout=30)
            finished = seen.settled.wait(timeout=3600)  # Settle (or ManualReview) returned: SMS sent too
            took = time.perf_counter() - started
            paid_at = seen.settle_started - started if seen.settle_started else took
            calls, total = dict(seen.counter.calls), seen.counter.total()
            by_step, sites = dict(seen.by_step), seen.sites.most_common(6)
            status = call("GET", f"/v1/orders/{oid}", "admin", "bench")["status"] if finished else "still running"
            calls = collections.Counter(calls)
            row(f"customs cleared → every member paid (Settle starts)", f"{paid_at:.1f} s ({size / paid_at:.2f} members/s)")
            row(f"  → {status}, every member texted (Settle returns)", f"{took:.1f} s")
            row("DynamoDB requests per member paid (all of it)",
                f"{total / size:.1f} ({calls['TransactWriteItems'] / size:.1f} TransactWriteItems, "
                f"{calls['GetItem'] / size:.1f} GetItem)")
            for name, label in STEPS.items():
                runs = f" ×{seen.runs[name]}" if seen.runs[name] > 1 else ""
                row(f"  {label}{runs}", f"{by_step.get(label, 0) / size:.1f} per member, {seen.seconds[name]:.1f} s")
            row("  API (MTN callbacks, SMS reports)", f"{by_step.get('API (MTN callbacks, SMS reports)', 0) / size:.1f} per member")
            print("    where (requests per member paid, the largest call sites):")
            for site, n in sites:
                print(f"      {n / size:5.1f}  {site}")


if __name__ == "__main__":
    main()
