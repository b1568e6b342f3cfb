"""Crash a workflow task right after it moved money; Step Functions retries it; money moves once.

The Lambda tasks run in this process (the sandbox dispatches moto's Lambda invocations to
the Chalice handlers), so patching a service method here changes what the real state
machine executes. Each fault fires once, for this test's order only, as ``TransientError``:
the ASL retries that error with backoff, and the retried task must find the money already
moved (ledger ids and provider references derive from the order) instead of moving it again.
"""
from __future__ import annotations

import threading

from chalicelib.escrow.service import EscrowService
from chalicelib.ledger.service import Ledger
from chalicelib.payouts.rails.momo import MtnMomoRail
from chalicelib.workflow.tasks import TransientError


class CrashOnce:
    """Counts calls that ``matches``; the first one does its work, then raises TransientError."""

    def __init__(self, matches):
        self.matches = matches
        self.calls = 0
        self.crashed = False
        self._lock = threading.Lock()

    def around(self, real):
        def patched(*args, **kwargs):
            result = real(*args, **kwargs)
            if self.matches(*args, **kwargs):
                with self._lock:
                    self.calls += 1
                    crash = not self.crashed
                    self.crashed = True
                if crash:
                    raise TransientError("injected: the task died right after its write")
            return result

        return patched


def released_once(world, seller: dict, order: dict) -> None:
    """The release and the payout happened exactly once: ledger, wallet, timeline."""
    order_id = order["order_id"]
    escrow = world.account(f"escrow:{order_id}")
    assert escrow["balance"] == 0
    assert escrow["credits_posted"] == escrow["debits_posted"] == order["pay"]["amount"]
    seller_account = world.account(f"seller:{seller['seller_id']}")
    assert seller_account["credits_posted"] == order["payout"]["amount"]  # credited once
    assert seller_account["debits_posted"] == order["payout"]["amount"]  # paid out once
    assert world.wallet(seller["payout"]["msisdn"])["balances"] == [order["payout"]]
    statuses = [e["status"] for e in order["timeline"]]
    assert statuses.count("released") == 1 and statuses[-1] == "settled"
    assert world.trial_balance()["balanced"] is True


def test_release_escrow_dying_after_it_finished_is_retried_and_releases_once(world, monkeypatch):
    seller = world.seller()
    order = world.shipped(seller)
    fault = CrashOnce(lambda service, order_id: order_id == order["order_id"])
    monkeypatch.setattr(EscrowService, "release_escrow", fault.around(EscrowService.release_escrow))

    assert world.customs(order, "cleared").status_code == 200
    done = world.wait_for(order["order_id"], "settled")
    assert fault.calls == 2  # the crash, then Step Functions' retry
    released_once(world, seller, done)


def test_release_escrow_dying_between_its_ledger_write_and_the_status_step_releases_once(world, monkeypatch):
    seller = world.seller()
    order = world.shipped(seller)
    prefix = f"release:{order['order_id']}:"
    fault = CrashOnce(lambda ledger, *chain, **kw: any(t.transfer_id.startswith(prefix) for t in chain))
    monkeypatch.setattr(Ledger, "transfer", fault.around(Ledger.transfer))

    assert world.customs(order, "cleared").status_code == 200
    done = world.wait_for(order["order_id"], "settled")
    assert fault.calls == 2
    released_once(world, seller, done)


def test_start_payout_dying_after_mtn_took_the_transfer_pays_the_seller_once(world, monkeypatch):
    seller = world.seller()
    order = world.shipped(seller)
    fault = CrashOnce(lambda rail, reference, *a, **kw: reference.startswith(f"po_{order['order_id']}_"))
    monkeypatch.setattr(MtnMomoRail, "send", fault.around(MtnMomoRail.send))

    assert world.customs(order, "cleared").status_code == 200
    done = world.wait_for(order["order_id"], "settled")
    assert fault.calls == 2  # the retried StartPayout sent the same reference again: MTN answered 409
    released_once(world, seller, done)
    transfers = world.wallet(seller["payout"]["msisdn"])["transactions"]
    assert len(transfers) == 1 and transfers[0]["status"] == "SUCCESSFUL"


def test_refund_dying_after_its_ledger_write_is_retried_and_refunds_once(world, monkeypatch):
    seller = world.seller()
    order = world.shipped(seller)
    refund_id = f"refund:{order['order_id']}"
    fault = CrashOnce(lambda ledger, *chain, **kw: any(t.transfer_id == refund_id for t in chain))
    monkeypatch.setattr(Ledger, "transfer", fault.around(Ledger.transfer))

    assert world.customs(order, "rejected").status_code == 200
    done = world.wait_for(order["order_id"], "refunded")
    assert fault.calls == 2
    assert [e["status"] for e in done["timeline"]].count("refunded") == 1
    assert len(world.stripe_events(order["payment"]["payment_intent_id"], "refund.created")) == 1
    escrow = world.account(f"escrow:{order['order_id']}")
    assert escrow["balance"] == 0 and escrow["debits_posted"] == order["pay"]["amount"]
    assert world.trial_balance()["balanced"] is True


def test_the_customs_wait_task_dying_after_storing_its_token_still_lets_customs_clear(world, monkeypatch):
    # AwaitCustoms is retried too: the retry stores a fresh token, and customs' answer reaches it.
    seller = world.seller()
    order = world.order(seller)
    fault = CrashOnce(lambda service, order_id, task_token: order_id == order["order_id"])
    monkeypatch.setattr(EscrowService, "customs_wait", fault.around(EscrowService.customs_wait))
    assert world.pay(order)["webhook"]["status"] == 200
    world.wait_for(order["order_id"], "paid")
    shipped = world.ok(world.ship(order))
    world.until(lambda: fault.calls >= 2, "the retried AwaitCustoms task")

    assert world.customs(shipped, "cleared").status_code == 200
    done = world.wait_for(order["order_id"], "settled")
    released_once(world, seller, done)
