"""The DynamoDB ledger store against moto's server: the conditions do the work."""
import threading

import pytest
from hypothesis import settings

from chalicelib import settings as app_settings

from chalicelib.ledger import Ledger, LedgerRejected, Result, Transfer, TransferKind
from chalicelib.ledger.dynamo import DynamoLedgerStore
from ledger_machine import make_machine

DMNEC = "debits_must_not_exceed_credits"


@pytest.fixture
def ledger(aws_env):
    ledger = Ledger(DynamoLedgerStore(app_settings.get().table_prefix))
    ledger.create_account("psp", "KES")
    ledger.create_account("seller", "KES", "liability", [DMNEC])
    ledger.create_account("float", "KES")
    ledger.create_account("fx:USD", "USD")
    return ledger


def test_a_failed_condition_writes_nothing_and_names_the_reason(ledger):
    ledger.transfer(Transfer("in", "psp", "seller", 100, "KES"))
    with pytest.raises(LedgerRejected) as e:
        ledger.transfer(Transfer("a", "psp", "seller", 5, "KES"), Transfer("b", "seller", "float", 106, "KES"))
    assert e.value.result is Result.EXCEEDS_CREDITS and e.value.transfer_id == "b"
    assert ledger.get_transfer("a") is None
    assert ledger.get_account("seller").balance == 100
    assert ledger.history("seller").entries[0].transfer_id == "in"


def test_currency_and_existence_are_checked_by_the_condition(ledger):
    with pytest.raises(LedgerRejected) as e:
        ledger.transfer(Transfer("x", "psp", "fx:USD", 5, "KES"))
    assert e.value.result is Result.ACCOUNTS_MUST_HAVE_SAME_CURRENCY
    with pytest.raises(LedgerRejected) as e:
        ledger.transfer(Transfer("y", "psp", "ghost", 5, "KES"))
    assert e.value.result is Result.CREDIT_ACCOUNT_NOT_FOUND


def test_duplicate_ids_replay_or_conflict(ledger):
    first = ledger.transfer(Transfer("dup", "psp", "seller", 42, "KES", code="card_payment", reference="pi_1"))
    assert ledger.transfer(Transfer("dup", "psp", "seller", 42, "KES", code="card_payment", reference="pi_1")) == first
    with pytest.raises(LedgerRejected) as e:
        ledger.transfer(Transfer("dup", "psp", "seller", 43, "KES", code="card_payment", reference="pi_1"))
    assert e.value.result is Result.EXISTS_WITH_DIFFERENT_FIELDS
    assert ledger.get_account("seller").credits_posted == 42


def test_a_chain_of_exactly_one_hundred_items_commits_and_one_more_is_refused(ledger):
    # 3 items per transfer (transfer + 2 entries) and 2 account updates: 32 transfers = 98 items.
    chain = [Transfer(f"c{i}", "psp", "seller", 1, "KES") for i in range(32)]
    chain.append(Transfer("c32", "psp", "float", 1, "KES"))  # 3 more items and a third account: 102
    with pytest.raises(LedgerRejected) as e:
        ledger.transfer(*chain)
    assert e.value.result is Result.CHAIN_TOO_LONG
    assert ledger.get_account("seller").balance == 0
    ledger.transfer(*chain[:32])
    assert ledger.get_account("seller").balance == 32


def test_two_phase_on_dynamodb(ledger):
    ledger.transfer(Transfer("in", "psp", "seller", 1000, "KES"))
    ledger.transfer(Transfer("p", "seller", "float", 800, "KES", TransferKind.PENDING, timeout_seconds=3600))
    with pytest.raises(LedgerRejected) as e:
        ledger.transfer(Transfer("p2", "seller", "float", 201, "KES", TransferKind.PENDING))
    assert e.value.result is Result.EXCEEDS_CREDITS
    ledger.post("p:post", "p", amount=700)
    with pytest.raises(LedgerRejected) as e:
        ledger.void("p:void", "p")
    assert e.value.result is Result.PENDING_TRANSFER_ALREADY_POSTED
    seller = ledger.get_account("seller")
    assert (seller.debits_posted, seller.debits_pending, seller.available) == (700, 0, 300)
    assert ledger.expire_pending() == []


def test_expired_pending_transfers_are_swept(ledger):
    ledger.transfer(Transfer("in", "psp", "seller", 1000, "KES"))
    ledger.transfer(Transfer("p", "seller", "float", 800, "KES", TransferKind.PENDING, timeout_seconds=1))
    now_s = ledger.get_transfer("p").expires_at
    assert ledger.expire_pending(now_s=now_s + 1) == ["p"]
    assert ledger.get_account("seller").available == 1000


