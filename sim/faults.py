"""The fault plan (which faults, how often, decided by the seed) and the storage proxies that inject them.

Every fault site asks ``FaultPlan.hit(kind, where)``; the answer comes from the plan's own
random stream, so the same seed injects the same faults at the same steps. Faults are
injected only while the system under test runs (``plan.active``): the simulator's own
bookkeeping and the invariant checks read the stores without faults.

The app table's faults are injected under the real adapter, at the DynamoDB API (``sim/dynamo.py``:
``docs.*``). The ledger's, as ``DynamoLedgerStore`` would surface them to the ledger service:

``ledger.throttle``
    a read throttled past botocore's own retries: ``ProvisionedThroughputExceededException``.
``ledger.lost_reply``
    the batch landed, the reply was a 500 and botocore sent the same TransactWriteItems again: it is
    cancelled with ``ConditionalCheckFailed`` on its transfers, and the ledger must recognise its own replay.
``ledger.crash``
    the invocation dies after the batch committed, before anything else happens (``SimCrash``).
``ledger.contention`` / ``ledger.contention_burst``
    ``TransactionConflict`` or throttling on a TransactWriteItems (``BatchContended``): once, or
    for every attempt the ledger makes (``ledger_contended``, retryable).
"""
from __future__ import annotations

import math
import random
from collections import Counter
from typing import Callable

from botocore.exceptions import ClientError

from chalicelib.ledger.store import BatchContended, BatchRejected, PutTransfer


class AwsError(ClientError):
    """An error answer of an AWS API as botocore raises it: a ``ClientError`` whose class is named after
    the error code (botocore generates one per code), ``response["Error"]["Code"]`` set."""

    code = "InternalServerError"

    def __init__(self, message: str = "", operation: str = "Request", **response):
        super().__init__({"Error": {"Code": self.code, "Message": message}, **response}, operation)


class ProvisionedThroughputExceededException(AwsError):
    """DynamoDB throttled the request and botocore's retries ran out."""

    code = "ProvisionedThroughputExceededException"


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
    "sfn.answer_throttled": 0.01,
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
    """Seeded fault decisions; ``counts`` says how many of each kind were injected.

    Each kind is a Bernoulli trial per visit of its sites at its rate; drawn as the geometric number
    of visits until the next fault (the same distribution, one random number per fault instead of
    one per visit: the sites are visited hundreds of times per order)."""

    def __init__(self, rng: random.Random, rates: dict[str, float], trace: Callable[[str], None] | None = None,
                 excluded: frozenset[str] = frozenset()):
        self.rng = rng
        self.rates = {kind: rate for kind, rate in sorted(rates.items()) if kind not in excluded and rate > 0}
        self.trace = trace
        self.active = False
        self.counts: Counter[str] = Counter()
        self._until = {kind: self._draw(rate) for kind, rate in self.rates.items()}

    def _draw(self, rate: float) -> int:
        if rate >= 1:
            return 1
        return int(math.log(1.0 - self.rng.random()) / math.log(1.0 - rate)) + 1

    def hit(self, kind: str, *where: str) -> bool:
        """Inject a fault of ``kind`` now? ``where`` (joined with spaces) names the site in the trace."""
        if not self.active:
            return False
        left = self._until.get(kind)
        if left is None:
            return False
        if left > 1:
            self._until[kind] = left - 1
            return False
        self._until[kind] = self._draw(self.rates[kind])
        self.counts[kind] += 1
        if self.trace is not None:
            self.trace(" ".join(("fault", kind) + where))
        return True

    @property
    def total(self) -> int:
        return sum(self.counts.values())


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
        try:
            self.inner.commit(batch)
        except SimCrash:
            # A document write riding in the batch (an order's status with its money) landed and the
            # invocation died (``docs.crash``): the batch committed with it.
            self._committed(batch)
            raise
        self._committed(batch)
        if self.plan.hit("ledger.lost_reply", "commit", _first_id(batch)):
            # The same TransactWriteItems again: its transfer puts fail attribute_not_exists.
            raise BatchRejected([i for i, op in enumerate(batch.ops) if isinstance(op, PutTransfer)])
        if self.plan.hit("ledger.crash", "commit", _first_id(batch)):
            raise SimCrash(f"crashed after committing {_first_id(batch)}")

    def _committed(self, batch) -> None:
        for op in batch.ops:
            if isinstance(op, PutTransfer) and op.record.expires_at:
                self._expiring[op.record.transfer.transfer_id] = op.record.expires_at
        if self.on_commit is not None:
            self.on_commit(batch)

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
