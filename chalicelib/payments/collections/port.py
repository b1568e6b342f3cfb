"""The collection-rail port: ask a wallet for money, then learn what happened; give it back.

The rule payouts obey holds here, in the buyer's direction:

    Only the provider can say ``failed``. A timeout, a connection error, a 5xx, or an answer we
    cannot read is ``unknown``, NEVER ``failed``; the caller polls ``status`` until a final state.

``failed`` here means the provider says nothing was collected (the payer declined, the wallet is
short, the request expired unanswered); ``succeeded`` that the money is in Mizani's account. The
caller's ``reference`` (derived from the order) is the idempotency key: ``request`` with the same
reference never asks twice on a rail whose ``request_is_idempotent`` is true (MTN deduplicates
``X-Reference-Id``); on M-Pesa, which does not, a reference already requested is never sent again.

A callback is a hint: ``callback_hint`` checks it belongs to this collection (the per-collection
token of its URL, ``CallbackUrls``) and keeps what it adds (M-Pesa's receipt, the CheckoutRequestID
of a request whose answer was lost); the state always comes from asking the provider.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from chalicelib.money import Money
from chalicelib.payouts.rails.port import FINAL_STATES, RailStatus  # noqa: F401 (re-exported: part of the port)


@runtime_checkable
class CollectionRail(Protocol):
    name: str
    request_is_idempotent: bool

    def request(self, reference: str, amount: Money, msisdn: str, note: str, record: dict) -> RailStatus:
        """Ask ``msisdn`` to pay ``amount`` (``pending`` once accepted); ``record`` is the collection's
        stored record, which the adapter may update through its store (M-Pesa's CheckoutRequestID)."""

    def status(self, reference: str, record: dict) -> RailStatus:
        """What the provider says now (never raises for provider trouble: ``unknown``)."""

    def refund(self, reference: str, amount: Money, record: dict) -> RailStatus:
        """Give ``amount`` of a succeeded collection back to its payer (idempotent per reference)."""

    def refund_status(self, reference: str, record: dict) -> RailStatus:
        """What the provider says about the refund."""

    def callback_hint(self, reference: str, token: str | None, body, record: dict) -> dict | None:
        """The fields a genuine callback adds to the record (``{}`` if none), or ``None`` if refused."""
