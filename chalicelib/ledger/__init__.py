"""Double-entry ledger with TigerBeetle's semantics, stored in DynamoDB.

``Ledger`` (service.py) holds the rules; a ``LedgerStore`` (store.py) commits a
batch of conditional writes atomically: ``DynamoLedgerStore`` with one
``TransactWriteItems``, ``MemoryLedgerStore`` in-process for fast tests.
Every chain of linked transfers is one atomic batch; balance rules are
conditions on a maintained ``available`` counter, never read-then-write.
"""
from chalicelib.ledger.model import (  # noqa: F401
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
from chalicelib.ledger.service import Ledger, LedgerRejected, WritesNotApplied  # noqa: F401
