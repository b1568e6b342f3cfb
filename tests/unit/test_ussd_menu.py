"""The USSD menu, path by path, on in-memory adapters: what a caller sees and what moves."""
import json
import logging

import pytest

from chalicelib.errors import BusinessRuleViolation, ProviderUnavailable
from chalicelib.money import Money
from chalicelib.ussd.service import RESUME_SECONDS, mask_text, parse_callback, MalformedCallback
from chalicelib.ussd.store import LOCK_SECONDS
from ussd_world import Gateway, UssdWorld, form

COOP = "250788100001"
FARMER = "250788100002"
PIN = "482916"
MEMBER_MENU = "1. Balance\n2. Payments\n3. Withdraw\n4. Language\n5. Change PIN"


@pytest.fixture
def world():
    w = UssdWorld()
    w.directory.add_seller(COOP, name="Abahuzamugambi Coffee", available=1_707_447,
                           in_escrow=[Money(120_000, "USD")], payout_pending=52_000)
    w.directory.add_member(FARMER, name="Uwimana Jeanne", available=80_000)
    return w


@pytest.fixture
def farmer(world) -> Gateway:
    return world.phone(FARMER)


@pytest.fixture
def coop(world) -> Gateway:
    return world.phone(COOP)


def later(world):
    """Past the resume window: the next dial starts afresh, whatever the last one left."""
    world.clock.advance(RESUME_SECONDS + 1)


def with_pin(phone: Gateway, pin: str = PIN):
    dial = phone.dial(pin, pin)
    assert dial.last.startswith("CON Your PIN is set.")
    return dial


# -- first use ---------------------------------------------------------------------------


def test_first_use_asks_for_a_pin_twice_and_then_shows_the_menu(farmer, world):
    dial = farmer.dial(PIN, PIN)
    assert dial.screens[0] == "CON Welcome to Mizani, Uwimana Jeanne.\nChoose a PIN of 4 to 6 digits:"
    assert dial.screens[1] == "CON Enter the same PIN again:"
    assert dial.screens[2] == f"CON Your PIN is set.\nMizani: Uwimana Jeanne\n{MEMBER_MENU}"
    assert world.store.get_pin(FARMER) is not None


def test_until_a_pin_is_chosen_no_other_menu_is_shown(farmer, world):
    dial = farmer.dial("1", "12", "1234567", "abcd")
    assert all(s == "CON A PIN is 4 to 6 digits.\nChoose a PIN of 4 to 6 digits:" for s in dial.screens[1:])
    assert farmer.dial().last.startswith("CON Welcome to Mizani")  # still no PIN, still first use
    assert world.store.get_pin(FARMER) is None and world.directory.withdrawals == []


def test_two_different_pins_are_refused_and_asked_again(farmer, world):
    dial = farmer.dial("1234", "4321", "5678", "5678")
    assert dial.screens[2] == "CON The two PINs are different.\nChoose a PIN of 4 to 6 digits:"
    assert dial.last.startswith("CON Your PIN is set.")
    world.clock.advance(1)
    assert farmer.dial("3", "1000", "5678").last == "END 1,000 RWF is on its way to your wallet."


def test_four_and_six_digit_pins_are_accepted(world):
    for msisdn, pin in (("250788200001", "0000"), ("250788200002", "999999")):
        world.directory.add_member(msisdn)
        assert world.phone(msisdn).dial(pin, pin).last.startswith("CON Your PIN is set.")


# -- the main menu -------------------------------------------------------------------------


def test_a_members_menu_has_exactly_the_five_labels_numbered(farmer):
    with_pin(farmer)
    assert farmer.dial().last == f"CON Mizani: Uwimana Jeanne\n{MEMBER_MENU}"


def test_a_cooperatives_own_number_also_has_orders(coop):
    with_pin(coop)
    assert coop.dial().last == f"CON Mizani: Abahuzamugambi Coffee\n{MEMBER_MENU}\n6. Orders"


def test_an_invalid_choice_shows_the_menu_again(farmer):
    with_pin(farmer)
    for choice in ("0", "6", "9", "x", "1 2", "é", "１"):
        assert farmer.dial(choice).screens[1] == f"CON Invalid choice.\nMizani: Uwimana Jeanne\n{MEMBER_MENU}"


