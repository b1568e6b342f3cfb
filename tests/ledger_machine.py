"""A Hypothesis state machine over the ledger, run against any LedgerStore.

After every step it checks what finance would check: per currency, debits
equal credits (posted and pending); no constrained account below zero; the
pending counters equal the sum of the open pending transfers; every
accepted transfer is stored exactly once.
"""
from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from chalicelib.ledger import Ledger, LedgerRejected, PendingStatus, Result, Transfer, TransferKind

CONSTRAINED = ["seller:a", "seller:b", "escrow:1"]
FREE = ["psp", "fx", "float"]
ACCOUNTS = CONSTRAINED + FREE
EXPECTED_REFUSALS = {
    Result.EXCEEDS_CREDITS,
    Result.PENDING_TRANSFER_ALREADY_POSTED,
    Result.PENDING_TRANSFER_ALREADY_VOIDED,
    Result.PENDING_TRANSFER_EXPIRED,
    Result.EXISTS_WITH_DIFFERENT_FIELDS,
}


def make_machine(store_factory, currency="KES", shards=None):
    """``shards``: a ``Shards`` splitting some accounts (constrained ones too) into several items."""

    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.ledger = Ledger(store_factory(), shards=shards)
            for account_id in CONSTRAINED:
                self.ledger.create_account(account_id, currency, "liability", ["debits_must_not_exceed_credits"])
            for account_id in FREE:
                self.ledger.create_account(account_id, currency, "asset")
            self.accepted: dict[str, Transfer] = {}
            self.open_pending: set[str] = set()
            self.counter = 0

        def next_id(self):
            self.counter += 1
            return f"t{self.counter}"

        def _try(self, *chain):
            try:
                records = self.ledger.transfer(*chain)
            except LedgerRejected as refused:
                assert refused.result in EXPECTED_REFUSALS, refused.result
                return None
            for record in records:
                self.accepted[record.transfer.transfer_id] = record.transfer
            return records

        @rule(debit=st.sampled_from(ACCOUNTS), credit=st.sampled_from(ACCOUNTS), amount=st.integers(1, 5000))
        def posted(self, debit, credit, amount):
            if debit != credit:
                self._try(Transfer(self.next_id(), debit, credit, amount, currency))

        @rule(debit=st.sampled_from(ACCOUNTS), credit=st.sampled_from(ACCOUNTS), amount=st.integers(1, 5000))
        def pending(self, debit, credit, amount):
            if debit != credit:
                records = self._try(Transfer(self.next_id(), debit, credit, amount, currency, TransferKind.PENDING))
                if records:
                    self.open_pending.add(records[0].transfer.transfer_id)

        @precondition(lambda self: self.open_pending)
        @rule(data=st.data(), void=st.booleans(), part=st.integers(0, 100))
        def resolve(self, data, void, part):
            pending_id = data.draw(st.sampled_from(sorted(self.open_pending)))
            full = self.accepted[pending_id].amount
            if void:
                self.ledger.void(f"{pending_id}:void", pending_id)
            else:
                self.ledger.post(f"{pending_id}:post", pending_id, amount=max(1, full * part // 100))
            self.open_pending.discard(pending_id)

        @rule(a=st.sampled_from(ACCOUNTS), b=st.sampled_from(ACCOUNTS), c=st.sampled_from(ACCOUNTS), amount=st.integers(1, 3000))
        def linked_chain(self, a, b, c, amount):
            if a != b and b != c:
                self._try(
                    Transfer(self.next_id(), a, b, amount, currency),
                    Transfer(self.next_id(), b, c, amount, currency),
                )

        @precondition(lambda self: self.accepted)
        @rule(data=st.data())
        def replay(self, data):
            """A duplicate webhook or a retried Lambda: the same transfer again changes nothing."""
            tid = data.draw(st.sampled_from(sorted(self.accepted)))
            original = self.accepted[tid]
            if original.kind is TransferKind.POSTED or original.kind is TransferKind.PENDING:
                before = self.ledger.trial_balance()
                again = self.ledger.transfer(Transfer(**{**original.__dict__, "timestamp": 0}))
                assert again[0].transfer.identity() == original.identity()
                assert self.ledger.trial_balance() == before

        @invariant()
        def debits_equal_credits(self):
            tb = self.ledger.trial_balance()
            assert tb.balanced, tb

        @invariant()
        def no_constrained_account_below_zero(self):
            for account in self.ledger.get_accounts(CONSTRAINED).values():
                assert account.available >= 0, account
                assert account.credits_posted - account.debits_posted >= 0, account

        @invariant()
        def no_shard_of_a_constrained_account_below_zero(self):
            for account_id in CONSTRAINED:
                for shard in self.ledger.shard_balances(account_id).values():
                    assert shard.available >= 0, shard

        @invariant()
        def pending_counters_equal_open_pending_transfers(self):
            accounts = self.ledger.get_accounts(ACCOUNTS)
            records = self.ledger.get_transfers(sorted(self.open_pending))
            for account_id, account in accounts.items():
                open_debits = sum(
                    r.transfer.amount for r in records.values()
                    if r.status is PendingStatus.PENDING and r.transfer.debit_account_id == account_id
                )
                open_credits = sum(
                    r.transfer.amount for r in records.values()
                    if r.status is PendingStatus.PENDING and r.transfer.credit_account_id == account_id
                )
                assert account.debits_pending == open_debits
                assert account.credits_pending == open_credits

    return LedgerMachine
