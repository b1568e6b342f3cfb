"""M-Pesa B2C adapter: callback parsing (Daraja's bodies), the result store, and how answers become states."""
import json

import pytest

from chalicelib.errors import ValidationError
from chalicelib.money import Money
from chalicelib.payouts.rails import NOT_FOUND, RailNotSent, RailStatus
from chalicelib.payouts.rails.http import HttpResponse, TransportError
from chalicelib.payouts.rails.mpesa import (
    InMemoryMpesaResultStore,
    MpesaB2CRail,
    parse_queue_timeout_callback,
    parse_result_callback,
)

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


def status_answer(code=0, status="Completed", reference="p-1", with_params=True, conversation="AG_TS_1"):
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
                {"Key": "Amount", "Value": 10},
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


def test_the_store_deduplicates_repeated_callbacks_raw_or_parsed():
    store = InMemoryMpesaResultStore()
    assert store.record(SUCCESS) is not None
    assert store.record(SUCCESS) is None
    assert store.record(parse_result_callback(SUCCESS)) is None
    assert len(store.received) == 1
    assert store.received[0].originator_conversation_id == "p-1"


def test_the_store_never_replaces_a_final_outcome_and_keeps_a_contradiction_for_a_human():
    store = InMemoryMpesaResultStore()
    store.record(status_answer(status="Pending", conversation="AG_TS_0"))
    assert store.get("p-1").state == "pending"
    store.record(SUCCESS)
    store.record(status_answer(status="Failed", conversation="AG_TS_2"))
    assert store.get("p-1").state == "succeeded"
    assert [(ref, a.state, b.state) for ref, a, b in store.conflicts] == [("p-1", "succeeded", "failed")]


def test_an_unknown_does_not_hide_a_pending():
    store = InMemoryMpesaResultStore()
    store.record(status_answer(status="Pending", conversation="AG_TS_0"))
    store.record({"Result": {"ResultType": 1, "ResultDesc": "The service request has timed out.",
                             "OriginatorConversationID": "p-1", "ConversationID": "AG_Q"}}, queue_timeout=True)
    assert store.get("p-1").state == "pending"


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


def rail(*answers, results=None):
    http = StubHttp(*answers)
    return MpesaB2CRail("http://daraja", "ck", "cs", "api_op", "cred", "600000", "http://r/result",
                        "http://r/timeout", results=results, http=http), http


def test_send_posts_darajas_b2c_v3_body():
    mpesa, http = rail(TOKEN, ACK)
    assert mpesa.send("p-1", KES, "+254712345678", "Coffee payout").state == "pending"
    token_call, post = http.sent
    assert token_call["url"] == "http://daraja/oauth/v1/generate?grant_type=client_credentials"
    assert post["url"] == "http://daraja/mpesa/b2c/v3/paymentrequest" and post["retry"] is False
    assert post["json"] == {
        "OriginatorConversationID": "p-1", "InitiatorName": "api_op", "SecurityCredential": "cred",
        "CommandID": "BusinessPayment", "Amount": 1500, "PartyA": "600000", "PartyB": "254712345678",
        "Remarks": "Coffee payout", "QueueTimeOutURL": "http://r/timeout", "ResultURL": "http://r/result",
        "Occassion": "p-1",
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


def test_status_returns_a_stored_final_outcome_without_calling_daraja():
    store = InMemoryMpesaResultStore()
    store.record(SUCCESS)
    mpesa, http = rail(results=store)
    assert mpesa.status("p-1").state == "succeeded"
    assert http.sent == []


def test_status_without_an_outcome_queries_transaction_status_and_says_unknown():
    mpesa, http = rail(TOKEN, (200, {"OriginatorConversationID": "q", "ConversationID": "AG_Q", "ResponseCode": "0"}),
                       results=InMemoryMpesaResultStore())
    got = mpesa.status("p-1")
    assert (got.state, got.reason) == ("unknown", "awaiting_result")
    query = http.sent[-1]["json"]
    assert http.sent[-1]["url"] == "http://daraja/mpesa/transactionstatus/v1/query"
    assert query["CommandID"] == "TransactionStatusQuery" and query["OriginalConversationID"] == "p-1"
    assert query["Occassion"] == "mizani-status:p-1" and query["ResultURL"] == "http://r/result"


def test_a_duplicate_originator_conversation_id_turns_send_into_a_status_read():
    store = InMemoryMpesaResultStore()
    store.record(SUCCESS)
    mpesa, _ = rail(TOKEN, (409, {"errorCode": "409.001.01", "errorMessage": "Duplicate OriginatorConversationID"}),
                    results=store)
    assert mpesa.send("p-1", KES, "254712345678", "n") == store.get("p-1")


def test_m_pesa_does_not_promise_idempotent_resends():
    assert MpesaB2CRail.resend_is_idempotent is False


def test_a_queue_timeout_recorded_for_a_payout_is_what_status_reports_while_waiting():
    store = InMemoryMpesaResultStore()
    store.record({"Result": {"ResultType": 1, "ResultDesc": "The service request has timed out.",
                             "OriginatorConversationID": "p-1", "ConversationID": "AG_Q"}}, queue_timeout=True)
    mpesa, _ = rail(TOKEN, (200, {"ResponseCode": "0"}), results=store)
    assert mpesa.status("p-1") == RailStatus("unknown", reason="queue_timeout", raw=store.get("p-1").raw)
