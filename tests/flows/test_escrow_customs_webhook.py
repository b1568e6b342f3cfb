"""The customs webhook over HTTP, as API.md "Customs webhook" specifies it."""
from __future__ import annotations

import pytest


def code(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


@pytest.fixture
def seller(world):
    return world.seller()


@pytest.fixture
def shipped(world, seller):
    """A paid, shipped order waiting for customs (the workflow holds its task token)."""
    return world.shipped(seller)


@pytest.fixture(scope="module")
def waiting(module_world):
    """A shipped order shared by the tests whose webhook must change nothing."""
    return module_world.shipped(module_world.seller())


# -- signatures -------------------------------------------------------------------------------


def test_a_decision_signed_with_another_secret_is_refused_and_changes_nothing(world, waiting):
    assert code(world.customs(waiting, "cleared", secret="not-the-customs-secret")) == (400, "invalid_signature")
    assert world.read(waiting["order_id"])["status"] == "shipped"


@pytest.mark.parametrize("offset", [-600, 600], ids=["stale", "future-dated"])
def test_a_decision_signed_outside_the_five_minute_window_is_refused(world, waiting, offset):
    assert code(world.customs(waiting, "cleared", offset=offset)) == (400, "invalid_signature")
    assert world.read(waiting["order_id"])["status"] == "shipped"


def test_a_decision_without_a_signature_is_refused(world, waiting):
    reply = world.http.post(world.api + "/v1/webhooks/customs", json={"event_id": "e", "order_id": waiting["order_id"]},
                            timeout=30)
    assert code(reply) == (400, "invalid_signature")


# -- which order -------------------------------------------------------------------------------


def test_a_decision_for_an_unknown_order_answers_404(world):
    reply = world.customs({}, "cleared", order_id="ord_00000000000000000000", declaration_ref="RW-KGL-0")
    assert code(reply) == (404, "not_found")


def test_a_decision_for_an_order_not_yet_shipped_answers_409_invalid_state(world):
    order = world.paid(world.seller())
    assert code(world.customs(order, "cleared", declaration_ref="RW-KGL-anything")) == (409, "invalid_state")
    assert world.read(order["order_id"])["status"] == "paid"


def test_a_decision_for_an_order_awaiting_payment_answers_409_invalid_state(world):
    order = world.order(world.seller())
    assert code(world.customs(order, "rejected", declaration_ref="RW-KGL-anything")) == (409, "invalid_state")
    assert world.read(order["order_id"])["status"] == "awaiting_payment"


def test_a_second_decision_after_clearance_answers_409_and_cannot_refund(world, shipped):
    assert world.customs(shipped, "cleared").status_code == 200
    world.wait_for(shipped["order_id"], "settled")
    assert code(world.customs(shipped, "rejected")) == (409, "invalid_state")
    assert world.read(shipped["order_id"])["status"] == "settled"
    assert world.stripe_events(shipped["payment"]["payment_intent_id"], "refund.created") == []


# -- de-duplication ------------------------------------------------------------------------------------


def test_a_repeated_clearance_event_is_acknowledged_and_releases_the_escrow_once(world, seller, shipped):
    event_id = "cust-dup-" + shipped["order_id"][-10:]
    first = world.customs(shipped, "cleared", event_id)
    again = world.customs(shipped, "cleared", event_id)
    assert (first.status_code, first.json()) == (200, {"received": True, "duplicate": False})
    assert (again.status_code, again.json()) == (200, {"received": True, "duplicate": True})

    done = world.wait_for(shipped["order_id"], "settled")
    assert [e["status"] for e in done["timeline"]].count("customs_cleared") == 1
    escrow = world.account(f"escrow:{shipped['order_id']}")
    assert (escrow["credits_posted"], escrow["debits_posted"]) == (shipped["pay"]["amount"], shipped["pay"]["amount"])
    assert world.wallet(seller["payout"]["msisdn"])["balances"] == [done["payout"]]
    # replaying it after settlement is still only an acknowledgement
    assert world.customs(shipped, "cleared", event_id).json() == {"received": True, "duplicate": True}


def test_a_repeated_rejection_event_refunds_once(world, shipped):
    event_id = "cust-rej-" + shipped["order_id"][-10:]
    assert world.customs(shipped, "rejected", event_id).status_code == 200
    assert world.customs(shipped, "rejected", event_id).json()["duplicate"] is True
    world.wait_for(shipped["order_id"], "refunded")
    assert len(world.stripe_events(shipped["payment"]["payment_intent_id"], "refund.created")) == 1
    assert world.account(f"escrow:{shipped['order_id']}")["balance"] == 0


# -- inspection ------------------------------------------------------------------------------------------


def test_an_inspection_is_recorded_on_the_timeline_and_the_order_keeps_waiting(world, shipped):
    event_id = "cust-insp-" + shipped["order_id"][-10:]
    assert world.customs(shipped, "inspection", event_id).status_code == 200
    assert world.customs(shipped, "inspection", event_id).json()["duplicate"] is True

    order = world.read(shipped["order_id"])
    assert order["status"] == "shipped"
    inspections = [e for e in order["timeline"] if e["status"] == "customs_inspection"]
    assert len(inspections) == 1 and event_id in inspections[0]["detail"]

    # the inspection does not stop a later decision
    assert world.customs(shipped, "cleared").status_code == 200
    done = world.wait_for(shipped["order_id"], "settled")
    assert [e["status"] for e in done["timeline"]] == [
        "awaiting_payment", "paid", "shipped", "customs_inspection", "customs_cleared", "released", "payout_pending",
        "settled",
    ]


def test_a_decision_for_another_declaration_than_the_shipment_is_refused(world, waiting):
    reply = world.customs(waiting, "cleared", declaration_ref="RW-KGL-SOMEONE-ELSE")
    assert code(reply) == (400, "validation_error")
    assert world.read(waiting["order_id"])["status"] == "shipped"
