"""Make moto's DynamoDB safe under concurrent requests (sandbox and tests only).

moto's in-memory DynamoDB is not thread-safe: two TransactWriteItems at once on the
threaded server can fail with "dictionary changed size during iteration" (a 500)
halfway through. Real DynamoDB serialises conflicting transactions itself; here we
serialise every DynamoDB request with one lock, which is what a single partition
would do. Never imported by chalicelib or app.py.
"""
from __future__ import annotations

import functools
import threading

_lock = threading.RLock()
_patched = False


def serialize_dynamodb() -> None:
    global _patched
    if _patched:
        return
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action

    @functools.wraps(original)
    def call_action(self):
        with _lock:
            return original(self)

    DynamoHandler.call_action = call_action
    _patched = True


def cheap_transaction_rollback() -> None:
    """moto backs up every table a ``TransactWriteItems`` touches with a deep copy of the whole table
    (``copy.deepcopy(self.tables[name])``), so each transaction costs time in the size of the table:
    the sandbox slowed as its history grew, and a co-operative of 1,000 members' release chains
    timed out. Here the backup is of the items the transaction names only, and a cancelled
    transaction puts exactly those back: the same all-or-nothing outcome, in time of the
    transaction's size. Safe because ``serialize_dynamodb`` runs one request at a time."""
    global _rollback_patched
    if _rollback_patched:
        return
    import copy as real_copy

    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    class _TablesNotCopied:
        """``copy`` as moto's transaction code sees it: a Table is "copied" as itself."""

        @staticmethod
        def deepcopy(value, memo=None):
            return value if isinstance(value, Table) else real_copy.deepcopy(value, memo)

        def __getattr__(self, name):
            return getattr(real_copy, name)

    dynamodb_models.copy = _TablesNotCopied()
    original = dynamodb_models.DynamoDBBackend.transact_write_items

    def _key_of(table, op_type: str, op: dict):
        attrs = op["Item"] if op_type == "Put" else op["Key"]
        hash_value = DynamoType(attrs[table.hash_key_attr])
        range_value = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
        return hash_value, range_value

    @functools.wraps(original)
    def transact_write_items(self, transact_items):
        backups = []
        for entry in transact_items[:100]:
            try:
                op_type, op = next(iter(entry.items()))
                table = self.tables.get(op.get("TableName"))
                if table is None:
                    continue
                hash_value, range_value = _key_of(table, op_type, op)
            except (KeyError, TypeError, ValueError, StopIteration, AttributeError):
                continue  # malformed: moto's own validation answers it, before anything is written
            current = table.get_item(hash_value, range_value) if (range_value or not table.has_range_key) else None
            backups.append((table, hash_value, range_value, real_copy.deepcopy(current)))
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(backups):
                if range_value is not None:
                    if item is None:
                        table.items.get(hash_value, {}).pop(range_value, None)
                    else:
                        table.items[hash_value][range_value] = item
                elif item is None:
                    table.items.pop(hash_value, None)
                else:
                    table.items[hash_value] = item
            raise

    dynamodb_models.DynamoDBBackend.transact_write_items = transact_write_items
    _rollback_patched = True


_rollback_patched = False
