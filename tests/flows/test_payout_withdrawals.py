"""Withdrawals: ``POST /v1/sellers/{id}/payouts`` on the payout machinery, over HTTP.

A seller needs money in its *available* balance to withdraw. Every order payout to an
ordinary number succeeds at once (the balance is 0 again), so ``fund`` gives sellers an
order whose payout MTN refused: the rail is patched, in this process, to answer ``failed``
for those orders' payouts only; the money comes back to the available balance as it would
after any refusal. The withdrawals themselves go through the real rail and simulator.
"""
from __future__ import annotations

import json
import threading
import uuid

import pytest

from chalicelib.payouts.rails.momo import MtnMomoRail
from chalicelib.payouts.rails.port import RailStatus

MTN_PENDING = "46733123454"


def fund(world, **sellers: str | None) -> dict[str, tuple[dict, int]]:
    """Sellers (name -> msisdn, None for an ordinary number) whose order payouts were refused,
    run side by side; returns name -> (seller, available minor units)."""
    made = {name: world.seller(msisdn) for name, msisdn in sellers.items()}
    orders = {name: world.shipped(seller, kg="10") for name, seller in made.items()}
    refused = tuple(f"po_{order['order_id']}_" for order in orders.values())
    real_send = MtnMomoRail.send

    def send(rail, reference, *args, **kwargs):
        if reference.startswith(refused):
            return RailStatus("failed", reason="rejected:PAYEE_NOT_FOUND")
        return real_send(rail, reference, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MtnMomoRail, "send", send)
        for order in orders.values():
            assert world.customs(order, "cleared").status_code == 200
        done = {name: world.wait_for(order["order_id"], "payout_failed") for name, order in orders.items()}
    funded = {}
    for name, seller in made.items():
        available = world.balance(seller["seller_id"])["available"]
        assert available == done[name]["payout"]
        funded[name] = (seller, available["amount"])
    return funded


def withdraw(world, seller: dict, amount: int, key: str | None = "auto", currency: str = "RWF"):
    return world.post(f"/v1/sellers/{seller['seller_id']}/payouts", "seller", seller["seller_id"],
                      {"amount": {"amount": amount, "currency": currency}}, key=key)


