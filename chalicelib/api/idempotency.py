"""The ``Idempotency-Key`` protocol, after Powertools' idempotency utility.

A POST that creates or moves something carries ``Idempotency-Key`` (1–255 chars).
The first request with a key *claims* it: a conditional put of an ``INPROGRESS``
record, possible only if no record exists or the existing one has expired. The
record remembers a hash of the body. When the handler finishes, the record is
completed with the response (status + body) and kept for 24 hours, an expiry
decided here (not by DynamoDB TTL, which deletes late).

Later requests with the same key (per caller and per method + path):

* same body, completed        → the stored response, replayed (``Idempotent-Replayed: true``);
* different body              → 422 ``idempotency_key_reused``;
* same body, still in flight  → 409 ``request_in_progress``.

Domain outcomes (4xx) are stored and replayed like successes. An unexpected
failure (5xx, ``ProviderUnavailable``) deletes the record so the client may retry.

``IdempotencyStore`` is the port; ``DynamoIdempotencyStore`` (the app table) and
``FakeIdempotencyStore`` (in memory) implement it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

from chalicelib import aws
from chalicelib.errors import BusinessRuleViolation, Conflict, ValidationError

logger = logging.getLogger("mizani.api")

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
#: How long a claim blocks the key while its request runs. Longer than the API
#: Lambda's timeout, so a live request is never overtaken by a retry; a claim
#: left by a crashed container frees itself after this.
IN_PROGRESS_SECONDS = 120
#: How long a completed response is replayed.
COMPLETED_SECONDS = 24 * 3600


class Status(str, Enum):
    """A record's life: claimed while the request runs, then completed with its response."""

    INPROGRESS = "INPROGRESS"
    COMPLETED = "COMPLETED"


@dataclass(frozen=True)
class IdempotencyRecord:
    """One key's record: who holds it, for which body, and (once done) the response."""

    record_key: str
    status: Status
    payload_hash: str
    expires_at: int  # unix seconds; an expired record counts as absent
    response_status: int | None = None
    response_body: str | None = None

    def is_expired(self, now: int) -> bool:
        return self.expires_at < now


@dataclass(frozen=True)
class StoredResponse:
    """A response as the client sees it: status code and JSON text."""

    status: int
    body: str
    replayed: bool = False


# -- errors ---------------------------------------------------------------


class IdempotencyKeyRequired(ValidationError):
    """The route creates or moves something and the request carries no ``Idempotency-Key``."""

    code = "idempotency_key_required"


class IdempotencyKeyReused(BusinessRuleViolation):
    """Payload does not match the stored idempotency record: the key was used for another body."""

    code = "idempotency_key_reused"


class RequestInProgress(Conflict):
    """A request with this key is still being processed; retry after it finishes."""

    code = "request_in_progress"


# -- helpers ----------------------------------------------------------------


def require_key(raw: str | None) -> str:
    """The request's key, checked: present, 1–255 characters."""
    if raw is None or raw == "":
        raise IdempotencyKeyRequired(
            message=f"this request creates or moves something: send an {HEADER} header (1-{MAX_KEY_LENGTH} chars)"
        )
    if len(raw) > MAX_KEY_LENGTH:
        raise ValidationError(
            "validation_error",
            f"{HEADER} is at most {MAX_KEY_LENGTH} characters",
            path=f"header.{HEADER}",
        )
    return raw


def record_key(sub: str, method: str, path: str, key: str) -> str:
    """Keys are scoped per caller and per route: two parties may pick the same key."""
    return f"idem#{sub}#{method.upper()} {path}#{key}"


