"""Ledger vocabulary, after TigerBeetle: accounts, immutable transfers, result codes.

An account keeps four counters (``debits_pending``, ``debits_posted``,
``credits_pending``, ``credits_posted``). A transfer moves ``amount`` minor units
from ``debit_account_id`` to ``credit_account_id``; both accounts share one
currency (TigerBeetle's "ledger"). A transfer is immutable; corrections are new
transfers. Its id is its idempotency key.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum


class AccountFlag(str, Enum):
    """Balance rules, enforced at write time with a maintained ``available`` counter."""

    DEBITS_MUST_NOT_EXCEED_CREDITS = "debits_must_not_exceed_credits"
    CREDITS_MUST_NOT_EXCEED_DEBITS = "credits_must_not_exceed_debits"


class TransferKind(str, Enum):
    """What a transfer does: moves money now, reserves it, or resolves a reservation."""

    POSTED = "posted"  # single-phase: moves money now
    PENDING = "pending"  # phase one: reserves
    POST_PENDING = "post_pending"  # phase two: posts a pending transfer (in full or in part)
    VOID_PENDING = "void_pending"  # phase two: releases a pending transfer
    EXPIRE_PENDING = "expire_pending"  # phase two, by the ledger itself after the timeout


class PendingStatus(str, Enum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"
    EXPIRED = "expired"


class Result(str, Enum):
    """Stable result codes (TigerBeetle's names where they exist)."""

    OK = "ok"
    EXISTS = "exists"  # same id, same fields: the first result stands
    EXISTS_WITH_DIFFERENT_FIELDS = "exists_with_different_fields"
    EXCEEDS_CREDITS = "exceeds_credits"
    EXCEEDS_DEBITS = "exceeds_debits"
    ACCOUNTS_MUST_BE_DIFFERENT = "accounts_must_be_different"
    ACCOUNTS_MUST_HAVE_SAME_CURRENCY = "accounts_must_have_same_currency"
    TRANSFER_MUST_HAVE_THE_SAME_CURRENCY_AS_ACCOUNTS = "transfer_must_have_the_same_currency_as_accounts"
    DEBIT_ACCOUNT_NOT_FOUND = "debit_account_not_found"
    CREDIT_ACCOUNT_NOT_FOUND = "credit_account_not_found"
    AMOUNT_MUST_NOT_BE_ZERO = "amount_must_not_be_zero"
    PENDING_TRANSFER_NOT_FOUND = "pending_transfer_not_found"
    PENDING_TRANSFER_NOT_PENDING = "pending_transfer_not_pending"
    PENDING_TRANSFER_ALREADY_POSTED = "pending_transfer_already_posted"
    PENDING_TRANSFER_ALREADY_VOIDED = "pending_transfer_already_voided"
    PENDING_TRANSFER_EXPIRED = "pending_transfer_expired"
    PENDING_TRANSFER_NOT_EXPIRED = "pending_transfer_not_expired"
    EXCEEDS_PENDING_TRANSFER_AMOUNT = "exceeds_pending_transfer_amount"
    CHAIN_TOO_LONG = "chain_too_long"
    LINKED_EVENT_FAILED = "linked_event_failed"
    ACCOUNT_EXISTS_WITH_DIFFERENT_FIELDS = "account_exists_with_different_fields"


@dataclass(frozen=True)
class Account:
    account_id: str
    currency: str
    kind: str = "asset"  # asset | liability | equity | revenue | expense (reporting only)
    flags: frozenset[str] = frozenset()
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0
    created_at: int = 0  # unix nanoseconds

    @property
    def constrained(self) -> bool:
        return bool(self.flags)

    @property
    def balance(self) -> int:
        """Posted balance on the account's normal side: credits - debits for
        credit-normal accounts (liabilities, revenue, equity), debits - credits otherwise."""
        if self.kind in ("liability", "revenue", "equity"):
            return self.credits_posted - self.debits_posted
        return self.debits_posted - self.credits_posted

    @property
    def available(self) -> int:
        """What a balance rule still allows: posted credits less posted and pending debits
        (or the mirror for ``credits_must_not_exceed_debits``)."""
        if AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS.value in self.flags:
            return self.debits_posted - self.credits_posted - self.credits_pending
        return self.credits_posted - self.debits_posted - self.debits_pending


@dataclass(frozen=True)
class Transfer:
    """One immutable movement (or reservation) of money.

    For ``POST_PENDING``/``VOID_PENDING``, ``pending_id`` names the pending transfer;
    the debit/credit accounts and currency must be those of the pending transfer
    (``Ledger.post``/``Ledger.void`` fill them in). ``amount`` of a post may be less
    than the pending amount (partial post); the rest is released.
    """

    transfer_id: str
    debit_account_id: str
    credit_account_id: str
    amount: int
    currency: str
    kind: TransferKind = TransferKind.POSTED
    pending_id: str = ""
    timeout_seconds: int = 0  # pending only: expires after this many seconds (0 = never)
    code: str = ""  # why: "escrow_in", "fx_leg", "fee", "payout", ...
    reference: str = ""  # the business object: order id, payout id
    timestamp: int = 0  # unix nanoseconds, set by the ledger at commit
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def identity(self) -> tuple:
        """The fields that must match for a repeated id to count as the same transfer."""
        return (
            self.transfer_id,
            self.debit_account_id,
            self.credit_account_id,
            self.amount,
            self.currency,
            TransferKind(self.kind).value,
            self.pending_id,
            self.timeout_seconds,
            self.code,
            self.reference,
        )

    def with_timestamp(self, ts: int) -> "Transfer":
        return replace(self, timestamp=ts)


@dataclass(frozen=True)
class TransferRecord:
    """A stored transfer and, for a pending one, its current status."""

    transfer: Transfer
    status: PendingStatus | None = None  # pending transfers only
    expires_at: int = 0  # unix seconds; pending with timeout only
    resolved_by: str = ""  # id of the post/void/expire transfer
    hash: str = field(default="", compare=False)  # of the transfer's fields, as stored (ledger/seal.py)


@dataclass(frozen=True)
class Entry:
    """One side of a transfer as it appears in an account's history."""

    account_id: str
    transfer_id: str
    side: str  # "debit" | "credit"
    amount: int
    currency: str
    kind: str
    code: str
    reference: str
    timestamp: int
    counterparty: str

    @property
    def seq(self) -> str:
        """Its place in the account's history (the entries table's sort key): time, then transfer id."""
        return f"{self.timestamp:020d}#{self.transfer_id}"


@dataclass(frozen=True)
class HistoryPage:
    entries: list[Entry]
    next_cursor: str | None
