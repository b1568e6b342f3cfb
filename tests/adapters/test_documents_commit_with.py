"""``Documents.commit_with`` on moto and on the in-memory twin: a prepared update, documents to create and
documents to delete commit as one write, or, when the update's document moved on or a key to create is
taken, nothing of it does (what ``Outbox`` relies on to mark a message sent and give up its queue place)."""
import pytest

from chalicelib.documents import DynamoDocuments, MemoryDocuments, WriteRefused


@pytest.fixture(params=["dynamodb", "memory"])
def docs(request):
    if request.param == "memory":
        return MemoryDocuments()
    aws_env = request.getfixturevalue("aws_env")
    return DynamoDocuments(aws_env.table("app"), client=aws_env.client("dynamodb"))


def test_an_update_a_create_and_a_delete_commit_together(docs):
    docs.put_new("sms#m1", {"status": "sending"})
    docs.put_new("smsq#m1#0", {"message_id": "m1"}, index=("smsq", "2026-12-02T10:00:00Z#m1"))
    _, write = docs.prepare_update("sms#m1", lambda m: {**m, "status": "sent"})
    docs.commit_with(write, put_new=[("smsid#AT1", {"message_id": "m1"}, "doc", None)], delete=[("smsq#m1#0", "doc")])
    assert docs.read("sms#m1").doc == {"status": "sent"} and docs.read("sms#m1").version == 2
    assert docs.get("smsid#AT1") == {"message_id": "m1"}
    assert docs.get("smsq#m1#0") is None and docs.query_index("smsq") == []


@pytest.mark.parametrize("refusal", ["the document moved on", "a key to create is taken"])
def test_a_refused_part_writes_nothing(docs, refusal):
    docs.put_new("sms#m1", {"status": "sending"})
    docs.put_new("smsq#m1#0", {"message_id": "m1"})
    _, write = docs.prepare_update("sms#m1", lambda m: {**m, "status": "sent"})
    if refusal == "the document moved on":
        docs.update("sms#m1", lambda m: {**m, "delivery_status": "Success"})  # a delivery report, meanwhile
    else:
        docs.put_new("smsid#AT1", {"message_id": "another"})
    with pytest.raises(WriteRefused):
        docs.commit_with(write, put_new=[("smsid#AT1", {"message_id": "m1"}, "doc", None)], delete=[("smsq#m1#0", "doc")])
    assert docs.get("sms#m1")["status"] == "sending"  # not marked
    assert docs.get("smsq#m1#0") == {"message_id": "m1"}  # still queued
    assert docs.get("smsid#AT1") == ({"message_id": "another"} if refusal != "the document moved on" else None)


def test_a_write_that_also_deletes_does_both_or_neither_wherever_it_commits(docs):
    docs.put_new("payout#p1", {"status": "pending"})
    docs.put_new("openpayout#p1", {"payout_id": "p1"}, index=("payouts#open", "2026-12-02T10:00:00Z#p1"))
    _, write = docs.prepare_update("payout#p1", lambda p: {**p, "status": "succeeded"})
    stale = docs.also_deleting(write, [("openpayout#p1", "doc")])
    docs.update("payout#p1", lambda p: {**p, "checked": 1})  # someone else wrote it meanwhile
    with pytest.raises(WriteRefused):
        stale.commit()
    assert docs.get("payout#p1")["status"] == "pending" and docs.get("openpayout#p1") == {"payout_id": "p1"}
    _, write = docs.prepare_update("payout#p1", lambda p: {**p, "status": "succeeded"})
    docs.also_deleting(write, [("openpayout#p1", "doc")]).commit()
    assert docs.get("payout#p1") == {"status": "succeeded", "checked": 1}
    assert docs.get("openpayout#p1") is None and docs.query_index("payouts#open") == []
