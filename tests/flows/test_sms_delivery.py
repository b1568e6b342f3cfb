"""SMS over the running sandbox: Africa's Talking's delivery report comes back over HTTP and shows on
the message's document; a number the gateway refuses for good is texted once and never again."""
from __future__ import annotations

import random

import pytest


def message(world, message_id: str) -> dict | None:
    """The outbox's document of one message (the sandbox runs in this process, on its tables)."""
    from chalicelib import bootstrap

    return bootstrap.outbox().message(message_id)


def settled_message(world, message_id: str, statuses=("sent",)) -> dict:
    return world.until(lambda: (m := message(world, message_id)) and m["status"] in statuses and m,
                       f"SMS {message_id} to be {statuses}")


def report(world, provider_id: str, status: str) -> dict:
    """Africa's Talking (the simulator) reports ``status`` for one message now; what our API answered."""
    reply = world.http.post(f"{world.sim}/sandbox/sms/{provider_id}/report", json={"status": status}, timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.json()["report"]


@pytest.fixture
def scripted_number(world):
    """``scripted_number(**script)``: a fresh wallet number that the SMS simulator plays as scripted
    (``send_status_code``: refused at send time; ``delivery_status``: reported so, or never if None)."""
    numbers = []

    def script(**outcome) -> str:
        msisdn = "25078" + "".join(random.choices("0123456789", k=7))
        reply = world.http.post(f"{world.sim}/sandbox/sms/numbers/{msisdn}", json=outcome, timeout=30)
        assert reply.status_code == 200, reply.text
        numbers.append(msisdn)
        return msisdn

    yield script
    for msisdn in numbers:
        world.http.delete(f"{world.sim}/sandbox/sms/numbers/{msisdn}", timeout=30)


def test_a_payout_sms_whose_delivery_report_arrives_over_http_shows_delivered_on_its_document(world):
    seller = world.seller()
    order = world.wait_for(world.cleared(seller)["order_id"], "settled")
    sms = settled_message(world, f"payout_sent:{order['order_id']}")
    assert (sms["status_code"], sms["attempts"], sms["to"]) == (101, 1, "+" + seller["payout"]["msisdn"])
    [at_gateway] = [m for m in world.sms(seller["payout"]["msisdn"]) if m["message_id"] == sms["provider_id"]]
    assert "sent" in at_gateway["message"]

    answered = report(world, sms["provider_id"], "Success")
    assert answered["status"] == 200
    assert answered["form"]["phoneNumber"] == "+" + seller["payout"]["msisdn"]
    delivered = message(world, f"payout_sent:{order['order_id']}")
    assert (delivered["delivery_status"], delivered["network_code"]) == ("Success", "99999")
    assert delivered["delivered_at"] and delivered["status"] == "sent"
    assert world.read(order["order_id"])["status"] == "settled"  # a report is information only


def test_a_late_and_a_repeated_delivery_report_over_http_are_acknowledged_and_change_nothing(world, scripted_number):
    seller = world.seller(scripted_number(delivery_status=None))  # only the reports this test sends
    order = world.paid(seller)
    sms = settled_message(world, f"paid:{order['order_id']}")
    assert report(world, sms["provider_id"], "Failed")["status"] == 200
    before = message(world, f"paid:{order['order_id']}")
    for status in ("Buffered", "Failed", "Success"):
        assert report(world, sms["provider_id"], status)["status"] == 200
    after = message(world, f"paid:{order['order_id']}")
    assert after["delivery_status"] == "Failed" and after == before


def test_a_seller_whose_number_is_blacklisted_is_texted_once_and_never_again_and_is_still_paid(world, scripted_number):
    refused_number = scripted_number(send_status_code=406)
    seller = world.seller(refused_number)
    order = world.paid(seller)
    sms = settled_message(world, f"paid:{order['order_id']}", ("rejected",))
    assert (sms["status_code"], sms["gateway_status"], sms["attempts"]) == (406, "UserInBlacklist", 1)
    world.sweep()
    world.sweep()
    attempts = world.sim_get(f"/sandbox/sms/requests?to=%2B{refused_number}")["requests"]
    assert [(r["status_code"], "is paid" in r["message"]) for r in attempts] == [(406, True)]
    assert world.sms(refused_number) == []
    assert message(world, f"paid:{order['order_id']}")["attempts"] == 1
    assert world.read(order["order_id"])["status"] == "paid"  # the money never waits for an SMS