def payload_hash(payload) -> str:
    """sha256 of the canonical JSON of the parsed body: whitespace and key order do not matter."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# -- the port -----------------------------------------------------------------


class IdempotencyStore(ABC):
    """Where idempotency records live."""

    @abstractmethod
    def claim(self, record: IdempotencyRecord, now: int) -> IdempotencyRecord | None:
        """Write ``record`` (INPROGRESS) only if no live record has its key.

        Returns ``None`` when the claim succeeded, else the live record that holds the key.
        """

    @abstractmethod
    def complete(self, record: IdempotencyRecord) -> None:
        """Replace the claim with the COMPLETED record carrying the response."""

    @abstractmethod
    def release(self, record_key: str) -> None:
        """Delete the record: the request failed in a way the client may retry."""

    @abstractmethod
    def get(self, record_key: str) -> IdempotencyRecord | None:
        """The record, or ``None`` (expired records are returned; callers check)."""


class FakeIdempotencyStore(IdempotencyStore):
    """In-memory twin of the DynamoDB store, with the same claim condition."""

    def __init__(self) -> None:
        self.records: dict[str, IdempotencyRecord] = {}
        self._lock = threading.Lock()

    def claim(self, record: IdempotencyRecord, now: int) -> IdempotencyRecord | None:
        with self._lock:
            existing = self.records.get(record.record_key)
            if existing is not None and not existing.is_expired(now):
                return existing
            self.records[record.record_key] = record
            return None

    def complete(self, record: IdempotencyRecord) -> None:
        with self._lock:
            self.records[record.record_key] = record

    def release(self, record_key: str) -> None:
        with self._lock:
            self.records.pop(record_key, None)

    def get(self, record_key: str) -> IdempotencyRecord | None:
        return self.records.get(record_key)


class DynamoIdempotencyStore(IdempotencyStore):
    """Records in the single ``app`` table: pk ``idem#<sub>#<METHOD path>#<key>``, sk ``idem``."""

    SK = "idem"

    def __init__(self, table_name: str, client=None) -> None:
        self.table_name = table_name
        self._client = client

    client = aws.LazyDynamoClient()

    def _item(self, record: IdempotencyRecord) -> dict:
        item = {
            "pk": {"S": record.record_key},
            "sk": {"S": self.SK},
            "status": {"S": record.status.value},
            "payload_hash": {"S": record.payload_hash},
            "expires_at": {"N": str(record.expires_at)},
        }
        if record.response_status is not None:
            item["response_status"] = {"N": str(record.response_status)}
        if record.response_body is not None:
            item["response_body"] = {"S": record.response_body}
        return item

    @staticmethod
    def _record(item: dict) -> IdempotencyRecord:
        return IdempotencyRecord(
            record_key=item["pk"]["S"],
            status=Status(item["status"]["S"]),
            payload_hash=item["payload_hash"]["S"],
            expires_at=int(item["expires_at"]["N"]),
            response_status=int(item["response_status"]["N"]) if "response_status" in item else None,
            response_body=item["response_body"]["S"] if "response_body" in item else None,
        )

    def claim(self, record: IdempotencyRecord, now: int) -> IdempotencyRecord | None:
        for _ in range(3):
            try:
                # The claim: nobody holds the key, or the holder's record has expired
                # (a finished response older than 24 h, or a claim abandoned by a crash).
                self.client.put_item(
                    TableName=self.table_name,
                    Item=self._item(record),
                    ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                    ExpressionAttributeValues={":now": {"N": str(now)}},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return None
            except self.client.exceptions.ConditionalCheckFailedException as exc:
                item = exc.response.get("Item")
                existing = self._record(item) if item else self.get(record.record_key)
                if existing is not None:
                    return existing
                # Released between our put and our read: try to claim again.
        raise RequestInProgress(message="this Idempotency-Key is contended; retry shortly")

    def complete(self, record: IdempotencyRecord) -> None:
        self.client.put_item(TableName=self.table_name, Item=self._item(record))

    def release(self, record_key: str) -> None:
        self.client.delete_item(TableName=self.table_name, Key={"pk": {"S": record_key}, "sk": {"S": self.SK}})

    def get(self, record_key: str) -> IdempotencyRecord | None:
        found = self.client.get_item(
            TableName=self.table_name, Key={"pk": {"S": record_key}, "sk": {"S": self.SK}}, ConsistentRead=True
        ).get("Item")
        return self._record(found) if found else None


# -- the protocol -----------------------------------------------------------------


class Idempotency:
    """Runs a handler at most once per key; replays its stored response afterwards."""

    def __init__(self, store: IdempotencyStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def run(self, record_key: str, payload, handler: Callable[[], StoredResponse]) -> StoredResponse:
        """Claim ``record_key`` for ``payload`` and run ``handler``, or answer from the record.

        ``handler`` returns the response to store (success or domain 4xx); anything it
        raises means "not done": the claim is deleted and the exception propagates.
        """
        digest = payload_hash(payload)
        now = int(self.clock())
        claim = IdempotencyRecord(record_key, Status.INPROGRESS, digest, now + IN_PROGRESS_SECONDS)
        existing = self.store.claim(claim, now)
        if existing is not None:
            return self._answer_from(existing, digest)
        try:
            response = handler()
        except BaseException:
            self.store.release(record_key)
            raise
        done = replace(
            claim,
            status=Status.COMPLETED,
            expires_at=int(self.clock()) + COMPLETED_SECONDS,
            response_status=response.status,
            response_body=response.body,
        )
        try:
            self.store.complete(done)
        except Exception:
            # The work is done: answer it. The claim expires on its own; a retry
            # before then gets 409, after it the services' own idempotency holds.
            logger.exception("could not store the idempotent response for %s", record_key)
        return response

    @staticmethod
    def _answer_from(existing: IdempotencyRecord, digest: str) -> StoredResponse:
        # The key is bound to the first body, whatever the record's status.
        if existing.payload_hash != digest:
            raise IdempotencyKeyReused(
                message="this Idempotency-Key was already used with a different request body"
            )
        if existing.status is Status.INPROGRESS or existing.response_status is None:
            raise RequestInProgress(message="a request with this Idempotency-Key is still in progress; retry shortly")
        return StoredResponse(existing.response_status, existing.response_body or "", replayed=True)
