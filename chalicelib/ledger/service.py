"""The ledger service: TigerBeetle's rules over an atomic ``LedgerStore``.

Write path: validate without reading, translate the chain into one ``Batch``
(transfer items, pending resolutions, one aggregated counter update per
account, history entries), and commit it. Only when the store refuses the
batch do we read, to say *why* (or to recognise an idempotent replay).
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable

from chalicelib.errors import BusinessRuleViolation, ValidationError
from chalicelib.ledger.model import (
    Account,
    AccountFlag,
    Entry,
    HistoryPage,
    PendingStatus,
    Result,
    Transfer,
    TransferKind,
    TransferRecord,
)
from chalicelib.ledger.shards import SEPARATOR, Shards, decode_spread, encode_spread
from chalicelib.ledger.store import (
    MAX_BATCH_OPS,
    AccountDelta,
    Batch,
    BatchContended,
    BatchRejected,
    ForeignWrite,
    LedgerStore,
    PutEntry,
    PutTransfer,
    ResolvePending,
)
from chalicelib.money import MAX_MINOR, exponent

_RESOLVING = (TransferKind.POST_PENDING, TransferKind.VOID_PENDING, TransferKind.EXPIRE_PENDING)
_CLOSED_STATUS_RESULT = {
    PendingStatus.POSTED: Result.PENDING_TRANSFER_ALREADY_POSTED,
    PendingStatus.VOIDED: Result.PENDING_TRANSFER_ALREADY_VOIDED,
    PendingStatus.EXPIRED: Result.PENDING_TRANSFER_EXPIRED,
}


class LedgerRejected(BusinessRuleViolation):
    """The ledger refused a transfer (or an account); ``result`` says why, ``transfer_id`` which one.

    Nothing of the chain was written.
    """

    def __init__(self, result: Result, transfer_id: str = "", message: str = ""):
        super().__init__(result.value, message or f"{result.value.replace('_', ' ')} ({transfer_id})", transfer_id=transfer_id)
        self.result = result
        self.transfer_id = transfer_id


class WritesNotApplied(Exception):
    """``transfer(..., writes=...)`` committed nothing: a write's condition failed (its document changed
    since it was read: read it again and decide again), or ``replayed``: the chain had been committed
    before, by an earlier call (its writes then, or none), so nothing of this one is written."""

    def __init__(self, replayed: bool):
        super().__init__("the chain was committed before" if replayed else "a write's document changed")
        self.replayed = replayed


@dataclass(frozen=True)
class TrialBalance:
    """Posted (and pending) debits and credits per currency; balanced when they agree."""

    currencies: dict[str, dict[str, int]]

    @property
    def balanced(self) -> bool:
        return all(
            c["debits"] == c["credits"] and c["debits_pending"] == c["credits_pending"] for c in self.currencies.values()
        )

    def to_json(self) -> dict:
        return {"currencies": self.currencies, "balanced": self.balanced}


class Ledger:
    """Double-entry ledger: accounts, single and linked transfers, two-phase transfers."""

    def __init__(
        self,
        store: LedgerStore,
        clock_ns: Callable[[], int] = time.time_ns,
        max_attempts: int = 6,
        shards: Shards | None = None,
    ):
        self.store = store
        self.clock_ns = clock_ns
        self.max_attempts = max_attempts
        self.shards = shards or Shards()  # hot accounts stored as several items (chalicelib/ledger/shards.py)

    # -- accounts --------------------------------------------------------
    def create_account(
        self, account_id: str, currency: str, kind: str = "asset", flags: Iterable[str | AccountFlag] = ()
    ) -> Account:
        """Create an account, idempotently: the same id with the same fields returns the existing one."""
        _check_id(account_id, "account_id")
        exponent(currency)  # a valid ISO 4217 code
        flag_values = frozenset(AccountFlag(f).value for f in flags)
        if len(flag_values) > 1:
            raise ValidationError("validation_error", "an account takes at most one balance rule", path="flags")
        account = Account(account_id, currency, kind, flag_values, created_at=self.clock_ns())
        # Every shard (none but the account itself unless sharded); a shard added later by a larger
        # count is created by the next run of the same call (ensure_platform_accounts).
        created = [self.store.put_account_if_absent(replace(account, account_id=physical))
                   for physical in self.shards.physical_ids(account_id)]
        if created[0]:
            return account
        existing = self.get_account(account_id)
        if (existing.currency, existing.kind, existing.flags) != (currency, kind, flag_values):
            raise LedgerRejected(Result.ACCOUNT_EXISTS_WITH_DIFFERENT_FIELDS, account_id)
        return existing

    def get_account(self, account_id: str) -> Account | None:
        return self.get_accounts([account_id]).get(account_id)

    def get_accounts(self, account_ids: Iterable[str]) -> dict[str, Account]:
        """The accounts by id; a sharded account is the sum of its shards."""
        wanted = list(account_ids)
        physical = {pid: aid for aid in wanted for pid in self.shards.physical_ids(aid)}
        found = self.store.get_accounts(list(physical))
        accounts = {}
        for account_id in wanted:
            if account_id not in found:
                continue
            parts = [found[pid] for pid in self.shards.physical_ids(account_id) if pid in found]
            accounts[account_id] = parts[0] if len(parts) == 1 else _summed(account_id, parts)
        return accounts

    def shard_balances(self, account_id: str) -> dict[str, Account]:
        """Each stored shard of an account (one item unless sharded), for operators and tests."""
        return self.store.get_accounts(self.shards.physical_ids(account_id))

    # -- transfers -------------------------------------------------------
    def transfer(self, *chain: Transfer, at_ns: int | None = None, writes: Iterable = ()) -> list[TransferRecord]:
        """Commit ``chain`` as linked transfers: all or nothing, in one atomic store write.

        Repeating a committed chain (same ids, same fields) returns the first result;
        the same ids with other fields raise ``exists_with_different_fields``.
        ``at_ns`` fixes the commit time (the expiry sweeper's "now"); default: the clock.

        ``writes``: prepared document writes (``documents.DocWrite``: an order's status, a payout's
        state) committed in the same atomic write as the chain, so the money and the state that
        records it never part. If a write's condition fails, or the chain was committed before (a
        replay), nothing is written and ``WritesNotApplied`` says which: the caller reads again.
        """
        writes = list(writes)
        if not chain:
            raise ValidationError("validation_error", "a chain needs at least one transfer")
        for t in chain:
            _check_shape(t)
        ids = [t.transfer_id for t in chain]
        if len(set(ids)) != len(ids):
            raise ValidationError("validation_error", "transfer ids in a chain must be unique")
        pendings = self._pending_targets(chain)
        chain = tuple(_fill_from_pending(t, pendings) for t in chain)
        spreads: dict[tuple[str, str], dict[int, int]] = {}  # (transfer id, side) -> amount per shard
        for attempt in range(self.max_attempts):
            now_ns = at_ns if at_ns is not None else self.clock_ns()
            records, batch = self._plan(chain, pendings, now_ns, spreads, writes)
            try:
                self.store.commit(batch)
                return records
            except BatchContended:
                pass
            except BatchRejected as rejected:
                if writes:
                    self._writes_refused(chain, batch, rejected, len(writes))
                try:
                    replayed = self._diagnose(chain, batch, rejected, now_ns)
                except _Respread as respread:
                    spreads.update(respread.spreads)  # one shard could not cover a debit the others can
                    continue
                if replayed is not None:
                    return replayed
                # Nothing is wrong any more (a concurrent change resolved it): try again.
            time.sleep(min(0.2, 0.005 * 2**attempt) * random.random())
        raise BatchContendedError(chain[0].transfer_id)

    def post(self, transfer_id: str, pending_id: str, amount: int | None = None, code: str = "", reference: str = "",
             writes: Iterable = ()) -> TransferRecord:
        """Post a pending transfer, in full (``amount=None``) or in part; the rest is released."""
        t = Transfer(transfer_id, "", "", amount or 0, "", TransferKind.POST_PENDING, pending_id, code=code, reference=reference)
        return self.transfer(t, writes=writes)[0]

    def void(self, transfer_id: str, pending_id: str, code: str = "", reference: str = "",
             writes: Iterable = ()) -> TransferRecord:
        """Void a pending transfer: the reservation is released, nothing moves."""
        t = Transfer(transfer_id, "", "", 0, "", TransferKind.VOID_PENDING, pending_id, code=code, reference=reference)
        return self.transfer(t, writes=writes)[0]

    def expire_pending(self, now_s: int | None = None, limit: int = 100) -> list[str]:
        """Void every pending transfer whose timeout has passed (the scheduled sweeper)."""
        now_s = now_s if now_s is not None else self.clock_ns() // 1_000_000_000
        expired = []
        for record in self.store.query_expired_pending(now_s, limit):
            pending_id = record.transfer.transfer_id
            expiry = Transfer(f"expire:{pending_id}", "", "", 0, "", TransferKind.EXPIRE_PENDING, pending_id, code="expiry")
            try:
                self.transfer(expiry, at_ns=now_s * 1_000_000_000)
                expired.append(pending_id)
            except LedgerRejected as rejected:
                if rejected.result not in _CLOSED_STATUS_RESULT.values():
                    raise
        return expired

    def get_transfer(self, transfer_id: str) -> TransferRecord | None:
        return self.store.get_transfers([transfer_id]).get(transfer_id)

    def get_transfers(self, transfer_ids: Iterable[str]) -> dict[str, TransferRecord]:
        return self.store.get_transfers(list(transfer_ids))

    # -- reads -----------------------------------------------------------
    def history(self, account_id: str, limit: int = 50, cursor: str | None = None) -> HistoryPage:
        """The account's entries, newest first, ``limit`` per page."""
        if not 1 <= limit <= 500:
            raise ValidationError("validation_error", "limit must be between 1 and 500", path="limit")
        partitions = self.shards.physical_ids(account_id)
        if len(partitions) == 1:
            entries, next_cursor = self.store.query_entries(account_id, limit, cursor)
            return HistoryPage(entries, next_cursor)
        # A sharded account's history is spread over its shards' partitions: the newest ``limit``
        # of each, merged. The cursor is the last entry's seq, a bound valid in every partition.
        found, more = [], False
        for partition in partitions:
            page, after = self.store.query_entries(partition, limit, cursor)
            found += page
            more = more or after is not None
        found.sort(key=lambda e: e.seq, reverse=True)
        more = more or len(found) > limit
        entries = [replace(e, account_id=account_id) for e in found[:limit]]
        return HistoryPage(entries, entries[-1].seq if more and entries else None)

    def _history_partition(self, account_id: str, transfer_id: str) -> str:
        """Where an entry of the account's history is kept: a shard's partition, by the entry's
        own transfer id (its count, not its balance: a history has no rule to keep)."""
        if self.shards.count(account_id) == 1:
            return ""
        return self.shards.physical(account_id, self.shards.shard_of(account_id, transfer_id))

    def trial_balance(self) -> TrialBalance:
        totals: dict[str, dict[str, int]] = {}
        for account in self.store.scan_accounts():
            row = totals.setdefault(
                account.currency, {"debits": 0, "credits": 0, "debits_pending": 0, "credits_pending": 0}
            )
            row["debits"] += account.debits_posted
            row["credits"] += account.credits_posted
            row["debits_pending"] += account.debits_pending
            row["credits_pending"] += account.credits_pending
        return TrialBalance(dict(sorted(totals.items())))

    # -- internals -------------------------------------------------------
    def _pending_targets(self, chain: tuple[Transfer, ...]) -> dict[str, TransferRecord]:
        """Read the (immutable) pending transfers that the chain posts or voids."""
        wanted = [t.pending_id for t in chain if TransferKind(t.kind) in _RESOLVING]
        if len(set(wanted)) != len(wanted):
            raise ValidationError("validation_error", "a chain may resolve each pending transfer once")
        if not wanted:
            return {}
        found = self.store.get_transfers(wanted)
        for t in chain:
            if TransferKind(t.kind) not in _RESOLVING:
                continue
            pending = found.get(t.pending_id)
            if pending is None:
                raise LedgerRejected(Result.PENDING_TRANSFER_NOT_FOUND, t.transfer_id)
            if pending.status is None:
                raise LedgerRejected(Result.PENDING_TRANSFER_NOT_PENDING, t.transfer_id)
        return found

    def _writes_refused(self, chain: tuple[Transfer, ...], batch: Batch, rejected: BatchRejected, n_writes: int) -> None:
        """Raise ``WritesNotApplied`` if a refused batch with writes was refused for them or as a replay;
        return if a rule of the ledger refused it (``_diagnose`` says which)."""
        first_write = len(batch.ops) - n_writes
        failed = rejected.failed
        if failed is None or any(i < first_write for i in failed):
            stored = self.store.get_transfers([t.transfer_id for t in chain])
            if len(stored) == len(chain) and all(stored[t.transfer_id].transfer.identity() == t.identity() for t in chain):
                raise WritesNotApplied(replayed=True)
        if failed is None or any(i >= first_write for i in failed):
            raise WritesNotApplied(replayed=False)

    def _plan(self, chain: tuple[Transfer, ...], pendings: dict[str, TransferRecord], now_ns: int,
              spreads: dict[tuple[str, str], dict[int, int]] | None = None,
              writes: list = ()) -> tuple[list[TransferRecord], Batch]:
        now_s = now_ns // 1_000_000_000
        batch = Batch()
        deltas: dict[str, AccountDelta] = {}
        entries: list[PutEntry] = []
        records: list[TransferRecord] = []
        spreads = spreads or {}

        def add(delta: AccountDelta) -> None:
            prior = deltas.get(delta.account_id)
            deltas[delta.account_id] = delta if prior is None else prior.plus(delta)

        def add_side(t: Transfer, side: str, pending: int = 0, posted: int = 0, *, spread: dict[int, int]) -> None:
            """Book ``pending``/``posted`` on the shards of one side (``spread``: amount per shard)."""
            account_id = t.debit_account_id if side == "debit" else t.credit_account_id
            for shard, part in _portions(spread, pending, posted):
                fields = ({"debits_pending": part[0], "debits_posted": part[1]} if side == "debit"
                          else {"credits_pending": part[0], "credits_posted": part[1]})
                add(AccountDelta(self.shards.physical(account_id, shard), t.currency, **fields))

        for index, t in enumerate(chain):
            t = t.with_timestamp(now_ns + index)  # strictly increasing within a chain
            kind = TransferKind(t.kind)
            amt = t.amount
            if kind in (TransferKind.POSTED, TransferKind.PENDING):
                chosen = {}
                for side, account_id in (("debit", t.debit_account_id), ("credit", t.credit_account_id)):
                    chosen[side] = spreads.get((t.transfer_id, side)) or {self.shards.shard_of(account_id, t.transfer_id): amt}
                    if (t.transfer_id, side) in spreads:  # kept on the transfer: its post or void releases the same shards
                        t = replace(t, meta={**t.meta, f"shards_{side}": encode_spread(chosen[side])})
                is_pending = kind is TransferKind.PENDING
                for side in ("debit", "credit"):
                    add_side(t, side, pending=amt if is_pending else 0, posted=0 if is_pending else amt, spread=chosen[side])
                if is_pending:
                    expires_at = now_s + t.timeout_seconds if t.timeout_seconds else 0
                    record = TransferRecord(t, PendingStatus.PENDING, expires_at)
                else:
                    record = TransferRecord(t)
            else:
                original = pendings[t.pending_id].transfer
                posted = amt if kind is TransferKind.POST_PENDING else 0
                for side, account_id in (("debit", t.debit_account_id), ("credit", t.credit_account_id)):
                    kept = original.meta.get(f"shards_{side}")
                    spread = decode_spread(kept) if kept else {self.shards.shard_of(account_id, original.transfer_id): original.amount}
                    add_side(t, side, pending=-original.amount, posted=posted, spread=spread)
                new_status = {
                    TransferKind.POST_PENDING: PendingStatus.POSTED,
                    TransferKind.VOID_PENDING: PendingStatus.VOIDED,
                    TransferKind.EXPIRE_PENDING: PendingStatus.EXPIRED,
                }[kind]
                batch.ops.append(
                    ResolvePending(t.pending_id, new_status, t.transfer_id, now_s, kind is TransferKind.EXPIRE_PENDING)
                )
                record = TransferRecord(t)
            batch.ops.append(PutTransfer(record))
            records.append(record)
            for side, account_id, other in (
                ("debit", t.debit_account_id, t.credit_account_id),
                ("credit", t.credit_account_id, t.debit_account_id),
            ):
                entries.append(
                    PutEntry(Entry(account_id, t.transfer_id, side, amt, t.currency, kind.value, t.code, t.reference, t.timestamp, other),
                             self._history_partition(account_id, t.transfer_id))
                )
        batch.ops.extend(deltas.values())
        batch.ops.extend(entries)
        batch.ops.extend(ForeignWrite(w) for w in writes)  # last: their indexes follow the ledger's
        if len(batch) > MAX_BATCH_OPS:
            raise LedgerRejected(
                Result.CHAIN_TOO_LONG,
                chain[0].transfer_id,
                f"this chain needs {len(batch)} writes; one atomic commit holds at most {MAX_BATCH_OPS}",
            )
        return records, batch

    def _diagnose(self, chain: tuple[Transfer, ...], batch: Batch, rejected: BatchRejected, now_ns: int) -> list[TransferRecord] | None:
        """Explain a refused batch: return the stored records for a replay, raise the
        reason, or return None when nothing is wrong any more (retry)."""
        stored = self.store.get_transfers([t.transfer_id for t in chain])
        if stored:
            same = [t for t in chain if t.transfer_id in stored and stored[t.transfer_id].transfer.identity() == t.identity()]
            if len(same) == len(chain):
                return [stored[t.transfer_id] for t in chain]
            first = next(t for t in chain if t.transfer_id not in {s.transfer_id for s in same})
            raise LedgerRejected(Result.EXISTS_WITH_DIFFERENT_FIELDS, first.transfer_id)

        now_s = now_ns // 1_000_000_000
        resolves = [op for op in batch.ops if isinstance(op, ResolvePending)]
        if resolves:
            current = self.store.get_transfers([op.pending_id for op in resolves])
            for op in resolves:
                by = next(t.transfer_id for t in chain if t.pending_id == op.pending_id)
                record = current[op.pending_id]
                if record.status is not PendingStatus.PENDING:
                    raise LedgerRejected(_CLOSED_STATUS_RESULT[record.status], by)
                has_expired = bool(record.expires_at) and record.expires_at <= now_s
                if op.require_expired and not has_expired:
                    raise LedgerRejected(Result.PENDING_TRANSFER_NOT_EXPIRED, by)
                if not op.require_expired and has_expired:
                    raise LedgerRejected(Result.PENDING_TRANSFER_EXPIRED, by)

        accounts = self.get_accounts({t.debit_account_id for t in chain} | {t.credit_account_id for t in chain})
        for t in chain:
            debit, credit = accounts.get(t.debit_account_id), accounts.get(t.credit_account_id)
            if debit is None:
                raise LedgerRejected(Result.DEBIT_ACCOUNT_NOT_FOUND, t.transfer_id)
            if credit is None:
                raise LedgerRejected(Result.CREDIT_ACCOUNT_NOT_FOUND, t.transfer_id)
            if debit.currency != credit.currency:
                raise LedgerRejected(Result.ACCOUNTS_MUST_HAVE_SAME_CURRENCY, t.transfer_id)
            if t.currency != debit.currency:
                raise LedgerRejected(Result.TRANSFER_MUST_HAVE_THE_SAME_CURRENCY_AS_ACCOUNTS, t.transfer_id)
        physical = self.store.get_accounts([op.account_id for op in batch.ops if isinstance(op, AccountDelta)])
        respread: dict[tuple[str, str], dict[int, int]] = {}
        for op in batch.ops:
            if not isinstance(op, AccountDelta):
                continue
            account = physical.get(op.account_id)
            logical = op.account_id.split(SEPARATOR)[0] if op.account_id not in accounts else op.account_id
            if account is None:  # a shard not created yet (its count was raised): made like the account
                base = accounts[logical]
                self.store.put_account_if_absent(Account(op.account_id, base.currency, base.kind, base.flags))
                return None
            for flag, need, side, result in (
                (AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS, op.need_c, "debit", Result.EXCEEDS_CREDITS),
                (AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS, op.need_d, "credit", Result.EXCEEDS_DEBITS),
            ):
                if flag.value in account.flags and account.available < need:
                    if self.shards.count(logical) > 1 and accounts[logical].available >= need:
                        respread.update(self._spread(chain, logical, side))
                        continue
                    raise LedgerRejected(result, _first_touching(chain, logical, side))
        if respread:
            raise _Respread(respread)
        return None

    def _spread(self, chain: tuple[Transfer, ...], account_id: str, side: str) -> dict[tuple[str, str], dict[int, int]]:
        """Spread the chain's new movements on the restricted side of a sharded account over the
        shards with room (most room first), so that one shard's shortfall does not refuse what the
        account as a whole allows."""
        room = {int(pid.rsplit(SEPARATOR, 1)[1]) if SEPARATOR in pid else 0: a.available
                for pid, a in self.store.get_accounts(self.shards.physical_ids(account_id)).items()}
        spreads = {}
        for t in chain:
            touched = t.debit_account_id if side == "debit" else t.credit_account_id
            if touched != account_id or TransferKind(t.kind) not in (TransferKind.POSTED, TransferKind.PENDING):
                continue
            left, spread = t.amount, {}
            for shard in sorted(room, key=lambda s: (-room[s], s)):
                take = min(left, max(room[shard], 0))
                if take:
                    spread[shard], room[shard], left = take, room[shard] - take, left - take
                if not left:
                    break
            if left:  # the account as a whole cannot cover it: the hashed shard refuses, as before
                return {}
            spreads[(t.transfer_id, side)] = spread
        return spreads


