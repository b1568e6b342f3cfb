"""Provider faults on the MTN MoMo rail, end to end: a 500 after the transfer was made, a lost
callback, duplicate and lying callbacks. Whatever MTN does, the seller is paid exactly once
and the ledger stays balanced.

Faults are one-shot counters of the simulator (``POST /sandbox/faults/momo``); the ``world``
fixture clears them after each test.
"""
from __future__ import annotations

import threading

import pytest

MTN_PENDING = "46733123454"


def one_payout_of(world, seller: dict, order: dict) -> dict:
    [payout] = [p for p in world.payouts(seller["seller_id"]) if p["order_id"] == order["order_id"]]
    return payout


def paid_exactly_once(world, seller: dict, order: dict) -> None:
    msisdn = seller["payout"]["msisdn"]
    transfers = world.wallet_transfers(msisdn, order["order_id"])
    assert [t["status"] for t in transfers] == ["SUCCESSFUL"]
    assert world.wallet(msisdn)["balances"] == [order["payout"]]
    account = world.account(f"seller:{seller['seller_id']}")
    assert (account["credits_posted"], account["debits_posted"]) == (order["payout"]["amount"],) * 2
    assert account["debits_pending"] == 0
    assert [e["status"] for e in world.read(order["order_id"])["timeline"]].count("settled") == 1
    assert world.trial_balance()["balanced"] is True


def callback_url(world) -> str:
    """Where MTN is told to send its one callback (MIZANI_MOMO_CALLBACK_URL): the API's MoMo webhook."""
    return world.api + "/v1/webhooks/momo"


def mtn_callback_body(world, msisdn: str, order_id: str) -> dict:
    """What MTN PUTs to the callback URL: the transfer as GET /disbursement/v1_0/transfer/{id} shows it."""
    [transfer] = world.sent_to_mtn(msisdn, order_id)
    return {"amount": None, "currency": "RWF", "externalId": transfer["externalId"],
            "financialTransactionId": transfer["financialTransactionId"],
            "payee": {"partyIdType": "MSISDN", "partyId": msisdn}, "status": transfer["status"]}


# -- a 500 after MTN made the transfer ----------------------------------------------------------------


def test_a_500_answer_after_mtn_made_the_transfer_pays_the_seller_exactly_once(world):
    seller = world.seller()
    order = world.shipped(seller)
    world.momo_faults(error_after_success=1)
    assert world.customs(order, "cleared").status_code == 200
    done = world.wait_for(order["order_id"], "settled")
    assert world.momo_faults()["error_after_success"] == 0  # the fault fired on our transfer
    assert one_payout_of(world, seller, order)["status"] == "succeeded"
    paid_exactly_once(world, seller, done)


def test_a_500_before_mtn_processed_anything_is_resent_under_the_same_reference_and_paid_once(world):
    seller = world.seller()
    order = world.shipped(seller)
    world.momo_faults(error_before_processing=1)
    assert world.customs(order, "cleared").status_code == 200
    done = world.wait_for(order["order_id"], "settled")
    assert world.momo_faults()["error_before_processing"] == 0
    paid_exactly_once(world, seller, done)


# -- callbacks -------------------------------------------------------------------------------------------
# The local stage tells MTN to call back at PUT /v1/webhooks/momo (MIZANI_MOMO_CALLBACK_URL); the body
# names the payout (externalId), and the payout's status is then re-queried from MTN.


def delivered_callbacks(world, order_id: str) -> list:
    """MTN's callbacks for the order's payouts, from the simulator's own delivery log (in-process)."""
    momo = world.sb.providers.simulators["sandbox.simulators.momo"]
    momo.callbacks.wait(5)
    return [d for d in momo.callbacks.deliveries if str(d.body.get("externalId", "")).startswith(f"po_{order_id}_")]


def put_callback(world, body: dict):
    return world.http.put(world.api + "/v1/webhooks/momo", json=body, timeout=30)


def test_mtns_own_callback_reaches_the_api(world):
    seller = world.seller()
    order = world.cleared(seller)
    world.wait_for(order["order_id"], "settled")
    ours = delivered_callbacks(world, order["order_id"])
    assert ours, "MTN sent no callback"
    from chalicelib.payouts.rails import config as rail_config
    from chalicelib.payouts.rails.callbacks import CallbackUrls

    tokens = CallbackUrls(rail_config.LOCAL_CALLBACK_SECRET, "mtn_momo")
    # Each callback came to the payout's own URL, carrying that payout's token, and was answered 200.
    assert all(d.url == tokens.url(callback_url(world), d.body["externalId"]) and d.status == 200 for d in ours), \
        [(d.url, d.status) for d in ours]


def test_a_callback_on_a_payouts_url_with_a_wrong_token_changes_nothing(world):
    seller = world.seller(MTN_PENDING)
    order = world.cleared(seller)
    world.wait_for(order["order_id"], "payout_pending")
    body = {**mtn_callback_body(world, MTN_PENDING, order["order_id"]), "status": "SUCCESSFUL"}
    reply = world.http.put(f"{callback_url(world)}/{body['externalId']}/{'0' * 32}", json=body, timeout=30)
    assert reply.status_code == 200 and reply.json()["duplicate"] is True
    assert one_payout_of(world, seller, order)["status"] == "pending"


