"""Make moto's DynamoDB safe under concurrent requests (sandbox and tests only).

moto's in-memory DynamoDB is not thread-safe: two TransactWriteItems at once on the
threaded server can fail with "dictionary changed size during iteration" (a 500)
halfway through. Real DynamoDB serialises conflicting transactions itself; here we
serialise every DynamoDB request with one lock, which is what a single partition
would do. Never imported by chalicelib or app.py.
"""
from __future__ import annotations

import functools
import threading

_lock = threading.RLock()
_patched = False


def serialize_dynamodb() -> None:
    global _patched
    if _patched:
        return
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action

    @functools.wraps(original)
    def call_action(self):
        with _lock:
            return original(self)

    DynamoHandler.call_action = call_action
    _patched = True