class _Respread(Exception):
    """Internal: plan the chain again with these spreads over a sharded account's shards."""

    def __init__(self, spreads: dict[tuple[str, str], dict[int, int]]):
        super().__init__("respread")
        self.spreads = spreads


def _portions(spread: dict[int, int], pending: int, posted: int):
    """Split (pending, posted) over a spread: a negative pending (a release) by the spread itself,
    the posted amount filling the spread's shards in order (a partial post posts part of them)."""
    if len(spread) == 1:
        (shard,) = spread
        yield shard, (pending, posted)
        return
    left = posted
    total = sum(spread.values())
    for shard, amount in sorted(spread.items()):
        share_pending = -amount if pending < 0 else (amount if pending else 0)
        if pending < 0:
            take = min(amount, left)
        else:
            take = amount if posted else 0
        left -= take if pending < 0 else 0
        yield shard, (share_pending, take)
    assert pending in (0, total, -total), "a spread covers the whole movement"


def _summed(account_id: str, parts: list[Account]) -> Account:
    base = parts[0]
    return Account(account_id, base.currency, base.kind, base.flags,
                   debits_pending=sum(p.debits_pending for p in parts), debits_posted=sum(p.debits_posted for p in parts),
                   credits_pending=sum(p.credits_pending for p in parts), credits_posted=sum(p.credits_posted for p in parts),
                   created_at=base.created_at)


