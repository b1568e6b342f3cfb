"""``make demo``: the coffee story against the embedded sandbox.

Placeholder until the story is wired in: when ``sandbox/story.py`` exists its ``main()``
runs; otherwise this starts the ``Sandbox``, checks ``GET /v1/health`` and prints the
trial balance (``GET /v1/ledger/trial-balance``, as finance) if the route exists.
"""
from __future__ import annotations

import json
import sys


def _fallback() -> int:
    import requests

    from sandbox.run import Sandbox
    from sandbox.token import mint

    print("Starting the embedded sandbox...")
    with Sandbox() as world:
        print(world.describe())
        health = requests.get(world.api_url + "/v1/health", timeout=10)
        print(f"GET /v1/health -> {health.status_code} {health.text.strip()}")
        if health.status_code != 200:
            return 1
        reply = requests.get(
            world.api_url + "/v1/ledger/trial-balance",
            headers={"Authorization": f"Bearer {mint('finance', 'fin-1')}"},
            timeout=10,
        )
        if reply.status_code == 200:
            print("Trial balance:")
            print(json.dumps(reply.json(), indent=2))
        else:
            print(f"(no trial balance: GET /v1/ledger/trial-balance -> {reply.status_code})")
    return 0


def main() -> int:
    try:
        from sandbox import story
    except ModuleNotFoundError as error:
        if error.name != "sandbox.story":
            raise
        return _fallback()
    return story.main()


if __name__ == "__main__":
    sys.exit(main())
