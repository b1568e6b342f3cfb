"""What Daraja told us about each M-Pesa payout, kept in the app table (``mpesa#<reference>``).

Daraja answers asynchronously, so ``MpesaB2CRail.status()`` reads what the webhook
stored here. The record exists from *before* the B2C request is sent (``sending``),
holds the ``ConversationID`` Daraja returned when it accepted the request (``sent``)
and the amount, and every callback is matched against it:

* a callback for a reference with no record is for a payout we never sent: refused;
* a callback whose ``ConversationID`` (for a Transaction Status answer: the
  payment's ``ConversationID`` among its ResultParameters) differs from the one
  Daraja returned at send time, or whose amount differs, is not about our
  payment: refused;
* a B2C *result* (or queue timeout) is kept as a ``hint`` only: it decides nothing;
* the *verdict* comes only from a Transaction Status answer, i.e. from asking
  Safaricom about the payment we made. A final verdict is never replaced; a later,
  contradicting final answer is kept in ``conflicts`` for a human.

``MpesaResultStore(MemoryDocuments())`` is the in-memory twin the tests use.
"""
from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from chalicelib.documents import DocumentExists, Documents
from chalicelib.payouts.rails.port import FINAL_STATES, RailStatus

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.payouts.rails.mpesa import MpesaCallback

log = logging.getLogger("mizani.payouts.mpesa")


def _status_doc(status: RailStatus) -> dict:
    doc = {"state": status.state, "provider_reference": status.provider_reference, "reason": status.reason}
    if status.payee_name:
        doc["payee_name"] = status.payee_name
    return doc


def _status(doc: dict | None) -> RailStatus | None:
    return RailStatus(doc["state"], doc.get("provider_reference"), doc.get("reason")) if doc else None


def _same_amount(reported, expected: int | None) -> bool:
    if reported in (None, "") or expected is None:
        return True
    try:
        return Decimal(str(reported)) == Decimal(expected)
    except InvalidOperation:
        return False


class MpesaResultStore:
    """The per-payout record of what was sent to Daraja and what it answered (see module doc)."""

    def __init__(self, docs: Documents):
        self.docs = docs

    @staticmethod
    def _key(reference: str) -> str:
        return f"mpesa#{reference}"

    # -- what we sent ---------------------------------------------------------------
    def sending(self, reference: str, amount_whole: int) -> None:
        """Written before the B2C request leaves: from now on Daraja may know the reference."""
        doc = {"reference": reference, "amount": amount_whole, "conversation_id": None, "hint": None,
               "verdict": None, "conflicts": []}
        try:
            self.docs.put_new(self._key(reference), doc)
        except DocumentExists:
            pass  # a retried send of the same payout (same amount: the reference is the payout id)

    def sent(self, reference: str, conversation_id: str) -> None:
        """Daraja accepted the request and named it ``conversation_id``; the first id is kept."""

        def mutate(doc: dict) -> dict | None:
            return None if doc.get("conversation_id") else {**doc, "conversation_id": conversation_id}

        try:
            self.docs.update(self._key(reference), mutate)
        except KeyError:
            pass  # never recorded as sending (a caller that skipped ``sending``): nothing to match against

    def conversation_id(self, reference: str) -> str | None:
        doc = self.docs.get(self._key(reference))
        return doc.get("conversation_id") if doc else None

    # -- what Daraja said -----------------------------------------------------------
    def record(self, callback: "MpesaCallback") -> bool:
        """Keep one callback if it is about a payment we sent; False if refused or a duplicate."""
        if not callback.reference:
            return False
        marker = f"event#mpesa#{callback.dedup_key}" if callback.dedup_key else None
        if marker and self.docs.get(marker, "claim") is not None:
            return False
        accepted = []

        def mutate(doc: dict) -> dict | None:
            accepted.clear()
            expected = doc.get("conversation_id")
            if expected and callback.payment_conversation_id != expected:
                return None  # not the payment Daraja acknowledged for this reference
            if not _same_amount(callback.amount, doc.get("amount")):
                return None
            accepted.append(True)
            if callback.kind != "status_result":
                # A B2C result or queue timeout is a hint: it triggers a status query, never a verdict.
                if doc.get("hint") and doc["hint"]["state"] in FINAL_STATES:
                    return None
                return {**doc, "hint": _status_doc(callback.status)}
            current = _status(doc.get("verdict"))
            new = callback.status
            if current is not None and current.is_final:
                if new.is_final and new.state != current.state:
                    return {**doc, "conflicts": doc.get("conflicts", []) + [_status_doc(new)]}
                return None
            if current is None or new.is_final or new.state != "unknown" or current.state == "unknown":
                return {**doc, "verdict": _status_doc(new)}
            return None

        try:
            self.docs.update(self._key(callback.reference), mutate)
        except KeyError:
            accepted.clear()  # no record: a payout we never sent
        if not accepted:
            log.warning("M-Pesa %s for %s refused: it does not match what we sent", callback.kind, callback.reference)
            return False
        if marker:
            self.docs.claim(marker)
        return True

    def get(self, reference: str) -> RailStatus | None:
        """The verdict of Safaricom's Transaction Status answers (``None`` before any)."""
        doc = self.docs.get(self._key(reference))
        verdict = _status(doc.get("verdict")) if doc else None
        hint = _status(doc.get("hint")) if doc else None
        if verdict is not None and hint is not None and verdict.state == hint.state == "failed" and hint.reason:
            # The B2C result says *why* (its ResultCode); the status answer only that it failed.
            return RailStatus("failed", verdict.provider_reference, hint.reason)
        if verdict is not None and verdict.state == "succeeded" and doc.get("hint") and doc["hint"].get("payee_name"):
            # The B2C result names the wallet's holder (ReceiverPartyPublicName): the payee check M-Pesa offers.
            return RailStatus("succeeded", verdict.provider_reference, verdict.reason, payee_name=doc["hint"]["payee_name"])
        return verdict

    def hint(self, reference: str) -> RailStatus | None:
        """What the B2C result callback claimed (never decides a payout)."""
        doc = self.docs.get(self._key(reference))
        return _status(doc.get("hint")) if doc else None

    def conflicts(self, reference: str) -> list[RailStatus]:
        doc = self.docs.get(self._key(reference)) or {}
        return [_status(c) for c in doc.get("conflicts", [])]
