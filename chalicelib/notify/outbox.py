"""The SMS outbox: messages are stored first, then drained to the gateway.

``enqueue`` is idempotent per message id (derived from the event, e.g.
``paid:<order_id>``), so a retried Lambda never queues a second copy. ``drain``
sends what is pending and marks it sent; a crash between the gateway's answer and
the mark can send one message twice (at-least-once), never lose it. Messages
are plain words, at most 160 characters, amounts in the seller's currency.
"""
from __future__ import annotations

from datetime import datetime, timezone

from chalicelib.documents import DocumentExists, Documents
from chalicelib.errors import MizaniError
from chalicelib.money import Money

SMS_MAX_CHARS = 160
_PENDING = "outbox#pending"

_RAIL_NAMES = {"mtn_momo": "MTN MoMo", "mpesa": "M-Pesa"}


def order_ref(order_id: str) -> str:
    """The short reference a farmer can read out on the phone."""
    return order_id[-8:].upper()


def compose(event: str, order: dict, amount: Money | None = None, provider_ref: str | None = None) -> str:
    """The message for ``event``: one of paid, cleared, payout_sent, payout_failed."""
    ref = order_ref(order["order_id"])
    payout = amount or Money(order["payout"]["amount"], order["payout"]["currency"])
    rail = _RAIL_NAMES.get((order.get("payout_route") or {}).get("rail", ""), "mobile money")
    texts = {
        "paid": f"Mizani: order {ref} is paid. {payout} is held in escrow for you. Ship it and declare it to customs.",
        "cleared": f"Mizani: customs cleared order {ref}. {payout} is on its way to your {rail} wallet.",
        "payout_sent": f"Mizani: {payout} sent to your {rail} wallet for order {ref}." + (f" Ref {provider_ref}." if provider_ref else ""),
        "payout_failed": f"Mizani: we could not send {payout} for order {ref}. It is safe in your Mizani balance. We will retry.",
    }
    text = texts[event]
    if len(text) > SMS_MAX_CHARS:
        text = text[: SMS_MAX_CHARS - 1] + "."
    return text


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

    def drain(self, limit: int = 50) -> int:
        """Send pending messages, oldest first; returns how many were sent now."""
        sent = 0
        for marker in self.docs.query_index(_PENDING, limit=limit, newest_first=False):
            message_id = marker["message_id"]
            message = self.docs.get(f"sms#{message_id}")
            if message and message["status"] == "pending":
                try:
                    provider_id = self.gateway.send(message["to"], message["message"])
                except MizaniError:
                    continue  # stays pending; the next drain retries
                self.docs.update(f"sms#{message_id}", lambda m: {**m, "status": "sent", "provider_id": provider_id})
                sent += 1
            self.docs.delete(f"smsq#{message_id}")
        return sent
