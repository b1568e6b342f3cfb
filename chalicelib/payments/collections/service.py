"""``Collections``: a buyer's mobile-money payment from request to money in escrow, poll-first.

1. ``request`` (checkout): the collection's record is written first (``collection#<reference>``, the
   reference derived from the order: ``MZ`` + 10 base-36 characters, within M-Pesa's 12), then the rail is
   asked. A retried checkout finds the record and asks again only where that cannot ask the payer twice
   (MTN's ``X-Reference-Id``); the order's ``payment`` says ``method``, ``payment_id`` (the reference),
   ``payer_msisdn`` and ``status``.
2. ``advance`` asks the provider (``status``): ``succeeded`` -> ``on_paid(order_id, amount, reference)``
   (the escrow service books ``psp:<rail>:<CUR>`` -> ``escrow:<order>`` under ``pay:<order>``, so a
   second report of the same money moves nothing); ``failed`` -> ``on_failed``; anything else waits. A
   timeout is ``unknown``: the collection stays open and a later answer that it succeeded still pays
   the order, once.
3. ``poll_open`` (the ``poll_collections`` schedule) advances every open collection; a callback
   (``on_callback``) is a hint that advances one at once: refused unless it carries the collection's
   token, and never deciding by itself.
4. ``refund`` gives a succeeded collection back to the payer's wallet (MTN refund, M-Pesa reversal).
"""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone
from typing import Callable

from chalicelib.errors import BusinessRuleViolation, NotFound, ValidationError
from chalicelib.money import Money
from chalicelib.payments.checkout import RefundOutcome
from chalicelib.payments.collections.store import FINAL, CollectionStore
from chalicelib.payouts.rails.port import RailNotSent

