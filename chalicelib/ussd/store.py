"""Where the USSD service keeps its state: each number's PIN record and its current session.

``UssdStore`` is the port; ``MemoryUssdStore`` its fake twin; ``DynamoUssdStore``
(``dynamo_store.py``) the adapter on the app table. The lockout rule lives in the store so that
the adapter can enforce it in its conditions: ``wrong_pin`` counts one failure per attempt id
(a gateway retry of the same request is not a second failure), and the ``MAX_FAILURES``-th
failure in a row locks the number for ``LOCK_SECONDS``; ``right_pin`` ends the row.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Protocol

MAX_FAILURES = 3
LOCK_SECONDS = 30 * 60


@dataclass(frozen=True)
class PinRecord:
    """A number's PIN (its hash only) and its current row of failures."""

    pin_hash: str
    fails: int = 0
    locked_until: int = 0  # epoch seconds; 0: never locked

    def locked(self, now: int) -> bool:
        return self.locked_until > now


@dataclass(frozen=True)
class PinFailure:
    """What one wrong PIN did: locked the number (``locked_until``), or left ``attempts_left``."""

    attempts_left: int
    locked_until: int = 0

    @property
    def locked(self) -> bool:
        return self.locked_until > 0


@dataclass(frozen=True)
class SessionRecord:
    """A number's latest USSD session: the gateway's session id, the menu state (never a PIN), how
    many inputs of the session's ``text`` it has taken, the last screen it answered, and who calls
    in which language (so that the session's later requests need not ask again)."""

    session_id: str
    state: dict
    consumed: int
    screen: str  # "CON ..." or "END ..."
    expires_at: int  # epoch seconds: after this the session is over for resuming too
    version: int = 0  # 0: not stored yet
    caller: dict | None = None  # the Caller's fields, as the directory answered when the session opened
    lang: str = "en"  # the language the session speaks


class UssdStore(Protocol):
    """PIN records (the hash and the row of failures) and each number's latest session."""

    def get_pin(self, msisdn: str) -> PinRecord | None: ...

    def create_pin(self, msisdn: str, pin_hash: str, now: int) -> bool:
        """Store the number's first PIN; False if it has one already."""

    def replace_pin(self, msisdn: str, pin_hash: str, now: int) -> bool:
        """Change the PIN (the row of failures ends); False if the number is locked or has no PIN."""

    def wrong_pin(self, msisdn: str, attempt_id: str, now: int) -> PinFailure:
        """Count one failure for ``attempt_id`` (again for the same id: counted once)."""

    def right_pin(self, msisdn: str, now: int) -> bool:
        """End the row of failures; False if the number is locked."""

    def get_session(self, msisdn: str) -> SessionRecord | None: ...

    def put_session(self, msisdn: str, record: SessionRecord) -> bool:
        """Store ``record`` if the stored one is still ``record.version`` (0: none); False if another
        request wrote in between."""


@dataclass
class _MemoryPin:
    record: PinRecord
    attempt_ids: set[str] = field(default_factory=set)


class MemoryUssdStore:
    """In-memory ``UssdStore`` with the adapter's rules (one lock stands in for the conditions)."""

    def __init__(self) -> None:
        self.pins: dict[str, _MemoryPin] = {}
        self.sessions: dict[str, SessionRecord] = {}
        self._lock = threading.Lock()

    def get_pin(self, msisdn):
        with self._lock:
            found = self.pins.get(msisdn)
            return found.record if found else None

    def create_pin(self, msisdn, pin_hash, now):
        with self._lock:
            if msisdn in self.pins:
                return False
            self.pins[msisdn] = _MemoryPin(PinRecord(pin_hash))
            return True

    def replace_pin(self, msisdn, pin_hash, now):
        with self._lock:
            found = self.pins.get(msisdn)
            if found is None or found.record.locked(now):
                return False
            self.pins[msisdn] = _MemoryPin(replace(found.record, pin_hash=pin_hash, fails=0))
            return True

    def wrong_pin(self, msisdn, attempt_id, now):
        with self._lock:
            found = self.pins[msisdn]
            rec = found.record
            if rec.locked(now):
                return PinFailure(0, rec.locked_until)
            if attempt_id in found.attempt_ids:
                return PinFailure(MAX_FAILURES - rec.fails)
            if rec.fails + 1 >= MAX_FAILURES:
                found.record = replace(rec, fails=0, locked_until=now + LOCK_SECONDS)
                found.attempt_ids = set()
                return PinFailure(0, found.record.locked_until)
            found.record = replace(rec, fails=rec.fails + 1)
            found.attempt_ids.add(attempt_id)
            return PinFailure(MAX_FAILURES - found.record.fails)

    def right_pin(self, msisdn, now):
        with self._lock:
            found = self.pins[msisdn]
            if found.record.locked(now):
                return False
            found.record = replace(found.record, fails=0)
            found.attempt_ids = set()
            return True

    def get_session(self, msisdn):
        with self._lock:
            return self.sessions.get(msisdn)

    def put_session(self, msisdn, record):
        with self._lock:
            stored = self.sessions.get(msisdn)
            if (stored.version if stored else 0) != record.version:
                return False
            self.sessions[msisdn] = replace(record, version=record.version + 1)
            return True
