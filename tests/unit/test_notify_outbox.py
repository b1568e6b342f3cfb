"""The SMS outbox's state machine: what each of Africa's Talking's answers does to a message,
backoff and giving up, the queue, and delivery reports (duplicates, late ones, strangers)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.documents import MemoryDocuments
from chalicelib.errors import ProviderUnavailable
from chalicelib.http import TransportError
from chalicelib.notify.outbox import (
    CLAIM_LEASE_SECONDS,
    IGNORED,
    PENDING_INDEX,
    RECORDED,
    UNCHANGED,
    DeliveryReport,
    Outbox,
    RetryPolicy,
)
from chalicelib.notify.sms_gateway import DELIVERY_STATUSES, FakeSms, fit_one_sms, sms_length

START = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
PHONE = "250788123456"


class Clock:
    def __init__(self):
        self.now = START

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


class World:
    def __init__(self, policy: RetryPolicy | None = None):
        self.docs = MemoryDocuments()
        self.sms = FakeSms()
        self.clock = Clock()
        self.outbox = Outbox(self.docs, lambda: self.sms, clock=self.clock, policy=policy)

    def message(self, message_id="paid:o1"):
        return self.outbox.message(message_id)

    def queued(self):
        return self.docs.query_index(PENDING_INDEX, limit=1000, newest_first=False)

    def send(self, message_id="paid:o1", to=PHONE, text="Mizani: order O1 is paid."):
        self.outbox.enqueue(message_id, to, text)
        return self.outbox.drain()

    def report(self, status, provider_id=None, phone="+" + PHONE, message_id="paid:o1", **extra):
        provider_id = provider_id or self.message(message_id)["provider_id"]
        return self.outbox.record_delivery(DeliveryReport(provider_id, status, phone, **extra))


@pytest.fixture
def w():
    return World()


# -- sending ---------------------------------------------------------------------------------

def test_an_accepted_message_is_sent_once_with_ats_message_id_and_status_code_on_its_document(w):
    assert w.send() == 1
    m = w.message()
    assert m["status"] == "sent" and m["attempts"] == 1 and m["status_code"] == 101
    assert m["provider_id"] == w.sms.sent[0].message_id and m["sent_at"]
    assert w.docs.get(f"smsid#{m['provider_id']}") == {"message_id": "paid:o1", "to": "+" + PHONE}
    assert w.queued() == []
    assert w.outbox.drain() == 0 and w.sms.calls == 1


@pytest.mark.parametrize("code", [403, 404, 406])
def test_a_number_the_gateway_refuses_for_good_is_rejected_after_one_attempt_and_never_tried_again(w, code):
    w.sms.answer_next(code)
    assert w.send() == 0
    m = w.message()
    assert (m["status"], m["status_code"], m["attempts"]) == ("rejected", code, 1)
    assert m["finished_at"] and "not_before" not in m
    w.clock.advance(days=2)
    assert w.outbox.drain() == 0
    assert w.sms.calls == 1 and w.queued() == []


def test_a_number_that_cannot_be_sent_to_at_all_is_rejected_not_retried(w):
    w.outbox.enqueue("paid:o1", "12", "hello")  # not E.164: the adapter refuses it before sending
    w.outbox.drain()
    w.clock.advance(hours=3)
    w.outbox.drain()
    m = w.message()
    assert m["status"] == "rejected" and m["last_error"].startswith("invalid_msisdn")
    assert w.sms.calls == 0 and w.queued() == []


def test_an_empty_balance_is_retried_after_a_backoff_and_goes_once_the_operator_has_topped_up(w):
    w.sms.answer_next(405)
    w.send()
    m = w.message()
    assert (m["status"], m["status_code"], m["attempts"]) == ("pending", 405, 1)
    assert m["gateway_status"] == "InsufficientBalance"
    assert m["not_before"].startswith("2026-12-01T09:01:00")
    assert w.outbox.drain() == 0 and w.sms.calls == 1  # not due yet
    w.clock.advance(seconds=59)
    assert w.outbox.drain() == 0 and w.sms.calls == 1
    w.clock.advance(seconds=1)
    assert w.outbox.drain() == 1
    m = w.message()
    assert (m["status"], m["status_code"], m["attempts"]) == ("sent", 101, 2)
    assert [e["status_code"] for e in m["attempts_log"]] == [405, 101]
    assert w.queued() == []


@pytest.mark.parametrize("error", [
    TransportError("read timeout", maybe_delivered=True, kind="timeout"),
    ProviderUnavailable("provider_unavailable", "HTTP 503", account_wide=True),
])
def test_timeouts_and_gateway_trouble_are_retried(w, error):
    w.sms.fail_next(error)
    w.send()
    assert w.message()["status"] == "pending"
    w.clock.advance(minutes=1)
    assert w.outbox.drain() == 1


def test_the_wait_doubles_between_attempts_up_to_its_cap():
    policy = RetryPolicy()
    assert [policy.delay_after(n).total_seconds() for n in range(1, 10)] == [
        60, 120, 240, 480, 960, 1920, 3840, 7200, 7200]


def test_a_message_that_keeps_failing_is_given_up_as_failed_after_the_last_attempt_and_kept():
    w = World(RetryPolicy(max_attempts=4))
    w.sms.answer_next(*[500] * 10)
    w.send()
    for _ in range(10):
        w.clock.advance(hours=2)
        w.outbox.drain()
    m = w.message()
    assert (m["status"], m["attempts"], m["status_code"]) == ("failed", 4, 500)
    assert m["finished_at"] and len(m["attempts_log"]) == 4
    assert w.sms.calls == 4 and w.queued() == []


def test_messages_given_up_on_are_listed_newest_first_and_sent_ones_are_not():
    w = World(RetryPolicy(max_attempts=2))
    w.sms.answer_next(406, 101, 500, 500)
    for n in range(3):
        w.outbox.enqueue(f"m:{n}", PHONE, f"message {n}")
    w.outbox.drain()
    w.clock.advance(hours=1)
    w.outbox.drain()
    assert [(m["message_id"], m["status"]) for m in w.outbox.not_sent()] == [("m:2", "failed"), ("m:0", "rejected")]


def test_a_message_older_than_its_age_limit_fails_at_its_next_refusal_instead_of_waiting_again():
    w = World(RetryPolicy(max_age_seconds=3600))
    w.sms.answer_next(405, 405)
    w.send()
    w.clock.advance(hours=1)
    w.outbox.drain()
    m = w.message()
    assert (m["status"], m["attempts"]) == ("failed", 2)


def test_a_refusal_of_the_whole_account_stops_the_drain_and_costs_the_other_messages_no_attempt(w):
    w.sms.answer_next(405)
    for n in range(3):
        w.outbox.enqueue(f"paid:o{n}", PHONE, f"message {n}")
    assert w.outbox.drain() == 0
    assert w.sms.calls == 1
    assert [w.message(f"paid:o{n}")["attempts"] for n in range(3)] == [1, 0, 0]
    assert w.outbox.drain() == 2  # the others are still due; the first waits out its backoff


def test_a_refusal_for_one_recipient_does_not_hold_up_the_others(w):
    w.sms.answer_next(407)  # CouldNotRoute: that network, not the account
    for n in range(3):
        w.outbox.enqueue(f"paid:o{n}", PHONE, f"message {n}")
    assert w.outbox.drain() == 2
    assert w.message("paid:o0")["status"] == "pending"


def test_messages_waiting_out_a_backoff_do_not_keep_newer_messages_from_going(w):
    w.sms.answer_next(*[407] * 5)
    for n in range(5):
        w.outbox.enqueue(f"old:{n}", PHONE, f"old {n}")
    w.outbox.drain(limit=5)
    w.outbox.enqueue("new:1", PHONE, "new")
    assert w.outbox.drain(limit=5) == 1  # the five in backoff are queued behind it (by due time)
    assert w.message("new:1")["status"] == "sent"
    assert {w.message(f"old:{n}")["status"] for n in range(5)} == {"pending"}


def test_an_unexpected_gateway_defect_does_not_escape_the_drain_and_the_message_waits(w):
    w.sms.fail_next(KeyError("Recipients"))
    assert w.send() == 0
    m = w.message()
    assert m["status"] == "pending" and "KeyError" in m["last_error"]


def test_a_drain_that_died_mid_send_is_taken_over_after_its_lease_and_the_message_goes(w):
    w.sms.fail_next(SystemExit("the Lambda was killed"))
    with pytest.raises(SystemExit):
        w.send()
    assert w.message()["status"] == "sending"
    w.clock.advance(seconds=CLAIM_LEASE_SECONDS - 1)
    assert w.outbox.drain() == 0 and w.sms.calls == 1
    w.clock.advance(seconds=2)
    assert w.outbox.drain() == 1
    assert w.message()["status"] == "sent" and w.queued() == []


def test_a_drain_that_starts_while_another_is_sending_does_not_send_the_message_again(w):
    inner = []
    real_submit = w.sms.submit

    def submit_and_drain_meanwhile(to, text):
        inner.append(w.outbox.drain())
        return real_submit(to, text)

    w.sms.submit = submit_and_drain_meanwhile
    w.send()
    assert inner == [0] and len(w.sms.sent) == 1


def test_enqueueing_again_queues_nothing_new_and_a_sent_message_is_never_sent_again(w):
    w.outbox.enqueue("paid:o1", PHONE, "hello")
    w.outbox.enqueue("paid:o1", PHONE, "hello")
    assert len(w.queued()) == 1
    w.outbox.drain()
    w.outbox.enqueue("paid:o1", PHONE, "hello")
    assert w.queued() == [] and w.outbox.drain() == 0 and w.sms.calls == 1


def test_an_enqueue_that_died_before_queueing_is_completed_by_its_retry(w):
    real_put = w.docs.put_new
    failures = []

    def put_new(pk, doc, sk="doc", index=None):
        if pk.startswith("smsq#") and not failures:
            failures.append(pk)
            raise ConnectionError("the Lambda died here")
        return real_put(pk, doc, sk, index)

    w.docs.put_new = put_new
    with pytest.raises(ConnectionError):
        w.outbox.enqueue("paid:o1", PHONE, "hello")
    assert w.queued() == []
    w.outbox.enqueue("paid:o1", PHONE, "hello")  # the workflow retries the step
    assert w.outbox.drain() == 1


def test_a_message_queued_claimed_is_sent_by_its_own_invocation_with_no_queue_read_or_claim(w):
    writes = []
    for name in ("put_new", "put_new_all", "update", "query_index", "get", "read", "prepare_update", "commit_with",
                 "delete"):
        real = getattr(w.docs, name)
        setattr(w.docs, name, lambda *a, _real=real, _name=name, **k: writes.append(_name) or _real(*a, **k))
    claimed = w.outbox.enqueue("paid:o1", PHONE, "Mizani: order O1 is paid.", claim=True)
    assert writes == ["put_new_all"]  # the message and its place in the queue, one atomic write
    assert w.outbox.drain() == 0  # another drain leaves it to its claim
    writes.clear()
    assert w.outbox.send(claimed) == "sent" and w.sms.calls == 1
    # AT's id, then the message marked sent and its place in the queue given up in one atomic write: no read
    assert writes == ["put_new", "prepare_update", "commit_with"]
    assert w.message()["status"] == "sent" and w.queued() == []
    assert w.outbox.enqueue("paid:o1", PHONE, "Mizani: order O1 is paid.", claim=True) is None  # a retried step
    assert w.outbox.drain() == 0 and w.sms.calls == 1


def test_a_message_queued_claimed_whose_invocation_died_is_sent_by_a_drain_after_the_lease(w):
    w.outbox.enqueue("paid:o1", PHONE, "Mizani: order O1 is paid.", claim=True)  # ... and the Lambda died
    w.clock.advance(seconds=CLAIM_LEASE_SECONDS - 1)
    assert w.outbox.drain() == 0
    w.clock.advance(seconds=2)
    assert w.outbox.drain() == 1
    assert w.message()["status"] == "sent" and w.queued() == [] and w.sms.calls == 1


def test_a_text_is_stored_as_one_gsm7_part_where_it_can_be(w):
    w.outbox.enqueue("a", PHONE, "Mizani : reçu « 1 000 RWF » – merci…")
    w.outbox.enqueue("b", PHONE, "word " * 60)
    a, b = w.message("a")["message"], w.message("b")["message"]
    assert a == 'Mizani : recu " 1 000 RWF " - merci...'
    assert sms_length(a).encoding == "GSM-7"
    assert sms_length(b) == sms_length(b).__class__("GSM-7", 160, 1) and b.endswith(".")
    w.outbox.drain()
    assert {w.message(x)["status"] for x in "ab"} == {"sent"}


def test_a_character_with_no_gsm_spelling_is_kept_while_the_text_fits_one_ucs2_part_and_replaced_beyond():
    short = "Mizani: 1,000 RWF from 王芳"
    assert fit_one_sms(short) == short and sms_length(short).encoding == "UCS-2"
    long = "Mizani: 1,000 RWF paid for order O1 by 王芳, sent to your MTN MoMo wallet. Withdraw with *182#."
    fitted = fit_one_sms(long)
    assert fitted == long.replace("王芳", "??") and sms_length(fitted) == sms_length(fitted).__class__("GSM-7", len(long), 1)
    assert sms_length(fit_one_sms("€" * 100)).parts == 1  # extension characters count two septets


# -- delivery reports --------------------------------------------------------------------------

def test_a_delivery_report_is_recorded_on_its_message(w):
    w.send()
    assert w.report("Success", network_code="63510") == RECORDED
    m = w.message()
    assert (m["delivery_status"], m["network_code"], m["delivery_final"]) == ("Success", "63510", True)
    assert m["delivered_at"] and m["status"] == "sent"


def test_a_failed_delivery_keeps_its_reason(w):
    w.send()
    w.report("Failed", failure_reason="UserDoesNotExist", network_code="63510")
    m = w.message()
    assert (m["delivery_status"], m["failure_reason"]) == ("Failed", "UserDoesNotExist")
    assert "delivered_at" not in m


def test_a_duplicate_report_changes_nothing(w):
    w.send()
    assert w.report("Success") == RECORDED
    before = w.message()
    assert w.report("Success") == UNCHANGED
    assert w.message() == before


def test_a_late_report_never_moves_a_message_back_nor_past_its_final_status(w):
    w.send()
    w.report("Buffered")
    assert w.report("Submitted") == UNCHANGED
    assert w.message()["delivery_status"] == "Buffered"
    w.report("Success")
    assert w.report("Buffered") == UNCHANGED and w.report("Failed") == UNCHANGED
    assert w.message()["delivery_status"] == "Success"


def test_an_absent_subscriber_is_news_not_the_end_and_a_later_success_replaces_it(w):
    w.send()
    w.report("AbsentSubscriber")
    assert w.message()["delivery_final"] is False
    assert w.report("Success") == RECORDED
    assert w.message()["delivery_status"] == "Success"


def test_a_report_about_no_message_of_ours_or_to_another_phone_changes_nothing(w):
    w.send()
    before = w.message()
    assert w.report("Success", provider_id="ATXid_not-ours") == IGNORED
    assert w.report("Failed", phone="+250788999999") == IGNORED
    assert w.report("Delivered") == UNCHANGED  # not a status AT documents
    assert w.message() == before


def test_a_report_that_comes_between_ats_answer_and_our_record_of_the_send_is_kept(w):
    real_put = w.docs.put_new

    def put_new(pk, doc, sk="doc", index=None):
        real_put(pk, doc, sk, index)
        if pk.startswith("smsid#"):  # AT's report arrives now, before the message is marked sent
            w.outbox.record_delivery(DeliveryReport(pk.split("#", 1)[1], "Success", "+" + PHONE))

    w.docs.put_new = put_new
    w.send()
    m = w.message()
    assert (m["status"], m["delivery_status"]) == ("sent", "Success")


# -- properties ---------------------------------------------------------------------------------

ANSWERS = st.sampled_from([101, 101, 102, 403, 406, 405, 401, 407, 409, 500, 502, "timeout", "defect"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answers=st.lists(ANSWERS, max_size=60), messages=st.integers(1, 5),
       waits=st.lists(st.integers(0, 7300), min_size=1, max_size=40))
def test_whatever_the_gateway_answers_every_message_ends_sent_rejected_or_failed_and_is_sent_at_most_once(
        answers, messages, waits):
    w = World(RetryPolicy(max_attempts=5))
    for answer in answers:
        if answer == "timeout":
            w.sms.fail_next(TransportError("read timeout", maybe_delivered=True, kind="timeout"))
        elif answer == "defect":
            w.sms.fail_next(ValueError("a defect"))
        else:
            w.sms.answer_next(answer)
    for n in range(messages):
        w.outbox.enqueue(f"m:{n}", PHONE, f"message {n}")
    for seconds in waits + [7200] * 80:  # then long enough for every backoff to run out
        w.outbox.drain()
        w.clock.advance(seconds=seconds)
    docs = [w.message(f"m:{n}") for n in range(messages)]
    assert {d["status"] for d in docs} <= {"sent", "rejected", "failed"}
    assert sum(d["attempts"] for d in docs) == w.sms.calls
    assert all(d["attempts"] <= 5 for d in docs)
    sent = [d for d in docs if d["status"] == "sent"]
    assert len(w.sms.sent) == len(sent) and len({d["provider_id"] for d in sent}) == len(sent)
    for d in docs:  # every attempt but the last was a retry; a rejection or a send ends it
        outcomes = [e["outcome"] for e in d["attempts_log"]]
        assert outcomes[:-1] == ["pending"] * (len(outcomes) - 1) and outcomes[-1] == d["status"]
        assert (d["status"] == "rejected") == (d["status_code"] in (403, 406))
    assert w.queued() == []


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(sorted(DELIVERY_STATUSES)), min_size=1, max_size=12))
def test_whatever_order_reports_arrive_in_the_message_shows_the_first_final_one_or_the_furthest(statuses):
    w = World()
    w.send()
    for status in statuses:
        w.report(status)
    finals = [s for s in statuses if DELIVERY_STATUSES[s].final]
    before_final = statuses[: statuses.index(finals[0])] if finals else statuses
    expected = finals[0] if finals else max(before_final, key=lambda s: DELIVERY_STATUSES[s].rank)
    assert w.message()["delivery_status"] == expected