def test_an_unknown_number_is_told_it_is_not_registered_and_nothing_is_kept(world):
    stranger = world.phone("250788999999")
    assert stranger.dial().last == ("END This number is not registered with Mizani. "
                                    "Ask your co-operative to register it.")
    assert world.store.sessions == {} and world.store.pins == {}


# -- Balance, Payments, Orders -------------------------------------------------------------


def test_balance_of_a_cooperative_shows_available_escrow_and_being_paid_out(coop):
    with_pin(coop)
    assert coop.dial("1").last == ("END Available: 1,707,447 RWF\nIn escrow: 1,200.00 USD\n"
                                   "Being paid out: 52,000 RWF")


def test_balance_of_a_member_has_no_escrow_line(farmer):
    with_pin(farmer)
    assert farmer.dial("1").last == "END Available: 80,000 RWF\nBeing paid out: 0 RWF"


def test_payments_lists_the_last_three_with_amount_date_and_status(world, farmer):
    party = world.directory.parties[FARMER]
    for n, status in enumerate(["succeeded", "failed", "pending", "succeeded"], start=1):
        party.payouts.append({"amount": {"amount": n * 1000, "currency": "RWF"}, "status": status,
                              "created_at": f"2026-11-0{n}T08:00:00Z"})
    with_pin(farmer)
    assert farmer.dial("2").last == ("END Last payments:\n4,000 RWF 2026-11-04 sent\n3,000 RWF 2026-11-03 pending\n"
                                     "2,000 RWF 2026-11-02 failed")


def test_payments_says_when_there_are_none(farmer):
    with_pin(farmer)
    assert farmer.dial("2").last == "END No payments yet."


def test_orders_lists_the_cooperatives_last_three_with_status(world, coop):
    party = world.directory.parties[COOP]
    for n, status in enumerate(["settled", "shipped", "payout_failed", "customs_cleared"], start=1):
        party.orders.append({"order_id": f"ord_{'abcd'[n - 1] * 4}{n}{n}{n}{n}", "status": status,
                             "payout": {"amount": n * 100_000, "currency": "RWF"}})
    with_pin(coop)
    assert coop.dial("6").last == ("END Last orders:\nDDDD4444 cleared by customs 400,000 RWF\n"
                                   "CCCC3333 payout failed 300,000 RWF\nBBBB2222 shipped 200,000 RWF")


def test_a_member_cannot_open_orders(farmer):
    with_pin(farmer)
    assert farmer.dial("6").screens[1].startswith("CON Invalid choice.")


# -- Withdraw ----------------------------------------------------------------------------------


def test_withdraw_asks_the_amount_then_the_pin_and_ends_with_the_amount(world, farmer):
    with_pin(farmer)
    dial = farmer.dial("3", "50000", PIN)
    assert dial.screens[1] == "CON Available: 80,000 RWF\nAmount to withdraw in RWF:"
    assert dial.screens[2] == "CON Withdraw 50,000 RWF to your wallet.\nEnter your PIN:"
    assert dial.last == "END 50,000 RWF is on its way to your wallet."
    assert world.directory.withdrawals == [(FARMER, Money(50_000, "RWF"), f"ussd:{dial.session_id}:2")]
    assert world.directory.parties[FARMER].available == 30_000


def test_more_than_available_ends_with_the_available_amount_and_moves_nothing(world, farmer):
    with_pin(farmer)
    dial = farmer.dial("3", "80001")
    assert dial.last == "END Not enough money. Available: 80,000 RWF. Nothing was sent."
    assert world.directory.withdrawals == [] and world.directory.parties[FARMER].available == 80_000


def test_an_amount_that_is_not_whole_digits_is_asked_again(world, farmer):
    with_pin(farmer)
    for typed in ("", "0", "12.5", "-5", "abc", "1" * 13):
        later(world)
        dial = farmer.dial("3", typed)
        assert dial.last == ("CON Enter the amount in RWF, digits only.\nAvailable: 80,000 RWF\n"
                             "Amount to withdraw in RWF:")
    assert world.directory.withdrawals == []


