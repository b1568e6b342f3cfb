"""An in-memory DynamoDB client for the app table, with faults at the API, under the real documents adapter.

The simulator runs the adapter ``chalicelib.bootstrap.docs()`` builds in Lambda (``IndexedDynamoDocuments``,
a ``DynamoDocuments``) over
``FakeDynamoClient``: the requests it sends are the ones DynamoDB receives in production, and the
faults are what DynamoDB and botocore do to them:

``docs.throttle``            throttled past botocore's retries: ``ProvisionedThroughputExceededException``
``docs.conflict``            a version-conditioned update lost to a concurrent writer: ``ConditionalCheckFailedException``
                             (the adapter reads again and applies its mutation again)
``docs.conflict_exhausted``  it lost every time: the adapter gives up (``request_in_progress``)
``docs.lost_reply``          the write landed, its reply was a 500, and botocore sent the same request again: the
                             caller gets the answer of that second request against the new state (for a
                             conditional write, ``ConditionalCheckFailedException`` caused by its own first write)
``docs.crash``               the invocation died after the write landed (``SimCrash``)

An order document's writes are transactions (``IndexedDynamoDocuments``: the order and its
projections in one ``TransactWriteItems``): throttling and conflicts cancel them
(``TransactionCanceledException``), and a lost reply is invisible, as botocore's idempotency token makes it.

Only the expressions ``DynamoDocuments`` writes are understood (the version-conditioned ``SET``, the
daily counters' ``ADD``/``DELETE``, ``attribute_not_exists(pk)``, the gsi1 query); anything else raises
``NotImplementedError``, so a change in the adapter is noticed here rather than mis-simulated.
"""
from __future__ import annotations

import json
import re

from sim.faults import AwsError, FaultPlan, ProvisionedThroughputExceededException, SimCrash

_ABSENT_IDS = re.compile(r"NOT contains\(members, (:id\d+)\)")


class ConditionalCheckFailedException(AwsError):
    """A condition expression was false; nothing was written."""

    code = "ConditionalCheckFailedException"


class TransactionCanceledException(AwsError):
    """A transaction was cancelled; ``response["CancellationReasons"]`` says, item by item, why."""

    code = "TransactionCanceledException"

    def __init__(self, codes: list[str]):
        super().__init__(f"Transaction cancelled, please refer cancellation reasons for specific reasons {codes}",
                         "TransactWriteItems", CancellationReasons=[{"Code": code} for code in codes])


class _Exceptions:
    ConditionalCheckFailedException = ConditionalCheckFailedException
    ProvisionedThroughputExceededException = ProvisionedThroughputExceededException
    TransactionCanceledException = TransactionCanceledException


def _key(item_or_key: dict) -> tuple[str, str]:
    return item_or_key["pk"]["S"], item_or_key["sk"]["S"]


#: The key conditions the adapters send, and the values of their inclusive sort-key bounds.
_RANGES = {
    "gsi1pk = :p": (None, None),
    "gsi1pk = :p AND gsi1sk BETWEEN :a AND :b": (":a", ":b"),
    "gsi1pk = :p AND gsi1sk >= :a": (":a", None),
    "gsi1pk = :p AND gsi1sk <= :b": (None, ":b"),
}