def code(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


@pytest.fixture(scope="module")
def sellers(module_world) -> dict[str, tuple[dict, int]]:
    """Funded sellers: ``shared`` (an ordinary number; several tests withdraw from it, each reading
    the balance first), ``on_pending`` (MTN's always-pending number), ``daily`` (an ordinary number)."""
    return fund(module_world, shared=None, on_pending=MTN_PENDING, daily=None)


@pytest.fixture
def funded(sellers) -> dict:
    return sellers["shared"][0]


def available(world, seller: dict) -> int:
    return world.balance(seller["seller_id"])["available"]["amount"]


# -- the balance is the limit -----------------------------------------------------------------------


def test_withdrawing_more_than_the_available_balance_is_422_insufficient_funds_and_moves_nothing(world, funded):
    before = available(world, funded)
    payouts_before = world.payouts(funded["seller_id"])
    assert code(withdraw(world, funded, before + 1)) == (422, "insufficient_funds")
    assert available(world, funded) == before
    assert world.payouts(funded["seller_id"]) == payouts_before


def payout_status(world, seller: dict, payout_id: str) -> dict:
    [found] = [p for p in world.payouts(seller["seller_id"]) if p["payout_id"] == payout_id]
    return found


def test_a_withdrawal_is_reserved_at_once_and_paid_to_the_wallet_when_mtn_confirms(world, funded):
    before = available(world, funded)
    wallet_before = sum(b["amount"] for b in world.wallet(funded["payout"]["msisdn"])["balances"])
    payout = world.ok(withdraw(world, funded, 2_500), 201)
    # MTN accepts a transfer with 202: final when its status (or its callback, re-queried) says so
    assert payout["status"] in ("pending", "succeeded") and payout["order_id"] is None
    assert payout["amount"] == {"amount": 2500, "currency": "RWF"}
    assert available(world, funded) == before - 2_500  # reserved at once

    world.sweep()
    done = payout_status(world, funded, payout["payout_id"])
    assert done["status"] == "succeeded" and done["provider_reference"]
    credited = sum(b["amount"] for b in world.wallet(funded["payout"]["msisdn"])["balances"])
    assert credited == wallet_before + 2_500
    assert available(world, funded) == before - 2_500


def test_concurrent_withdrawals_can_never_overdraw_the_balance(world, funded):
    before = available(world, funded)
    each = -(-before * 2 // 5)  # 40 % of the balance, rounded up: two fit, a third cannot
    start = threading.Barrier(4)
    replies: list = [None] * 4

    def attempt(i: int) -> None:
        start.wait()
        replies[i] = withdraw(world, funded, each)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    accepted = [r for r in replies if r.status_code == 201]
    refused = [r for r in replies if r.status_code != 201]
    assert len(accepted) == 2, [r.status_code for r in replies]
    assert all(code(r) == (422, "insufficient_funds") for r in refused)
    assert available(world, funded) == before - 2 * each >= 0
    account = world.account(f"seller:{funded['seller_id']}")
    assert account["balance"] >= 0 and account["credits_posted"] >= account["debits_posted"] + account["debits_pending"]
    world.sweep()
    assert world.trial_balance()["balanced"] is True


# -- Idempotency-Key -------------------------------------------------------------------------------------


def test_replaying_a_withdrawal_with_its_idempotency_key_returns_the_same_payout_once(world, funded):
    before = available(world, funded)
    key = uuid.uuid4().hex
    first = withdraw(world, funded, 1_000, key=key)
    again = withdraw(world, funded, 1_000, key=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert available(world, funded) == before - 1_000
    ids = [p["payout_id"] for p in world.payouts(funded["seller_id"])]
    assert ids.count(first.json()["payout_id"]) == 1

    reused = withdraw(world, funded, 1_001, key=key)
    assert code(reused) == (422, "idempotency_key_reused")
    assert available(world, funded) == before - 1_000


def test_a_withdrawal_needs_an_idempotency_key(world, funded):
    assert code(withdraw(world, funded, 1_000, key=None)) == (400, "idempotency_key_required")


def test_a_withdrawal_in_another_currency_than_the_wallets_is_refused(world, funded):
    before = available(world, funded)
    reply = withdraw(world, funded, 1_000, currency="KES")
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "validation_error"
    assert available(world, funded) == before


# -- a withdrawal MTN leaves pending ------------------------------------------------------------------------


def test_a_pending_withdrawal_is_finished_by_the_sweeper_once_mtn_completes_it(world, sellers):
    seller, _ = sellers["on_pending"]
    payout = world.ok(withdraw(world, seller, 1_500), 201)
    assert payout["status"] == "pending"
    balance = world.balance(seller["seller_id"])
    assert balance["payout_pending"] == {"amount": 1_500, "currency": "RWF"}

    world.sweep()  # the scheduled sweeper asks MTN: still PENDING
    assert payout_status(world, seller, payout["payout_id"])["status"] == "pending"

    world.momo_faults(lose_callback=1)  # MTN's callback gets lost: only the sweeper can find out
    world.momo_settle(world.momo_reference(payout["payout_id"]), "SUCCESSFUL")
    assert payout_status(world, seller, payout["payout_id"])["status"] == "pending"
    world.sweep()
    world.sweep()  # a second sweep finds nothing more to do
    done = payout_status(world, seller, payout["payout_id"])
    assert done["status"] == "succeeded" and done["provider_reference"]
    account = world.account(f"seller:{seller['seller_id']}")
    assert (account["debits_posted"], account["debits_pending"]) == (1_500, 0)
    assert world.balance(seller["seller_id"])["payout_pending"] == {"amount": 0, "currency": "RWF"}
    assert world.trial_balance()["balanced"] is True


# -- the wallet's daily limit ------------------------------------------------------------------------------------


def test_a_withdrawal_past_the_wallets_daily_limit_is_refused_with_limit_exceeded(world, sellers):
    seller, funds = sellers["daily"]
    limits = {"mtn_momo:RWF": {"min": 100, "max_per_tx": 1_000_000, "max_per_day": 10_000}}
    with world.settings(MIZANI_PAYOUT_LIMITS=json.dumps(limits)):
        world.ok(withdraw(world, seller, 6_000), 201)
        refused = withdraw(world, seller, 5_000)
        assert code(refused) == (422, "limit_exceeded")
        world.ok(withdraw(world, seller, 4_000), 201)  # exactly up to the limit
    world.sweep()
    assert sorted(p["status"] for p in world.payouts(seller["seller_id"]) if p["order_id"] is None) == \
        ["succeeded", "succeeded"]  # the refused one left nothing behind: no payout, no reservation
    assert available(world, seller) == funds - 10_000
    assert world.account(f"seller:{seller['seller_id']}")["debits_pending"] == 0  # the refused one reserved nothing
    assert world.wallet(seller["payout"]["msisdn"])["balances"] == [{"amount": 10_000, "currency": "RWF"}]


# -- all parts admitted, or none (issue 9) -------------------------------------------------------------

SMALL_LIMITS = '{"mtn_momo:RWF": {"min": 100, "max_per_tx": 40000, "max_per_day": 100000}}'


def test_a_split_withdrawal_refused_by_the_daily_limit_sends_no_part_to_mtn(world):
    (seller, funds), = fund(world, limited=None).values()
    msisdn = seller["payout"]["msisdn"]
    with world.settings(MIZANI_PAYOUT_LIMITS=SMALL_LIMITS):
        first = world.ok(withdraw(world, seller, 30_000), 201)
        key = uuid.uuid4().hex
        refused = withdraw(world, seller, 80_000, key=key)  # two parts of 40,000: the second crosses 100,000
        assert code(refused) == (422, "limit_exceeded")
        again = withdraw(world, seller, 80_000, key=key)  # the stored answer, and still nothing sent
        assert (again.status_code, again.json()) == (422, refused.json())
    assert len(world.wallet(msisdn)["transactions"]) == 1  # MTN saw the first withdrawal only
    world.sweep()
    assert world.wallet(msisdn)["balances"] == [{"amount": 30_000, "currency": "RWF"}]
    balance = world.balance(seller["seller_id"])
    assert balance["available"]["amount"] == funds - 30_000 and balance["payout_pending"]["amount"] == 0
    assert [p["payout_id"] for p in world.payouts(seller["seller_id"]) if p["order_id"] is None] == [first["payout_id"]]


@pytest.mark.parametrize("amount", [10**10, 10**15])
def test_an_enormous_withdrawal_is_answered_at_once_and_changes_nothing(world, amount):
    seller = world.seller()
    reply = withdraw(world, seller, amount)
    assert reply.status_code == 422 and reply.json()["error"]["code"] in ("insufficient_funds", "limit_exceeded")
    assert world.payouts(seller["seller_id"]) == []
    assert world.wallet(seller["payout"]["msisdn"])["transactions"] == []