def test_nothing_available_ends_at_once(world, farmer):
    world.directory.parties[FARMER].available = 0
    with_pin(farmer)
    assert farmer.dial("3").last == "END There is nothing to withdraw. Available: 0 RWF"


def test_amounts_in_a_currency_with_cents_are_whole_units(world):
    world.directory.add_member("254712000001", name="Wanjiru", currency="KES", available=500_000)
    phone = world.phone("254712000001")
    with_pin(phone)
    assert phone.dial("3", "1500", PIN).last == "END 1,500.00 KES is on its way to your wallet."
    assert world.directory.withdrawals[-1][1] == Money(150_000, "KES")


def test_a_gateway_retry_of_the_pin_request_never_pays_twice(world, farmer):
    with_pin(farmer)
    dial = farmer.dial("3", "20000", PIN)
    again = farmer.send(dial.session_id, ["3", "20000", PIN])
    assert again == dial.last
    assert world.directory.paid_out(FARMER) == 20_000


def test_a_retry_after_the_answer_was_lost_replays_the_same_withdrawal(world, farmer):
    with_pin(farmer)
    dial = farmer.dial("3", "20000")
    world.store.put_session = lambda msisdn, record: True  # the answer's write "fails silently": nothing stored
    first = farmer.send(dial.session_id, ["3", "20000", PIN])
    second = farmer.send(dial.session_id, ["3", "20000", PIN])
    assert first == second == "END 20,000 RWF is on its way to your wallet."
    keys = {key for _, _, key in world.directory.withdrawals}
    assert len(world.directory.withdrawals) == 2 and len(keys) == 1  # asked twice, under one key
    assert world.directory.paid_out(FARMER) == 20_000


@pytest.mark.parametrize("error, screen", [
    (BusinessRuleViolation("limit_exceeded", "x"), "END This amount is outside your wallet's limits. Nothing was sent."),
    (BusinessRuleViolation("payee_in_review", "x"),
     "END Your wallet is being checked. You can withdraw once it is cleared."),
    (BusinessRuleViolation("payee_blocked", "x"), "END Withdrawals to this wallet are blocked. Please call your co-operative."),
    (ProviderUnavailable("provider_unavailable", "x"),
     "END Mobile money is not answering. Nothing was sent. Please try again later."),
    (BusinessRuleViolation("something_new", "x"), "END Sorry, the withdrawal could not be made. Please try again later."),
])
def test_a_refused_withdrawal_ends_with_why(world, farmer, error, screen):
    with_pin(farmer)
    world.directory.fail_next(error)
    assert farmer.dial("3", "1000", PIN).last == screen
    assert world.directory.parties[FARMER].available == 80_000


def test_a_balance_that_shrank_before_the_pin_ends_with_the_available_amount(world, farmer):
    with_pin(farmer)
    dial = farmer.dial("3", "60000")
    world.directory.parties[FARMER].available = 10_000  # another withdrawal landed meanwhile
    assert farmer.send(dial.session_id, ["3", "60000", PIN]) == ("END Not enough money. Available: 10,000 RWF. "
                                                                 "Nothing was sent.")


def test_a_withdrawal_paid_at_once_says_sent(world, farmer):
    with_pin(farmer)
    real = world.directory.withdraw
    world.directory.withdraw = lambda *a, **k: {**real(*a, **k), "status": "succeeded"}
    assert farmer.dial("3", "1000", PIN).last == "END 1,000 RWF sent to your wallet."


# -- wrong PINs and the lock ----------------------------------------------------------------------


def test_a_wrong_pin_says_how_many_attempts_are_left_and_asks_again(world, farmer):
    with_pin(farmer)
    dial = farmer.dial("3", "1000", "1111")
    assert dial.last == "CON Wrong PIN. Attempts left: 2\nWithdraw 1,000 RWF to your wallet.\nEnter your PIN:"
    assert world.directory.withdrawals == []


