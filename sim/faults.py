"""The fault plan (which faults, how often, decided by the seed) and the storage proxies that inject them.

Every fault site asks ``FaultPlan.hit(kind, where)``; the answer comes from the plan's own
random stream, so the same seed injects the same faults at the same steps. Faults are
injected only while the system under test runs (``plan.active``): the simulator's own
bookkeeping and the invariant checks read the stores without faults.

Storage faults, as the DynamoDB adapters would surface them:

``docs.throttle`` / ``ledger.throttle``
    a request throttled past botocore's own retries: ``ProvisionedThroughputExceededException``
    reaches the caller, nothing is written.
``docs.conflict``
    a conditional write lost to a concurrent writer: ``DynamoDocuments.update`` re-reads and applies
    the mutation again, so the mutation runs twice (it must be pure and re-check its own rules).
``docs.conflict_exhausted``
    every optimistic attempt lost: ``Conflict("request_in_progress")``.
``docs.lost_reply`` / ``ledger.lost_reply``
    the write landed, the reply was a 500 and botocore sent the same request again: the second
    attempt's condition fails (``put_new`` raises ``DocumentExists`` for its own write, ``claim``
    answers False, ``update`` re-reads and re-applies, the ledger batch is cancelled with
    ``ConditionalCheckFailed`` and the ledger recognises its own replay).
``docs.crash`` / ``ledger.crash``
    the invocation dies after the write committed, before anything else happens (``SimCrash``).
``ledger.contention`` / ``ledger.contention_burst``
    ``TransactionConflict`` or throttling on a TransactWriteItems (``BatchContended``): once, or
    for every attempt the ledger makes (``ledger_contended``, retryable).
"""
from __future__ import annotations

import random
from collections import Counter
from typing import Callable

from chalicelib.documents import DocumentExists
from chalicelib.errors import Conflict
from chalicelib.ledger.store import BatchContended, BatchRejected, PutTransfer


class ProvisionedThroughputExceededException(Exception):
    """DynamoDB throttled the request and botocore's retries ran out (named as botocore names it)."""


class SimCrash(Exception):
    """The invocation died after a write committed: the caller never learns it succeeded."""


#: Fault rates per visit of a fault site (the ``default`` profile).
DEFAULT_RATES: dict[str, float] = {
    # storage
    "docs.throttle": 0.0002,
    "docs.conflict": 0.01,
    "docs.conflict_exhausted": 0.0002,
    "docs.lost_reply": 0.001,
    "docs.crash": 0.0003,
    "ledger.throttle": 0.0002,
    "ledger.contention": 0.01,
    "ledger.contention_burst": 0.0005,
    "ledger.lost_reply": 0.003,
    "ledger.crash": 0.0005,
    # workflow (Step Functions and Lambda)
    "sfn.task_twice": 0.01,
    "sfn.lost_reply": 0.01,
    "sfn.throttled": 0.01,
    "sfn.token_twice": 0.05,
    "sfn.token_late": 0.02,
    "sfn.start_throttled": 0.005,
    # payout providers
    "rail.not_sent": 0.02,
    "rail.lost_request": 0.01,
    "rail.timeout_after_success": 0.03,
    "rail.5xx_after_success": 0.02,
    "rail.status_unknown": 0.02,
    "rail.callback_lost": 0.2,
    "rail.callback_twice": 0.1,
    "rail.callback_late": 0.1,
    # the card processor
    "cards.unavailable": 0.005,
    "cards.timeout_after_success": 0.005,
    # webhooks (Stripe, customs)
    "stripe.webhook_twice": 0.05,
    "stripe.webhook_replayed_later": 0.02,
    "stripe.failed_event_last": 0.3,
    "customs.webhook_twice": 0.05,
    "customs.webhook_replayed_later": 0.02,
    "customs.inspection_after_decision": 0.03,
    "customs.contradicting_decision": 0.01,
    # FX and clocks
    "fx.consumed_at_expiry": 0.005,
    "fx.consumed_just_before_expiry": 0.005,
    # SMS gateway
    "sms.gateway_down": 0.01,
}