class FakeDynamoClient:
    """The subset of a boto3 DynamoDB client that ``DynamoDocuments`` calls, for one table (see the module doc).

    ``touched`` collects the partition keys written since the checker last looked; ``get``/``forget``
    read and drop items without faults (the simulator's own bookkeeping).
    """

    exceptions = _Exceptions

    def __init__(self, plan: FaultPlan, conflict_attempts: int = 8):
        self.plan = plan
        self.conflict_attempts = conflict_attempts  # DynamoDocuments.max_attempts: an exhausted conflict outlasts them
        self.items: dict[tuple[str, str], dict] = {}
        self.index: dict[str, dict[tuple[str, str], str]] = {}  # gsi1pk -> {table key: gsi1sk}
        self.touched: set[str] = set()
        self._conflicts: dict[tuple[str, str], int] = {}
        self.requests = 0

    # -- the client API -------------------------------------------------------------------------
    def get_item(self, TableName, Key, ConsistentRead=False):  # noqa: N803 (boto3's names)
        self._throttle("get", Key["pk"]["S"])
        found = self.items.get(_key(Key))
        return {"Item": found} if found is not None else {}  # items are replaced on every write, never changed

    def batch_get_item(self, RequestItems):  # noqa: N803
        """One table's keys (at most 100), every one processed; throttling refuses the whole request, as
        botocore raises ``ProvisionedThroughputExceededException`` once every key was throttled past its retries."""
        ((table, request),) = RequestItems.items()
        keys = request["Keys"]
        if len(keys) > 100 or set(request) - {"Keys", "ConsistentRead", "ProjectionExpression"}:
            raise NotImplementedError(f"batch_get_item {set(request)} of {len(keys)} keys")
        self._throttle("batch_get", keys[0]["pk"]["S"])
        found = [self.items[_key(k)] for k in keys if _key(k) in self.items]
        if "ProjectionExpression" in request:
            names = [n.strip() for n in request["ProjectionExpression"].split(",")]
            found = [{n: item[n] for n in names if n in item} for item in found]
        return {"Responses": {table: [dict(item) for item in found]}, "UnprocessedKeys": {}}

    def query(self, TableName, IndexName, KeyConditionExpression, ExpressionAttributeValues, ScanIndexForward=True,
              Limit=None, ExclusiveStartKey=None):  # noqa: N803
        bounds = _RANGES.get(KeyConditionExpression)
        if IndexName != "gsi1" or bounds is None:
            raise NotImplementedError(f"query {IndexName} {KeyConditionExpression}")
        gsi1pk = ExpressionAttributeValues[":p"]["S"]
        self._throttle("query", gsi1pk)
        lo, hi = (ExpressionAttributeValues[b]["S"] if b else None for b in bounds)
        rows = sorted(((sk, key) for key, sk in self.index.get(gsi1pk, {}).items()
                       if (lo is None or sk >= lo) and (hi is None or sk <= hi)), reverse=not ScanIndexForward)
        if ExclusiveStartKey is not None:
            mark = (ExclusiveStartKey["gsi1sk"]["S"], _key(ExclusiveStartKey))
            rows = [r for r in rows if (r > mark if ScanIndexForward else r < mark)]
        page = rows[:Limit] if Limit is not None else rows
        reply = {"Items": [dict(self.items[key]) for _, key in page], "Count": len(page)}
        if Limit is not None and len(page) == Limit and page:
            # DynamoDB names a last key whenever a page is full, whether or not anything follows.
            last = self.items[page[-1][1]]
            reply["LastEvaluatedKey"] = {name: last[name] for name in ("pk", "sk", "gsi1pk", "gsi1sk")}
        return reply

    def put_item(self, TableName, Item, ConditionExpression=None):  # noqa: N803
        self._write("put", Item["pk"]["S"], lambda: self._put(Item, ConditionExpression))

    def update_item(self, TableName, Key, UpdateExpression, ConditionExpression=None, ExpressionAttributeValues=None):  # noqa: N803
        key = _key(Key)
        values = ExpressionAttributeValues or {}
        if UpdateExpression == "SET doc = :doc, version = version + :one" and ConditionExpression == "version = :seen":
            self._throttle("update", key[0])
            if self._conflicts.get(key):
                self._conflicts[key] -= 1
                raise ConditionalCheckFailedException("a concurrent writer (sim)")
            if self.plan.hit("docs.conflict_exhausted", "update", key[0]):
                self._conflicts[key] = self.conflict_attempts - 1
                raise ConditionalCheckFailedException("a concurrent writer (sim)")
            if self.plan.hit("docs.conflict", "update", key[0]):
                raise ConditionalCheckFailedException("a concurrent writer (sim)")
            self._write("update", key[0], lambda: self._set_doc(key, values), throttled=True)
        elif UpdateExpression == "ADD used :amt, members :m":
            self._write("add", key[0], lambda: self._add_members(key, ConditionExpression, values))
        elif UpdateExpression == "ADD used :neg DELETE members :m" and ConditionExpression == "contains(members, :id)":
            self._write("remove", key[0], lambda: self._remove_member(key, values))
        else:
            raise NotImplementedError(f"update_item {UpdateExpression!r} if {ConditionExpression!r}")
        return {}

    def transact_write_items(self, TransactItems):  # noqa: N803
        """All or nothing: every condition is checked against the state before the transaction.

        A lost reply is not simulated here: botocore gives TransactWriteItems a ClientRequestToken
        (an idempotency token) and its retry of the same request is answered as the first one was."""
        keys = [_key(t["Put"]["Item"] if "Put" in t else (t.get("Update") or t["Delete"])["Key"]) for t in TransactItems]
        self.requests += 1
        if self.plan.hit("docs.throttle", "transact", keys[0][0]):
            raise TransactionCanceledException(["ThrottlingError"] + ["None"] * (len(keys) - 1))
        if self.plan.hit("docs.conflict", "transact", keys[0][0]):
            raise TransactionCanceledException(["TransactionConflict"] + ["None"] * (len(keys) - 1))
        codes, writes = [], []
        for item, key in zip(TransactItems, keys):
            try:
                if "Put" in item:
                    put = item["Put"]
                    condition = put.get("ConditionExpression")
                    if condition == "attribute_not_exists(pk)" and key in self.items:
                        raise ConditionalCheckFailedException(key[0])
                    if condition not in (None, "attribute_not_exists(pk)"):
                        raise NotImplementedError(f"transact Put if {condition!r}")
                    writes.append(("put", key, dict(put["Item"])))
                elif "Update" in item:
                    update = item["Update"]
                    if (update["UpdateExpression"], update.get("ConditionExpression")) != \
                            ("SET doc = :doc, version = version + :one", "version = :seen"):
                        raise NotImplementedError(f"transact Update {update['UpdateExpression']!r}")
                    values = update["ExpressionAttributeValues"]
                    current = self.items.get(key)
                    if current is None or current.get("version", {}).get("N") != values[":seen"]["N"]:
                        raise ConditionalCheckFailedException(key[0])
                    writes.append(("update", key, values))
                elif "Delete" in item and set(item["Delete"]) == {"TableName", "Key"}:
                    writes.append(("delete", key, None))
                else:
                    raise NotImplementedError(f"transact {sorted(item)}")
                codes.append("None")
            except ConditionalCheckFailedException:
                codes.append("ConditionalCheckFailed")
        if any(code != "None" for code in codes):
            raise TransactionCanceledException(codes)
        for kind, key, body in writes:
            if kind == "put":
                old = self.items.get(key)
                if old is not None and "gsi1pk" in old:
                    self._unindex(old["gsi1pk"]["S"], key)
                self._store(key, body)
            elif kind == "delete":
                self._delete(key)
            else:
                self._set_doc(key, body)
            self.touched.add(key[0])
        if self.plan.hit("docs.crash", "transact", keys[0][0]):
            raise SimCrash(f"crashed after a transaction on {keys[0][0]}")
        return {}

    def delete_item(self, TableName, Key):  # noqa: N803
        key = _key(Key)
        self._write("delete", key[0], lambda: self._delete(key))
        return {}

    # -- faults ---------------------------------------------------------------------------------------
    def _throttle(self, op: str, pk: str) -> None:
        self.requests += 1
        if self.plan.hit("docs.throttle", op, pk):
            raise ProvisionedThroughputExceededException(f"throttled: {op} {pk}")

    def _write(self, op: str, pk: str, apply, throttled: bool = False) -> None:
        if not throttled:
            self._throttle(op, pk)
        apply()
        self.touched.add(pk)
        if self.plan.hit("docs.lost_reply", op, pk):
            apply()  # botocore's retry of the same request, against the state the first one left
        elif self.plan.hit("docs.crash", op, pk):
            raise SimCrash(f"crashed after {op} {pk}")

    # -- the writes ---------------------------------------------------------------------------------
    def _put(self, item: dict, condition: str | None) -> None:
        key = _key(item)
        if condition == "attribute_not_exists(pk)":
            if key in self.items:
                raise ConditionalCheckFailedException(f"{key[0]} exists")
        elif condition is not None:
            raise NotImplementedError(f"put_item if {condition!r}")
        self._store(key, dict(item))

    def _set_doc(self, key, values: dict) -> None:
        item = self.items.get(key)
        if item is None or item.get("version", {}).get("N") != values[":seen"]["N"]:
            raise ConditionalCheckFailedException(f"{key[0]} is not at version {values[':seen']['N']}")
        updated = dict(item)
        updated["doc"] = values[":doc"]
        updated["version"] = {"N": str(int(item["version"]["N"]) + int(values[":one"]["N"]))}
        self.items[key] = updated

    def _add_members(self, key, condition: str, values: dict) -> None:
        expected = "(attribute_not_exists(used) OR used <= :room) AND "
        absent = _ABSENT_IDS.findall(condition or "")
        if not (condition or "").startswith(expected) or not absent:
            raise NotImplementedError(f"ADD if {condition!r}")
        item = self.items.get(key) or {"pk": {"S": key[0]}, "sk": {"S": key[1]}}
        members = set(item.get("members", {}).get("SS", []))
        used_ok = "used" not in item or int(item["used"]["N"]) <= int(values[":room"]["N"])
        if not used_ok or any(values[name]["S"] in members for name in absent):
            raise ConditionalCheckFailedException(f"{key[0]} over its maximum, or a member already counted")
        updated = dict(item)
        updated["used"] = {"N": str(int(item.get("used", {"N": "0"})["N"]) + int(values[":amt"]["N"]))}
        updated["members"] = {"SS": sorted(members | set(values[":m"]["SS"]))}
        self.items[key] = updated

    def _remove_member(self, key, values: dict) -> None:
        item = self.items.get(key)
        members = set((item or {}).get("members", {}).get("SS", []))
        if values[":id"]["S"] not in members:
            raise ConditionalCheckFailedException(f"{key[0]} does not count {values[':id']['S']}")
        updated = dict(item)
        updated["used"] = {"N": str(int(item["used"]["N"]) + int(values[":neg"]["N"]))}
        remaining = members - set(values[":m"]["SS"])
        if remaining:
            updated["members"] = {"SS": sorted(remaining)}
        else:
            del updated["members"]  # DynamoDB keeps no empty set
        self.items[key] = updated

    def _delete(self, key) -> None:
        found = self.items.pop(key, None)
        if found is not None and "gsi1pk" in found:
            self._unindex(found["gsi1pk"]["S"], key)

    def _store(self, key, item: dict) -> None:
        self.items[key] = item
        if "gsi1pk" in item:
            self.index.setdefault(item["gsi1pk"]["S"], {})[key] = item["gsi1sk"]["S"]

    def _unindex(self, gsi1pk: str, key) -> None:
        rows = self.index.get(gsi1pk)
        if rows is not None:
            rows.pop(key, None)
            if not rows:
                del self.index[gsi1pk]

    # -- the simulator's own access (no faults, not requests) ---------------------------------------------
    def get(self, pk: str, sk: str = "doc") -> dict | None:
        """The document as ``DynamoDocuments.get`` would parse it."""
        item = self.items.get((pk, sk))
        if item is None:
            return None
        return json.loads(item["doc"]["S"]) if "doc" in item else {}

    def forget(self, pk: str, sks=("doc", "claim", "counter", "member")) -> None:
        """Drop items of a finished order (the simulator's memory bound; DynamoDB would keep them)."""
        for sk in sks:
            self._delete((pk, sk))