def test_three_wrong_pins_lock_the_number_and_the_lock_holds_in_a_new_session(world, farmer):
    with_pin(farmer)
    dial = farmer.dial("3", "1000", "1111", "2222", "3333")
    assert dial.screens[-2] == "CON Wrong PIN. Attempts left: 1\nWithdraw 1,000 RWF to your wallet.\nEnter your PIN:"
    assert dial.last == "END Too many wrong PINs. This number is locked. Try again in 30 minutes."
    world.clock.advance(60)
    assert farmer.dial().last == "END Too many wrong PINs. This number is locked. Try again in 29 minutes."
    assert world.directory.withdrawals == []
    world.clock.advance(LOCK_SECONDS)
    assert farmer.dial("3", "1000", PIN).last == "END 1,000 RWF is on its way to your wallet."


def test_a_locked_answer_is_logged_with_the_apis_code(world, farmer, caplog):
    with_pin(farmer)
    farmer.dial("3", "1000", "1111", "2222", "3333")
    caplog.set_level(logging.INFO, logger="mizani.ussd")
    farmer.dial()
    assert caplog.records[-1].code == "pin_locked"  # a field of the JSON line


def test_even_the_right_pin_is_refused_while_locked(world, farmer):
    with_pin(farmer)
    farmer.dial("3", "1000", "1111", "2222", "3333")
    world.clock.advance(LOCK_SECONDS - 1)
    assert farmer.dial().last.startswith("END Too many wrong PINs.")
    assert world.directory.withdrawals == []


def test_wrong_pins_count_across_sessions_and_a_right_one_ends_the_row(world, farmer):
    with_pin(farmer)
    farmer.dial("5", "1111", "2222")  # Change PIN: two wrong current PINs, then the session drops
    later(world)
    assert farmer.dial("3", "1000", PIN).last.startswith("END 1,000 RWF")  # the right PIN: the row ends
    farmer.dial("3", "1000", "1111", "2222")  # two wrong again, and the session drops
    later(world)
    assert farmer.dial("3", "1000", "3333").last.startswith("END Too many wrong PINs.")  # the third, in a new session
    assert world.directory.paid_out(FARMER) == 1000


def test_a_repeated_wrong_pin_request_is_counted_once(world, farmer):
    with_pin(farmer)
    dial = farmer.dial("3", "1000", "1111")
    for _ in range(3):
        world.store.sessions.pop(FARMER)  # as if the answer was never stored: the whole request runs again
        farmer.send(dial.session_id, ["3", "1000"])
        assert farmer.send(dial.session_id, ["3", "1000", "1111"]).startswith("CON Wrong PIN. Attempts left: 2")
    assert world.store.get_pin(FARMER).fails == 1


# -- Language -----------------------------------------------------------------------------------------


def test_language_is_chosen_remembered_and_used_for_the_next_session(world, farmer):
    with_pin(farmer)
    dial = farmer.dial("4", "3")
    assert dial.screens[1] == "CON Choose a language:\n1. English\n2. Kinyarwanda\n3. Kiswahili\n4. Francais"
    assert dial.last == "END Lugha yako sasa ni Kiswahili."
    assert world.languages.get(FARMER) == "sw"
    assert farmer.dial().last == ("CON Mizani: Uwimana Jeanne\n1. Salio\n2. Malipo\n3. Toa pesa\n4. Lugha\n"
                                  "5. Badilisha PIN")


def test_an_invalid_language_choice_asks_again(farmer, world):
    with_pin(farmer)
    assert farmer.dial("4", "7").last.startswith("CON Invalid choice.\nChoose a language:")
    assert world.languages.get(FARMER) == "en"


def test_the_first_screen_of_a_number_that_chose_french_is_french(world, farmer):
    world.languages.set(FARMER, "fr")
    assert farmer.dial().last == "CON Bienvenue sur Mizani, Uwimana Jeanne.\nChoisissez un PIN de 4 à 6 chiffres :"


# -- Change PIN ---------------------------------------------------------------------------------------------


def test_change_pin_asks_the_current_then_the_new_twice(world, farmer):
    with_pin(farmer)
    dial = farmer.dial("5", PIN, "2468", "2468")
    assert dial.screens[1:] == ["CON Enter your current PIN:", "CON Choose a new PIN of 4 to 6 digits:",
                                "CON Enter the new PIN again:", "END Your PIN is changed."]
    assert farmer.dial("3", "1000", PIN).last.startswith("CON Wrong PIN.")
    later(world)
    assert farmer.dial("3", "1000", "2468").last == "END 1,000 RWF is on its way to your wallet."


