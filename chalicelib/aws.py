"""Lazily created boto3 clients, cached per container.

boto3 itself honours ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_DYNAMODB`` / ...,
so the local stage reaches moto's server exactly as a deployed Lambda reaches
AWS: no special code path. ``reset()`` drops the cache (tests that swap endpoints).
"""
from __future__ import annotations

import threading

_lock = threading.Lock()
_clients: dict[str, object] = {}


def client(service: str):
    """A cached low-level boto3 client for ``service`` (imported on first use: cold start)."""
    found = _clients.get(service)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(service)
        if found is None:
            import boto3
            from botocore.config import Config

            from chalicelib import settings

            config = Config(
                retries={"mode": "standard", "max_attempts": 4},
                connect_timeout=3,
                read_timeout=10,
                max_pool_connections=32,
                account_id_endpoint_mode="disabled",
            )
            found = boto3.session.Session().client(service, region_name=settings.get().region, config=config)
            _clients[service] = found
    return found


def dynamodb():
    return client("dynamodb")


class LazyDynamoClient:
    """An adapter's ``client``: the one it was built with (``self._client``), else the container's
    DynamoDB client, created on first use so that building an adapter costs no boto3 import."""

    def __get__(self, adapter, owner=None):
        if adapter is None:
            return self
        if adapter._client is None:
            adapter._client = dynamodb()
        return adapter._client


#: DynamoDB's limit of keys per BatchGetItem request.
BATCH_GET_KEYS = 100


def batch_get(client, table: str, keys: list[dict], **options) -> list[dict]:
    """Every stored item among ``keys`` (DynamoDB key dicts) of ``table``, read with ``BatchGetItem``
    (``BATCH_GET_KEYS`` a request, consistent reads unless ``options`` say otherwise; ``options``
    also carries a ``ProjectionExpression``). Keys DynamoDB hands back unprocessed (throttling, the
    16 MB reply limit) are asked again after a short backoff, as AWS's guidance says, until none is
    left. Items come in no particular order; a key that names no item is simply absent."""
    import time

    found: list[dict] = []
    for start in range(0, len(keys), BATCH_GET_KEYS):
        request = {table: {"Keys": keys[start:start + BATCH_GET_KEYS], "ConsistentRead": True, **options}}
        attempt = 0
        while request:
            if attempt:
                time.sleep(min(0.05 * 2 ** (attempt - 1), 1.0))
            reply = client.batch_get_item(RequestItems=request)
            found.extend(reply.get("Responses", {}).get(table, []))
            request = reply.get("UnprocessedKeys") or {}
            attempt += 1
    return found


def stepfunctions():
    return client("stepfunctions")


def s3():
    return client("s3")


def reset() -> None:
    with _lock:
        _clients.clear()