log = logging.getLogger("mizani.collections")
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def collection_reference(order_id: str) -> str:
    """The order's collection reference: ``MZ`` + 10 base-36 characters of a SHA-256 of the order id."""
    number = int.from_bytes(hashlib.sha256(f"collection|{order_id}".encode()).digest()[:8], "big")
    body = ""
    for _ in range(10):
        number, digit = divmod(number, 36)
        body = _BASE36[digit] + body
    return "MZ" + body


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class Collections:
    """Collections over the rails' collection adapters (``rail_for(name)``) and the record store."""

    def __init__(self, docs, rail_for: Callable[[str], object], on_paid=None, on_failed=None, clock=_now):
        self.store = CollectionStore(docs)
        self.rail_for = rail_for
        self.on_paid = on_paid  # (order_id, amount, reference) -> the order: escrow.payment_received
        self.on_failed = on_failed  # (order_id, reason) -> the order: escrow.collection_failed
        self.clock = clock

    # -- 1. request --------------------------------------------------------------------------------
    def request(self, order_id: str, rail_name: str, amount: Money, payer_msisdn: str) -> dict:
        reference = collection_reference(order_id)
        record, created = self.store.create({"reference": reference, "order_id": order_id, "rail": rail_name,
                                             "amount": amount.to_json(), "payer_msisdn": payer_msisdn}, self.clock())
        if record["order_id"] != order_id:
            raise ValidationError("validation_error", "collection reference collision; retry the order")
        rail = self.rail_for(rail_name)
        if created or record["state"] == "requesting":  # each rail guards against asking the payer twice
            try:
                said = rail.request(reference, amount, payer_msisdn, f"Mizani order {order_id[-10:]}", record)
            except RailNotSent:
                log.warning("collection %s not sent (provider unreachable); the poller asks again", reference)
                said = None
            if said is not None:
                self._record(reference, said)
        record = self.store.get(reference)
        if record["state"] == "failed":  # the provider refused the request itself: no order to wait on it
            raise BusinessRuleViolation("payment_rejected", f"{rail_name} refused the collection request "
                                        f"({record.get('reason')})")
        return self.payment_view(record)

    @staticmethod
    def payment_view(record: dict) -> dict:
        """The order's ``payment`` (where the collection stands is the order's status and timeline)."""
        return {"provider": record["rail"], "method": record["rail"], "payment_id": record["reference"],
                "payer_msisdn": record["payer_msisdn"]}

    def _record(self, reference: str, said) -> dict:
        fields = {"last_status": {"state": said.state, "reason": said.reason}}
        if said.state == "failed":
            return self.store.finish(reference, "failed", {**fields, "reason": said.reason})
        state = "pending" if said.state in ("pending", "unknown") else None
        if said.state == "succeeded":
            state = None  # only advance() makes it final: it also books the money
        return self.store.update(reference, {**fields, **({"state": state} if state else {})})

    # -- 2./3. advance, poll, callbacks ----------------------------------------------------------------
    def advance(self, reference: str) -> dict:
        """Ask the provider about one collection and act on a final answer; returns the record."""
        record = self.store.get(reference)
        if record is None:
            raise NotFound("not_found", "no such collection")
        if record["state"] in FINAL:  # the order was told before the collection was closed
            return record
        rail = self.rail_for(record["rail"])
        amount = Money(record["amount"]["amount"], record["amount"]["currency"])
        if record["state"] == "requesting":
            try:  # the first request may not have reached the provider: the rail asks again only if it is safe
                rail.request(reference, amount, record["payer_msisdn"], f"Mizani order {record['order_id'][-10:]}", record)
            except RailNotSent:
                return record
            record = self.store.get(reference)
        said = rail.status(reference, record)
        # The order is told first, the collection closed after: a crash in between leaves it open, and the
        # next poll tells the order again (the escrow booking is idempotent under pay:<order>).
        if said.state == "succeeded":
            record = self.store.update(reference, {"provider_reference": said.provider_reference or record.get("receipt")})
            self._paid(record)
            record = self.store.finish(reference, "succeeded")
        elif said.state == "failed":
            if self.on_failed is not None:
                self.on_failed(record["order_id"], f"{record['rail']}: {said.reason}")
            record = self.store.finish(reference, "failed", {"reason": said.reason})
        else:
            record = self.store.update(reference, {"last_status": {"state": said.state, "reason": said.reason}})
        return record

    def _paid(self, record: dict) -> None:
        if self.on_paid is not None:
            amount = Money(record["amount"]["amount"], record["amount"]["currency"])
            self.on_paid(record["order_id"], amount, record["reference"])

    def poll_open(self, limit: int = 100) -> int:
        """Advance every open collection (the schedule); the number asked about."""
        asked = 0
        for reference in self.store.open(limit):
            try:
                self.advance(reference)
                asked += 1
            except Exception:  # one collection's trouble never stops the others
                log.exception("collection %s could not be advanced", reference)
        return asked

    def on_callback(self, rail_name: str, reference: str, token: str | None, body) -> dict | None:
        """A provider's callback on the collection's own URL: its hint kept, then the provider asked.
        ``None`` when refused (wrong token, another collection, not one of ours): nothing changes."""
        record = self.store.get(reference)
        if record is None or record["rail"] != rail_name:
            return None
        try:
            hint = self.rail_for(rail_name).callback_hint(reference, token, body, record)
        except (ValueError, KeyError, TypeError, RecursionError):
            raise ValidationError("validation_error", f"not a {rail_name} callback") from None
        if hint is None:
            return None
        if hint:
            self.store.update(reference, hint)
        if record["state"] in FINAL and not (hint or {}).get("refund"):
            return record
        return self.advance(reference) if record["state"] not in FINAL else self.store.get(reference)

    # -- 4. refunds --------------------------------------------------------------------------------------
    def refund(self, reference: str, amount: Money) -> RefundOutcome:
        record = self.store.get(reference)
        if record is None or record["state"] != "succeeded":
            return RefundOutcome("failed", reference=reference, reason="nothing was collected")
        rail = self.rail_for(record["rail"])
        said = rail.refund_status(reference, record) if (record.get("refund") or {}).get("done") else None
        if said is None:
            try:
                said = rail.refund(reference, amount, record)
            except RailNotSent as err:
                return RefundOutcome("pending", reference=reference, reason=err.message)
        if said.state in ("succeeded", "failed"):
            current = self.store.get(reference).get("refund") or {}
            self.store.update(reference, {"refund": {**current, "state": said.state, "done": True,
                                                     "provider_reference": said.provider_reference}})
            return RefundOutcome(said.state, reference=said.provider_reference or reference, reason=said.reason)
        return RefundOutcome("pending", reference=reference, reason=said.reason)
