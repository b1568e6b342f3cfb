"""M-Pesa B2C adapter: callback parsing (Daraja's bodies), the result store, and how answers become states."""
import json

import pytest

from chalicelib.documents import MemoryDocuments
from chalicelib.errors import ValidationError
from chalicelib.money import Money
from chalicelib.payouts.rails import NOT_FOUND, RailNotSent, RailStatus
from chalicelib.payouts.rails.callbacks import CallbackUrls
from chalicelib.http import HttpResponse, TransportError
from chalicelib.payouts.rails.mpesa import (
    MpesaB2CRail,
    parse_queue_timeout_callback,
    parse_result_callback,
)
from chalicelib.payouts.rails.mpesa_store import MpesaResultStore

PAYMENT_CONVERSATION = "AG_20240706_2010759fd5662ef6d054"

SUCCESS = {
    "Result": {
        "ResultType": 0,
        "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "OriginatorConversationID": "p-1",
        "ConversationID": "AG_20240706_2010759fd5662ef6d054",
        "TransactionID": "SG632NMUAB",
        "ResultParameters": {
            "ResultParameter": [
                {"Key": "TransactionAmount", "Value": 10},
                {"Key": "TransactionReceipt", "Value": "SG632NMUAB"},
                {"Key": "ReceiverPartyPublicName", "Value": "254705912645 - John Doe"},
                {"Key": "TransactionCompletedDateTime", "Value": "19.07.2024 12:00:00"},
            ]
        },
        "ReferenceData": {"ReferenceItem": {"Key": "QueueTimeoutURL", "Value": "https://x/timeout"}},
    }
}
FAILURE = {
    "Result": {
        "ResultType": 0,
        "ResultCode": 2001,
        "ResultDesc": "The initiator information is invalid.",
        "OriginatorConversationID": "p-2",
        "ConversationID": "AG_20240706_0000000000000002",
        "TransactionID": "OAK0000000",
    }
}


def status_answer(code=0, status="Completed", reference="p-1", with_params=True, conversation="AG_TS_1",
                  payment_conversation=PAYMENT_CONVERSATION, amount=10):
    result = {
        "ResultType": 0,
        "ResultCode": code,
        "ResultDesc": "ok",
        "OriginatorConversationID": "10816-694520-2",
        "ConversationID": conversation,
        "TransactionID": "LGR0000000",
        "ReferenceData": {"ReferenceItem": {"Key": "Occasion", "Value": f"mizani-status:{reference}"}},
    }
    if with_params:
        result["ResultParameters"] = {
            "ResultParameter": [
                {"Key": "ReceiptNo", "Value": "LGR919G2AV"},
                {"Key": "TransactionStatus", "Value": status},
                {"Key": "OriginatorConversationID", "Value": reference},
                {"Key": "Amount", "Value": amount},
                {"Key": "ConversationID", "Value": payment_conversation},
            ]
        }
    return {"Result": result}


def test_a_success_result_is_succeeded_with_the_receipt_as_provider_reference():
    callback = parse_result_callback(json.dumps(SUCCESS).encode())
    assert callback.kind == "payment_result" and callback.reference == "p-1"
    assert (callback.status.state, callback.status.provider_reference) == ("succeeded", "SG632NMUAB")
    assert callback.dedup_key == "payment_result:AG_20240706_2010759fd5662ef6d054"


def test_a_non_zero_result_code_is_a_failure_with_code_and_description():
    callback = parse_result_callback(FAILURE)
    assert callback.status.state == "failed"
    assert callback.status.reason == "2001: The initiator information is invalid."


@pytest.mark.parametrize(
    "ts, state", [("Completed", "succeeded"), ("Failed", "failed"), ("Expired", "failed"), ("Pending", "pending"),
                  ("Reversed", "unknown")],
)
def test_a_transaction_status_answer_names_the_payout_and_its_state(ts, state):
    callback = parse_result_callback(status_answer(status=ts))
    assert callback.kind == "status_result" and callback.reference == "p-1"
    assert callback.status.state == state


def test_a_status_answer_without_parameters_still_names_the_payout_through_the_occasion_echo():
    callback = parse_result_callback(status_answer(code="R000002", with_params=False, reference="p-7"))
    assert callback.reference == "p-7"
    assert (callback.status.state, callback.status.reason) == ("unknown", NOT_FOUND)


def test_a_failed_status_query_says_nothing_about_the_payment():
    callback = parse_result_callback(status_answer(code=2001, with_params=False))
    assert callback.status.state == "unknown"


def test_a_queue_timeout_is_unknown_never_failed_wherever_it_arrives():
    body = {"Result": {"ResultType": 1, "ResultCode": 1, "ResultDesc": "The service request has timed out.",
                       "OriginatorConversationID": "p-3", "ConversationID": "AG_3"}}
    assert parse_queue_timeout_callback(body).status.state == "unknown"
    misrouted = parse_result_callback(body)  # even if wired to the result URL by mistake
    assert (misrouted.status.state, misrouted.status.reason) == ("unknown", "queue_timeout")


