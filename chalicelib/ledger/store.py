"""The ledger's storage port: an atomic batch of conditional writes.

The service turns a chain of transfers into a ``Batch`` of operations; a store
commits the whole batch or nothing. Conditions are checked by the store against
the state *before* the batch (DynamoDB evaluates a transaction's conditions that
way too), so the service never reads a balance in order to write one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Protocol

from chalicelib.ledger.model import Account, Entry, PendingStatus, TransferRecord


@dataclass(frozen=True)
class PutTransfer:
    """Store a new transfer. Condition: no transfer with this id exists."""

    record: TransferRecord


@dataclass(frozen=True)
class ResolvePending:
    """Move a pending transfer out of ``pending``.

    Condition: it exists, is still ``pending`` and (unless ``require_expired``) has not
    expired at ``now_s``; with ``require_expired`` it must have expired (the sweeper).
    """

    pending_id: str
    new_status: PendingStatus
    resolved_by: str
    now_s: int
    require_expired: bool = False


@dataclass(frozen=True)
class AccountDelta:
    """Add to an account's counters.

    ``avail_c`` tracks credits_posted - debits_posted - debits_pending (the rule
    ``debits_must_not_exceed_credits``) and ``avail_d`` the mirror (``credits_must_not_exceed_debits``);
    both are maintained on every account and enforced only where the flag is set.
    Condition: the account exists, has ``currency``, and where flagged, the
    pre-batch counter is at least ``need_c`` / ``need_d`` (the net decrease).
    """

    account_id: str
    currency: str
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0

    @property
    def avail_c(self) -> int:
        return self.credits_posted - self.debits_posted - self.debits_pending

    @property
    def avail_d(self) -> int:
        return self.debits_posted - self.credits_posted - self.credits_pending

    @property
    def need_c(self) -> int:
        return max(0, -self.avail_c)

    @property
    def need_d(self) -> int:
        return max(0, -self.avail_d)

    def plus(self, other: "AccountDelta") -> "AccountDelta":
        return AccountDelta(
            self.account_id,
            self.currency,
            self.debits_pending + other.debits_pending,
            self.debits_posted + other.debits_posted,
            self.credits_pending + other.credits_pending,
            self.credits_posted + other.credits_posted,
        )


@dataclass(frozen=True)
class PutEntry:
    """Append one side of a transfer to an account's history (unconditional: the
    transfer's own PutTransfer guards against duplicates)."""

    entry: Entry
    # The history item's partition: the account itself, or for a sharded account one of its
    # shards (by the transfer's hash), so that no one partition takes every movement.
    partition: str = ""

    @property
    def key(self) -> str:
        return self.partition or self.entry.account_id


@dataclass(frozen=True)
class ForeignWrite:
    """A write to another table that commits with the batch or not at all: an order's status with the
    money it moves, a payout's state with its reservation. ``write`` is a ``documents.DocWrite``:
    DynamoDB carries its ``items`` in the same ``TransactWriteItems`` (its condition, the document's
    version, is checked with the ledger's); the in-memory store commits it under its own lock, undoing
    the batch if it is refused. Its index in the batch is the one ``BatchRejected.failed`` names."""

    write: object

    @property
    def size(self) -> int:
        return len(self.write.items) if getattr(self.write, "items", None) else 1


Op = PutTransfer | ResolvePending | AccountDelta | PutEntry | ForeignWrite


@dataclass
class Batch:
    ops: list[Op] = field(default_factory=list)

    def __len__(self) -> int:
        """The items of the one atomic write (a foreign write may be several: an order and its projections)."""
        return sum(op.size if isinstance(op, ForeignWrite) else 1 for op in self.ops)


class BatchRejected(Exception):
    """The batch was not committed because a condition failed.

    ``failed`` lists the indexes of the ops whose condition failed, when the store
    knows them (DynamoDB's CancellationReasons), else ``None``.
    """

    def __init__(self, failed: list[int] | None):
        super().__init__(f"batch rejected at {failed}")
        self.failed = failed


class BatchContended(Exception):
    """Another transaction held an item; nothing was written and a retry may succeed."""


#: DynamoDB's limit on the number of items in one TransactWriteItems.
MAX_BATCH_OPS = 100


class LedgerStore(Protocol):
    def commit(self, batch: Batch) -> None:
        """Apply every op or none; raise BatchRejected / BatchContended."""

    def put_account_if_absent(self, account: Account) -> bool:
        """Create the account; False if one with that id already exists."""

    def get_accounts(self, account_ids: Iterable[str]) -> dict[str, Account]: ...

    def get_transfers(self, transfer_ids: Iterable[str]) -> dict[str, TransferRecord]: ...

    def query_entries(self, partition: str, limit: int, cursor: str | None) -> tuple[list[Entry], str | None]:
        """One history partition's entries, newest first, those before ``cursor`` (a ``seq``) only."""

    def scan_accounts(self) -> Iterable[Account]: ...

    def query_expired_pending(self, now_s: int, limit: int) -> list[TransferRecord]: ...

    def query_code_day(self, code: str, day: str) -> Iterable[TransferRecord]:
        """Transfers that moved money (posted, or posting a pending one) with ``code`` on ``day`` (UTC)."""
