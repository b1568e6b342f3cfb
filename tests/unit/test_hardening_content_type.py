"""JSON routes refuse a body sent as another media type (``415 unsupported_media_type`` in our error
envelope, nothing created), while the form-encoded gateway callbacks keep working."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest

from chalicelib import bootstrap
from helpers import body, post_headers

QUOTE = {"from_currency": "USD", "to_currency": "RWF", "from_amount": 10_000}


@pytest.fixture
def quotes_created(monkeypatch):
    """Counts quotes the service was asked to create (nothing may be created for a refused request)."""
    created = []
    real = bootstrap.quotes()
    original = real.quote

    def counting(*args, **kwargs):
        created.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(real, "quote", counting)
    return created


def quote(client, content_type: str | None):
    headers = post_headers("buyer")
    if content_type is None:
        headers.pop("Content-Type")
    else:
        headers["Content-Type"] = content_type
    return client.http.post("/v1/fx/quotes", body=body(QUOTE), headers=headers)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "text/csv",
                                          "multipart/form-data; boundary=x", "application/xml"])
def test_a_json_route_refuses_another_media_type_and_creates_nothing(client, quotes_created, content_type):
    reply = quote(client, content_type)
    assert reply.status_code == 415
    error = reply.json_body["error"]
    assert error["code"] == "unsupported_media_type" and error["request_id"]
    assert quotes_created == []


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON", "application/merge-patch+json"])
def test_a_json_route_takes_json_media_types(client, quotes_created, content_type):
    assert quote(client, content_type).status_code == 201
    assert len(quotes_created) == 1


def test_the_ussd_callback_still_takes_its_form(client):
    form = urlencode({"sessionId": "s1", "serviceCode": "*384*2026#", "phoneNumber": "+250788000001",
                      "networkCode": "63510", "text": ""})
    reply = client.http.post("/v1/ussd", body=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status_code == 200 and reply.body.decode().startswith(("CON ", "END "))


def test_the_sms_delivery_callback_still_takes_its_form(client):
    form = urlencode({"id": "ATXid_unknown", "status": "Success", "phoneNumber": "+250788000001"})
    reply = client.http.post("/v1/webhooks/sms/delivery", body=form,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status_code == 200 and reply.json_body["received"] is True
