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
