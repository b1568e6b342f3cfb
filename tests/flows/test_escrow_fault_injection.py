"""Crash a workflow task right after it moved money; Step Functions retries it; money moves once.

The Lambda tasks run in this process (the sandbox dispatches moto's Lambda invocations to
the Chalice handlers), so patching a service method here changes what the real state
machine executes. Each fault fires once, for its own order only, as ``TransientError``:
the ASL retries that error with backoff, and the retried task must find the money already
moved (ledger ids and provider references derive from the order) instead of moving it again.

The ``crashed`` fixture runs every scenario's order side by side with all the faults in
place (each matches only its order); the tests then read what happened to each.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from chalicelib.escrow.service import EscrowService
from chalicelib.ledger.service import Ledger
from chalicelib.payouts.rails.momo import MtnMomoRail
from chalicelib.workflow.tasks import TransientError


class CrashOnce:
    """Counts the calls that ``matches``; the first one does its work, then raises TransientError."""

    def __init__(self, matches):
        self.matches = matches
        self.calls = 0
        self._lock = threading.Lock()

    def around(self, real):
        def patched(*args, **kwargs):
            result = real(*args, **kwargs)
            if self.matches(*args, **kwargs):
                with self._lock:
                    self.calls += 1
                    first = self.calls == 1
                if first:
                    raise TransientError("injected: the task died right after its write")
            return result

        return patched


@dataclass
class Run:
    seller: dict
    order: dict  # as the test left it (shipped)
    fault: CrashOnce
    done: dict | None = None  # the order at the end


def boom_for(order_id: str, real):
    """``real`` (an EscrowService method taking the order id), failing for ``order_id`` with an error
    no Retry covers, before doing anything."""

    def patched(service, oid, *args, **kwargs):
        if oid == order_id:
            raise RuntimeError("injected: something nobody planned for")
        return real(service, oid, *args, **kwargs)

    return patched


def release_of(order_id: str):
    return lambda ledger, *chain, **kw: any(t.transfer_id.startswith(f"release:{order_id}:") for t in chain)


def refund_of(order_id: str):
    return lambda ledger, *chain, **kw: any(t.transfer_id == f"refund:{order_id}" for t in chain)


@pytest.fixture(scope="module")
def crashed(module_world) -> dict[str, Run]:
    w = module_world
    names = ("release_after_finishing", "release_after_ledger_write", "payout_after_mtn_took_it",
             "refund_after_ledger_write", "customs_wait_after_storing_token", "release_fails_unexpectedly")
    sellers = {name: w.seller() for name in names}
    orders = {name: w.order(sellers[name]) for name in names}
    ids = {name: order["order_id"] for name, order in orders.items()}
    faults = {
        "release_after_finishing": CrashOnce(lambda service, order_id: order_id == ids["release_after_finishing"]),
        "release_after_ledger_write": CrashOnce(release_of(ids["release_after_ledger_write"])),
        "payout_after_mtn_took_it": CrashOnce(
            lambda rail, reference, *a, **kw: reference.startswith(f"po_{ids['payout_after_mtn_took_it']}_")),
        "refund_after_ledger_write": CrashOnce(refund_of(ids["refund_after_ledger_write"])),
        "customs_wait_after_storing_token": CrashOnce(
            lambda service, order_id, task_token: order_id == ids["customs_wait_after_storing_token"]),
        "release_fails_unexpectedly": CrashOnce(lambda *a, **kw: False),  # see boom_for
    }
    with pytest.MonkeyPatch.context() as patch:
        release = boom_for(ids["release_fails_unexpectedly"], EscrowService.release_escrow)
        patch.setattr(EscrowService, "release_escrow", faults["release_after_finishing"].around(release))
        patch.setattr(EscrowService, "customs_wait",
                      faults["customs_wait_after_storing_token"].around(EscrowService.customs_wait))
        patch.setattr(MtnMomoRail, "send", faults["payout_after_mtn_took_it"].around(MtnMomoRail.send))
        transfer = faults["release_after_ledger_write"].around(Ledger.transfer)
        patch.setattr(Ledger, "transfer", faults["refund_after_ledger_write"].around(transfer))

        runs = {}
        for name in names:
            assert w.pay(orders[name])["webhook"]["status"] == 200
            w.wait_for(ids[name], "paid")
            runs[name] = Run(sellers[name], w.ok(w.ship(orders[name])), faults[name])
        # customs answers once the retried AwaitCustoms stored its fresh token
        w.until(lambda: faults["customs_wait_after_storing_token"].calls >= 2, "the retried AwaitCustoms task")
        for name, run in runs.items():
            decision = "rejected" if name.startswith("refund") else "cleared"
            assert w.customs(run.order, decision).status_code == 200
        final = {"refund_after_ledger_write": "refunded", "release_fails_unexpectedly": "manual_review"}
        for name, run in runs.items():
            run.done = w.wait_for(ids[name], final.get(name, "settled"))
        yield runs


def released_once(world, run: Run) -> None:
    """The release and the payout happened exactly once: ledger, wallet, timeline."""
    order, seller = run.done, run.seller
    escrow = world.account(f"escrow:{order['order_id']}")
    assert escrow["balance"] == 0
    assert escrow["credits_posted"] == escrow["debits_posted"] == order["pay"]["amount"]
    seller_account = world.account(f"seller:{seller['seller_id']}")
    assert seller_account["credits_posted"] == order["payout"]["amount"]  # credited once
    assert seller_account["debits_posted"] == order["payout"]["amount"]  # paid out once
    transfers = world.wallet_transfers(seller["payout"]["msisdn"], order["order_id"])
    assert [t["status"] for t in transfers] == ["SUCCESSFUL"]
    assert world.wallet(seller["payout"]["msisdn"])["balances"] == [order["payout"]]
    statuses = [e["status"] for e in order["timeline"]]
    assert statuses.count("released") == 1 and statuses[-1] == "settled"
    assert world.trial_balance()["balanced"] is True


def test_release_escrow_dying_after_it_finished_is_retried_and_releases_once(world, crashed):
    run = crashed["release_after_finishing"]
    assert run.fault.calls == 2  # the crash, then Step Functions' retry
    released_once(world, run)


def test_release_escrow_dying_between_its_ledger_write_and_the_status_step_releases_once(world, crashed):
    run = crashed["release_after_ledger_write"]
    assert run.fault.calls == 2
    released_once(world, run)


def test_start_payout_dying_after_mtn_took_the_transfer_pays_the_seller_once(world, crashed):
    # The retried StartPayout finds the payout claimed as being sent and asks MTN about it (GET by
    # the same X-Reference-Id) instead of sending it again: the crashed send is the only one.
    run = crashed["payout_after_mtn_took_it"]
    assert run.fault.calls == 1
    released_once(world, run)


def test_refund_dying_after_its_ledger_write_is_retried_and_refunds_once(world, crashed):
    run = crashed["refund_after_ledger_write"]
    order = run.done
    assert run.fault.calls == 2
    assert [e["status"] for e in order["timeline"]].count("refunded") == 1
    assert len(world.stripe_events(order["payment"]["payment_intent_id"], "refund.created")) == 1
    escrow = world.account(f"escrow:{order['order_id']}")
    assert escrow["balance"] == 0 and escrow["debits_posted"] == order["pay"]["amount"]
    assert world.trial_balance()["balanced"] is True


def test_the_customs_wait_task_dying_after_storing_its_token_still_lets_customs_clear(world, crashed):
    # AwaitCustoms is retried too: the retry stores a fresh token, and customs' answer reaches it.
    run = crashed["customs_wait_after_storing_token"]
    assert run.fault.calls == 2
    released_once(world, run)


def test_an_error_no_retry_covers_sends_the_order_to_manual_review_with_the_money_still_in_escrow(world, crashed):
    run = crashed["release_fails_unexpectedly"]
    order = run.done
    assert [e["status"] for e in order["timeline"]][-2:] == ["customs_cleared", "manual_review"]
    escrow = world.account(f"escrow:{order['order_id']}")
    assert escrow["balance"] == order["pay"]["amount"] and escrow["debits_posted"] == 0
    assert world.account(f"seller:{run.seller['seller_id']}")["credits_posted"] == 0
    assert world.wallet_transfers(run.seller["payout"]["msisdn"], order["order_id"]) == []
    assert world.trial_balance()["balanced"] is True


def test_the_manual_review_note_names_the_error_without_leaking_a_stack_trace(world, crashed):
    # The timeline is shown to the buyer and the seller.
    order = crashed["release_fails_unexpectedly"].done
    note = order["timeline"][-1]["detail"]
    assert "RuntimeError" in note and "something nobody planned for" in note
    assert "Traceback" not in note and ".py" not in note, note
