"""In-memory ``LedgerStore``: the fake twin of the DynamoDB store, for fast tests.

It checks every op's condition against the state before the batch, exactly as
DynamoDB evaluates a transaction, and applies all ops or none under one lock.
"""
from __future__ import annotations

import threading
from dataclasses import replace
from typing import Iterable

from chalicelib.ledger.model import Account, AccountFlag, Entry, PendingStatus, TransferRecord
from chalicelib.ledger.hashing import transfer_hash
from chalicelib.ledger.store import (
    AccountDelta,
    Batch,
    BatchContended,
    BatchRejected,
    ForeignWrite,
    PutEntry,
    PutTransfer,
    ResolvePending,
)


class MemoryLedgerStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accounts: dict[str, Account] = {}
        self.transfers: dict[str, TransferRecord] = {}
        self.entries: dict[str, list[tuple[str, Entry]]] = {}
        self.commits = 0  # successful batches, for tests that count writes

    def commit(self, batch: Batch) -> None:
        from chalicelib.documents import WriteContended, WriteRefused

        with self._lock:
            failed = [i for i, op in enumerate(batch.ops) if not isinstance(op, ForeignWrite) and not self._condition_holds(op)]
            if failed:
                raise BatchRejected(failed)
            foreign = [(i, op) for i, op in enumerate(batch.ops) if isinstance(op, ForeignWrite)]
            if len(foreign) > 1:
                raise ValueError("the in-memory ledger commits at most one foreign write with a batch")
            saved = self._saved(batch) if foreign else None
            for op in batch.ops:
                if not isinstance(op, ForeignWrite):
                    self._apply(op)
            for index, op in foreign:
                # Under the ledger's lock: nobody sees the batch before the document write is decided.
                try:
                    op.write.commit()
                except WriteRefused:
                    self._restore(saved)
                    raise BatchRejected([index]) from None
                except WriteContended:
                    self._restore(saved)
                    raise BatchContended() from None
                except BaseException:
                    self.commits += 1  # a crash after the write landed: the write and the batch stand together
                    raise
            self.commits += 1

    def _saved(self, batch: Batch):
        """What the batch's ops will change, to put back if its foreign write is refused."""
        accounts = {op.account_id: self.accounts.get(op.account_id) for op in batch.ops if isinstance(op, AccountDelta)}
        ids = [op.record.transfer.transfer_id for op in batch.ops if isinstance(op, PutTransfer)]
        ids += [op.pending_id for op in batch.ops if isinstance(op, ResolvePending)]
        transfers = {i: self.transfers.get(i) for i in ids}
        entries = {op.key: len(self.entries.get(op.key, []))
                   for op in batch.ops if isinstance(op, PutEntry)}
        return accounts, transfers, entries

    def _restore(self, saved) -> None:
        accounts, transfers, entries = saved
        for store, before in ((self.accounts, accounts), (self.transfers, transfers)):
            for key, value in before.items():
                if value is None:
                    store.pop(key, None)
                else:
                    store[key] = value
        for account_id, length in entries.items():
            del self.entries.setdefault(account_id, [])[length:]

    def _condition_holds(self, op) -> bool:
        if isinstance(op, PutTransfer):
            return op.record.transfer.transfer_id not in self.transfers
        if isinstance(op, ResolvePending):
            record = self.transfers.get(op.pending_id)
            if record is None or record.status is not PendingStatus.PENDING:
                return False
            expired = bool(record.expires_at) and record.expires_at <= op.now_s
            return expired if op.require_expired else not expired
        if isinstance(op, AccountDelta):
            account = self.accounts.get(op.account_id)
            if account is None or account.currency != op.currency:
                return False
            if AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS.value in account.flags and account.available < op.need_c:
                return False
            if AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS.value in account.flags and account.available < op.need_d:
                return False
            return True
        return True  # PutEntry

    def _apply(self, op) -> None:
        if isinstance(op, PutTransfer):
            # As the DynamoDB store does: the transfer stored with its own hash (ledger/seal.py).
            self.transfers[op.record.transfer.transfer_id] = replace(op.record, hash=transfer_hash(op.record.transfer))
        elif isinstance(op, ResolvePending):
            record = self.transfers[op.pending_id]
            self.transfers[op.pending_id] = replace(record, status=op.new_status, resolved_by=op.resolved_by)
        elif isinstance(op, AccountDelta):
            a = self.accounts[op.account_id]
            self.accounts[op.account_id] = replace(
                a,
                debits_pending=a.debits_pending + op.debits_pending,
                debits_posted=a.debits_posted + op.debits_posted,
                credits_pending=a.credits_pending + op.credits_pending,
                credits_posted=a.credits_posted + op.credits_posted,
            )
        elif isinstance(op, PutEntry):
            e = op.entry
            self.entries.setdefault(op.key, []).append((e.seq, e))

    def put_account_if_absent(self, account: Account) -> bool:
        with self._lock:
            if account.account_id in self.accounts:
                return False
            self.accounts[account.account_id] = account
            return True

    def get_accounts(self, account_ids: Iterable[str]) -> dict[str, Account]:
        with self._lock:
            return {i: self.accounts[i] for i in account_ids if i in self.accounts}

    def get_transfers(self, transfer_ids: Iterable[str]) -> dict[str, TransferRecord]:
        with self._lock:
            return {i: self.transfers[i] for i in transfer_ids if i in self.transfers}

    def query_entries(self, partition: str, limit: int, cursor: str | None) -> tuple[list[Entry], str | None]:
        with self._lock:
            rows = sorted(self.entries.get(partition, []), key=lambda r: r[0], reverse=True)
        if cursor:
            rows = [r for r in rows if r[0] < cursor]
        page = rows[:limit]
        next_cursor = page[-1][0] if len(rows) > limit else None
        return [e for _, e in page], next_cursor

    def scan_accounts(self) -> Iterable[Account]:
        with self._lock:
            return list(self.accounts.values())

    def query_code_day(self, code: str, day: str) -> Iterable[TransferRecord]:
        import time

        from chalicelib.ledger.model import TransferKind

        with self._lock:
            records = list(self.transfers.values())
        return [
            r for r in records
            if r.transfer.code == code
            and TransferKind(r.transfer.kind) in (TransferKind.POSTED, TransferKind.POST_PENDING)
            and time.strftime("%Y-%m-%d", time.gmtime(r.transfer.timestamp // 1_000_000_000)) == day
        ]

    def query_expired_pending(self, now_s: int, limit: int) -> list[TransferRecord]:
        with self._lock:
            due = [
                r
                for r in self.transfers.values()
                if r.status is PendingStatus.PENDING and r.expires_at and r.expires_at <= now_s
            ]
        return sorted(due, key=lambda r: r.expires_at)[:limit]
