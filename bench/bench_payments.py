"""DynamoDB requests per payment, for each buyers' payment method, on the sandbox: checkout (pricing,
quotes, the payment started) and the money landing in escrow (webhook, callback + poll, or camt.054),
until the order is ``paid``; then one poll of an open mobile-money collection. Figures, no assertions."""
from __future__ import annotations

import time
import uuid

import requests

from bench.common import RequestCounter, row

LINES = [{"description": "Washed arabica", "hs_code": "0901.11", "quantity": "10", "unit": "kg",
          "unit_price": {"amount": 1200, "currency": "USD"}}]
#: (method, pay currency, payer wallet): the wallets are ordinary numbers each simulator pays
METHODS = [
    ("card", "CNY", None),
    ("alipay", "CNY", None),
    ("wechat_pay", "CNY", None),
    ("mtn_momo", "RWF", "250788123456"),
    ("mpesa", "KES", "254712345678"),
    ("bank_transfer", "USD", None),
]
ROUNDS = 5
POLLS = [0]


def main() -> None:
    import os

    from chalicelib import aws, bootstrap
    from sandbox.run import Sandbox
    from sandbox.token import mint

    print("DynamoDB requests per payment, by method (sandbox: moto server, simulators over HTTP)")
    os.environ["MIZANI_LOG_LEVEL"] = "WARNING"
    os.environ["MIZANI_SCHEDULE_SECONDS"] = "0"  # no background ticks: count only the work measured
    with Sandbox(ports=0) as world:
        http = requests.Session()
        http.trust_env = False

        def call(method, path, role, sub, body=None):
            headers = {"Authorization": f"Bearer {mint(role, sub)}", "Idempotency-Key": uuid.uuid4().hex}
            reply = http.request(method, world.api_url + path, json=body, headers=headers, timeout=30)
            reply.raise_for_status()
            return reply.json()

        def wait_paid(order_id):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                POLLS[0] += 1
                if call("GET", f"/v1/orders/{order_id}", "admin", "bench")["status"] == "paid":
                    return True
                time.sleep(0.05)
            return False

        call("POST", "/v1/sellers", "seller", "bench-coop",
             {"name": "Bench Co-op", "country": "RW", "payout": {"rail": "mtn_momo", "msisdn": "250788000111", "currency": "RWF"}})
        counter = RequestCounter(aws.dynamodb())

        def taken():
            calls = dict(counter.calls)
            calls["GetItem"] = calls.get("GetItem", 0) - POLLS[0]  # the bench's own status reads
            counter.reset()
            POLLS[0] = 0
            return sum(calls.values()), calls.get("TransactWriteItems", 0)

        for method, currency, payer in METHODS:
            checkout, landing, commits = [], [], []
            for _ in range(ROUNDS):
                body = {"seller_id": "bench-coop", "pay_currency": currency, "lines": LINES, "payment_method": method}
                if payer:
                    body["payer_msisdn"] = payer
                counter.reset()
                POLLS[0] = 0
                order = call("POST", "/v1/orders", "buyer", f"bench-{method}", body)
                checkout.append(taken()[0])
                http.post(f"{world.sandbox_url}/sandbox/payments/{order['payment']['payment_id']}/pay",
                          json={"outcome": "succeeded"}, timeout=30)
                if not wait_paid(order["order_id"]):
                    raise SystemExit(f"{method}: the order was not paid")
                total, transacts = taken()
                landing.append(total)
                commits.append(transacts)
            row(f"{method}: checkout (POST /v1/orders, Idempotency-Key included)", f"{sum(checkout) / ROUNDS:.1f} requests")
            row(f"{method}: the money into escrow, until paid (workflow start included)",
                f"{sum(landing) / ROUNDS:.1f} requests ({sum(commits) / ROUNDS:.1f} TransactWriteItems)")

        # one schedule tick over open collections that nobody has paid yet (the poll-first cost)
        for i in range(ROUNDS):
            call("POST", "/v1/orders", "buyer", "bench-open", {"seller_id": "bench-coop", "pay_currency": "RWF",
                                                                "lines": LINES, "payment_method": "mtn_momo",
                                                                "payer_msisdn": "46733123453"})  # never answers
        counter.reset()
        asked = bootstrap.collections().poll_open()
        row("poll_collections: one tick, per open collection (no answer yet)",
            f"{counter.total() / max(asked, 1):.1f} requests ({asked} open)")


if __name__ == "__main__":
    main()