def test_change_pin_refuses_a_bad_or_mismatched_new_pin(world, farmer):
    with_pin(farmer)
    dial = farmer.dial("5", PIN, "12", "1357", "7531")
    assert dial.screens[3] == "CON A PIN is 4 to 6 digits.\nChoose a new PIN of 4 to 6 digits:"
    assert dial.last == "CON The two PINs are different.\nChoose a new PIN of 4 to 6 digits:"
    later(world)
    assert farmer.dial("3", "1000", PIN).last.startswith("END 1,000 RWF")  # the old PIN still holds


def test_a_wrong_current_pin_asks_again_and_counts(world, farmer):
    with_pin(farmer)
    assert farmer.dial("5", "0000").last == "CON Wrong PIN. Attempts left: 2\nEnter your current PIN:"


# -- resuming a session that timed out --------------------------------------------------------------------


def test_a_session_that_timed_out_mid_withdrawal_can_be_continued(world, farmer):
    with_pin(farmer)
    farmer.dial("3", "25000")  # the network drops the session at the PIN question
    world.clock.advance(40)
    dial = farmer.dial("1", PIN)
    assert dial.screens[0] == "CON You did not finish last time.\n1. Continue\n2. Start again"
    assert dial.screens[1] == "CON Withdraw 25,000 RWF to your wallet.\nEnter your PIN:"
    assert dial.last == "END 25,000 RWF is on its way to your wallet."


def test_start_again_shows_the_main_menu(world, farmer):
    with_pin(farmer)
    farmer.dial("4")
    assert farmer.dial("2").last == f"CON Mizani: Uwimana Jeanne\n{MEMBER_MENU}"


def test_an_unanswered_offer_is_offered_again(world, farmer):
    with_pin(farmer)
    farmer.dial("3", "25000")
    farmer.dial()  # the offer, and the session drops again
    assert farmer.dial("1").last == "CON Withdraw 25,000 RWF to your wallet.\nEnter your PIN:"


def test_after_the_resume_window_a_new_dial_starts_afresh(world, farmer):
    with_pin(farmer)
    farmer.dial("3", "25000")
    world.clock.advance(RESUME_SECONDS + 1)
    assert farmer.dial().last == f"CON Mizani: Uwimana Jeanne\n{MEMBER_MENU}"


def test_a_session_that_ended_or_sat_at_the_menu_is_not_offered(world, farmer):
    with_pin(farmer)
    farmer.dial("1")  # Balance: END
    assert farmer.dial().last.startswith("CON Mizani:")  # sat at the menu, dropped
    assert farmer.dial().last.startswith("CON Mizani:")


def test_resuming_a_new_pin_starts_again_from_the_current_pin(world, farmer):
    with_pin(farmer)
    farmer.dial("5", PIN, "2468")  # dropped before the new PIN was confirmed
    dial = farmer.dial("1")
    assert dial.last == "CON Enter your current PIN:"


def test_a_first_use_interrupted_after_one_pin_starts_the_pin_again(world, farmer):
    farmer.dial(PIN)
    assert farmer.dial().last.startswith("CON Welcome to Mizani")


def test_a_session_asks_the_directory_who_calls_once_and_the_lock_at_each_pin(world, farmer):
    with_pin(farmer)
    asked = []
    real = world.directory.caller
    world.directory.caller = lambda msisdn: asked.append(msisdn) or real(msisdn)
    dial = farmer.dial("3", "1000", "1111")
    assert asked == [FARMER]  # when the session opened, not again for its later requests
    for n in (2, 3):  # another session locks the number meanwhile ...
        world.store.wrong_pin(FARMER, f"elsewhere:{n}", int(world.clock()))
    # ... and this session's next PIN question meets the lock
    assert farmer.send(dial.session_id, ["3", "1000", "1111", PIN]).startswith("END Too many wrong PINs.")
    assert world.directory.withdrawals == []


# -- callbacks that cannot be read, and errors -------------------------------------------------------


