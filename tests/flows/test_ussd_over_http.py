"""USSD over HTTP on the sandbox: ``POST /v1/ussd`` as Africa's Talking posts it, for real parties.

A co-operative registered with ``POST /v1/sellers`` dials from its own wallet number; a member
registered with ``POST /v1/sellers/{id}/members`` from theirs. Balances, payouts and withdrawals
come from the platform through ``bootstrap.directory()``; the withdrawal reaches the MTN simulator.
Sellers need money in their *available* balance: as in the withdrawal flows, an order's payout is
refused by the rail (patched in this process for those orders only) and comes back to the balance.
"""
from __future__ import annotations

import json
import random
import uuid

import pytest

from chalicelib.i18n import format_money
from chalicelib.payouts.rails.momo import MtnMomoRail
from chalicelib.payouts.rails.port import RailStatus
from ussd_world import Dial, Gateway, form

PIN = "482916"
OTHER_PINS = ("111111", "222222", "333333")
RESUME = "CON You did not finish last time.\n1. Continue\n2. Start again"


class HttpGateway(Gateway):
    """The gateway's side of the callback: form-encoded POST, 200 text/plain every time."""

    def __init__(self, world, msisdn: str):
        def answer(body: str) -> str:
            reply = world.http.post(f"{world.api}/v1/ussd", data=body, timeout=30,
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert reply.status_code == 200 and reply.headers["Content-Type"].startswith("text/plain"), reply.text
            return reply.text

        super().__init__(answer, f"+{msisdn}")

    def fresh(self, *inputs: str) -> Dial:
        """Dial and type ``inputs``; an offer to resume an earlier session is declined first ("2")."""
        dial = Dial(f"ATUid_{uuid.uuid4().hex[:12]}")
        dial.screens.append(self.send(dial.session_id, []))
        typed = ["2"] if dial.last == RESUME else []
        if typed:
            dial.screens.append(self.send(dial.session_id, typed))
        for value in inputs:
            typed.append(value)
            dial.screens.append(self.send(dial.session_id, typed))
        return dial


def ensure_pin(phone: HttpGateway) -> None:
    dial = phone.dial()
    if dial.last.startswith("CON Welcome to Mizani"):
        assert phone.dial(PIN, PIN).last.startswith("CON Your PIN is set.")


def fund(world, seller: dict) -> int:
    """Give ``seller`` an available balance: an order whose payout MTN refused. Returns it (minor units)."""
    order = world.shipped(seller, kg="10")
    real_send = MtnMomoRail.send

    def send(rail, reference, *args, **kwargs):
        if reference.startswith(f"po_{order['order_id']}_"):
            return RailStatus("failed", reason="rejected:PAYEE_NOT_FOUND")
        return real_send(rail, reference, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MtnMomoRail, "send", send)
        assert world.customs(order, "cleared").status_code == 200
        world.wait_for(order["order_id"], "payout_failed")
    return world.balance(seller["seller_id"])["available"]["amount"]


@pytest.fixture(scope="module")
def coop(module_world) -> dict:
    seller = module_world.seller()
    fund(module_world, seller)
    return seller


def phone_of(world, party: dict) -> HttpGateway:
    return HttpGateway(world, party["payout"]["msisdn"])


def available(world, seller: dict) -> int:
    return world.balance(seller["seller_id"])["available"]["amount"]


def test_first_use_then_the_balance_is_what_the_api_shows(world, coop):
    phone = phone_of(world, coop)
    ensure_pin(phone)
    dial = phone.fresh("1")
    assert dial.screens[0].endswith("\n5. Change PIN\n6. Orders")  # a co-operative's own number
    balance = world.balance(coop["seller_id"])
    assert dial.last.startswith(f"END Available: {format_money(balance['available'])}\nIn escrow: ")
    assert dial.last.endswith(f"Being paid out: {format_money(balance['payout_pending'])}")


def test_a_withdrawal_by_ussd_reaches_the_wallet_once_even_when_the_gateway_repeats_it(world, coop):
    phone = phone_of(world, coop)
    ensure_pin(phone)
    msisdn = coop["payout"]["msisdn"]
    before = available(world, coop)
    wallet_before = sum(b["amount"] for b in world.wallet(msisdn)["balances"])
    dial = phone.fresh("3", "2500", PIN)
    assert dial.last in ("END 2,500 RWF is on its way to your wallet.", "END 2,500 RWF sent to your wallet.")
    assert phone.send(dial.session_id, ["3", "2500", PIN]) == dial.last  # the gateway asks again
    world.sweep()
    assert available(world, coop) == before - 2_500
    assert sum(b["amount"] for b in world.wallet(msisdn)["balances"]) == wallet_before + 2_500
    withdrawals = [p for p in world.payouts(coop["seller_id"]) if p["order_id"] is None]
    assert [p["amount"]["amount"] for p in withdrawals].count(2_500) == 1


def test_payments_shows_the_latest_payout_with_its_status(world, coop):
    phone = phone_of(world, coop)
    ensure_pin(phone)
    phone.fresh("3", "1000", PIN)
    world.sweep()
    payments = phone.fresh("2").last
    assert payments.startswith("END Last payments:\n1,000 RWF ") and payments.split("\n")[1].endswith(" sent")


def test_orders_lists_the_cooperatives_orders_with_status(world, coop):
    phone = phone_of(world, coop)
    ensure_pin(phone)
    orders = phone.fresh("6").last
    assert orders.startswith("END Last orders:\n") and " payout failed " in orders


def test_more_than_available_ends_with_the_available_amount_and_moves_nothing(world, coop):
    phone = phone_of(world, coop)
    ensure_pin(phone)
    before = world.balance(coop["seller_id"])
    payouts_before = world.payouts(coop["seller_id"])
    too_much = str(before["available"]["amount"] + 1)
    assert phone.fresh("3", too_much).last == (f"END Not enough money. Available: {format_money(before['available'])}."
                                               " Nothing was sent.")
    assert world.balance(coop["seller_id"]) == before and world.payouts(coop["seller_id"]) == payouts_before


def test_a_session_that_timed_out_mid_withdrawal_is_continued_in_a_new_one(world, coop):
    phone = phone_of(world, coop)
    ensure_pin(phone)
    before = available(world, coop)
    phone.fresh("3", "700")  # the network drops the session at the PIN question
    dial = phone.dial("1", PIN)
    assert dial.screens[:2] == [RESUME, "CON Withdraw 700 RWF to your wallet.\nEnter your PIN:"]
    assert dial.last.startswith("END 700 RWF")
    assert available(world, coop) == before - 700


def test_three_wrong_pins_lock_the_number_and_the_lock_holds_in_a_new_session(world):
    seller = world.seller()
    phone = phone_of(world, seller)
    ensure_pin(phone)
    dial = phone.dial("5", *OTHER_PINS)
    assert dial.screens[-2] == "CON Wrong PIN. Attempts left: 1\nEnter your current PIN:"
    assert dial.last == "END Too many wrong PINs. This number is locked. Try again in 30 minutes."
    assert phone.dial().last.startswith("END Too many wrong PINs.")  # a new session: still locked
    assert phone.dial().last.startswith("END Too many wrong PINs.")


def test_a_member_dials_their_own_menu(world):
    coop = world.seller()
    msisdn = "25078" + "".join(random.choices("0123456789", k=7))
    body = {"name": "Uwimana Jeanne", "payout": {"rail": "mtn_momo", "msisdn": msisdn, "currency": "RWF"}}
    member = world.ok(world.post(f"/v1/sellers/{coop['seller_id']}/members", "seller", coop["seller_id"], body), 201)
    phone = phone_of(world, member)
    assert phone.dial().last == "CON Welcome to Mizani, Uwimana Jeanne.\nChoose a PIN of 4 to 6 digits:"
    menu = phone.dial(PIN, PIN).last
    assert menu.endswith("\n5. Change PIN") and "Orders" not in menu
    assert phone.dial("1").last == "END Available: 0 RWF\nBeing paid out: 0 RWF"


def test_an_unknown_number_is_told_it_is_not_registered(world):
    assert HttpGateway(world, "250788000321").dial().last.startswith("END This number is not registered")


@pytest.mark.parametrize("body, content_type", [
    ("", "application/x-www-form-urlencoded"),
    ("sessionId=only", "application/x-www-form-urlencoded"),
    ('{"sessionId": "x", "phoneNumber": "+250788123456", "text": ""}', "application/json"),
    ("\x00\x01garbage", "text/plain"),
    (form("ATUid_x", "+250788123456", "1" * 5000), "application/x-www-form-urlencoded"),
])
def test_a_malformed_callback_is_answered_200_with_an_end_screen_and_changes_nothing(world, body, content_type):
    def ussd_items() -> int:
        client = world.sb.client("dynamodb")
        return sum(1 for page in client.get_paginator("scan").paginate(
            TableName=f"{world.sb.table_prefix}-app", FilterExpression="begins_with(pk, :p)",
            ExpressionAttributeValues={":p": {"S": "ussd#"}}) for _ in page["Items"])

    before = ussd_items()
    reply = world.http.post(f"{world.api}/v1/ussd", data=body.encode(), headers={"Content-Type": content_type},
                            timeout=30)
    assert reply.status_code == 200 and reply.headers["Content-Type"].startswith("text/plain")
    assert reply.text == "END Sorry, Mizani could not read this request. Please dial again."
    assert ussd_items() == before


def test_no_pin_is_kept_anywhere_in_the_app_table(world, coop):
    phone = phone_of(world, coop)
    ensure_pin(phone)
    phone.fresh("3", "100", PIN)
    client = world.sb.client("dynamodb")
    dump = json.dumps([page["Items"] for page in client.get_paginator("scan").paginate(
        TableName=f"{world.sb.table_prefix}-app")])
    assert "ussd#pin#" in dump  # the scan sees the PIN records...
    for pin in (PIN, *OTHER_PINS):
        assert pin not in dump  # ...and no PIN in them, nor in any session or document
