"""MTN MoMo adapter: reference ids, status mapping, callback parsing, and how answers become states.

The HTTP layer is replaced by a scripted stub (no network); the adapter tests
in tests/adapters drive the same client against the simulator.
"""
import json
import uuid

import pytest

from chalicelib.money import Money
from chalicelib.payouts.rails import NOT_FOUND, RailNotSent
from chalicelib.http import HttpResponse, TransportError
from chalicelib.payouts.rails.momo import MtnMomoRail, map_transfer_status, momo_reference_id, parse_callback

EUR = Money(1250, "EUR")


def test_the_reference_id_is_a_deterministic_version_4_uuid():
    first = momo_reference_id("payout:order-1:1")
    assert first == momo_reference_id("payout:order-1:1")
    assert uuid.UUID(first).version == 4
    assert first != momo_reference_id("payout:order-1:2")


@pytest.mark.parametrize(
    "status, state",
    [("SUCCESSFUL", "succeeded"), ("FAILED", "failed"), ("REJECTED", "failed"), ("PENDING", "pending"),
     ("CREATED", "pending"), ("ONGOING", "pending"), ("TIMEOUT", "unknown"), ("", "unknown")],
)
def test_mtn_statuses_map_to_rail_states_and_only_mtn_can_say_failed(status, state):
    assert map_transfer_status({"status": status}).state == state


def test_a_successful_transfer_carries_the_financial_transaction_id():
    got = map_transfer_status({"status": "SUCCESSFUL", "financialTransactionId": "123456789", "externalId": "p-1"})
    assert (got.state, got.provider_reference) == ("succeeded", "123456789")


def test_a_failed_transfer_keeps_mtns_reason_even_in_the_older_nested_shape():
    assert map_transfer_status({"status": "FAILED", "reason": "APPROVAL_REJECTED"}).reason == "APPROVAL_REJECTED"
    assert map_transfer_status({"status": "FAILED", "reason": {"code": "PAYEE_NOT_FOUND"}}).reason == "PAYEE_NOT_FOUND"


def test_a_callback_names_the_payout_to_requery_and_what_it_claimed():
    body = json.dumps({"externalId": "p-9", "status": "SUCCESSFUL", "financialTransactionId": "42"}).encode()
    callback = parse_callback(body)
    assert callback.reference == "p-9"
    assert callback.claimed.state == "succeeded"


