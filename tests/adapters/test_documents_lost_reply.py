"""DynamoDocuments on moto when a write's reply is lost and botocore sends the same request again
(a 500 or a timeout after the write landed): the retry fails its own condition, and the adapter
must know its own write instead of reporting someone else's, or applying its change twice."""
import pytest

from chalicelib.documents import DocumentExists, DynamoDocuments
from chalicelib.errors import InvalidState


class SentTwice:
    """A boto3 client whose next ``operation`` is sent twice, as botocore resends a request whose reply was lost."""

    def __init__(self, client, operation):
        self._client = client
        self.operation = operation

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if name != self.operation:
            return attribute

        def twice(**request):
            self.operation = None  # once
            attribute(**request)
            return attribute(**request)

        return twice


@pytest.fixture
def client(aws_env):
    return aws_env.client("dynamodb")


def test_a_create_whose_reply_was_lost_is_the_callers_own_not_someone_elses(aws_env, client):
    docs = DynamoDocuments(aws_env.table("app"), client=SentTwice(client, "put_item"))
    docs.put_new("order#o1", {"order_id": "o1", "status": "paid"}, index=("seller#s1", "2026-12-07#o1"))
    assert docs.get("order#o1") == {"order_id": "o1", "status": "paid"}
    assert [d["order_id"] for d in docs.query_index("seller#s1")] == ["o1"]
    with pytest.raises(DocumentExists):  # another create of the key is still refused
        docs.put_new("order#o1", {"order_id": "o1", "status": "paid"})


def test_a_create_that_finds_another_document_under_its_key_is_refused(aws_env, client):
    DynamoDocuments(aws_env.table("app"), client=client).put_new("order#o1", {"order_id": "o1", "by": "first"})
    with pytest.raises(DocumentExists):
        DynamoDocuments(aws_env.table("app"), client=SentTwice(client, "put_item")).put_new(
            "order#o1", {"order_id": "o1", "by": "second"})


def settle(order: dict) -> dict:
    """A status step that refuses to run on its own result (as EscrowService._transition does)."""
    if order["status"] == "settled":
        raise InvalidState("invalid_state", "already settled")
    return {**order, "status": "settled", "timeline": order["timeline"] + ["settled"]}


def test_an_update_whose_reply_was_lost_is_applied_once_and_returns_its_result(aws_env, client):
    DynamoDocuments(aws_env.table("app"), client=client).put_new("order#o1", {"status": "paid", "timeline": ["paid"]})
    docs = DynamoDocuments(aws_env.table("app"), client=SentTwice(client, "update_item"))
    assert docs.update("order#o1", settle) == {"status": "settled", "timeline": ["paid", "settled"]}
    item = client.get_item(TableName=aws_env.table("app"), Key={"pk": {"S": "order#o1"}, "sk": {"S": "doc"}})["Item"]
    assert item["version"]["N"] == "2"


def test_an_update_that_lost_to_another_writer_is_applied_again_on_the_new_document(aws_env, client):
    docs = DynamoDocuments(aws_env.table("app"), client=client)
    docs.put_new("doc#1", {"count": 0})
    raced = []

    def increment(doc: dict) -> dict:
        if not raced:  # another writer gets in between this read and this write
            raced.append(True)
            docs.update("doc#1", lambda d: {**d, "count": d["count"] + 10})
        return {**doc, "count": doc["count"] + 1}

    assert docs.update("doc#1", increment) == {"count": 11}
    assert docs.get("doc#1") == {"count": 11}
