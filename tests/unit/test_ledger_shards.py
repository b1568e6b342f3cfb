"""Hot accounts in shards: the same ledger rules, with the money spread over several items."""
from hypothesis import settings

from chalicelib.ledger import Ledger, LedgerRejected, Result, Transfer, TransferKind
from chalicelib.ledger.memory import MemoryLedgerStore
from chalicelib.ledger.shards import Shards
from ledger_machine import make_machine

SHARDS = Shards({"seller:": 3, "escrow:": 2, "psp": 4, "fx": 4, "float": 2})
DMNEC = "debits_must_not_exceed_credits"

ShardedLedger = make_machine(MemoryLedgerStore, shards=SHARDS)
ShardedLedger.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestShardedLedgerOnMemory = ShardedLedger.TestCase


def ledger_with(shards=SHARDS) -> Ledger:
    ledger = Ledger(MemoryLedgerStore(), shards=shards)
    ledger.create_account("psp", "RWF")
    ledger.create_account("seller:a", "RWF", "liability", [DMNEC])
    return ledger


def test_a_sharded_account_is_stored_as_its_shards_and_read_as_one():
    ledger = ledger_with()
    for i in range(40):
        ledger.transfer(Transfer(f"in{i}", "psp", "seller:a", 100, "RWF"))
    shards = ledger.shard_balances("psp")
    assert len(shards) == 4 and sum(1 for a in shards.values() if a.debits_posted) > 1  # spread, not one hot item
    assert ledger.get_account("psp").debits_posted == 4_000 == sum(a.debits_posted for a in shards.values())
    assert ledger.get_account("seller:a").balance == 4_000
    assert ledger.trial_balance().balanced


def test_a_debit_one_shard_cannot_cover_is_taken_from_the_shards_that_can():
    ledger = ledger_with()
    for i in range(6):
        ledger.transfer(Transfer(f"in{i}", "psp", "seller:a", 100, "RWF"))
    biggest = max(a.available for a in ledger.shard_balances("seller:a").values())
    assert biggest < 600
    ledger.transfer(Transfer("out", "seller:a", "psp", 600, "RWF"))  # all of it: no single shard holds it
    assert ledger.get_account("seller:a").available == 0
    assert all(a.available == 0 for a in ledger.shard_balances("seller:a").values())


def test_more_than_the_account_holds_is_refused_whatever_the_shards():
    ledger = ledger_with()
    ledger.transfer(Transfer("in", "psp", "seller:a", 500, "RWF"))
    try:
        ledger.transfer(Transfer("out", "seller:a", "psp", 501, "RWF"))
    except LedgerRejected as refused:
        assert refused.result is Result.EXCEEDS_CREDITS
    else:
        raise AssertionError("an overdraft was accepted")
    assert ledger.get_account("seller:a").available == 500


def test_a_spread_reservation_is_released_and_posted_on_the_shards_it_was_made_on():
    ledger = ledger_with()
    for i in range(6):
        ledger.transfer(Transfer(f"in{i}", "psp", "seller:a", 100, "RWF"))
    ledger.transfer(Transfer("hold", "seller:a", "psp", 550, "RWF", TransferKind.PENDING))
    assert ledger.get_account("seller:a").available == 50
    ledger.post("hold:post", "hold", amount=400)  # a partial post: the rest comes back
    account = ledger.get_account("seller:a")
    assert (account.debits_pending, account.debits_posted, account.available) == (0, 400, 200)
    assert all(a.debits_pending == 0 and a.available >= 0 for a in ledger.shard_balances("seller:a").values())
    assert ledger.trial_balance().balanced


def test_raising_a_shard_count_later_creates_the_new_shards_on_use():
    ledger = ledger_with(Shards({"psp": 2}))
    ledger.transfer(Transfer("before", "psp", "seller:a", 100, "RWF"))
    wider = Ledger(ledger.store, shards=Shards({"psp": 8}))
    for i in range(20):
        wider.transfer(Transfer(f"after{i}", "psp", "seller:a", 10, "RWF"))
    assert wider.get_account("psp").debits_posted == 300
    assert wider.trial_balance().balanced


def _all_pages(ledger, account_id, limit):
    seen, cursor = [], None
    while True:
        page = ledger.history(account_id, limit=limit, cursor=cursor)
        seen += page.entries
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


def test_a_sharded_accounts_history_is_kept_in_its_shards_and_read_newest_first():
    ledger = ledger_with()
    for i in range(23):
        ledger.transfer(Transfer(f"in{i:02d}", "psp", "seller:a", 100 + i, "RWF"))
    partitions = [pid for pid in SHARDS.physical_ids("psp") if ledger.store.entries.get(pid)]
    assert len(partitions) > 1  # no one history partition takes every movement
    for limit in (1, 4, 23, 50):
        entries = _all_pages(ledger, "psp", limit)
        assert [e.transfer_id for e in entries] == [f"in{i:02d}" for i in reversed(range(23))]
        assert {e.account_id for e in entries} == {"psp"} and sum(e.amount for e in entries) == 23 * 100 + 253
    # the seller (sharded too) and an unsharded account page the same way
    assert [e.transfer_id for e in _all_pages(ledger, "seller:a", 5)][:2] == ["in22", "in21"]


def test_a_history_page_ending_at_the_last_entry_names_no_next_page():
    ledger = ledger_with()
    for i in range(8):
        ledger.transfer(Transfer(f"t{i}", "psp", "seller:a", 10, "RWF"))
    first = ledger.history("psp", limit=4)
    second = ledger.history("psp", limit=4, cursor=first.next_cursor)
    assert [e.transfer_id for e in first.entries + second.entries] == [f"t{i}" for i in reversed(range(8))]
    assert second.next_cursor is None


def test_raising_a_shard_count_keeps_the_history_written_before():
    ledger = ledger_with(Shards({}))
    ledger.transfer(Transfer("before", "psp", "seller:a", 100, "RWF"))
    wider = Ledger(ledger.store, shards=Shards({"psp": 8}))
    for i in range(10):
        wider.transfer(Transfer(f"after{i}", "psp", "seller:a", 10, "RWF"))
    assert [e.transfer_id for e in _all_pages(wider, "psp", 3)][-1] == "before"
    assert len(_all_pages(wider, "psp", 3)) == 11