PROFILES: dict[str, dict[str, float]] = {
    "none": {},
    "default": DEFAULT_RATES,
    "heavy": {kind: min(0.5, rate * 5) for kind, rate in DEFAULT_RATES.items()},
}


class FaultPlan:
    """Seeded fault decisions; ``counts`` says how many of each kind were injected."""

    def __init__(self, rng: random.Random, rates: dict[str, float], trace: Callable[[str], None] | None = None,
                 excluded: frozenset[str] = frozenset()):
        self.rng = rng
        self.rates = {kind: rate for kind, rate in rates.items() if kind not in excluded and rate > 0}
        self.trace = trace
        self.active = False
        self.counts: Counter[str] = Counter()
        self._random = rng.random

    def hit(self, kind: str, *where: str) -> bool:
        """Inject a fault of ``kind`` now? ``where`` (joined with spaces) names the site in the trace."""
        if not self.active:
            return False
        rate = self.rates.get(kind)
        if rate is None or self._random() >= rate:
            return False
        self.counts[kind] += 1
        if self.trace is not None:
            self.trace(" ".join(("fault", kind) + where))
        return True

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class FaultyDocuments:
    """``Documents`` (MemoryDocuments) with the storage faults of the module doc. ``touched`` collects
    the keys written since the checker last looked."""

    def __init__(self, inner, plan: FaultPlan):
        self.inner = inner
        self.plan = plan
        self.touched: set[str] = set()

    def __getattr__(self, name):  # methods added to the port later pass through untouched
        return getattr(self.inner, name)

    def _throttle(self, op: str, pk: str) -> None:
        if self.plan.hit("docs.throttle", op, pk):
            raise ProvisionedThroughputExceededException(f"throttled: {op} {pk}")

    def _after_write(self, op: str, pk: str) -> None:
        self.touched.add(pk)
        if self.plan.hit("docs.crash", op, pk):
            raise SimCrash(f"crashed after {op} {pk}")

    def get(self, pk, sk="doc"):
        self._throttle("get", pk)
        return self.inner.get(pk, sk)

    def query_index(self, gsi1pk, limit=100, newest_first=True):
        self._throttle("query", gsi1pk)
        return self.inner.query_index(gsi1pk, limit, newest_first)

    def query_page(self, gsi1pk, limit, cursor=None, newest_first=True):
        self._throttle("query", gsi1pk)
        return self.inner.query_page(gsi1pk, limit, cursor, newest_first)

    def put_new(self, pk, doc, sk="doc", index=None):
        self._throttle("put", pk)
        self.inner.put_new(pk, doc, sk, index)
        if self.plan.hit("docs.lost_reply", "put", pk):
            self.touched.add(pk)
            raise DocumentExists(pk)
        self._after_write("put", pk)

    def update(self, pk, mutate, sk="doc"):
        self._throttle("update", pk)
        if self.plan.hit("docs.conflict", "update", pk):
            current = self.inner.get(pk, sk)
            if current is None:
                raise KeyError(pk)
            mutate(current)  # the attempt whose conditional write lost; DynamoDocuments reads again
        if self.plan.hit("docs.conflict_exhausted", "update", pk):
            current = self.inner.get(pk, sk)
            if current is None:
                raise KeyError(pk)
            mutate(current)
            raise Conflict("request_in_progress", "the object is being changed by another request; retry")
        before = self.inner.items.get((pk, sk))
        result = self.inner.update(pk, mutate, sk)
        wrote = self.inner.items.get((pk, sk)) is not before
        if wrote and self.plan.hit("docs.lost_reply", "update", pk):
            # The write landed; the retried request's version condition fails; read again, apply again.
            result = self.inner.update(pk, mutate, sk)
        self._after_write("update", pk)
        return result

    def claim(self, pk, sk="claim"):
        self._throttle("claim", pk)
        claimed = self.inner.claim(pk, sk)
        if claimed and self.plan.hit("docs.lost_reply", "claim", pk):
            self.touched.add(pk)
            return False
        self._after_write("claim", pk)
        return claimed

    def delete(self, pk, sk="doc"):
        self._throttle("delete", pk)
        self.inner.delete(pk, sk)
        self._after_write("delete", pk)

    def add_within(self, pk, member, amount, maximum):
        return self.add_all_within(pk, {member: amount}, maximum)

    def add_all_within(self, pk, members, maximum):
        self._throttle("add", pk)
        counted = self.inner.add_all_within(pk, members, maximum)
        if self.plan.hit("docs.lost_reply", "add", pk):
            counted = self.inner.add_all_within(pk, members, maximum)  # the retry finds its own members counted
        self._after_write("add", pk)
        return counted

    def remove_from(self, pk, member, amount):
        self._throttle("remove", pk)
        self.inner.remove_from(pk, member, amount)
        self._after_write("remove", pk)


