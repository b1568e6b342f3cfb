"""The SMS outbox: messages are stored first, then drained to the gateway.

``enqueue`` is idempotent per message id (derived from the event, e.g.
``paid:<order_id>``), so a retried Lambda never queues a second copy. ``drain``
claims each pending message with one conditional write (two overlapping drains never
send the same message), sends it and marks it sent; a crash between the gateway's answer
and the mark can send one message twice after the claim lapses (at-least-once), never lose it. Messages
are plain words, at most 160 characters, amounts in the seller's currency.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from chalicelib.documents import DocumentExists, Documents
from chalicelib.errors import MizaniError
from chalicelib.notify.messages import SMS_MAX_CHARS

#: How long a drain may hold a message before another may take it over (a crashed drain).
CLAIM_LEASE_SECONDS = 120
_PENDING = "outbox#pending"


class Outbox:
    def __init__(self, docs: Documents, gateway_factory):
        self.docs = docs
        self.gateway_factory = gateway_factory
        self._gateway = None

    @property
    def gateway(self):
        if self._gateway is None:
            self._gateway = self.gateway_factory()
        return self._gateway

    def enqueue(self, message_id: str, to_msisdn: str, text: str) -> None:
        now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        to = "+" + to_msisdn.lstrip("+")
        try:
            self.docs.put_new(f"sms#{message_id}", {"message_id": message_id, "to": to, "message": text[:SMS_MAX_CHARS],
                                                    "status": "pending", "created_at": now})
        except DocumentExists:
            return  # already queued by an earlier attempt
        self.docs.put_new(f"smsq#{message_id}", {"message_id": message_id}, index=(_PENDING, f"{now}#{message_id}"))

    def _claim(self, message_id: str) -> dict | None:
        """Take the message for this drain (one conditional write): two drains that overlap
        never both send it. A claim older than ``CLAIM_LEASE_SECONDS`` (a crashed drain) lapses."""
        now = datetime.now(timezone.utc)
        lapsed = (now - timedelta(seconds=CLAIM_LEASE_SECONDS)).isoformat()
        won = {"message": None}

        def claim(m: dict) -> dict | None:
            won["message"] = None  # decided again on every optimistic attempt
            if m["status"] == "pending" or (m["status"] == "sending" and m.get("claimed_at", "") < lapsed):
                won["message"] = {**m, "status": "sending", "claimed_at": now.isoformat()}
                return won["message"]
            return None

        try:
            self.docs.update(f"sms#{message_id}", claim)
        except KeyError:
            return None
        if won["message"] is None:
            current = self.docs.get(f"sms#{message_id}")
            if current and current["status"] == "sent":
                self.docs.delete(f"smsq#{message_id}")
        return won["message"]

    def drain(self, limit: int = 50) -> int:
        """Send pending messages, oldest first; returns how many were sent now."""
        sent = 0
        for marker in self.docs.query_index(_PENDING, limit=limit, newest_first=False):
            message_id = marker["message_id"]
            message = self._claim(message_id)
            if message is None:
                continue  # sent already, or another drain holds it
            try:
                provider_id = self.gateway.send(message["to"], message["message"])
            except MizaniError:
                self.docs.update(f"sms#{message_id}", lambda m: {**m, "status": "pending"})
                continue  # back to pending; the next drain retries
            self.docs.update(f"sms#{message_id}", lambda m: {**m, "status": "sent", "provider_id": provider_id})
            self.docs.delete(f"smsq#{message_id}")
            sent += 1
        return sent