class StubHttp:
    """Answers requests from a script of (status, body) or exceptions; records what was sent."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.sent = []

    def request(self, method, url, *, headers=None, json_body=None, form=None, retry=False):
        self.sent.append({"method": method, "url": url, "headers": headers or {}, "json": json_body, "retry": retry})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        return HttpResponse(status, json.dumps(body).encode() if body is not None else b"")


TOKEN = (200, {"access_token": "tok", "token_type": "access_token", "expires_in": 3600})


def rail(*answers, **kwargs):
    http = StubHttp(*answers)
    return MtnMomoRail("http://mtn", "user", "key", "sub", "sandbox", "http://cb", http=http, **kwargs), http


def test_send_posts_mtns_transfer_body_and_headers():
    momo, http = rail(TOKEN, (202, None))
    assert momo.send("p-1", EUR, "+46733000001", "Coffee co-op payout").state == "pending"
    token_call, transfer = http.sent
    assert token_call["url"] == "http://mtn/disbursement/token/" and token_call["retry"] is True
    assert token_call["headers"]["Authorization"].startswith("Basic ")
    assert transfer["retry"] is False
    assert transfer["headers"]["X-Reference-Id"] == momo_reference_id("p-1")
    assert transfer["headers"]["X-Target-Environment"] == "sandbox"
    assert transfer["headers"]["X-Callback-Url"] == "http://cb"
    assert transfer["headers"]["Ocp-Apim-Subscription-Key"] == "sub"
    assert transfer["json"] == {
        "amount": "12.50", "currency": "EUR", "externalId": "p-1",
        "payee": {"partyIdType": "MSISDN", "partyId": "46733000001"},
        "payerMessage": "Coffee co-op payout", "payeeNote": "Coffee co-op payout",
    }


@pytest.mark.parametrize("answer", [(500, {"code": "INTERNAL_PROCESSING_ERROR"}), (503, None), (504, None)])
def test_a_5xx_on_send_is_unknown_never_failed(answer):
    momo, _ = rail(TOKEN, answer)
    assert momo.send("p-1", EUR, "46733000001", "n").state == "unknown"


def test_a_read_timeout_on_send_is_unknown():
    momo, _ = rail(TOKEN, TransportError("read timeout", maybe_delivered=True, kind="timeout"))
    got = momo.send("p-1", EUR, "46733000001", "n")
    assert (got.state, got.reason) == ("unknown", "timeout")


def test_a_connection_that_never_opened_raises_not_sent():
    momo, _ = rail(TOKEN, TransportError("refused", maybe_delivered=False, kind="connect"))
    with pytest.raises(RailNotSent):
        momo.send("p-1", EUR, "46733000001", "n")


def test_a_400_is_mtn_refusing_the_transfer_so_it_failed():
    momo, _ = rail(TOKEN, (400, {"code": "INVALID_CURRENCY", "message": "Currency not supported."}))
    got = momo.send("p-1", EUR, "46733000001", "n")
    assert (got.state, got.reason) == ("failed", "rejected:INVALID_CURRENCY")


def test_a_409_means_mtn_already_has_the_reference_so_send_asks_status():
    momo, http = rail(TOKEN, (409, {"code": "RESOURCE_ALREADY_EXIST"}), (200, {"status": "SUCCESSFUL", "financialTransactionId": "7"}))
    got = momo.send("p-1", EUR, "46733000001", "n")
    assert (got.state, got.provider_reference) == ("succeeded", "7")
    assert http.sent[-1]["method"] == "GET" and http.sent[-1]["url"].endswith(momo_reference_id("p-1"))


def test_an_expired_token_is_replaced_once_and_the_transfer_sent():
    momo, http = rail(TOKEN, (401, None), TOKEN, (202, None))
    assert momo.send("p-1", EUR, "46733000001", "n").state == "pending"
    assert [c["url"].rsplit("/", 2)[-2] for c in http.sent].count("token") == 2


def test_credentials_mtn_keeps_refusing_mean_not_sent():
    momo, _ = rail(TOKEN, (401, None), TOKEN, (401, None))
    with pytest.raises(RailNotSent):
        momo.send("p-1", EUR, "46733000001", "n")


def test_no_token_means_not_sent():
    momo, _ = rail((401, {"error": "login_failed"}))
    with pytest.raises(RailNotSent):
        momo.send("p-1", EUR, "46733000001", "n")


def test_send_retries_repeat_the_post_with_the_same_reference_id():
    momo, http = rail(TOKEN, (500, None), (202, None), send_retries=1)
    assert momo.send("p-1", EUR, "46733000001", "n").state == "pending"
    posts = [c for c in http.sent if c["method"] == "POST" and c["url"].endswith("/transfer")]
    assert len(posts) == 2
    assert posts[0]["headers"]["X-Reference-Id"] == posts[1]["headers"]["X-Reference-Id"]


def test_status_of_a_transfer_mtn_never_saw_is_unknown_not_found():
    momo, _ = rail(TOKEN, (404, {"code": "RESOURCE_NOT_FOUND"}))
    got = momo.status("p-1")
    assert (got.state, got.reason) == ("unknown", NOT_FOUND)


def test_status_never_raises_for_provider_trouble():
    momo, _ = rail(TOKEN, TransportError("read timeout", maybe_delivered=True, kind="timeout"))
    assert momo.status("p-1").state == "unknown"
    broken, _ = rail(TransportError("refused", maybe_delivered=False, kind="connect"))
    assert broken.status("p-1").reason == "token_unavailable"


def test_status_gets_are_marked_retryable_and_transfer_posts_are_not():
    momo, http = rail(TOKEN, (202, None), (200, {"status": "PENDING"}))
    momo.send("p-1", EUR, "46733000001", "n")
    momo.status("p-1")
    assert [(c["method"], c["retry"]) for c in http.sent] == [("POST", True), ("POST", False), ("GET", True)]
