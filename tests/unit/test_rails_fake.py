"""FakeRail: the in-memory provider twin that service and flow tests script."""
import pytest

from chalicelib.money import Money
from chalicelib.payouts.rails import NOT_FOUND, FakeRail, RailNotSent

RWF = Money(150_000, "RWF")


def test_an_unscripted_wallet_is_paid_at_once():
    rail = FakeRail()
    assert rail.send("p-1", RWF, "+250788000001", "coffee").state == "succeeded"
    assert rail.status("p-1").state == "succeeded"
    assert rail.credited("250788000001") == [RWF]


def test_a_scripted_unknown_send_then_resolves_through_status():
    rail = FakeRail()
    rail.script("250788000002", send="unknown", statuses=["pending", "succeeded"])
    assert rail.send("p-2", RWF, "250788000002", "n").state == "unknown"
    assert [rail.status("p-2").state for _ in range(3)] == ["pending", "succeeded", "succeeded"]


def test_a_scripted_failure_carries_the_provider_reason():
    rail = FakeRail()
    rail.script("250788000003", send="failed", reason="PAYEE_NOT_FOUND")
    sent = rail.send("p-3", RWF, "250788000003", "n")
    assert (sent.state, sent.reason) == ("failed", "PAYEE_NOT_FOUND")
    assert rail.credited("250788000003") == []


def test_sending_the_same_reference_twice_pays_once():
    rail = FakeRail()
    rail.send("p-4", RWF, "250788000004", "n")
    again = rail.send("p-4", RWF, "250788000004", "n")
    assert again.state == "succeeded"
    assert rail.credited("250788000004") == [RWF]
    assert rail.payments["p-4"].sends == 2


def test_a_lost_request_is_not_found_until_it_is_sent_again_with_the_same_reference():
    rail = FakeRail()
    rail.script("250788000005", send="succeeded", recorded=False)
    assert rail.send("p-5", RWF, "250788000005", "n").state == "unknown"
    lost = rail.status("p-5")
    assert (lost.state, lost.reason) == ("unknown", NOT_FOUND)
    assert rail.send("p-5", RWF, "250788000005", "n").state == "succeeded"
    assert rail.credited("250788000005") == [RWF]


def test_a_scripted_error_is_raised_before_anything_is_recorded():
    rail = FakeRail()
    rail.fail_next_send(RailNotSent("provider_unavailable", "token endpoint down"))
    with pytest.raises(RailNotSent):
        rail.send("p-6", RWF, "250788000006", "n")
    assert rail.status("p-6").reason == NOT_FOUND
