"""The money defects of issue 9, replayed over HTTP against the sandbox the way an attacker (or bad luck) would.

Each test drives what a user would notice: what reached the wallet at the provider, the
seller's balance, the order's status and timeline. The customs race is driven
deterministically: the first decision is held between reading the order and writing it
until the second decision has been answered.
"""
from __future__ import annotations

import random
import threading

import pytest

from chalicelib import bootstrap
from chalicelib.payouts.rails import config as rail_config
from chalicelib.payouts.rails.callbacks import CallbackUrls

MPESA_ONGOING = "46733123453"  # the simulator's number that stays pending until settled by hand


def kenyan_msisdn() -> str:
    return "25471" + "".join(random.choices("0123456789", k=7))  # Safaricom's 071x range


def mpesa_seller(world, msisdn: str | None = None) -> dict:
    return world.seller(msisdn or kenyan_msisdn(), rail="mpesa", currency="KES", country="KE")


def mpesa_received(world, msisdn: str) -> int:
    """What Safaricom says the wallet received (the simulator's own record), in minor units."""
    balances = world.sim_get(f"/sandbox/wallets/mpesa/{msisdn}")["balances"]
    return sum(b["amount"] for b in balances if b["currency"] == "KES")


def post_callback(world, path: str, body: dict):
    return world.request("POST", path, json_body=body, key=None)


def forged_failure(payout_id: str, conversation_id: str = "AG_x") -> dict:
    return {"Result": {"ResultType": 0, "ResultCode": 2001, "ResultDesc": "The initiator information is invalid.",
                       "OriginatorConversationID": payout_id, "ConversationID": conversation_id}}


def forged_status_answer(payout_id: str, status: str, amount: int, payment_conversation_id: str) -> dict:
    params = [{"Key": "TransactionStatus", "Value": status}, {"Key": "OriginatorConversationID", "Value": payout_id},
              {"Key": "Amount", "Value": amount}, {"Key": "ConversationID", "Value": payment_conversation_id},
              {"Key": "ReceiptNo", "Value": "FORGED0001"}]
    return {"Result": {"ResultType": 0, "ResultCode": 0, "ResultDesc": "ok", "OriginatorConversationID": "q-1",
                       "ConversationID": "AG_forged_query", "ResultParameters": {"ResultParameter": params},
                       "ReferenceData": {"ReferenceItem": {"Key": "Occasion", "Value": f"mizani-status:{payout_id}"}}}}


# -- 1. a forged M-Pesa result --------------------------------------------------------------------


def test_a_forged_mpesa_result_sent_before_the_buyer_pays_cannot_get_the_seller_paid_twice(world):
    seller = mpesa_seller(world)
    msisdn = seller["payout"]["msisdn"]
    order = world.order(seller)
    payout_id = f"po_{order['order_id']}_1"  # predictable from the order id
    guessed_token = "0" * 32
    for path in ("/v1/webhooks/mpesa/result", f"/v1/webhooks/mpesa/result/{payout_id}/{guessed_token}",
                 "/v1/webhooks/mpesa/timeout"):
        assert post_callback(world, path, forged_failure(payout_id)).status_code == 200  # acknowledged...
    # ...even with the payout's real token (a leak): the payout was never sent, so nothing is kept.
    real_token = CallbackUrls(rail_config.LOCAL_CALLBACK_SECRET, "mpesa").token(payout_id)
    assert post_callback(world, f"/v1/webhooks/mpesa/result/{payout_id}/{real_token}",
                         forged_failure(payout_id)).json()["duplicate"] is True

    delivery = world.pay(order)["webhook"]
    assert delivery["status"] == 200
    shipped = world.ok(world.ship(order))
    assert world.customs(shipped, "cleared").status_code == 200
    settled = world.wait_for(order["order_id"], "settled")

    assert mpesa_received(world, msisdn) == settled["payout"]["amount"]
    balance = world.balance(seller["seller_id"])
    assert balance["available"]["amount"] == 0 and balance["payout_pending"]["amount"] == 0
    refused = world.post(f"/v1/sellers/{seller['seller_id']}/payouts", "seller", seller["seller_id"],
                         {"amount": settled["payout"]})
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "insufficient_funds")
    assert mpesa_received(world, msisdn) == settled["payout"]["amount"]  # paid exactly once