def test_a_lost_callback_is_settled_by_polling(world):
    seller = world.seller()
    order = world.shipped(seller)
    world.momo_faults(lose_callback=1)
    assert world.customs(order, "cleared").status_code == 200
    done = world.wait_for(order["order_id"], "settled")
    assert world.momo_faults()["lose_callback"] == 0  # MTN's one callback for our transfer was dropped
    assert delivered_callbacks(world, order["order_id"]) == []
    paid_exactly_once(world, seller, done)


def test_a_duplicated_callback_from_mtn_has_one_effect(world):
    seller = world.seller()
    order = world.shipped(seller)
    world.momo_faults(duplicate_callback=1)
    assert world.customs(order, "cleared").status_code == 200
    done = world.wait_for(order["order_id"], "settled")
    assert world.momo_faults()["duplicate_callback"] == 0
    assert [d.status for d in delivered_callbacks(world, order["order_id"])] == [200, 200]
    paid_exactly_once(world, seller, done)


def test_the_same_callback_delivered_twice_at_once_has_one_effect(world):
    seller = world.seller(MTN_PENDING)
    order = world.cleared(seller)
    world.wait_for(order["order_id"], "payout_pending")
    [transfer] = world.sent_to_mtn(MTN_PENDING, order["order_id"])
    world.momo_settle(transfer["referenceId"], "SUCCESSFUL")  # MTN decides (and calls back once itself)

    body = mtn_callback_body(world, MTN_PENDING, order["order_id"])
    start = threading.Barrier(2)
    replies = []

    def deliver():
        start.wait()
        replies.append(put_callback(type(world)(world.sb), body).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert replies == [200, 200]

    done = world.wait_for(order["order_id"], "settled")
    assert one_payout_of(world, seller, order)["status"] == "succeeded"
    account = world.account(f"seller:{seller['seller_id']}")
    assert (account["debits_posted"], account["debits_pending"]) == (order["payout"]["amount"], 0)
    assert [e["status"] for e in done["timeline"]].count("settled") == 1
    assert world.trial_balance()["balanced"] is True


def test_a_callback_claiming_success_is_not_trusted_until_mtn_confirms_it(world):
    seller = world.seller(MTN_PENDING)
    order = world.cleared(seller)
    world.wait_for(order["order_id"], "payout_pending")
    [transfer] = world.sent_to_mtn(MTN_PENDING, order["order_id"])
    body = {**mtn_callback_body(world, MTN_PENDING, order["order_id"]), "status": "SUCCESSFUL",
            "financialTransactionId": "999999999"}

    assert put_callback(world, body).status_code == 200
    assert one_payout_of(world, seller, order)["status"] == "pending"  # MTN still says PENDING
    assert world.read(order["order_id"])["status"] == "payout_pending"
    assert world.balance(seller["seller_id"])["payout_pending"] == order["payout"]

    world.momo_settle(transfer["referenceId"], "FAILED")  # and MTN's real answer wins
    world.wait_for(order["order_id"], "payout_failed")
    assert world.balance(seller["seller_id"])["available"] == order["payout"]


@pytest.mark.parametrize("how", ["put", "post"])
def test_a_callback_for_an_unknown_payout_is_acknowledged_and_does_nothing(world, how):
    body = {"externalId": "po_unknown_1", "status": "SUCCESSFUL"}
    if how == "put":
        reply = put_callback(world, body)
    else:  # the variant that names the payout in its path
        reply = world.request("POST", "/v1/webhooks/momo/po_unknown_1", json_body=body, key=None)
    assert reply.status_code == 200


def test_a_payout_whose_first_send_crashed_is_listed_as_pending_and_then_paid_once(world, monkeypatch):
    # StartPayout dies before MTN is called: the payout exists but was never sent. Until the
    # retry sends it, the seller's payout list must still answer (API.md: pending|succeeded|failed).
    from chalicelib.payouts.rails.momo import MtnMomoRail
    from chalicelib.workflow.tasks import TransientError

    seller = world.seller()
    order = world.shipped(seller)
    crashed = []
    real_send = MtnMomoRail.send

    def send(rail, reference, *args, **kwargs):
        if reference.startswith(f"po_{order['order_id']}_") and not crashed:
            crashed.append(reference)
            raise TransientError("injected: the Lambda died before calling MTN")
        return real_send(rail, reference, *args, **kwargs)

    monkeypatch.setattr(MtnMomoRail, "send", send)
    assert world.customs(order, "cleared").status_code == 200
    world.until(lambda: crashed, "the first send attempt")
    listed = world.get(f"/v1/sellers/{seller['seller_id']}/payouts", "seller", seller["seller_id"])
    assert listed.status_code == 200, listed.text
    assert [p["status"] for p in listed.json()["payouts"]] in (["pending"], ["succeeded"])  # the retry may be quick

    done = world.wait_for(order["order_id"], "settled")
    paid_exactly_once(world, seller, done)
