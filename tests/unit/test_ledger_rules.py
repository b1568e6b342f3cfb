"""The ledger's rules, against the in-memory store (the DynamoDB store is checked in tests/adapters)."""
import pytest

from chalicelib.errors import ValidationError
from chalicelib.ledger import Ledger, LedgerRejected, PendingStatus, Result, Transfer, TransferKind
from chalicelib.ledger.memory import MemoryLedgerStore

DMNEC = "debits_must_not_exceed_credits"


class Clock:
    def __init__(self, start_s=1_700_000_000):
        self.ns = start_s * 1_000_000_000

    def __call__(self):
        self.ns += 1000
        return self.ns

    def advance(self, seconds):
        self.ns += seconds * 1_000_000_000


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def ledger(clock):
    ledger = Ledger(MemoryLedgerStore(), clock_ns=clock)
    ledger.create_account("psp:CNY", "CNY")
    ledger.create_account("escrow:o1", "CNY", kind="liability", flags=[DMNEC])
    ledger.create_account("seller:s1", "RWF", kind="liability", flags=[DMNEC])
    ledger.create_account("fx:CNY", "CNY")
    ledger.create_account("fx:RWF", "RWF")
    ledger.create_account("float:RWF", "RWF")
    return ledger


def t(tid, debit, credit, amount, currency="CNY", **kw):
    return Transfer(tid, debit, credit, amount, currency, **kw)


def test_a_posted_transfer_moves_money_between_two_accounts(ledger):
    ledger.transfer(t("t1", "psp:CNY", "escrow:o1", 5000))
    assert ledger.get_account("psp:CNY").debits_posted == 5000
    assert ledger.get_account("escrow:o1").credits_posted == 5000
    assert ledger.get_account("escrow:o1").balance == 5000


def test_repeating_a_transfer_returns_the_first_result_and_moves_nothing_more(ledger):
    first = ledger.transfer(t("t1", "psp:CNY", "escrow:o1", 5000))
    again = ledger.transfer(t("t1", "psp:CNY", "escrow:o1", 5000))
    assert again == first
    assert ledger.get_account("escrow:o1").credits_posted == 5000


def test_reusing_an_id_with_other_fields_is_refused(ledger):
    ledger.transfer(t("t1", "psp:CNY", "escrow:o1", 5000))
    with pytest.raises(LedgerRejected) as e:
        ledger.transfer(t("t1", "psp:CNY", "escrow:o1", 5001))
    assert e.value.result is Result.EXISTS_WITH_DIFFERENT_FIELDS
    assert ledger.get_account("escrow:o1").credits_posted == 5000


def test_a_constrained_account_cannot_be_overdrawn(ledger):
    ledger.transfer(t("in", "psp:CNY", "escrow:o1", 100))
    with pytest.raises(LedgerRejected) as e:
        ledger.transfer(t("out", "escrow:o1", "psp:CNY", 101))
    assert e.value.result is Result.EXCEEDS_CREDITS
    assert e.value.code == "exceeds_credits"
    assert ledger.get_account("escrow:o1").balance == 100


def test_accounts_of_different_currencies_cannot_trade_directly(ledger):
    with pytest.raises(LedgerRejected) as e:
        ledger.transfer(t("x", "psp:CNY", "seller:s1", 100))
    assert e.value.result is Result.ACCOUNTS_MUST_HAVE_SAME_CURRENCY


def test_unknown_accounts_are_named(ledger):
    with pytest.raises(LedgerRejected) as e:
        ledger.transfer(t("x", "nope", "psp:CNY", 1))
    assert e.value.result is Result.DEBIT_ACCOUNT_NOT_FOUND
    with pytest.raises(LedgerRejected) as e:
        ledger.transfer(t("y", "psp:CNY", "nope", 1))
    assert e.value.result is Result.CREDIT_ACCOUNT_NOT_FOUND


@pytest.mark.parametrize("amount,result", [(0, Result.AMOUNT_MUST_NOT_BE_ZERO)])
def test_zero_amounts_are_refused_before_any_write(ledger, amount, result):
    with pytest.raises(LedgerRejected) as e:
        ledger.transfer(t("z", "psp:CNY", "escrow:o1", amount))
    assert e.value.result is result


def test_negative_and_float_amounts_are_invalid(ledger):
    with pytest.raises(ValidationError):
        ledger.transfer(t("z", "psp:CNY", "escrow:o1", -1))
    with pytest.raises(ValidationError):
        ledger.transfer(t("z", "psp:CNY", "escrow:o1", 1.5))


def test_same_account_on_both_sides_is_refused(ledger):
    with pytest.raises(LedgerRejected) as e:
        ledger.transfer(t("z", "psp:CNY", "psp:CNY", 1))
    assert e.value.result is Result.ACCOUNTS_MUST_BE_DIFFERENT


def test_a_linked_chain_commits_all_or_nothing(ledger):
    ledger.transfer(t("in", "psp:CNY", "escrow:o1", 1000))
    chain = [
        t("c1", "escrow:o1", "fx:CNY", 1000),
        t("c2", "fx:RWF", "seller:s1", 200_000, "RWF"),
        t("c3", "escrow:o1", "psp:CNY", 1),  # overdraws escrow: the whole chain fails
    ]
    with pytest.raises(LedgerRejected) as e:
        ledger.transfer(*chain)
    assert e.value.result is Result.EXCEEDS_CREDITS
    assert ledger.get_account("seller:s1").balance == 0
    assert ledger.get_transfer("c1") is None
    ledger.transfer(*chain[:2])
    assert ledger.get_account("seller:s1").balance == 200_000
    assert ledger.get_account("escrow:o1").balance == 0