class FaultyLedgerStore:
    """``LedgerStore`` (MemoryLedgerStore) with the storage faults of the module doc.

    ``on_commit(batch)`` sees every committed batch (the checker's per-step balance check), and
    pending transfers with a timeout are indexed so the expiry sweeper does not scan every transfer.
    """

    def __init__(self, inner, plan: FaultPlan, on_commit: Callable | None = None, burst_attempts: int = 6):
        self.inner = inner
        self.plan = plan
        self.on_commit = on_commit
        self.burst_attempts = burst_attempts  # the ledger's own attempts: a burst outlasts all of them
        self._burst = 0
        self._expiring: dict[str, int] = {}

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def commit(self, batch) -> None:
        if self._burst:
            self._burst -= 1
            raise BatchContended()
        if self.plan.hit("ledger.contention_burst", "commit", _first_id(batch)):
            self._burst = self.burst_attempts - 1  # every attempt of this write: the caller sees ledger_contended
            raise BatchContended()
        if self.plan.hit("ledger.contention", "commit", _first_id(batch)):
            raise BatchContended()
        self.inner.commit(batch)
        for op in batch.ops:
            if isinstance(op, PutTransfer) and op.record.expires_at:
                self._expiring[op.record.transfer.transfer_id] = op.record.expires_at
        if self.on_commit is not None:
            self.on_commit(batch)
        if self.plan.hit("ledger.lost_reply", "commit", _first_id(batch)):
            # The same TransactWriteItems again: its transfer puts fail attribute_not_exists.
            raise BatchRejected([i for i, op in enumerate(batch.ops) if isinstance(op, PutTransfer)])
        if self.plan.hit("ledger.crash", "commit", _first_id(batch)):
            raise SimCrash(f"crashed after committing {_first_id(batch)}")

    def put_account_if_absent(self, account) -> bool:
        created = self.inner.put_account_if_absent(account)
        if created and self.plan.hit("ledger.lost_reply", "account", account.account_id):
            return False
        if created and self.plan.hit("ledger.crash", "account", account.account_id):
            raise SimCrash(f"crashed after creating {account.account_id}")
        return created

    def get_accounts(self, account_ids):
        account_ids = list(account_ids)
        if self.plan.hit("ledger.throttle", "get_accounts"):
            raise ProvisionedThroughputExceededException("throttled: BatchGetItem accounts")
        return self.inner.get_accounts(account_ids)

    def get_transfers(self, transfer_ids):
        transfer_ids = list(transfer_ids)
        if self.plan.hit("ledger.throttle", "get_transfers"):
            raise ProvisionedThroughputExceededException("throttled: BatchGetItem transfers")
        return self.inner.get_transfers(transfer_ids)

    def query_expired_pending(self, now_s: int, limit: int):
        """The sparse GSI of pending transfers that can expire, as DynamoDB keeps it (no full scan)."""
        due = []
        for transfer_id, expires_at in list(self._expiring.items()):
            record = self.inner.transfers.get(transfer_id)
            if record is None or record.status is None or record.status.value != "pending":
                del self._expiring[transfer_id]
            elif expires_at <= now_s:
                due.append(record)
        return sorted(due, key=lambda r: (r.expires_at, r.transfer.transfer_id))[:limit]


def _first_id(batch) -> str:
    for op in batch.ops:
        if isinstance(op, PutTransfer):
            return op.record.transfer.transfer_id
    return "-"
