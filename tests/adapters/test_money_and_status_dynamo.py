"""An order's status and the money it moves in ONE TransactWriteItems, on moto (issue 12, item 4):
the ledger's items and the order's version-conditioned update and projections commit together or
not at all."""
import pytest

from chalicelib import settings as app_settings
from chalicelib.ledger import Ledger, LedgerRejected, Result, Transfer, WritesNotApplied
from chalicelib.ledger.dynamo import DynamoLedgerStore
from chalicelib.order_index import IndexedDynamoDocuments, OrderIndex

DMNEC = "debits_must_not_exceed_credits"
AT = "2026-12-01T08:00:00Z"


@pytest.fixture
def world(aws_env):
    client = aws_env.client("dynamodb")
    ledger = Ledger(DynamoLedgerStore(app_settings.get().table_prefix, client=client))
    ledger.create_account("psp", "KES")
    ledger.create_account("escrow:o1", "KES", "liability", [DMNEC])
    docs = IndexedDynamoDocuments(aws_env.table("app"), client=client)
    docs.put_new("order#o1", {"order_id": "o1", "status": "awaiting_payment", "created_at": AT, "updated_at": AT,
                              "timeline": []})
    return ledger, docs


def paid(doc):
    return {**doc, "status": "paid", "updated_at": "2026-12-01T09:00:00Z"}


def test_the_money_the_status_and_its_projection_commit_in_one_request(world, aws_env):
    from bench.common import RequestCounter

    ledger, docs = world
    current, write = docs.prepare_update("order#o1", paid)  # the one read
    counter = RequestCounter(docs.client)
    ledger.transfer(Transfer("pay:o1", "psp", "escrow:o1", 500, "KES"), writes=[write])
    assert dict(counter.calls) == {"TransactWriteItems": 1}
    assert docs.get("order#o1")["status"] == "paid"
    assert ledger.get_account("escrow:o1").balance == 500
    assert [r["order_id"] for r in OrderIndex(docs).by_status("paid")[0]] == ["o1"]


def test_an_order_changed_since_it_was_read_moves_no_money(world):
    ledger, docs = world
    _, write = docs.prepare_update("order#o1", paid)
    docs.update("order#o1", lambda d: {**d, "note": "a concurrent change"})
    with pytest.raises(WritesNotApplied) as refused:
        ledger.transfer(Transfer("pay:o1", "psp", "escrow:o1", 500, "KES"), writes=[write])
    assert refused.value.replayed is False
    assert ledger.get_account("escrow:o1").balance == 0 and ledger.get_transfer("pay:o1") is None
    assert docs.get("order#o1")["status"] == "awaiting_payment"
    assert OrderIndex(docs).by_status("paid")[0] == []


def test_a_chain_committed_before_is_told_apart_from_a_changed_order(world):
    ledger, docs = world
    ledger.transfer(Transfer("pay:o1", "psp", "escrow:o1", 500, "KES"))
    _, write = docs.prepare_update("order#o1", paid)
    with pytest.raises(WritesNotApplied) as refused:
        ledger.transfer(Transfer("pay:o1", "psp", "escrow:o1", 500, "KES"), writes=[write])
    assert refused.value.replayed is True
    assert docs.get("order#o1")["status"] == "awaiting_payment"


def test_a_rule_of_the_ledger_still_refuses_with_its_reason_and_writes_no_status(world):
    ledger, docs = world
    _, write = docs.prepare_update("order#o1", paid)
    with pytest.raises(LedgerRejected) as refused:
        ledger.transfer(Transfer("out:o1", "escrow:o1", "psp", 1, "KES"), writes=[write])
    assert refused.value.result is Result.EXCEEDS_CREDITS
    assert docs.get("order#o1")["status"] == "awaiting_payment"
