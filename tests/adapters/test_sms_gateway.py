"""The SMS gateway: AfricasTalkingSms against the Africa's Talking simulator, its answer mapping, FakeSms."""
from __future__ import annotations

import contextlib
import json
import threading
from urllib.parse import urlencode

import flask
import pytest
import urllib3
from werkzeug.serving import make_server

from chalicelib.errors import ProviderUnavailable, ValidationError
from chalicelib.notify.sms_gateway import (
    LOCAL_SMS_API_KEY,
    LOCAL_SMS_USERNAME,
    AfricasTalkingSms,
    FakeSms,
    SmsGateway,
    SmsRejected,
    sms_length,
)
from chalicelib.http import HttpResponse, TransportError
from sandbox.simulators import SimulatorContext
from sandbox.simulators import sms as sms_sim


@contextlib.contextmanager
def serving(*blueprints):
    """Serve blueprints on a free 127.0.0.1 port in a thread; yields the base URL."""
    app = flask.Flask("mizani-test-sandbox")
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def sim():
    simulator = sms_sim.make(SimulatorContext(api_base_url="", sandbox_base_url="", env={}))
    yield simulator
    simulator.reset()


@pytest.fixture
def base_url(sim):
    with serving(sim.blueprint) as url:
        yield url


def gateway(base_url, **kwargs):
    options = dict(username=LOCAL_SMS_USERNAME, api_key=LOCAL_SMS_API_KEY, sender_id="MIZANI", timeout_seconds=5.0)
    options.update(kwargs)
    return AfricasTalkingSms(base_url, **options)


def sandbox_sms(base_url, **params):
    return urllib3.request("GET", f"{base_url}/sandbox/sms", fields=params or None).json()["messages"]


# -- against the simulator ---------------------------------------------------------------------

def test_a_sent_sms_is_listed_by_the_sandbox_with_its_gateway_message_id(base_url):
    message_id = gateway(base_url).send("+250788123456", "Your payout of 1,500,000 RWF is on its way.")
    [listed] = sandbox_sms(base_url)
    assert listed["to"] == "+250788123456"
    assert listed["message"] == "Your payout of 1,500,000 RWF is on its way."
    assert listed["message_id"] == message_id and message_id.startswith("ATXid_")
    assert listed["from"] == "MIZANI" and listed["sent_at"].endswith("Z")
    assert (listed["parts"], listed["encoding"]) == (1, "GSM-7")


def test_messages_are_listed_newest_last_and_can_be_filtered_by_recipient(base_url):
    sms = gateway(base_url)
    sms.send("250788000001", "first")
    sms.send("+250788000002", "second")
    sms.send("+250788000001", "third")
    assert [m["message"] for m in sandbox_sms(base_url)] == ["first", "second", "third"]
    assert [m["message"] for m in sandbox_sms(base_url, to="+250788000001")] == ["first", "third"]


def test_the_platform_refuses_a_message_longer_than_one_sms_part(base_url):
    with pytest.raises(ValidationError) as err:
        gateway(base_url).send("+250788123456", "x" * 161)
    assert err.value.code == "sms_too_long"
    assert sandbox_sms(base_url) == []


