"""``POST /v1/webhooks/sms/delivery``: Africa's Talking's form, recorded on the message; strangers,
duplicates and late reports acknowledged and harmless; a body that is not a report is a 400."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest
from chalice.test import Client

import app as mizani
from chalicelib import bootstrap
from chalicelib.api.forms import SmsDeliveryForm, parse_form
from chalicelib.documents import MemoryDocuments
from chalicelib.errors import ValidationError
from chalicelib.notify.outbox import Outbox
from chalicelib.notify.sms_gateway import FakeSms

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
PHONE = "+250788123456"


@pytest.fixture
def world():
    docs = MemoryDocuments()
    outbox = Outbox(docs, FakeSms)
    bootstrap.reset()
    bootstrap.override(outbox=outbox)
    outbox.enqueue("payout_sent:o1", PHONE, "Mizani: 1,000 RWF sent to your MTN MoMo wallet for order O1.")
    outbox.drain()
    with Client(mizani.app, stage_name="local") as client:
        yield client, outbox
    bootstrap.reset()


def post(client, body: bytes | str, headers=FORM):
    return client.http.post("/v1/webhooks/sms/delivery", body=body, headers=headers)


def report(outbox, **fields):
    sent = outbox.message("payout_sent:o1")
    form = {"id": sent["provider_id"], "status": "Success", "phoneNumber": PHONE, "networkCode": "63510", **fields}
    return urlencode({k: v for k, v in form.items() if v is not None})


def test_a_report_is_acknowledged_and_recorded_on_the_message(world):
    client, outbox = world
    reply = post(client, report(outbox, status="Failed", failureReason="UserIsInactive"))
    assert reply.status_code == 200 and reply.json_body == {"received": True, "duplicate": False}
    m = outbox.message("payout_sent:o1")
    assert (m["delivery_status"], m["failure_reason"], m["network_code"]) == ("Failed", "UserIsInactive", "63510")


def test_a_duplicate_and_a_late_report_are_acknowledged_and_change_nothing(world):
    client, outbox = world
    post(client, report(outbox))
    before = outbox.message("payout_sent:o1")
    for body in (report(outbox), report(outbox, status="Buffered")):
        reply = post(client, body)
        assert reply.status_code == 200 and reply.json_body["duplicate"] is True
    assert outbox.message("payout_sent:o1") == before


@pytest.mark.parametrize("fields", [{"id": "ATXid_unknown"}, {"phoneNumber": "+254711000000"},
                                    {"status": "Teleported"}, {"unknownField": "x", "id": "ATXid_other"}])
def test_a_report_about_nothing_of_ours_is_acknowledged_and_changes_nothing(world, fields):
    client, outbox = world
    before = outbox.message("payout_sent:o1")
    reply = post(client, report(outbox, **fields))
    assert reply.status_code == 200 and reply.json_body["duplicate"] is True
    assert outbox.message("payout_sent:o1") == before


@pytest.mark.parametrize("body", [
    b"", b"status=Success&phoneNumber=%2B250788123456", b"id=ATXid_1&phoneNumber=%2B250788123456",
    b"id=ATXid_1&status=Success", b"id=ATXid_1&status=Success&phoneNumber=not-a-phone",
    b"id=ATXid_1&id=ATXid_2&status=Success&phoneNumber=%2B250788123456",
    b"id=ATXid_1&status=Success&phoneNumber=%2B250788123456&retryCount=many",
    b"id=%FF%FE&status=Success&phoneNumber=%2B250788123456", b"\xff\xfe\x00garbage",
    b"id=" + b"x" * 200 + b"&status=Success&phoneNumber=%2B250788123456",
    b"&".join(b"f%d=1" % n for n in range(80)),
])
def test_a_body_that_is_not_a_delivery_report_is_a_400_validation_error(world, body):
    client, outbox = world
    before = outbox.message("payout_sent:o1")
    reply = post(client, body)
    assert reply.status_code == 400, reply.body
    assert reply.json_body["error"]["code"] == "validation_error"
    assert "Traceback" not in reply.body.decode()
    assert outbox.message("payout_sent:o1") == before


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "multipart/form-data; boundary=x"])
def test_a_body_of_another_media_type_is_a_400_validation_error_with_the_usual_envelope(world, content_type):
    client, outbox = world
    reply = post(client, report(outbox), headers={"Content-Type": content_type})
    assert reply.status_code == 400 and reply.json_body["error"]["code"] == "validation_error"
    assert reply.json_body["error"]["request_id"]
    assert "delivery_status" not in outbox.message("payout_sent:o1")


def test_a_form_with_a_charset_is_a_form(world):
    client, outbox = world
    reply = post(client, report(outbox), headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"})
    assert reply.status_code == 200 and outbox.message("payout_sent:o1")["delivery_status"] == "Success"


def test_the_route_is_in_the_openapi_document_as_a_public_webhook():
    from chalicelib.api import openapi

    operation = openapi.document(mizani.api)["paths"]["/v1/webhooks/sms/delivery"]["post"]
    assert operation["security"] == [] and "200" in operation["responses"]


def test_a_form_with_an_empty_retry_count_or_extra_fields_is_still_a_report():
    fields = parse_form(b"id=ATXid_1&status=Success&phoneNumber=%2B250788123456&retryCount=&cost=KES+0.8")
    assert fields["retryCount"] == "" and fields["cost"] == "KES 0.8"
    assert SmsDeliveryForm.model_validate(fields).retry_count is None
    assert SmsDeliveryForm.model_validate({**fields, "retryCount": "2"}).retry_count == 2
    with pytest.raises(ValidationError):
        parse_form(b"a=1&a=2")
