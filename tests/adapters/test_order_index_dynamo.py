"""Order projections in DynamoDB (moto): written in the order's own transaction, never behind it."""
import threading

import pytest

from chalicelib.documents import DocumentExists
from chalicelib.order_index import IndexedDynamoDocuments, OrderIndex


def order(oid: str, status: str = "paid", at: str = "2026-12-01T08:00:00Z") -> dict:
    return {"order_id": oid, "status": status, "seller_id": "s-1", "buyer_id": "b-1", "created_at": at,
            "updated_at": at, "timeline": [{"status": status, "at": at}]}


@pytest.fixture
def docs(aws_env):
    return IndexedDynamoDocuments(aws_env.table("app"), client=aws_env.client("dynamodb"))


def test_an_order_moves_between_status_lists_with_each_write(docs):
    index = OrderIndex(docs)
    docs.put_new("order#o1", order("o1"), index=("seller#s-1", "2026-12-01T08:00:00Z#o1"))
    with pytest.raises(DocumentExists):
        docs.put_new("order#o1", order("o1"))
    assert [o["order_id"] for o in index.by_status("paid")[0]] == ["o1"]

    def ship(doc):
        at = "2026-12-01T09:00:00Z"
        return {**doc, "status": "shipped", "updated_at": at, "shipment": {"customs_office": "Kigali"},
                "timeline": doc["timeline"] + [{"status": "shipped", "at": at}]}

    docs.update("order#o1", ship)
    assert index.by_status("paid")[0] == []
    (row,) = index.by_status("shipped")[0]
    assert (row["shipped_at"], row["office"]) == ("2026-12-01T09:00:00Z", "Kigali")
    assert docs.query_index("seller#s-1")[0]["status"] == "shipped"  # the seller's own index is untouched
    docs.put_new("seller#s-1", {"seller_id": "s-1"})  # other documents are written as before
    assert docs.get("seller#s-1") == {"seller_id": "s-1"}


def test_concurrent_changes_of_one_order_leave_the_projection_at_the_last_one(docs):
    docs.put_new("order#o2", order("o2"))

    def append(n: int) -> None:
        def mutate(doc):
            at = f"2026-12-01T10:00:{n:02d}Z"
            return {**doc, "updated_at": at, "timeline": doc["timeline"] + [{"status": "paid", "at": at, "detail": str(n)}]}

        docs.update("order#o2", mutate)

    threads = [threading.Thread(target=append, args=(n,)) for n in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    final = docs.get("order#o2")
    assert len(final["timeline"]) == 7  # every change applied once
    (row,) = OrderIndex(docs).by_status("paid")[0]
    assert row["updated_at"] == final["updated_at"]


def test_a_decision_is_kept_with_its_office_and_hours(docs):
    doc = order("o3", "shipped", "2026-12-01T00:00:00Z")
    doc["timeline"] = [{"status": "shipped", "at": "2026-12-01T00:00:00Z"}]
    docs.put_new("order#o3", doc)

    def clear(d):
        at = "2026-12-02T02:30:00Z"
        return {**d, "status": "customs_cleared", "updated_at": at,
                "customs": {"outcome": "cleared", "office": "Mombasa", "event_id": "e1"},
                "timeline": d["timeline"] + [{"status": "customs_cleared", "at": at, "detail": "customs cleared at Mombasa (e1)"}]}

    docs.update("order#o3", clear)
    (decision,) = list(OrderIndex(docs).decided(since="2026-12-01T00:00:00Z"))
    assert (decision["office"], decision["hours"], decision["outcome"]) == ("Mombasa", 26.5, "cleared")
    assert list(OrderIndex(docs).decided(since="2026-12-03T00:00:00Z")) == []