def test_two_phase_post_in_part_releases_the_rest(ledger):
    ledger.transfer(t("fund", "fx:RWF", "seller:s1", 1000, "RWF"))
    ledger.transfer(t("p1", "seller:s1", "float:RWF", 600, "RWF", kind=TransferKind.PENDING))
    seller = ledger.get_account("seller:s1")
    assert (seller.debits_pending, seller.available) == (600, 400)
    with pytest.raises(LedgerRejected) as e:
        ledger.transfer(t("p2", "seller:s1", "float:RWF", 401, "RWF", kind=TransferKind.PENDING))
    assert e.value.result is Result.EXCEEDS_CREDITS
    ledger.post("p1:post", "p1", amount=500)
    seller = ledger.get_account("seller:s1")
    assert (seller.debits_pending, seller.debits_posted, seller.available) == (0, 500, 500)
    assert ledger.get_transfer("p1").status is PendingStatus.POSTED


def test_a_void_returns_the_reservation(ledger):
    ledger.transfer(t("fund", "fx:RWF", "seller:s1", 1000, "RWF"))
    ledger.transfer(t("p1", "seller:s1", "float:RWF", 1000, "RWF", kind=TransferKind.PENDING))
    ledger.void("p1:void", "p1")
    assert ledger.get_account("seller:s1").available == 1000
    assert ledger.get_account("float:RWF").credits_pending == 0


def test_a_pending_transfer_resolves_once(ledger):
    ledger.transfer(t("fund", "fx:RWF", "seller:s1", 1000, "RWF"))
    ledger.transfer(t("p1", "seller:s1", "float:RWF", 1000, "RWF", kind=TransferKind.PENDING))
    ledger.post("p1:post", "p1")
    assert ledger.post("p1:post", "p1").transfer.amount == 1000  # replay: same result
    with pytest.raises(LedgerRejected) as e:
        ledger.void("p1:void", "p1")
    assert e.value.result is Result.PENDING_TRANSFER_ALREADY_POSTED
    assert ledger.get_account("float:RWF").credits_posted == 1000


def test_posting_more_than_was_reserved_is_refused(ledger):
    ledger.transfer(t("fund", "fx:RWF", "seller:s1", 1000, "RWF"))
    ledger.transfer(t("p1", "seller:s1", "float:RWF", 100, "RWF", kind=TransferKind.PENDING))
    with pytest.raises(LedgerRejected) as e:
        ledger.post("p1:post", "p1", amount=101)
    assert e.value.result is Result.EXCEEDS_PENDING_TRANSFER_AMOUNT


def test_an_expired_pending_transfer_cannot_be_posted_and_is_swept(ledger, clock):
    ledger.transfer(t("fund", "fx:RWF", "seller:s1", 1000, "RWF"))
    ledger.transfer(t("p1", "seller:s1", "float:RWF", 700, "RWF", kind=TransferKind.PENDING, timeout_seconds=60))
    assert ledger.expire_pending() == []
    clock.advance(61)
    with pytest.raises(LedgerRejected) as e:
        ledger.post("p1:post", "p1")
    assert e.value.result is Result.PENDING_TRANSFER_EXPIRED
    assert ledger.expire_pending() == ["p1"]
    assert ledger.get_transfer("p1").status is PendingStatus.EXPIRED
    assert ledger.get_account("seller:s1").available == 1000
    assert ledger.expire_pending() == []


def test_unknown_pending_transfer(ledger):
    with pytest.raises(LedgerRejected) as e:
        ledger.post("x", "missing")
    assert e.value.result is Result.PENDING_TRANSFER_NOT_FOUND


def test_history_is_newest_first_and_paged(ledger):
    for i in range(5):
        ledger.transfer(t(f"t{i}", "psp:CNY", "escrow:o1", 10 + i))
    first = ledger.history("escrow:o1", limit=2)
    assert [e.transfer_id for e in first.entries] == ["t4", "t3"]
    second = ledger.history("escrow:o1", limit=2, cursor=first.next_cursor)
    assert [e.transfer_id for e in second.entries] == ["t2", "t1"]
    last = ledger.history("escrow:o1", limit=2, cursor=second.next_cursor)
    assert [e.transfer_id for e in last.entries] == ["t0"] and last.next_cursor is None


def test_trial_balance_is_balanced_per_currency(ledger):
    ledger.transfer(t("a", "psp:CNY", "escrow:o1", 700))
    ledger.transfer(t("b", "fx:RWF", "seller:s1", 9, "RWF"))
    tb = ledger.trial_balance()
    assert tb.currencies["CNY"]["debits"] == tb.currencies["CNY"]["credits"] == 700
    assert tb.currencies["RWF"]["debits"] == 9
    assert tb.balanced


def test_creating_an_account_twice_is_harmless_but_other_fields_are_refused(ledger):
    assert ledger.create_account("fx:CNY", "CNY").currency == "CNY"
    with pytest.raises(LedgerRejected) as e:
        ledger.create_account("fx:CNY", "USD")
    assert e.value.result is Result.ACCOUNT_EXISTS_WITH_DIFFERENT_FIELDS


def test_a_chain_too_big_for_one_atomic_write_is_refused_before_writing(ledger):
    chain = [t(f"c{i}", "psp:CNY", "escrow:o1", 1) for i in range(40)]
    with pytest.raises(LedgerRejected) as e:
        ledger.transfer(*chain)
    assert e.value.result is Result.CHAIN_TOO_LONG
    assert ledger.get_account("escrow:o1").balance == 0
