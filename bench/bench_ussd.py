"""USSD latency through ``POST /v1/ussd`` on the sandbox (moto server, simulators over HTTP, the real
directory): p50 / p99 per kind of request, and DynamoDB requests per request.

A co-operative (its own number) and one of its members dial as Africa's Talking would: a new session
per dial, ``text`` accumulating. Their balances are funded with one direct ledger transfer each (bench
set-up only). Withdrawals go through the payout service to the MTN simulator, as in production.
"""
from __future__ import annotations

import statistics
import time
import uuid
from collections import defaultdict
from urllib.parse import urlencode

import requests

from bench.common import RequestCounter, row

PIN = "482916"
DIALS = 60  # sessions per caller and kind of request
COOP_MSISDN, MEMBER_MSISDN = "250788000611", "250788000612"


def _percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def main() -> None:
    import os

    from chalicelib import aws, bootstrap
    from chalicelib.accounts import member_account_id, seller_account_id
    from chalicelib.ledger import Transfer
    from sandbox.run import Sandbox
    from sandbox.token import mint

    print(f"USSD on the sandbox: {DIALS} dials per caller and request kind, through POST /v1/ussd over HTTP")
    os.environ["MIZANI_LOG_LEVEL"] = "WARNING"
    os.environ["MIZANI_SCHEDULE_SECONDS"] = "0"  # no background ticks: count only the work measured
    with Sandbox(ports=0) as world:
        http = requests.Session()
        http.trust_env = False
        api = world.api_url

        def call(path, sub, body):
            headers = {"Authorization": f"Bearer {mint('seller', sub)}", "Idempotency-Key": uuid.uuid4().hex}
            reply = http.post(api + path, json=body, headers=headers, timeout=30)
            reply.raise_for_status()
            return reply.json()

        coop_id = "bench-ussd-coop"
        call("/v1/sellers", coop_id, {"name": "Maraba Coffee Co-operative", "country": "RW",
                                      "payout": {"rail": "mtn_momo", "msisdn": COOP_MSISDN, "currency": "RWF"}})
        member = call(f"/v1/sellers/{coop_id}/members", coop_id,
                      {"name": "Uwimana Jeanne", "payout": {"rail": "mtn_momo", "msisdn": MEMBER_MSISDN, "currency": "RWF"}})
        for account in (seller_account_id(coop_id), member_account_id(member["member_id"])):
            bootstrap.ledger().transfer(Transfer(f"bench-ussd-funding-{account}", "fx:RWF", account, 100 * DIALS * 2, "RWF"))

        counter = RequestCounter(aws.dynamodb())
        times: dict[str, list[float]] = defaultdict(list)
        calls: dict[str, int] = defaultdict(int)

        def send(kind: str, session_id: str, msisdn: str, inputs: list[str]) -> str:
            body = urlencode({"sessionId": session_id, "serviceCode": "*384*2026#", "phoneNumber": f"+{msisdn}",
                              "networkCode": "63510", "text": "*".join(inputs)})
            counter.reset()
            started = time.perf_counter()
            reply = http.post(f"{api}/v1/ussd", data=body, timeout=30,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
            times[kind].append((time.perf_counter() - started) * 1000)
            calls[kind] += counter.total()
            assert reply.status_code == 200, reply.text
            return reply.text

        def dial(msisdn: str, *steps: tuple[str, str]) -> str:
            """One session: the opening request, then each (kind, input) in turn."""
            session_id = f"ATUid_{uuid.uuid4().hex[:16]}"
            answer = send("open a session (menu)", session_id, msisdn, [])
            typed: list[str] = []
            for kind, value in steps:
                typed.append(value)
                answer = send(kind, session_id, msisdn, typed)
            return answer

        for msisdn in (COOP_MSISDN, MEMBER_MSISDN):
            dial(msisdn, ("first use: the PIN", PIN), ("first use: the PIN again (scrypt)", PIN))
        for _ in range(DIALS):
            for msisdn in (COOP_MSISDN, MEMBER_MSISDN):
                dial(msisdn, ("Balance", "1"))
                dial(msisdn, ("Payments", "2"))
                last = dial(msisdn, ("Withdraw (the balance)", "3"), ("withdraw: the amount (the balance)", "100"),
                            ("withdraw: the PIN, then the payout (scrypt + MTN)", PIN))
                assert last.startswith("END 100 RWF"), last
        dial(COOP_MSISDN, ("Orders (co-operative)", "6"))

        for kind, samples in times.items():
            if len(samples) < 2:
                row(kind, f"{samples[0]:.1f} ms (once), {calls[kind] / len(samples):.1f} DynamoDB requests")
                continue
            row(kind, f"p50 {_percentile(samples, 50):.1f} ms, p99 {_percentile(samples, 99):.1f} ms "
                      f"(n={len(samples)}), {calls[kind] / len(samples):.1f} DynamoDB requests each")
        every = [ms for samples in times.values() for ms in samples]
        row("every USSD request", f"p50 {_percentile(every, 50):.1f} ms, p99 {_percentile(every, 99):.1f} ms "
                                  f"(n={len(every)}, max {max(every):.1f} ms)")
        http.close()


if __name__ == "__main__":
    main()