def test_two_threads_debiting_one_constrained_account_never_overdraw_it(ledger):
    ledger.transfer(Transfer("in", "psp", "seller", 1000, "KES"))
    outcomes = []

    def withdraw(worker):
        for i in range(10):
            try:
                ledger.transfer(Transfer(f"w{worker}-{i}", "seller", "float", 70, "KES"))
                outcomes.append("ok")
            except LedgerRejected as refused:
                outcomes.append(refused.result)

    threads = [threading.Thread(target=withdraw, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seller = ledger.get_account("seller")
    assert outcomes.count("ok") == 14  # 14 x 70 = 980 <= 1000 < 15 x 70
    assert seller.balance == 1000 - 14 * 70
    assert ledger.trial_balance().balanced


def test_history_pages_newest_first(ledger):
    for i in range(3):
        ledger.transfer(Transfer(f"h{i}", "psp", "seller", i + 1, "KES"))
    page = ledger.history("seller", limit=2)
    assert [e.transfer_id for e in page.entries] == ["h2", "h1"]
    assert [e.transfer_id for e in ledger.history("seller", limit=2, cursor=page.next_cursor).entries] == ["h0"]


def test_ledger_invariants_hold_on_dynamodb(aws_env):
    # Each example runs on fresh tables (accounts are re-created with the same ids).
    def fresh_store():
        aws_env.reset_tables()
        return DynamoLedgerStore(app_settings.get().table_prefix)

    machine = make_machine(fresh_store)
    machine.TestCase.settings = settings(max_examples=8, stateful_step_count=15, deadline=None)
    machine.TestCase().runTest()


def test_sharded_ledger_invariants_hold_on_dynamodb(aws_env):
    """The same machine with hot and constrained accounts in shards, on moto's TransactWriteItems."""
    from chalicelib.ledger.shards import Shards

    def fresh_store():
        aws_env.reset_tables()
        return DynamoLedgerStore(app_settings.get().table_prefix)

    machine = make_machine(fresh_store, shards=Shards({"seller:": 3, "psp": 4, "fx": 2}))
    machine.TestCase.settings = settings(max_examples=8, stateful_step_count=15, deadline=None)
    machine.TestCase().runTest()


def test_a_sharded_accounts_history_pages_across_its_partitions_on_dynamodb(aws_env):
    from chalicelib.ledger.shards import Shards

    shards = Shards({"psp": 4})
    ledger = Ledger(DynamoLedgerStore(app_settings.get().table_prefix), shards=shards)
    ledger.create_account("psp", "KES")
    ledger.create_account("seller", "KES", "liability", [DMNEC])
    for i in range(12):
        ledger.transfer(Transfer(f"h{i:02d}", "psp", "seller", i + 1, "KES"))
    store = ledger.store
    held = [pid for pid in shards.physical_ids("psp") if store.query_entries(pid, 50, None)[0]]
    assert len(held) > 1
    seen, cursor = [], None
    while True:
        page = ledger.history("psp", limit=5, cursor=cursor)
        seen += page.entries
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [e.transfer_id for e in seen] == [f"h{i:02d}" for i in reversed(range(12))]
    assert {e.account_id for e in seen} == {"psp"}


def test_expiry_and_a_days_movements_are_found_in_every_index_shard(aws_env, monkeypatch):
    """``open_pending`` and ``by_code_day`` keys are split by transfer id: reads merge the shards."""
    import time as clock

    from chalicelib.ledger import dynamo

    ledger = Ledger(DynamoLedgerStore(app_settings.get().table_prefix))
    ledger.create_account("psp", "KES")
    ledger.create_account("seller", "KES", "liability", [DMNEC])
    for i in range(16):
        ledger.transfer(Transfer(f"p{i:02d}", "psp", "seller", 10, "KES", code="card_payment"))
        ledger.transfer(Transfer(f"hold{i:02d}", "seller", "psp", 1, "KES", TransferKind.PENDING, timeout_seconds=1))
    day = clock.strftime("%Y-%m-%d", clock.gmtime())
    found = list(ledger.store.query_code_day("card_payment", day))
    assert sorted(r.transfer.transfer_id for r in found) == [f"p{i:02d}" for i in range(16)]
    keys = {dynamo._index_key(f"card_payment#{day}", f"p{i:02d}") for i in range(16)}
    assert len(keys) > 1  # the day's payments are spread over several index partitions
    later = int(clock.time()) + 5
    due = ledger.store.query_expired_pending(later, 100)
    assert sorted(r.transfer.transfer_id for r in due) == [f"hold{i:02d}" for i in range(16)]
    assert len(ledger.store.query_expired_pending(later, 5)) == 5
    assert ledger.get_account("seller").available == 160 - 16  # the holds still hold until expired