def test_the_simulator_records_the_part_count_of_a_long_message_as_the_real_gateway_splits_it(base_url):
    response = urllib3.request(
        "POST", f"{base_url}/version1/messaging",
        body=urlencode({"username": LOCAL_SMS_USERNAME, "to": "+250788123456", "message": "y" * 200}),
        headers={"apiKey": LOCAL_SMS_API_KEY, "Accept": "application/json",
                 "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 201
    assert response.json()["SMSMessageData"]["Recipients"][0]["messageParts"] == 2
    assert sandbox_sms(base_url)[0]["parts"] == 2


def test_a_wrong_api_key_is_retryable_provider_trouble_and_nothing_is_sent(base_url):
    with pytest.raises(ProviderUnavailable):
        gateway(base_url, api_key="wrong").send("+250788123456", "hello")
    assert sandbox_sms(base_url) == []


def test_a_gateway_500_is_retryable(base_url):
    urllib3.request("POST", f"{base_url}/sandbox/faults/sms", json={"error_before_processing": 1})
    with pytest.raises(ProviderUnavailable):
        gateway(base_url).send("+250788123456", "hello")
    assert gateway(base_url).send("+250788123456", "hello")


def test_a_number_that_is_not_e164_is_refused_before_sending(base_url):
    with pytest.raises(ValidationError):
        gateway(base_url).send("0788 123 456", "hello")


def test_reset_forgets_the_messages(base_url, sim):
    gateway(base_url).send("+250788123456", "hello")
    sim.reset()
    assert sandbox_sms(base_url) == []


# -- the answer mapping, with a scripted HTTP layer ----------------------------------------------

class StubHttp:
    def __init__(self, answer):
        self.answer = answer
        self.sent = []

    def request(self, method, url, *, headers=None, json_body=None, form=None, retry=False):
        self.sent.append({"url": url, "headers": headers, "form": form, "retry": retry})
        if isinstance(self.answer, Exception):
            raise self.answer
        status, body = self.answer
        return HttpResponse(status, body if isinstance(body, bytes) else json.dumps(body).encode())


def recipients(status_code, status, message_id="ATXid_1"):
    return (201, {"SMSMessageData": {"Message": "Sent to 1/1", "Recipients": [
        {"statusCode": status_code, "number": "+250788123456", "status": status, "cost": "KES 0.8000",
         "messageId": message_id}]}})


def stub_gateway(answer):
    http = StubHttp(answer)
    return AfricasTalkingSms("http://at", "mizani", "key", "MIZANI", http=http), http


def test_africas_talking_gets_its_form_and_headers_and_no_retry():
    sms, http = stub_gateway(recipients(101, "Success"))
    assert sms.send("+250788123456", "hi") == "ATXid_1"
    [sent] = http.sent
    assert sent["url"] == "http://at/version1/messaging" and sent["retry"] is False
    assert sent["headers"] == {"apiKey": "key", "Accept": "application/json"}
    assert sent["form"] == {"username": "mizani", "to": "+250788123456", "message": "hi", "from": "MIZANI"}


@pytest.mark.parametrize("code", [100, 101, 102])
def test_processed_sent_and_queued_are_accepted(code):
    assert stub_gateway(recipients(code, "Success"))[0].send("+250788123456", "hi") == "ATXid_1"


@pytest.mark.parametrize("code, status", [(403, "InvalidPhoneNumber"), (404, "UnsupportedNumberType"), (406, "UserInBlacklist")])
def test_a_recipient_refused_for_good_is_rejected_not_retried(code, status):
    with pytest.raises(SmsRejected):
        stub_gateway(recipients(code, status, "None"))[0].send("+250788123456", "hi")


@pytest.mark.parametrize("code, status", [(405, "InsufficientBalance"), (401, "RiskHold"), (500, "InternalServerError"),
                                          (502, "RejectedByGateway")])
def test_account_and_gateway_troubles_are_retryable(code, status):
    with pytest.raises(ProviderUnavailable) as err:
        stub_gateway(recipients(code, status, "None"))[0].send("+250788123456", "hi")
    assert not isinstance(err.value, SmsRejected)


@pytest.mark.parametrize("answer", [(503, b"busy"), (201, b"not json"), (201, {"SMSMessageData": {"Recipients": []}}),
                                    TransportError("read timeout", maybe_delivered=True, kind="timeout")])
def test_odd_answers_and_timeouts_are_retryable_provider_trouble(answer):
    with pytest.raises(ProviderUnavailable):
        stub_gateway(answer)[0].send("+250788123456", "hi")


# -- lengths and the fake -------------------------------------------------------------------

def test_gsm7_fits_160_characters_and_extension_characters_count_twice():
    assert sms_length("a" * 160).parts == 1
    assert sms_length("a" * 161).parts == 2
    assert sms_length("€" * 80) == sms_length("€" * 80).__class__("GSM-7", 160, 1)
    assert sms_length("€" * 81).parts == 2


def test_a_character_outside_gsm7_switches_to_ucs2_and_70_characters():
    assert sms_length("Malipo yako ✓").encoding == "UCS-2"
    assert sms_length("ü" * 70).encoding == "GSM-7"  # ü is in the GSM 03.38 basic set
    assert sms_length("ł" * 70).parts == 1 and sms_length("ł" * 71).parts == 2


def test_fake_sms_records_messages_and_can_be_scripted_to_fail():
    fake = FakeSms()
    assert isinstance(fake, SmsGateway)
    fake.fail_next(ProviderUnavailable("provider_unavailable", "down"))
    with pytest.raises(ProviderUnavailable):
        fake.send("+250788123456", "first try")
    message_id = fake.send("250788123456", "second try")
    assert fake.messages_to("+250788123456") == ["second try"]
    assert fake.sent[0].message_id == message_id
    with pytest.raises(ValidationError):
        fake.send("+250788123456", "z" * 161)


# -- what each answer means (one table, on the errors themselves) --------------------------------

def test_a_dnd_refusal_is_retried_later_because_at_documents_it_as_a_refusal_at_that_hour():
    with pytest.raises(ProviderUnavailable) as err:
        stub_gateway(recipients(409, "DoNotDisturbRejection", "None"))[0].send("+250788123456", "hi")
    assert not isinstance(err.value, SmsRejected) and err.value.detail["account_wide"] is False


@pytest.mark.parametrize("code, account_wide", [(405, True), (401, True), (402, True), (500, True), (501, True),
                                                (407, False), (502, False), (499, False)])
def test_a_retryable_refusal_says_whether_the_whole_account_meets_it(code, account_wide):
    with pytest.raises(ProviderUnavailable) as err:
        stub_gateway(recipients(code, "Whatever", "None"))[0].send("+250788123456", "hi")
    assert err.value.retryable and err.value.detail["account_wide"] is account_wide
    assert err.value.detail["status_code"] == code


def test_a_refusal_for_good_carries_its_status_code_and_is_not_retryable():
    with pytest.raises(SmsRejected) as err:
        stub_gateway(recipients(406, "UserInBlacklist", "None"))[0].send("+250788123456", "hi")
    assert not err.value.retryable
    assert (err.value.detail["status_code"], err.value.detail["status"]) == (406, "UserInBlacklist")


def test_an_accepted_message_gives_a_receipt_with_its_status_code():
    receipt = stub_gateway(recipients(102, "Queued"))[0].submit("+250788123456", "hi")
    assert (receipt.message_id, receipt.status_code, receipt.status) == ("ATXid_1", 102, "Queued")


def test_transport_and_http_trouble_is_the_whole_accounts():
    for answer in [(503, b"busy"), (401, b"bad key"), TransportError("refused", maybe_delivered=False, kind="connect")]:
        with pytest.raises(ProviderUnavailable) as err:
            stub_gateway(answer)[0].send("+250788123456", "hi")
        assert err.value.detail["account_wide"] is True


# -- the simulator's scripted numbers and account ---------------------------------------------------

def test_a_blacklisted_test_number_is_refused_at_send_time_with_406_and_nothing_is_sent(base_url):
    with pytest.raises(SmsRejected) as err:
        gateway(base_url).send("+250788000406", "hello")
    assert err.value.detail["status_code"] == 406
    assert sandbox_sms(base_url) == []
    [seen] = urllib3.request("GET", f"{base_url}/sandbox/sms/requests").json()["requests"]
    assert (seen["to"], seen["status_code"], seen["status"], seen["message_id"]) == (
        "+250788000406", 406, "UserInBlacklist", None)


def test_any_number_can_be_scripted_and_forgotten_again(base_url):
    number = "+250788555123"
    answer = urllib3.request("POST", f"{base_url}/sandbox/sms/numbers/{number}", json={"send_status_code": 404})
    assert answer.status == 200
    with pytest.raises(SmsRejected):
        gateway(base_url).send(number, "hello")
    urllib3.request("DELETE", f"{base_url}/sandbox/sms/numbers/{number}")
    assert gateway(base_url).send(number, "hello").startswith("ATXid_")


@pytest.mark.parametrize("script", [{"send_status_code": 101}, {"delivery_status": "Delivered"}, {"colour": "red"}, []])
def test_a_script_the_gateway_could_not_play_is_a_400(base_url, script):
    assert urllib3.request("POST", f"{base_url}/sandbox/sms/numbers/250788555124", json=script).status == 400


def test_an_empty_account_refuses_every_recipient_until_the_operator_tops_up(base_url):
    urllib3.request("POST", f"{base_url}/sandbox/sms/account", json={"status_code": 405})
    with pytest.raises(ProviderUnavailable) as err:
        gateway(base_url).send("+250788123456", "hello")
    assert (err.value.detail["status_code"], err.value.detail["account_wide"]) == (405, True)
    urllib3.request("POST", f"{base_url}/sandbox/sms/account", json={"status_code": None})
    assert gateway(base_url).send("+250788123456", "hello")


def test_the_sandbox_list_keeps_its_fields_and_adds_the_status(base_url):
    gateway(base_url).send("+250788123456", "hello")
    [listed] = sandbox_sms(base_url)
    assert {"to", "message", "sent_at", "from", "message_id", "parts", "encoding"} <= set(listed)
    assert (listed["status_code"], listed["status"], listed["delivery_status"]) == (101, "Success", "Success")


# -- delivery reports, as Africa's Talking sends them ---------------------------------------------

def wait_until(check, timeout: float = 10.0):
    """``check()`` once it is truthy (polled, with a deadline)."""
    import time

    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.01)
    return found


class Receiver:
    """Stands where the Mizani API would: records each delivery report it is sent."""

    def __init__(self, status: int = 200):
        self.status = status
        self.reports: list[dict] = []
        self.blueprint = flask.Blueprint("receiver", __name__)
        self.blueprint.add_url_rule("/v1/webhooks/sms/delivery", "report", self._report, methods=["POST"])

    def _report(self):
        self.reports.append({"content_type": flask.request.content_type, "form": flask.request.form.to_dict(flat=False)})
        return "", self.status


@pytest.fixture
def reporting():
    """(gateway base URL, simulator, receiver): the simulator's reports go to the receiver, at once."""
    receiver = Receiver()
    with serving(receiver.blueprint) as api_url:
        simulator = sms_sim.make(SimulatorContext(api_base_url=api_url, sandbox_base_url="", env={}))
        with serving(simulator.blueprint) as url:
            urllib3.request("POST", f"{url}/sandbox/faults/sms", json={"report_delay_ms": 0})
            yield url, simulator, receiver
        simulator.reset()


def test_an_accepted_message_is_reported_delivered_to_the_delivery_reports_url_as_a_form(reporting):
    url, simulator, receiver = reporting
    message_id = gateway(url).send("+250788123456", "hello")
    assert simulator.wait_for_reports()
    [report] = receiver.reports
    assert report["content_type"] == "application/x-www-form-urlencoded"
    assert report["form"] == {"id": [message_id], "status": ["Success"], "phoneNumber": ["+250788123456"],
                              "networkCode": ["99999"]}
    assert sandbox_sms(url)[0]["report_status"] == 200


@pytest.mark.parametrize("number, status, reason", [
    ("+250788000601", "AbsentSubscriber", None), ("+250788000602", "Failed", "UserDoesNotExist"),
    ("+250788000603", "Rejected", "DeliveryFailure"), ("+250788000604", "Expired", None)])
def test_the_test_numbers_are_reported_as_at_reports_them(reporting, number, status, reason):
    url, simulator, receiver = reporting
    gateway(url).send(number, "hello")
    assert simulator.wait_for_reports()
    [report] = receiver.reports
    assert report["form"]["status"] == [status]
    assert report["form"].get("failureReason") == ([reason] if reason else None)


def test_a_number_that_is_never_reported_and_a_lost_report_reach_nobody(reporting):
    url, simulator, receiver = reporting
    gateway(url).send("+250788000600", "hello")
    urllib3.request("POST", f"{url}/sandbox/faults/sms", json={"lose_callback": 1})
    gateway(url).send("+250788123456", "hello")
    assert simulator.wait_for_reports()
    assert receiver.reports == []


def test_a_duplicated_report_arrives_twice_and_a_report_can_be_sent_again_by_hand(reporting):
    url, simulator, receiver = reporting
    urllib3.request("POST", f"{url}/sandbox/faults/sms", json={"duplicate_callback": 1})
    message_id = gateway(url).send("+250788123456", "hello")
    assert simulator.wait_for_reports()
    again = urllib3.request("POST", f"{url}/sandbox/sms/{message_id}/report", json={"status": "Buffered"}).json()
    assert again["report"]["status"] == 200
    assert [r["form"]["status"] for r in receiver.reports] == [["Success"], ["Success"], ["Buffered"]]
    assert urllib3.request("POST", f"{url}/sandbox/sms/ATXid_none/report", json={}).status == 404


def test_reports_still_waiting_are_dropped_by_reset(reporting):
    url, simulator, receiver = reporting
    urllib3.request("POST", f"{url}/sandbox/faults/sms", json={"report_delay_ms": 600_000})
    message_id = gateway(url).send("+250788123456", "hello")
    waiting = wait_until(lambda: [t for t in simulator.report_threads if t.name == f"sms-report-{message_id}"])
    simulator.reset()
    for thread in waiting:
        thread.join(10)  # a report that reset did not drop would sleep on for ten minutes
        assert not thread.is_alive()
    assert receiver.reports == []


# -- the outbox over the real adapter and the simulator -----------------------------------------

def outbox_over(url):
    from chalicelib.documents import MemoryDocuments
    from chalicelib.notify.outbox import Outbox

    return Outbox(MemoryDocuments(), lambda: gateway(url))


def requests_to(url, number):
    return urllib3.request("GET", f"{url}/sandbox/sms/requests", fields={"to": number}).json()["requests"]


def test_the_outbox_records_ats_message_id_and_status_code_and_the_report_lands_on_the_message(reporting):
    from chalicelib import bootstrap
    from chalicelib.api import webhooks

    url, simulator, receiver = reporting
    outbox = outbox_over(url)
    outbox.enqueue("paid:o1", "250788123456", "Mizani: order O1 is paid.")
    assert outbox.drain() == 1
    m = outbox.message("paid:o1")
    assert (m["status"], m["status_code"], m["attempts"]) == ("sent", 101, 1)
    assert m["provider_id"] == sandbox_sms(url)[0]["message_id"]
    assert simulator.wait_for_reports()
    [report] = receiver.reports
    bootstrap.override(outbox=outbox)
    try:  # hand the report, as it was sent, to the API's handler
        form = urlencode({k: v[0] for k, v in report["form"].items()}).encode()
        assert webhooks.handle_sms_delivery(form) == {"received": True, "duplicate": False}
        assert webhooks.handle_sms_delivery(form) == {"received": True, "duplicate": True}
    finally:
        bootstrap.reset()
    assert outbox.message("paid:o1")["delivery_status"] == "Success"


def test_the_outbox_sends_a_blacklisted_number_once_and_never_again(base_url):
    outbox = outbox_over(base_url)
    outbox.enqueue("paid:o1", "250788000406", "Mizani: order O1 is paid.")
    outbox.drain()
    outbox.drain()
    m = outbox.message("paid:o1")
    assert (m["status"], m["status_code"], m["gateway_status"]) == ("rejected", 406, "UserInBlacklist")
    assert len(requests_to(base_url, "+250788000406")) == 1


def test_the_outbox_retries_an_empty_account_after_the_top_up(base_url):
    from datetime import timedelta

    outbox = outbox_over(base_url)
    urllib3.request("POST", f"{base_url}/sandbox/sms/account", json={"status_code": 405})
    outbox.enqueue("paid:o1", "250788123456", "Mizani: order O1 is paid.")
    outbox.drain()
    assert outbox.message("paid:o1")["status"] == "pending"
    urllib3.request("POST", f"{base_url}/sandbox/sms/account", json={"status_code": None})
    real_now = outbox.clock
    outbox.clock = lambda: real_now() + timedelta(minutes=2)
    assert outbox.drain() == 1
    assert [r["status_code"] for r in requests_to(base_url, "+250788123456")] == [405, 101]
