"""A co-operative's order shared among its members, on the sandbox: DynamoDB requests per member
paid (release with the share chains, each member's payout, their SMS) and the time to settle."""
from __future__ import annotations

import json
import time
import uuid

import requests

from bench.common import RequestCounter, row

MEMBERS = 40
LINES = [{"description": "Washed arabica", "hs_code": "0901.11", "quantity": "100", "unit": "kg",
          "unit_price": {"amount": 1200, "currency": "USD"}}]


def main() -> None:
    import os

    from chalicelib import aws
    from chalicelib.api.signatures import sign
    from sandbox.run import Sandbox
    from sandbox.token import mint

    print(f"A co-operative of {MEMBERS} members paid for one order (moto server, real ASL, MTN simulator)")
    os.environ["MIZANI_LOG_LEVEL"] = "WARNING"
    os.environ["MIZANI_SCHEDULE_SECONDS"] = "0"
    with Sandbox(ports=0) as world:
        http = requests.Session()

        def call(method, path, role, sub, body=None):
            headers = {"Authorization": f"Bearer {mint(role, sub)}", "Idempotency-Key": uuid.uuid4().hex}
            reply = http.request(method, world.api_url + path, json=body, headers=headers, timeout=30)
            reply.raise_for_status()
            return reply.json()

        coop = "bench-members-coop"
        call("POST", "/v1/sellers", "seller", coop,
             {"name": "Bench Co-op", "country": "RW", "payout": {"rail": "mtn_momo", "msisdn": "250788000222", "currency": "RWF"}})
        started = time.perf_counter()
        members = [call("POST", f"/v1/sellers/{coop}/members", "seller", coop,
                        {"name": f"Farmer {i}", "payout": {"rail": "mtn_momo", "msisdn": f"25078830{i:04d}", "currency": "RWF"}})
                   for i in range(MEMBERS)]
        row(f"register {MEMBERS} members (wallet check at the rail included)",
            f"{(time.perf_counter() - started) / MEMBERS * 1000:.0f} ms per member")
        order = call("POST", "/v1/orders", "buyer", "bench-buyer", {"seller_id": coop, "pay_currency": "CNY", "lines": LINES})
        oid = order["order_id"]
        http.post(f"{world.sandbox_url}/sandbox/payments/{order['payment']['payment_intent_id']}/pay",
                  json={"outcome": "succeeded"}, timeout=30)
        call("PUT", f"/v1/orders/{oid}/allocation", "seller", coop,
             {"shares": [{"member_id": m["member_id"], "quantity": 1 + i % 5} for i, m in enumerate(members)], "retain_bps": 100})
        call("POST", f"/v1/orders/{oid}/shipment", "seller", coop, {"carrier": "DHL", "tracking_number": "B1", "customs_declaration_ref": "D1"})
        counter = RequestCounter(aws.dynamodb())
        counter.reset()
        polls = 0
        started = time.perf_counter()
        body = json.dumps({"event_id": uuid.uuid4().hex, "order_id": oid, "customs_declaration_ref": "D1",
                           "status": "cleared", "office": "Kigali", "occurred_at": "2026-11-28T00:00:00Z"}).encode()
        http.post(world.api_url + "/v1/webhooks/customs", data=body,
                  headers={"Mizani-Signature": sign(body, world.env.get("MIZANI_CUSTOMS_SECRET", "customs-local-secret"))}, timeout=30)
        deadline = time.monotonic() + 300
        while True:
            polls += 1
            status = call("GET", f"/v1/orders/{oid}", "admin", "bench")["status"]
            if status in ("settled", "payout_failed", "manual_review") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
        total = counter.total() - polls  # the benchmark's own polls are one GetItem each
        row(f"customs cleared → {status}, {MEMBERS} members paid", f"{elapsed:.1f} s ({MEMBERS / elapsed:.1f} members/s)")
        row("DynamoDB requests per member paid (release, share chains, payout, SMS)", f"{total / MEMBERS:.1f}")
        row("  of which TransactWriteItems", f"{counter.calls['TransactWriteItems'] / MEMBERS:.1f}")


if __name__ == "__main__":
    main()