class BatchContendedError(LedgerRejected):
    """The accounts stayed contended through every retry; nothing was written, a retry may succeed."""

    retryable = True

    def __init__(self, transfer_id: str):
        super().__init__(Result.LINKED_EVENT_FAILED, transfer_id, "the ledger is busy; nothing was written, retry")
        self.code = "ledger_contended"


def _first_touching(chain: tuple[Transfer, ...], account_id: str, side: str) -> str:
    for t in chain:
        if (t.debit_account_id if side == "debit" else t.credit_account_id) == account_id:
            return t.transfer_id
    return chain[0].transfer_id


def _check_id(value: str, path: str) -> None:
    # ``split()`` finds any whitespace in C: an id without any is one piece equal to itself.
    if not isinstance(value, str) or not 1 <= len(value) <= 200 or value.split() != [value]:
        raise ValidationError("validation_error", f"{path} must be 1-200 visible characters", path=path)


def _check_shape(t: Transfer) -> None:
    """Rules that need no read (TigerBeetle validates these before touching state)."""
    _check_id(t.transfer_id, "transfer_id")
    kind = TransferKind(t.kind)
    if isinstance(t.amount, bool) or not isinstance(t.amount, int):
        raise ValidationError("validation_error", "amounts are integers of minor units", path="amount")
    if t.amount < 0 or t.amount > MAX_MINOR:
        raise ValidationError("validation_error", f"amounts are between 0 and {MAX_MINOR}", path="amount")
    if kind in _RESOLVING:
        if not t.pending_id:
            raise ValidationError("validation_error", "post/void needs the pending transfer's id", path="pending_id")
        return
    if t.amount == 0:
        raise LedgerRejected(Result.AMOUNT_MUST_NOT_BE_ZERO, t.transfer_id)
    _check_id(t.debit_account_id, "debit_account_id")
    _check_id(t.credit_account_id, "credit_account_id")
    if t.debit_account_id == t.credit_account_id:
        raise LedgerRejected(Result.ACCOUNTS_MUST_BE_DIFFERENT, t.transfer_id)
    exponent(t.currency)
    if t.timeout_seconds and kind is not TransferKind.PENDING:
        raise ValidationError("validation_error", "only pending transfers time out", path="timeout_seconds")


def _fill_from_pending(t: Transfer, pendings: dict[str, TransferRecord]) -> Transfer:
    """A post/void inherits accounts and currency from its pending transfer; a post
    without an amount posts it in full, a void always releases all of it."""
    kind = TransferKind(t.kind)
    if kind not in _RESOLVING:
        return t
    pending = pendings[t.pending_id].transfer
    if kind is TransferKind.POST_PENDING:
        amount = t.amount or pending.amount
        if amount > pending.amount:
            raise LedgerRejected(Result.EXCEEDS_PENDING_TRANSFER_AMOUNT, t.transfer_id)
    else:
        amount = pending.amount
    for name in ("debit_account_id", "credit_account_id", "currency"):
        given = getattr(t, name)
        if given and given != getattr(pending, name):
            raise LedgerRejected(Result.EXISTS_WITH_DIFFERENT_FIELDS, t.transfer_id, f"{name} differs from the pending transfer")
    return replace(
        t,
        debit_account_id=pending.debit_account_id,
        credit_account_id=pending.credit_account_id,
        currency=pending.currency,
        amount=amount,
    )