def test_a_body_that_is_not_json_is_a_validation_error():
    with pytest.raises(ValidationError):
        parse_result_callback(b"<html>")


def store(*sent):
    """A result store in which each ``(reference, amount, conversation_id)`` was sent."""
    kept = MpesaResultStore(MemoryDocuments())
    for reference, amount, conversation in sent or [("p-1", 10, PAYMENT_CONVERSATION)]:
        kept.sending(reference, amount)
        if conversation:
            kept.sent(reference, conversation)
    return kept


def record(kept, body, queue_timeout=False):
    return kept.record(parse_queue_timeout_callback(body) if queue_timeout else parse_result_callback(body))


def test_the_store_deduplicates_repeated_callbacks():
    kept = store()
    assert record(kept, status_answer()) is True
    assert record(kept, status_answer()) is False
    assert kept.get("p-1").state == "succeeded"


def test_a_b2c_result_is_a_hint_only_never_the_verdict():
    kept = store()
    assert record(kept, SUCCESS) is True
    assert kept.hint("p-1").state == "succeeded"
    assert kept.get("p-1") is None


def test_a_callback_for_a_payout_never_sent_is_refused():
    kept = store()
    assert record(kept, FAILURE) is False  # p-2 was never sent
    assert record(kept, status_answer(reference="p-9", status="Failed")) is False
    assert kept.get("p-9") is None and kept.hint("p-2") is None


def test_a_status_answer_about_another_payment_than_daraja_acknowledged_is_refused():
    kept = store()
    assert record(kept, status_answer(status="Failed", payment_conversation="AG_forged")) is False
    assert record(kept, status_answer(status="Failed", amount=999)) is False
    assert kept.get("p-1") is None
    assert record(kept, status_answer(status="Completed", conversation="AG_TS_9")) is True
    assert kept.get("p-1").state == "succeeded"


def test_a_forged_result_for_a_payment_in_flight_cannot_hide_the_real_one():
    kept = store()
    assert record(kept, {"Result": {**FAILURE["Result"], "OriginatorConversationID": "p-1"}}) is False
    assert kept.hint("p-1") is None


def test_the_store_never_replaces_a_final_verdict_and_keeps_a_contradiction_for_a_human():
    kept = store()
    record(kept, status_answer(status="Pending", conversation="AG_TS_0"))
    assert kept.get("p-1").state == "pending"
    record(kept, status_answer(status="Completed", conversation="AG_TS_1"))
    record(kept, status_answer(status="Failed", conversation="AG_TS_2"))
    assert kept.get("p-1").state == "succeeded"
    assert [c.state for c in kept.conflicts("p-1")] == ["failed"]


def test_an_unknown_does_not_hide_a_pending():
    kept = store()
    record(kept, status_answer(status="Pending", conversation="AG_TS_0"))
    record(kept, status_answer(code="R000002", with_params=False, conversation="AG_TS_3"))
    assert kept.get("p-1").state == "pending"


class StubHttp:
    def __init__(self, *answers):
        self.answers = list(answers)
        self.sent = []

    def request(self, method, url, *, headers=None, json_body=None, form=None, retry=False):
        self.sent.append({"method": method, "url": url, "json": json_body, "retry": retry})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        return HttpResponse(status, json.dumps(body).encode() if body is not None else b"")


TOKEN = (200, {"access_token": "tok", "expires_in": "3599"})
ACK = (200, {"ConversationID": "AG_1", "OriginatorConversationID": "p-1", "ResponseCode": "0",
             "ResponseDescription": "Accept the service request successfully."})
KES = Money(150_000, "KES")  # 1,500 KES


CALLBACKS = CallbackUrls("test-callback-secret", "mpesa")


def rail(*answers, results=None):
    http = StubHttp(*answers)
    return MpesaB2CRail("http://daraja", "ck", "cs", "api_op", "cred", "600000", "http://r/result",
                        "http://r/timeout", results=results, callbacks=CALLBACKS, http=http), http


def test_send_posts_darajas_b2c_v3_body():
    mpesa, http = rail(TOKEN, ACK)
    assert mpesa.send("p-1", KES, "+254712345678", "Coffee payout").state == "pending"
    token_call, post = http.sent
    assert token_call["url"] == "http://daraja/oauth/v1/generate?grant_type=client_credentials"
    assert post["url"] == "http://daraja/mpesa/b2c/v3/paymentrequest" and post["retry"] is False
    assert post["json"] == {
        "OriginatorConversationID": "p-1", "InitiatorName": "api_op", "SecurityCredential": "cred",
        "CommandID": "BusinessPayment", "Amount": 1500, "PartyA": "600000", "PartyB": "254712345678",
        "Remarks": "Coffee payout", "QueueTimeOutURL": f"http://r/timeout/p-1/{CALLBACKS.token('p-1')}",
        "ResultURL": f"http://r/result/p-1/{CALLBACKS.token('p-1')}", "Occassion": "p-1",
    }