def test_a_forged_status_answer_for_a_payout_in_flight_changes_nothing_even_with_the_token(world):
    seller = mpesa_seller(world, MPESA_ONGOING)
    order = world.cleared(seller)
    world.wait_for(order["order_id"], "payout_pending")
    payout_id = f"po_{order['order_id']}_1"
    payout = world.until(lambda: next((p for p in world.payouts(seller["seller_id"])
                                       if p["payout_id"] == payout_id and p["status"] == "pending"), None),
                         "the M-Pesa payout to be sent")
    token = CallbackUrls(rail_config.LOCAL_CALLBACK_SECRET, "mpesa").token(payout_id)
    whole = payout["amount"]["amount"] // 100
    # Right token, right amount, but not the ConversationID Daraja gave the payment: refused.
    forged = forged_status_answer(payout_id, "Failed", whole, "AG_not_the_payment")
    assert post_callback(world, f"/v1/webhooks/mpesa/result/{payout_id}/{token}", forged).json()["duplicate"] is True
    for _ in range(3):
        world.sweep()
    assert world.read(order["order_id"])["status"] == "payout_pending"

    settle = world.http.post(f"{world.sim}/sandbox/mpesa/payments/{payout_id}/settle", json={"result_code": 0}, timeout=30)
    assert settle.status_code == 200
    settled = world.wait_for(order["order_id"], "settled")
    assert mpesa_received(world, MPESA_ONGOING) >= settled["payout"]["amount"]
    assert world.balance(seller["seller_id"])["available"]["amount"] == 0


# -- 4. customs `rejected` racing `cleared` ---------------------------------------------------------


class HeldDocuments:
    """The app's documents, except that the first update of ``order#<id>`` that records a customs
    decision is held after its read until ``release`` is set: the other decision runs in between."""

    def __init__(self, inner, order_id: str, outcome: str):
        self.inner = inner
        self.pk = f"order#{order_id}"
        self.outcome = outcome
        self.held = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def update(self, pk, mutate, sk="doc", **options):  # options: current= (the version the caller read)
        if pk != self.pk:
            return self.inner.update(pk, mutate, sk, **options)

        def held_mutate(doc):
            new = mutate(doc)
            if (not self.held.is_set() and new is not None
                    and (new.get("customs") or {}).get("outcome") == self.outcome):
                self.held.set()
                assert self.release.wait(30), "the racing decision never finished"
            return new

        return self.inner.update(pk, held_mutate, sk, **options)


@pytest.mark.parametrize("first, second", [("rejected", "cleared"), ("cleared", "rejected"), ("rejected", "rejected")])
def test_of_two_racing_customs_decisions_the_first_written_wins_and_the_other_is_409(world, first, second):
    seller = world.seller()
    order = world.shipped(seller)
    oid = order["order_id"]
    held = HeldDocuments(bootstrap.docs(), oid, first)
    bootstrap.reset()
    bootstrap.override(docs=held)
    answers = {}
    try:
        racer = threading.Thread(target=lambda: answers.setdefault("first", world.customs(order, first)))
        racer.start()
        assert held.held.wait(30), "the first decision never reached its write"
        answers["second"] = world.customs(order, second)
        held.release.set()
        racer.join(30)
    finally:
        held.release.set()
        bootstrap.reset()

    # The held decision read the order before the other was written; the other one is written first.
    assert answers["second"].status_code == 200
    assert (answers["first"].status_code, answers["first"].json()["error"]["code"]) == (409, "invalid_state")
    final = world.wait_for(oid, {"settled", "refunded"})
    assert final["status"] == ("settled" if second == "cleared" else "refunded")
    assert final["customs"]["outcome"] == second
    decisions = [e for e in final["timeline"] if e["status"] in ("customs_cleared", "customs_rejected")]
    assert len(decisions) == 1
    if final["status"] == "refunded":
        assert world.account(f"escrow:{oid}")["balance"] == 0
