"""A constant index key in shards (``documents.INDEX_SHARDS``) on moto and on the in-memory twins:
items spread over the shards' partitions, and every read of the key sees them all, in order, page
after page, as if the key were one partition."""
import pytest

from chalicelib.documents import is_sharded, stored_index
from chalicelib.errors import ValidationError
from chalicelib.order_index import IndexedDynamoDocuments, IndexedMemoryDocuments, OrderIndex

KEY = "payouts#open"


@pytest.fixture(params=["dynamodb", "memory"])
def docs(request):
    if request.param == "memory":
        return IndexedMemoryDocuments()
    aws_env = request.getfixturevalue("aws_env")
    return IndexedDynamoDocuments(aws_env.table("app"), client=aws_env.client("dynamodb"))


def _open(docs, n: int) -> list[str]:
    ids = [f"po_{i:03d}" for i in range(n)]
    for i, payout_id in enumerate(ids):
        docs.put_new(f"openpayout#{payout_id}", {"payout_id": payout_id},
                     index=(KEY, f"2026-12-02T10:{i // 60:02d}:{i % 60:02d}Z#{payout_id}"))
    return ids


def _pages(docs, key, limit, newest_first):
    seen, cursor, pages = [], None, 0
    while True:
        found, cursor = docs.query_page(key, limit, cursor, newest_first=newest_first)
        seen += [d["payout_id"] for d in found]
        pages += 1
        if cursor is None:
            return seen, pages


def test_a_sharded_key_spreads_its_items_and_reads_them_in_order(docs):
    ids = _open(docs, 45)
    assert len({stored_index(f"openpayout#{p}", (KEY, "x"))[0] for p in ids}) > 8  # many partitions
    assert [d["payout_id"] for d in docs.query_index(KEY, limit=10, newest_first=False)] == ids[:10]
    assert [d["payout_id"] for d in docs.query_index(KEY, limit=100)] == ids[::-1]


@pytest.mark.parametrize("limit", [1, 7, 45, 100])
def test_every_item_of_a_sharded_key_is_paged_once(docs, limit):
    ids = _open(docs, 45)
    oldest, pages = _pages(docs, KEY, limit, newest_first=False)
    assert oldest == ids and pages == -(-45 // limit)  # no empty last page
    newest, _ = _pages(docs, KEY, limit, newest_first=True)
    assert newest == ids[::-1]


def test_an_item_removed_between_pages_is_not_read_and_nothing_else_is_lost(docs):
    ids = _open(docs, 20)
    first, cursor = docs.query_page(KEY, 5, None, newest_first=False)
    docs.delete(f"openpayout#{ids[5]}")
    rest, cursor = docs.query_page(KEY, 50, cursor, newest_first=False)
    assert [d["payout_id"] for d in first + rest] == ids[:5] + ids[6:] and cursor is None


def test_a_cursor_of_one_sharded_list_is_refused_by_another(docs):
    _open(docs, 10)
    _, cursor = docs.query_page(KEY, 3, None)
    with pytest.raises(ValidationError) as refused:
        docs.query_page("outbox#pending", 3, cursor)
    assert refused.value.code == "invalid_cursor"


def order(oid: str, status: str, at: str) -> dict:
    return {"order_id": oid, "status": status, "seller_id": "s-1", "buyer_id": "b-1", "created_at": at,
            "updated_at": at, "timeline": [{"status": status, "at": at}]}


def test_orders_by_status_and_shipped_before_a_time_read_every_shard(docs):
    assert is_sharded("orders#shipped")
    for i in range(30):
        docs.put_new(f"order#o{i:02d}", order(f"o{i:02d}", "shipped" if i % 3 else "paid", f"2026-12-01T08:{i:02d}:00Z"))
    index = OrderIndex(docs)
    shipped = [f"o{i:02d}" for i in range(30) if i % 3]
    rows, cursor, seen = None, None, []
    while rows is None or cursor is not None:
        rows, cursor = index.by_status("shipped", limit=4, cursor=cursor)
        seen += [r["order_id"] for r in rows]
    assert seen == shipped[::-1]  # latest changed first
    assert [r["order_id"] for r in index.shipped(before="2026-12-01T08:10:00Z", page_size=3)] == \
        [o for o in shipped if o < "o10"]