MALFORMED = [
    b"",
    b"garbage",
    b'{"sessionId": "s1", "phoneNumber": "+250788100002", "text": ""}',
    b"\xff\xfe\x00",
    form("s1", "+250788100002", "").replace("sessionId=s1&", "").encode(),
    form("s1", "+250788100002", "").replace("&text=", "").encode(),
    form("s1", "not-a-number", "").encode(),
    form("s 1", "+250788100002", "").encode(),
    (form("s1", "+250788100002", "") + "&text=1").encode(),
    form("s1", "+250788100002", "1*\x01").encode(),
    form("s1", "+250788100002", "1" * 2000).encode(),
    b"sessionId=" + b"x" * 5000,
]


@pytest.mark.parametrize("body", MALFORMED, ids=range(len(MALFORMED)))
def test_a_malformed_callback_gets_an_end_screen_and_changes_nothing(world, body):
    assert world.service.answer_callback(body) == "END Sorry, Mizani could not read this request. Please dial again."
    assert world.store.sessions == {} and world.store.pins == {} and world.directory.withdrawals == []


def test_a_failing_directory_gets_an_end_screen(world, farmer):
    def broken(msisdn):
        raise RuntimeError("the table is gone")

    world.directory.caller = broken
    assert farmer.dial().last == "END Sorry, Mizani cannot answer now. Please try again later."


def test_outside_the_local_stage_a_missing_pepper_is_an_end_screen_and_a_set_one_builds(monkeypatch):
    from chalicelib.documents import MemoryDocuments
    from chalicelib.settings import Settings
    from chalicelib.ussd.fake import FakeDirectory
    from chalicelib.ussd.service import answer_callback, build_service

    def build():
        return build_service(Settings(stage="prod"), MemoryDocuments(), FakeDirectory)

    monkeypatch.delenv("MIZANI_PIN_PEPPER", raising=False)
    body = form("s1", "+250788100002", "")
    assert answer_callback(build, body) == "END Sorry, Mizani cannot answer now. Please try again later."
    monkeypatch.setenv("MIZANI_PIN_PEPPER", "arn:aws:ssm:eu-west-1:123456789012:parameter/mizani/prod/pin-pepper")
    assert build().hasher is not None  # resolved on the first PIN, not at build


def test_the_callback_parser_reads_what_africas_talking_sends():
    request = parse_callback(form("ATUid_1", "+250788100002", "3*5000", serviceCode="*384*2026#"))
    assert (request.session_id, request.msisdn, request.inputs) == ("ATUid_1", "250788100002", ("3", "5000"))
    assert parse_callback(form("ATUid_1", "+250788100002", "")).inputs == ()
    with pytest.raises(MalformedCallback):
        parse_callback({"sessionId": "a", "phoneNumber": "+250788100002"})


# -- the PIN never shows ---------------------------------------------------------------------------


def test_mask_text_hides_every_input_that_may_be_a_pin():
    assert mask_text("3*50000*482916") == "3*[masked]*[masked]"
    assert mask_text("1234*1234") == "[masked]*[masked]"
    assert mask_text("4*3") == "4*3" and mask_text("") == ""
    assert mask_text("12a34") == "[masked]"


def test_no_pin_in_any_screen_stored_state_or_log(world, farmer, caplog):
    caplog.set_level(logging.DEBUG)
    screens = []
    screens += with_pin(farmer).screens
    screens += farmer.dial("3", "1000", "777777").screens
    later(world)
    screens += farmer.dial("3", "1000", PIN).screens
    screens += farmer.dial("5", PIN, "135790", "135790").screens
    for pin in (PIN, "777777", "135790"):
        assert not any(pin in s for s in screens)
        assert pin not in json.dumps([vars(r) for r in world.store.sessions.values()])
        assert pin not in json.dumps([r.record.pin_hash for r in world.store.pins.values()])
        assert pin not in caplog.text
        assert pin not in json.dumps([vars(r) for r in caplog.records], default=str)  # the lines' fields too
        assert pin not in json.dumps(world.docs.items, default=str)
    assert any("[masked]" in str(getattr(r, "text", "")) for r in caplog.records)  # the requests were logged, masked
