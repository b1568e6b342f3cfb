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
from chalicelib.money import Money
from chalicelib.rails import display_name

SMS_MAX_CHARS = 160
#: How long a drain may hold a message before another may take it over (a crashed drain).
CLAIM_LEASE_SECONDS = 120
_PENDING = "outbox#pending"



def order_ref(order_id: str) -> str:
    """The short reference a farmer can read out on the phone."""
    return order_id[-8:].upper()


def compose(event: str, order: dict, amount: Money | None = None, provider_ref: str | None = None,
            unpaid: Money | None = None) -> str:
    """The message for ``event``: one of paid, cleared, payout_sent, payout_partial (``amount`` reached
    the wallet, ``unpaid`` did not), payout_failed. It says only what has happened: nothing retries a
    failed payout on its own, so the message says where the money is and that it can be withdrawn."""
    ref = order_ref(order["order_id"])
    payout = amount or Money(order["payout"]["amount"], order["payout"]["currency"])
    rail = display_name((order.get("payout_route") or {}).get("rail", ""))
    texts = {
        "paid": f"Mizani: order {ref} is paid. {payout} is held in escrow for you. Ship it and declare it to customs.",
        "cleared": f"Mizani: customs cleared order {ref}. {payout} is on its way to your {rail} wallet.",
        "payout_sent": f"Mizani: {payout} sent to your {rail} wallet for order {ref}." + (f" Ref {provider_ref}." if provider_ref else ""),
        "payout_partial": f"Mizani: {payout} sent to your {rail} wallet for order {ref}. {unpaid} could not be sent;"
                          f" it is safe in your Mizani balance and you can withdraw it.",
        "payout_failed": f"Mizani: we could not send {payout} for order {ref}. It is safe in your Mizani balance"
                         f" and you can withdraw it.",
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
