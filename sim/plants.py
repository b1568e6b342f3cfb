"""Deliberately planted bugs, to show the simulator catches them (``--plant NAME``, and its tests).

``release-not-idempotent``
    the release chain's transfer ids carry a per-invocation counter instead of being derived
    from the order alone: a release that is retried or delivered twice moves money again.
``payment-not-idempotent``
    the card payment's transfer id carries a per-delivery counter: a duplicated or replayed
    Stripe webhook puts the buyer's money into escrow twice.
``unknown-is-failed``
    the payout rails report a timeout (``unknown``) as ``failed``: the payout is voided, its
    money is back in the seller's balance, while the provider pays it after all.
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools


def _release_not_idempotent():
    from chalicelib.escrow import service

    original = service.EscrowService.release_escrow
    counter = itertools.count(1)

    def release_escrow(self, order_id):
        n = next(counter)
        ledger = self.ledger

        class Renaming:
            def __getattr__(self, name):
                return getattr(ledger, name)

            def transfer(self, *chain, **kwargs):
                chain = [dataclasses.replace(t, transfer_id=f"{t.transfer_id}#{n}") if t.transfer_id.startswith("release:")
                         else t for t in chain]
                return ledger.transfer(*chain, **kwargs)

        self.ledger = Renaming()
        try:
            return original(self, order_id)
        finally:
            self.ledger = ledger

    return service.EscrowService, "release_escrow", release_escrow


def _payment_not_idempotent():
    from chalicelib.escrow import service

    original = service.EscrowService.payment_succeeded
    counter = itertools.count(1)

    def payment_succeeded(self, payment_intent_id, amount, order_id=None):
        n = next(counter)
        ledger = self.ledger

        class Renaming:
            def __getattr__(self, name):
                return getattr(ledger, name)

            def transfer(self, *chain, **kwargs):
                chain = [dataclasses.replace(t, transfer_id=f"{t.transfer_id}#{n}") if t.transfer_id.startswith("pay:")
                         else t for t in chain]
                return ledger.transfer(*chain, **kwargs)

        self.ledger = Renaming()
        try:
            return original(self, payment_intent_id, amount, order_id)
        finally:
            self.ledger = ledger

    return service.EscrowService, "payment_succeeded", payment_succeeded


def _unknown_is_failed():
    from chalicelib.payouts.rails.port import RailStatus
    from sim import rails

    original_send = rails.SimRail.send

    def send(self, reference, amount, msisdn, note):
        status = original_send(self, reference, amount, msisdn, note)
        return RailStatus("failed", reason="timeout") if status.state == "unknown" else status

    return rails.SimRail, "send", send


PLANTS = {
    "release-not-idempotent": _release_not_idempotent,
    "payment-not-idempotent": _payment_not_idempotent,
    "unknown-is-failed": _unknown_is_failed,
}


@contextlib.contextmanager
def planted(name: str):
    """The bug ``name`` for the duration of the block (the class attribute is put back after)."""
    owner, attribute, replacement = PLANTS[name]()
    saved = owner.__dict__[attribute]
    setattr(owner, attribute, replacement)
    try:
        yield
    finally:
        setattr(owner, attribute, saved)