def test_b2c_pays_whole_shillings_only():
    mpesa, _ = rail()
    with pytest.raises(ValidationError) as err:
        mpesa.send("p-1", Money(150_050, "KES"), "254712345678", "n")
    assert err.value.code == "amount_not_whole_units"
    with pytest.raises(ValidationError):
        mpesa.send("p-1", Money(1500, "RWF"), "254712345678", "n")


@pytest.mark.parametrize("answer", [(500, {"errorCode": "500.003.1001"}), (503, None),
                                    TransportError("read timeout", maybe_delivered=True, kind="timeout")])
def test_a_5xx_or_timeout_on_send_is_unknown(answer):
    mpesa, _ = rail(TOKEN, answer)
    assert mpesa.send("p-1", KES, "254712345678", "n").state == "unknown"


def test_a_400_is_daraja_refusing_the_request_so_it_failed():
    mpesa, _ = rail(TOKEN, (400, {"requestId": "r", "errorCode": "400.002.02", "errorMessage": "Bad Request - Invalid PartyB"}))
    got = mpesa.send("p-1", KES, "254712345678", "n")
    assert (got.state, got.reason) == ("failed", "rejected:400.002.02")


def test_unreachable_oauth_means_not_sent():
    mpesa, _ = rail(TransportError("refused", maybe_delivered=False, kind="connect"))
    with pytest.raises(RailNotSent):
        mpesa.send("p-1", KES, "254712345678", "n")


def test_status_returns_a_stored_final_verdict_without_calling_daraja():
    kept = store()
    record(kept, status_answer())
    mpesa, http = rail(results=kept)
    assert mpesa.status("p-1").state == "succeeded"
    assert http.sent == []


def test_a_b2c_result_alone_still_makes_status_ask_safaricom():
    kept = store()
    record(kept, SUCCESS)
    mpesa, http = rail(TOKEN, (200, {"OriginatorConversationID": "q", "ConversationID": "AG_Q", "ResponseCode": "0"}),
                       results=kept)
    assert (mpesa.status("p-1").state, http.sent[-1]["url"]) == ("unknown", "http://daraja/mpesa/transactionstatus/v1/query")


def test_status_without_an_outcome_queries_transaction_status_and_says_unknown():
    mpesa, http = rail(TOKEN, (200, {"OriginatorConversationID": "q", "ConversationID": "AG_Q", "ResponseCode": "0"}))
    got = mpesa.status("p-1")
    assert (got.state, got.reason) == ("unknown", "awaiting_result")
    query = http.sent[-1]["json"]
    assert http.sent[-1]["url"] == "http://daraja/mpesa/transactionstatus/v1/query"
    assert query["CommandID"] == "TransactionStatusQuery" and query["OriginalConversationID"] == "p-1"
    assert query["Occassion"] == "mizani-status:p-1"
    assert query["ResultURL"] == f"http://r/result/p-1/{CALLBACKS.token('p-1')}"


def test_send_records_the_conversation_id_daraja_returned():
    mpesa, _ = rail(TOKEN, ACK)
    mpesa.send("p-1", KES, "254712345678", "n")
    assert mpesa.results.conversation_id("p-1") == "AG_1"


def test_a_duplicate_originator_conversation_id_turns_send_into_a_status_read():
    kept = store(("p-1", 1500, "AG_1"))
    record(kept, status_answer(payment_conversation="AG_1", amount=1500))
    mpesa, _ = rail(TOKEN, (409, {"errorCode": "409.001.01", "errorMessage": "Duplicate OriginatorConversationID"}),
                    results=kept)
    assert mpesa.send("p-1", KES, "254712345678", "n") == kept.get("p-1")


def test_m_pesa_does_not_promise_idempotent_resends():
    assert MpesaB2CRail.resend_is_idempotent is False


def test_a_callback_is_kept_only_with_the_payouts_own_token():
    mpesa, _ = rail(TOKEN, ACK)
    mpesa.send("p-1", KES, "254712345678", "n")
    answer = status_answer(payment_conversation="AG_1", amount=1500)
    assert mpesa.accept_callback("p-1", "0" * 32, answer) is False
    assert mpesa.accept_callback("p-1", CALLBACKS.token("p-2"), answer) is False
    assert mpesa.accept_callback("p-2", CALLBACKS.token("p-2"), answer) is False  # the body names p-1
    assert mpesa.results.get("p-1") is None
    assert mpesa.accept_callback("p-1", CALLBACKS.token("p-1"), answer) is True
    assert mpesa.results.get("p-1").state == "succeeded"
