"""Every MTN MoMo sandbox test number, end to end for an order's payout (API.md "The local sandbox").

46733123450 fails, …451 is rejected, …452 times out (then expires), …453 stays ongoing and
…454 stays pending; any other number is paid at once. A failed payout voids its pending
ledger transfer (the money is back in the seller's available balance); a timeout is
*unknown*, never failure: the workflow polls until MTN says something final.

The orders of the ``started`` fixture are cleared together, so their payouts run side by
side (each test then looks at its own); the client-timeout case changes a setting and
runs alone.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.payouts.rails.momo import MtnMomoRail

MTN_FAILS = "46733123450"
MTN_REJECTED = "46733123451"
MTN_TIMES_OUT = "46733123452"
MTN_ONGOING = "46733123453"
MTN_PENDING = "46733123454"

SCENARIOS = {"fails": MTN_FAILS, "rejected": MTN_REJECTED, "times_out": MTN_TIMES_OUT,
             "ongoing": MTN_ONGOING, "pending": MTN_PENDING, "ordinary": None}


@pytest.fixture(scope="module")
def started(module_world) -> dict[str, tuple[dict, dict]]:
    """name -> (seller, order): one shipped order per test number (prepared side by side), then
    customs clears them all."""

    def prepare(number):
        world = type(module_world)(module_world.sb)  # a client (its own HTTP session) per thread
        seller = world.seller(number)
        return seller, world.shipped(seller)

    with ThreadPoolExecutor(max_workers=len(SCENARIOS)) as pool:
        runs = dict(zip(SCENARIOS, pool.map(prepare, SCENARIOS.values())))
    for _, order in runs.values():
        assert module_world.customs(order, "cleared").status_code == 200
    return runs


def order_payouts(world, seller: dict, order_id: str) -> list[dict]:
    return [p for p in world.payouts(seller["seller_id"]) if p["order_id"] == order_id]


def assert_money_back_in_the_sellers_balance(world, seller: dict, order: dict) -> None:
    balance = world.balance(seller["seller_id"])
    assert balance["available"] == order["payout"]
    assert balance["payout_pending"] == {"amount": 0, "currency": "RWF"}
    account = world.account(f"seller:{seller['seller_id']}")
    assert (account["debits_posted"], account["debits_pending"]) == (0, 0)
    assert account["balance"] == order["payout"]["amount"]
    assert world.trial_balance()["balanced"] is True


@pytest.mark.parametrize("name, reason", [("fails", "INTERNAL_PROCESSING_ERROR"), ("rejected", "APPROVAL_REJECTED")])
def test_a_failed_or_rejected_payout_ends_payout_failed_with_the_money_back_in_the_balance(
        world, started, name, reason):
    seller, order = started[name]
    number = SCENARIOS[name]
    done = world.wait_for(order["order_id"], "payout_failed")
    assert [e["status"] for e in done["timeline"]][-3:] == ["released", "payout_pending", "payout_failed"]

    [payout] = order_payouts(world, seller, order["order_id"])
    assert (payout["status"], payout["reason"], payout["amount"]) == ("failed", reason, order["payout"])
    [transfer] = world.wallet_transfers(number, order["order_id"])
    assert transfer["status"] == "FAILED"
    assert_money_back_in_the_sellers_balance(world, seller, done)
    ref = order["order_id"][-8:].upper()
    world.until(lambda: [m for m in world.sms(number) if "could not send" in m["message"] and ref in m["message"]],
                "the payout_failed SMS")


def test_a_slow_transfer_answer_within_the_client_timeout_also_ends_failed_once(world, started):
    # The local stage's 10 s client timeout outlasts the simulator's hold: a slow 202, then EXPIRED.
    seller, order = started["times_out"]
    done = world.wait_for(order["order_id"], "payout_failed")
    [transfer] = world.wallet_transfers(MTN_TIMES_OUT, order["order_id"])
    assert transfer["status"] == "FAILED"
    assert_money_back_in_the_sellers_balance(world, seller, done)


@pytest.mark.parametrize("name, mtn_outcome, final", [("ongoing", "SUCCESSFUL", "settled"),
                                                      ("pending", "FAILED", "payout_failed")])
def test_a_payout_mtn_leaves_pending_stays_payout_pending_while_polled_until_mtn_decides(
        world, started, name, mtn_outcome, final):
    seller, order = started[name]
    [transfer] = world.sent_to_mtn(SCENARIOS[name], order["order_id"])

    def polled_while_pending():
        assert world.read(order["order_id"])["status"] == "payout_pending"
        return world.states_entered(order["order_id"], "CheckPayout") >= 3

    world.until(polled_while_pending, "three CheckPayout polls")
    [payout] = order_payouts(world, seller, order["order_id"])
    assert payout["status"] == "pending"
    balance = world.balance(seller["seller_id"])
    assert balance["payout_pending"] == order["payout"] and balance["available"]["amount"] == 0
    assert world.wallet_transfers(SCENARIOS[name], order["order_id"])[0]["status"] == "PENDING"

    # MTN finally decides; its callback (re-queried) or the poll loop finds it.
    world.momo_settle(transfer["referenceId"], mtn_outcome)
    done = world.wait_for(order["order_id"], final)
    [payout] = order_payouts(world, seller, order["order_id"])
    assert payout["status"] == ("succeeded" if final == "settled" else "failed")
    account = world.account(f"seller:{seller['seller_id']}")
    assert account["debits_pending"] == 0
    assert account["debits_posted"] == (order["payout"]["amount"] if final == "settled" else 0)
    assert world.trial_balance()["balanced"] is True
    assert done["timeline"][-1]["status"] == final


def test_any_other_number_is_paid_at_once(world, started):
    seller, order = started["ordinary"]
    done = world.wait_for(order["order_id"], "settled")
    [payout] = order_payouts(world, seller, order["order_id"])
    assert payout["status"] == "succeeded" and payout["provider_reference"]
    assert world.wallet(seller["payout"]["msisdn"])["balances"] == [done["payout"]]


def test_a_payout_whose_transfer_times_out_and_then_expires_ends_failed_without_paying_twice(world, monkeypatch):
    # The simulator holds the transfer POST for 1 s, then the transfer expires (FAILED/EXPIRED).
    # With a client timeout shorter than that, the send is *unknown*: the workflow must poll,
    # never send a second transfer, and settle on what MTN finally says.
    seller = world.seller(MTN_TIMES_OUT)
    order = world.shipped(seller)
    sends = []
    real_send = MtnMomoRail.send

    def send(rail, reference, *args, **kwargs):
        status = real_send(rail, reference, *args, **kwargs)
        if reference.startswith(f"po_{order['order_id']}_"):
            sends.append(status)
        return status

    monkeypatch.setattr(MtnMomoRail, "send", send)
    with world.settings(MIZANI_HTTP_TIMEOUT_SECONDS="0.3"):
        assert world.customs(order, "cleared").status_code == 200
        done = world.wait_for(order["order_id"], "payout_failed")
    assert [(s.state, s.reason) for s in sends] == [("unknown", "timeout")]  # we really timed out, once
    [transfer] = world.wallet_transfers(MTN_TIMES_OUT, order["order_id"])  # one transfer, never resent
    assert transfer["status"] == "FAILED"
    [payout] = order_payouts(world, seller, order["order_id"])
    assert (payout["status"], payout["reason"]) == ("failed", "EXPIRED")
    assert world.wallet(MTN_TIMES_OUT)["balances"] == []
    assert_money_back_in_the_sellers_balance(world, seller, done)
