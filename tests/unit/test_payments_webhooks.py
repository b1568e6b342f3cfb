"""Stripe webhook verification: only a fresh, genuine, well-formed event gets through."""
import hashlib
import hmac
import json

import pytest

from chalicelib.errors import InvalidSignature
from chalicelib.payments import verify_webhook

SECRET = "whsec_test_secret"
NOW = 1_790_000_000


def event_body(**overrides) -> bytes:
    event = {
        "id": "evt_1",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": NOW,
        "data": {"object": {"id": "pi_1", "object": "payment_intent"}},
    }
    event.update(overrides)
    return json.dumps(event, indent=2).encode()


def signature(body: bytes, timestamp: int = NOW, secret: str = SECRET) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return mac.hexdigest()


def header(body: bytes, timestamp: int = NOW, secret: str = SECRET) -> str:
    return f"t={timestamp},v1={signature(body, timestamp, secret)}"


def test_a_genuine_fresh_event_is_returned_as_a_dict():
    body = event_body()
    event = verify_webhook(body, header(body), SECRET, now=NOW)
    assert event["id"] == "evt_1" and event["type"] == "payment_intent.succeeded"


def test_the_current_time_is_used_when_now_is_not_given():
    import time

    body = event_body()
    t = int(time.time())
    assert verify_webhook(body, header(body, timestamp=t), SECRET)["id"] == "evt_1"
    with pytest.raises(InvalidSignature):
        verify_webhook(body, header(body, timestamp=t - 3600), SECRET)


def test_a_signature_made_with_another_secret_is_rejected():
    body = event_body()
    with pytest.raises(InvalidSignature) as e:
        verify_webhook(body, header(body, secret="whsec_other"), SECRET, now=NOW)
    assert e.value.code == "invalid_signature"


def test_a_tampered_body_is_rejected():
    body = event_body()
    tampered = body.replace(b"payment_intent.succeeded", b"payment_intent.payment_failed")
    with pytest.raises(InvalidSignature):
        verify_webhook(tampered, header(body), SECRET, now=NOW)


def test_a_body_re_serialised_after_signing_is_rejected():
    # Frameworks that parse and re-dump JSON break the signature: the raw bytes are required.
    body = event_body()
    compact = json.dumps(json.loads(body), separators=(",", ":")).encode()
    with pytest.raises(InvalidSignature):
        verify_webhook(compact, header(body), SECRET, now=NOW)


def test_a_stale_timestamp_is_rejected():
    body = event_body()
    with pytest.raises(InvalidSignature) as e:
        verify_webhook(body, header(body, timestamp=NOW - 301), SECRET, now=NOW)
    assert "older" in e.value.message


def test_a_future_timestamp_is_rejected_although_the_sdk_accepts_it():
    body = event_body()
    with pytest.raises(InvalidSignature) as e:
        verify_webhook(body, header(body, timestamp=NOW + 301), SECRET, now=NOW)
    assert "future" in e.value.message


def test_timestamps_within_the_tolerance_on_either_side_are_accepted():
    body = event_body()
    for timestamp in (NOW - 300, NOW + 300):
        assert verify_webhook(body, header(body, timestamp=timestamp), SECRET, now=NOW)["id"] == "evt_1"


def test_the_tolerance_is_configurable():
    body = event_body()
    with pytest.raises(InvalidSignature):
        verify_webhook(body, header(body, timestamp=NOW - 61), SECRET, tolerance=60, now=NOW)
    assert verify_webhook(body, header(body, timestamp=NOW - 59), SECRET, tolerance=60, now=NOW)


def test_any_matching_v1_signature_is_enough_during_secret_rotation():
    body = event_body()
    rotated = f"t={NOW},v1={signature(body, secret='whsec_old')},v1={signature(body)}"
    assert verify_webhook(body, rotated, SECRET, now=NOW)["id"] == "evt_1"


@pytest.mark.parametrize(
    "bad_header",
    [
        None,
        "",
        "garbage",
        "v1=abcdef",  # no timestamp
        f"t={NOW}",  # no signature
        f"t=soon,v1={'0' * 64}",  # timestamp not a number
        f"t=-{NOW},v1={'0' * 64}",
        f"t={NOW},v0={'0' * 64}",  # only an unknown scheme
        f"t={NOW},v1=",
    ],
)
def test_a_missing_or_malformed_header_is_rejected(bad_header):
    with pytest.raises(InvalidSignature) as e:
        verify_webhook(event_body(), bad_header, SECRET, now=NOW)
    assert e.value.code == "invalid_signature"


def test_an_empty_secret_verifies_nothing():
    body = event_body()
    with pytest.raises(InvalidSignature):
        verify_webhook(body, header(body, secret=""), "", now=NOW)


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe not utf-8",
        b"not json",
        b"[1, 2, 3]",
        json.dumps({"id": "evt_1", "type": "x"}).encode(),  # not an event object
        json.dumps({"object": "event", "type": "x"}).encode(),  # no id
    ],
)
def test_a_correctly_signed_body_that_is_not_a_stripe_event_is_rejected(body):
    with pytest.raises(InvalidSignature):
        verify_webhook(body, header(body), SECRET, now=NOW)


def test_a_str_body_is_verified_like_its_utf8_bytes():
    body = event_body(description="café")
    assert verify_webhook(body.decode(), header(body), SECRET, now=NOW)["id"] == "evt_1"
