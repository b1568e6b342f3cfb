"""The scale model: the simulator's real services, metered as DynamoDB, Step Functions, Lambda and
API Gateway would bill and throttle them, scaled to RATE money movements per second.

    python -m sim.scale --rate 10000 [--orders 400] [--shards default|none|both] [--faults none|light]
    (make scale RATE=10000)

How (and why a sample, not 60 virtual seconds of arrivals): an order lives from minutes to days of
virtual time (payment, shipment, customs 30 min to 4 days, payout polls), so 60 virtual seconds of
arrivals would contain checkouts and payments but no release or payout; reaching steady state by
brute force needs days of arrivals at the full rate (billions of orders). By Little's law, in
steady state every phase of the lifecycle happens at the arrival rate, whatever the delay between
phases. So a sample of N whole orders is run through the real services (``Simulation``, no faults
or a light mix) and every storage request they make is metered; the sample's per-key totals are
then scaled by lambda/N, lambda = RATE / (money movements per order):

* a money movement is one committed ledger batch (one ``TransactWriteItems`` that moves money: a
  payment into escrow, a release chain, a payout reserved, posted or voided, a refund);
* per key (per DynamoDB partition key value: an account shard, an order document, a counter, a
  GSI partition) the write units: a transactional item costs 2 WCU per started KB, a standard
  write 1 WCU per KB (the larger of the item before and after), sizes from the items as the
  adapters serialize them (``DynamoLedgerStore._item``, the app table's ``pk/sk/version/doc``);
  a GSI write costs the same as a standard write of the projected item (ALL), two when its key
  moves (delete + put);
* keys shared by orders (platform shards, sellers, counters, GSI partitions, histories) take
  lambda/N times their sample load; keys of one order (its document, escrow, transfers) do not
  grow with the rate: their figure is the busiest virtual second any one of them saw;
* conflicts: a transaction holds each item it writes for ``WINDOW_S`` (10 ms, the order of one
  TransactWriteItems round trip; an assumption, not a documented figure); on a shared item,
  transactions arrive as a Poisson stream of rate r, so r * (1 - exp(-r * WINDOW_S)) of them per
  second find the item held (TransactionConflict, retried by the ledger's backoff); on an order's
  own items the sample's own timeline is used (two transactions from different events within the
  window), scaled by lambda/N;
* Step Functions: starts and state transitions per order come from the ASL interpreter (every
  state entered, retries included, as Standard bills them); Lambda invocations are the workflow's
  tasks plus one per API request (checkout, webhooks, shipment, allocation, provider callbacks,
  withdrawals); the scheduled sweeper's 2 per minute do not grow with orders;
* the sweeper's writes (payouts it polls and puts back in its queue, messages it retries) come
  once a minute and at most its limits' worth (100 payouts, 50 messages a tick), whatever the
  rate: a key's figure is the rest of its load scaled, plus the most the sweeper wrote to it in
  one tick of the sample, per second.

The last line is ``scale: rate R/s, hottest key H WCU/s (limit 1000), conflicts C/s, sfn starts S/s,
cost per order $X`` (the sharded run's figures when both are run).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field

#: On-demand prices, us-east-1, USD (see README "Scale model" for the pages and the date they were read).
PRICES = {
    "dynamodb_write_per_million": 0.625,  # write request units
    "dynamodb_read_per_million": 0.125,  # read request units
    "sfn_standard_per_1000_transitions": 0.025,
    "sfn_express_per_million_requests": 1.00,
    "sfn_express_per_gb_second": 0.00001667,  # first 1,000 GB-hours a month
    "lambda_per_million_requests": 0.20,
    "lambda_per_gb_second": 0.0000166667,  # x86
    "apigw_rest_per_million": 3.50,  # first 333 million a month
}
#: Account quotas (defaults, us-east-1; soft unless said otherwise).
QUOTAS = {
    "partition_wcu": 1000,  # per partition, hard
    "partition_rcu": 3000,
    "sfn_start_bucket": 1300,  # StartExecution (Standard): bucket, refill per second
    "sfn_start_refill": 300,
    "sfn_transitions_bucket": 5000,  # StateTransition (Standard): bucket, refill per second
    "sfn_transitions_refill": 5000,
    "sfn_express_start_refill": 6000,  # StartExecution (Express)
}
WINDOW_S = 0.010
SWEEP_SECONDS = 60  # app.py's scheduled sweeps run "rate(1 minute)" (sim/runner.py: SWEEP_SECONDS)
LAMBDA_GB = 0.5  # .chalice/config.json lambda_memory_size 512
LAMBDA_BILLED_S = 0.1  # assumed mean billed duration of one invocation (DynamoDB round trips dominate)
EXPRESS_GB = 0.064  # Express duration is billed in 64 MB steps; the intake workflow needs the smallest
PLATFORM_PREFIXES = ("psp:", "fx:", "float:", "revenue:", "loss:")

#: Key classes, in the order the table prints them; ``True``: shared by orders (grows with the rate).
CLASSES = {
    "psp shards": True, "fx shards": True, "float shards": True, "revenue shards": True, "loss shards": True,
    "seller/member accounts": True, "platform histories": True, "seller/member histories": True,
    "order documents": False, "order ledger items": False, "seller/member documents": True,
    "counters": True, "index partitions (GSI)": True, "other documents": True,
}


# -- item sizes, as DynamoDB counts them -----------------------------------------------------
def value_size(value: dict) -> int:
    (kind, v), = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        digits = v.lstrip("-").replace(".", "").lstrip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(x) for k, x in v.items())
    if kind == "L":
        return 3 + sum(1 + value_size(x) for x in v)
    if kind == "SS":
        return sum(len(s.encode()) for s in v)
    if kind == "B":
        return len(v)
    raise TypeError(kind)


def item_size(item: dict) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int, transactional: bool) -> int:
    return max(1, math.ceil(size / 1024)) * (2 if transactional else 1)


def read_units(size: int, consistent: bool = True) -> float:
    units = max(1, math.ceil(size / 4096))
    return units if consistent else units / 2


def doc_item(pk: str, sk: str, raw: str, index) -> dict:
    item = {"pk": {"S": pk}, "sk": {"S": sk}, "version": {"N": "1"}, "doc": {"S": raw}}
    if index:
        item["gsi1pk"], item["gsi1sk"] = {"S": index[0]}, {"S": index[1]}
    return item


def classify(table: str, pk: str, sk: str = "doc") -> str:
    """The key class of a partition key (see ``CLASSES``)."""
    if table.startswith("gsi:"):
        return "index partitions (GSI)"
    if table in ("accounts", "entries"):
        logical = pk.split("/")[0]
        for prefix in PLATFORM_PREFIXES:
            if logical.startswith(prefix):
                return f"{prefix[:-1]} shards" if table == "accounts" else "platform histories"
        if logical.startswith(("seller:", "member:")):
            return "seller/member accounts" if table == "accounts" else "seller/member histories"
        return "order ledger items"
    if table == "transfers":
        return "order ledger items"
    if sk == "counter":
        return "counters"
    if pk.startswith(("seller#", "member#", "sellerpayee#", "payee#")):
        return "seller/member documents"
    if "ord_" in pk or pk.startswith(("pi#", "payout#", "openpayout#", "admitting#", "evt#", "stripe#", "cus_",
                                      "customs#", "outbox#", "msg#", "smsid#", "idem#", "quote#", "refund#", "walletpay#")):
        return "order documents"
    return "other documents"


_SELLER = re.compile(r"seller[#:](sel\d+)")
_MEMBER = re.compile(r"member[#:](mem_[0-9a-f]+)")
_WALLET = re.compile(r"walletday#[a-z_]+#(\d+)#")


def party_of(pk: str, parties: dict) -> str | None:
    """The seller whose traffic a key carries (a seller's or its members' accounts, documents, wallet
    counters, per-seller index partitions), or None. ``parties``: member id or wallet -> seller id."""
    found = _SELLER.search(pk)
    if found:
        return found.group(1)
    for pattern in (_MEMBER, _WALLET):
        found = pattern.search(pk)
        if found:
            return parties.get(found.group(1))
    return None


# -- the meter ------------------------------------------------------------------------------------
@dataclass
class KeyLoad:
    wcu: float = 0.0  # over the whole sample
    writes: int = 0
    transactions: int = 0  # transactional writes of this item
    peak_second: int = -1
    peak_sum: float = 0.0
    peak: float = 0.0  # the most WCU this key took in one virtual second
    last_txn_ns: int = -10**18
    last_txn_step: int = -1
    sweep_wcu: float = 0.0  # of ``wcu``, what the scheduled sweeper wrote
    sweep_tick: int = -1
    sweep_sum: float = 0.0
    sweep_peak: float = 0.0  # the most WCU the sweeper wrote to this key in one tick


@dataclass
class Meter:
    """Counts what the metered stores would have asked of DynamoDB (only while the system under test runs)."""

    now_ns: callable
    step: callable
    active: callable
    keys: dict = field(default_factory=lambda: defaultdict(KeyLoad))
    requests: dict = field(default_factory=lambda: defaultdict(int))
    wcu_total: float = 0.0
    rcu_total: float = 0.0
    commits: int = 0  # committed ledger batches (money movements)
    transfers: int = 0
    own_conflicts: int = 0  # on one order's items, from the sample's timeline
    in_sweep: bool = False
    sweep_ticks: int = 0
    sweep_requests: int = 0  # the scheduled sweeper's reads and writes: once a minute, not per order
    riding: bool = False  # a ledger batch is committing: the app-table items it carries are in its request

    def write(self, table: str, pk: str, size: int, transactional: bool, sk: str = "doc", units: int | None = None):
        if not self.active():
            return
        units = write_units(size, transactional) if units is None else units
        key = (table, pk, sk if table == "app" and sk == "counter" else "")
        load = self.keys[key]
        load.wcu += units
        load.writes += 1
        self.wcu_total += units
        second = self.now_ns() // 1_000_000_000
        if second != load.peak_second:
            load.peak_second, load.peak_sum = second, 0.0
        load.peak_sum += units
        load.peak = max(load.peak, load.peak_sum)
        if self.in_sweep:  # once a minute, bounded by the sweeper's limits: it does not grow with orders
            load.sweep_wcu += units
            if load.sweep_tick != self.sweep_ticks:
                load.sweep_tick, load.sweep_sum = self.sweep_ticks, 0.0
            load.sweep_sum += units
            load.sweep_peak = max(load.sweep_peak, load.sweep_sum)
        if transactional:
            load.transactions += 1
            now, step = self.now_ns(), self.step()
            if step != load.last_txn_step and now - load.last_txn_ns < WINDOW_S * 1e9:
                self.own_conflicts += 1
            load.last_txn_ns, load.last_txn_step = now, step

    def gsi(self, index: str, gsi_pk: str, size: int, moved_from: str | None = None):
        self.write(f"gsi:{index}", gsi_pk, size, False)
        if moved_from is not None and moved_from != gsi_pk:
            self.write(f"gsi:{index}", moved_from, size, False)  # the entry leaves its old partition

    def read(self, op: str, size: int, consistent: bool = True, count: int = 1):
        if not self.active():
            return
        if self.in_sweep:
            self.sweep_requests += count
            return
        self.requests[op] += count
        self.rcu_total += read_units(size, consistent)

    def request(self, op: str):
        if self.active():
            if self.in_sweep:
                self.sweep_requests += 1
            else:
                self.requests[op] += 1


class MeteredLedgerStore:
    """The ledger's memory store, metered as ``DynamoLedgerStore`` would issue it."""

    def __init__(self, inner, meter: Meter):
        from chalicelib.ledger.dynamo import DynamoLedgerStore

        self.inner = inner
        self.meter = meter
        self._codec = DynamoLedgerStore("mizani")

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def commit(self, batch) -> None:
        from chalicelib.ledger.dynamo import _account_item, _transfer_item
        from chalicelib.ledger.store import AccountDelta, PutEntry, PutTransfer, ResolvePending

        meter = self.meter
        meter.riding = True  # its documents' writes (ForeignWrite) ride in this one TransactWriteItems
        try:
            self.inner.commit(batch)
            committed = True
        except Exception:
            committed = False
            raise
        finally:
            meter.riding = False
            # A refused transaction is billed too (its conditions were evaluated on every item).
            meter.request("TransactWriteItems")
            for op in batch.ops:
                if isinstance(op, PutTransfer):
                    item = _transfer_item(op.record)
                    size = item_size(item)
                    meter.write("transfers", op.record.transfer.transfer_id, size, True)
                    if committed and "pending_open" in item:
                        meter.gsi("open_pending", item["pending_open"]["S"], size)
                    if committed and "code_day" in item:
                        meter.gsi("by_code_day", item["code_day"]["S"], size)
                    if committed:
                        meter.gsi("by_seal_day", item["seal_day"]["S"], size)
                elif isinstance(op, ResolvePending):
                    record = self.inner.transfers.get(op.pending_id)
                    size = item_size(_transfer_item(record)) + 40 if record else 300
                    meter.write("transfers", op.pending_id, size, True)
                    if committed and record is not None and record.expires_at:
                        # REMOVE pending_open: the entry leaves the index
                        meter.gsi("open_pending", _transfer_item(record)["pending_open"]["S"], size)
                elif isinstance(op, AccountDelta):
                    account = self.inner.accounts.get(op.account_id)
                    size = item_size(_account_item(account)) if account is not None else 200
                    meter.write("accounts", op.account_id, size, True)
                elif isinstance(op, PutEntry):
                    meter.write("entries", op.key, item_size(self._codec._item(op)["Put"]["Item"]), True)
            if committed:
                meter.commits += 1
                meter.transfers += sum(isinstance(op, PutTransfer) for op in batch.ops)

    def put_account_if_absent(self, account) -> bool:
        from chalicelib.ledger.dynamo import _account_item

        self.meter.request("PutItem")
        self.meter.write("accounts", account.account_id, item_size(_account_item(account)), False)
        return self.inner.put_account_if_absent(account)

    def get_accounts(self, account_ids):
        account_ids = list(account_ids)
        found = self.inner.get_accounts(account_ids)
        self.meter.request("BatchGetItem")
        for _ in account_ids:
            self.meter.read("BatchGetItem.item", 200, count=0)
        return found

    def get_transfers(self, transfer_ids):
        transfer_ids = list(transfer_ids)
        found = self.inner.get_transfers(transfer_ids)
        self.meter.request("BatchGetItem")
        for _ in transfer_ids:
            self.meter.read("BatchGetItem.item", 400, count=0)
        return found


def app_write(meter: Meter, pk: str, sk: str, before: dict | None, after: dict | None) -> None:
    """One write of an app-table item (``before``/``after``: the stored items, None when absent), as
    ``IndexedDynamoDocuments`` makes it: an order document's write is one TransactWriteItems with its
    projections (``chalicelib.order_index``), everything else a standard write; GSI entries follow."""
    sizes = [item_size(t) for t in (before, after) if t is not None]
    size = max(sizes) if sizes else 100
    is_order = pk.startswith("order#") and sk == "doc" and after is not None
    meter.request("TransactWriteItems" if is_order else
                  ("DeleteItem" if after is None else "UpdateItem" if before else "PutItem"))
    meter.write("app", pk, size, is_order, sk=sk)
    for item in (after, before):
        if item is not None and "gsi1pk" in item:
            meter.gsi("gsi1", item["gsi1pk"]["S"], size)
            break
    if is_order:
        from chalicelib.documents import stored_index
        from chalicelib.order_index import projections

        old = {p: (stored_index(p, ix), body) for p, ix, body in projections(json.loads(before["doc"]["S"]))} \
            if before else {}
        for ppk, ix, body in projections(json.loads(after["doc"]["S"])):
            ix = stored_index(ppk, ix)
            if old.get(ppk) == (ix, body):
                continue  # unchanged: IndexedDynamoDocuments does not write it again
            psize = item_size(doc_item(ppk, "doc", json.dumps(body), ix))
            meter.write("app", ppk, psize, True)
            meter.gsi("gsi1", ix[0], psize, moved_from=(old.get(ppk) or ((None,),))[0][0])


class MeteredClient:
    """The simulator's fake DynamoDB client of the app table (``sim/dynamo.py``), metered per request."""

    def __init__(self, inner, meter: Meter):
        self.inner = inner
        self.meter = meter

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def get_item(self, TableName, Key, ConsistentRead=False):  # noqa: N803
        reply = self.inner.get_item(TableName=TableName, Key=Key, ConsistentRead=ConsistentRead)
        self.meter.read("GetItem", item_size(reply["Item"]) if reply.get("Item") else 1, ConsistentRead)
        return reply

    def query(self, **kwargs):
        reply = self.inner.query(**kwargs)
        self.meter.read("Query", sum(item_size(i) for i in reply.get("Items", [])), consistent=False)
        return reply

    def _written(self, key: tuple, call):
        before = self.inner.items.get(key)
        try:
            return call()
        finally:
            after = self.inner.items.get(key)
            if after is not before:
                app_write(self.meter, key[0], key[1], before, after)
            else:  # a refused conditional write is billed too
                self.meter.request("PutItem")
                self.meter.write("app", key[0], item_size(before) if before else 100, False, sk=key[1])

    def put_item(self, TableName, Item, ConditionExpression=None):  # noqa: N803
        return self._written((Item["pk"]["S"], Item["sk"]["S"]),
                             lambda: self.inner.put_item(TableName=TableName, Item=Item,
                                                         ConditionExpression=ConditionExpression))

    def update_item(self, TableName, Key, UpdateExpression, ConditionExpression=None,
                    ExpressionAttributeValues=None):  # noqa: N803
        return self._written((Key["pk"]["S"], Key["sk"]["S"]),
                             lambda: self.inner.update_item(TableName=TableName, Key=Key, UpdateExpression=UpdateExpression,
                                                            ConditionExpression=ConditionExpression,
                                                            ExpressionAttributeValues=ExpressionAttributeValues))

    def delete_item(self, TableName, Key):  # noqa: N803
        return self._written((Key["pk"]["S"], Key["sk"]["S"]),
                             lambda: self.inner.delete_item(TableName=TableName, Key=Key))

    def batch_get_item(self, RequestItems):  # noqa: N803
        reply = self.inner.batch_get_item(RequestItems=RequestItems)
        items = [i for found in reply.get("Responses", {}).values() for i in found]
        self.meter.read("BatchGetItem", sum(item_size(i) for i in items) or 1)
        return reply

    def transact_write_items(self, TransactItems):  # noqa: N803
        """An order's write with its projections, a payout's documents, an SMS marked sent: one request
        (none of its own when it rides in a ledger batch, which counts it), 2 WCU per KB of each item,
        billed whether it commits or is cancelled; GSI entries of what it puts."""
        meter = self.meter
        if not meter.riding:
            meter.request("TransactWriteItems")
        for element in TransactItems:
            (kind, body), = element.items()
            key = body.get("Key") or body["Item"]
            pk, sk = key["pk"]["S"], key["sk"]["S"]
            stored = self.inner.items.get((pk, sk))
            if kind == "Put":
                size = item_size(body["Item"])
            elif kind == "Update":
                size = item_size(key) + value_size(body["ExpressionAttributeValues"].get(":doc", {"S": ""})) + 16
            else:
                size = item_size(stored) if stored else 100
            meter.write("app", pk, size, True, sk=sk)
            indexed = body.get("Item") if kind == "Put" else stored
            if indexed is not None and "gsi1pk" in indexed:
                meter.gsi("gsi1", indexed["gsi1pk"]["S"], size)
        return self.inner.transact_write_items(TransactItems=TransactItems)


class MeteredDocuments:
    """The app table's memory store (``IndexedDocuments``), metered as ``IndexedDynamoDocuments`` would
    issue it: an order document's writes are one TransactWriteItems with its projections."""

    def __init__(self, inner, meter: Meter):
        self.inner = inner
        self.meter = meter

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def _stored(self, pk, sk):
        found = self.inner.items.get((pk, sk))
        return found

    def get(self, pk, sk="doc"):
        found = self._stored(pk, sk)
        self.meter.read("GetItem", item_size(doc_item(pk, sk, found[1], found[2])) if found else 1)
        return self.inner.get(pk, sk)

    def query_index(self, gsi1pk, limit=100, newest_first=True):
        rows = self.inner.query_index(gsi1pk, limit, newest_first)
        self.meter.read("Query", sum(len(json.dumps(r)) + 80 for r in rows), consistent=False)
        return rows

    def query_page(self, gsi1pk, limit, cursor=None, newest_first=True):
        rows, following = self.inner.query_page(gsi1pk, limit, cursor, newest_first)
        self.meter.read("Query", sum(len(json.dumps(r)) + 80 for r in rows), consistent=False)
        return rows, following

    def _write_doc(self, pk, sk, before, after, transactional_extra: list) -> None:
        """One write of (pk, sk): ``before``/``after`` are the stored tuples (version, raw, index)."""
        app_write(self.meter, pk, sk, *(doc_item(pk, sk, t[1], t[2]) if t is not None else None for t in (before, after)))

    def put_new(self, pk, doc, sk="doc", index=None):
        try:
            self.inner.put_new(pk, doc, sk, index)
        except Exception:
            self.meter.request("PutItem")
            self.meter.write("app", pk, 100, False, sk=sk)  # the refused conditional put is billed
            raise
        self._write_doc(pk, sk, None, self._stored(pk, sk), [])

    def update(self, pk, mutate, sk="doc"):
        before = self._stored(pk, sk)
        self.meter.read("GetItem", item_size(doc_item(pk, sk, before[1], before[2])) if before else 1)
        result = self.inner.update(pk, mutate, sk)
        after = self._stored(pk, sk)
        if after is not before:
            self._write_doc(pk, sk, before, after, [])
        return result

    def claim(self, pk, sk="claim"):
        self.meter.request("PutItem")
        self.meter.write("app", pk, len(pk) + len(sk) + 12, False)
        return self.inner.claim(pk, sk)

    def delete(self, pk, sk="doc"):
        found = self._stored(pk, sk)
        app_write(self.meter, pk, sk, doc_item(pk, sk, found[1], found[2]) if found else None, None)
        return self.inner.delete(pk, sk)

    def add_within(self, pk, member, amount, maximum):
        return self.add_all_within(pk, {member: amount}, maximum)

    def add_all_within(self, pk, members, maximum):
        counted = self.inner.add_all_within(pk, members, maximum)
        found = self._stored(pk, "counter")
        self.meter.request("UpdateItem")
        self.meter.write("app", pk, item_size(doc_item(pk, "counter", found[1], None)) if found else 80, False,
                         sk="counter")
        return counted

    def remove_from(self, pk, member, amount):
        self.meter.request("UpdateItem")
        self.meter.write("app", pk, 80, False, sk="counter")
        return self.inner.remove_from(pk, member, amount)


# -- the metered simulation ------------------------------------------------------------------------
def _simulation_class():
    from sim.runner import Simulation

    class ScaleSimulation(Simulation):
        """``Simulation`` with the metered stores, the ledger sharded as asked, and counters of
        API requests, executions and their state transitions."""

        def __init__(self, seed: int, orders: int, shards, faults: str = "none"):
            from chalicelib import bootstrap

            super().__init__(seed, orders, faults="none", stop_on_first=False)
            if faults == "light":  # the storage and workflow faults a busy day brings, a tenth of the default
                from sim.faults import DEFAULT_RATES

                self.plan.rates = {k: v / 10 for k, v in DEFAULT_RATES.items()
                                   if k.split(".")[0] in ("docs", "ledger", "sfn")}
            world = self.world
            world.ledger.shards = shards
            bootstrap.ensure_platform_accounts(world.ledger)  # the shards' items (the plan is not active yet)
            self.meter = Meter(now_ns=lambda: self.clock.now_ns, step=lambda: self.steps,
                               active=lambda: self.plan.active)
            if hasattr(world.docs, "_client"):  # DynamoDocuments over sim/dynamo.py's fake client
                world.docs._client = MeteredClient(world.docs._client, self.meter)
            else:  # the document fake behind FaultyDocuments
                world.docs.inner = MeteredDocuments(world.docs_memory, self.meter)
            world.ledger.store.inner = MeteredLedgerStore(world.ledger_memory, self.meter)
            self.api_requests = 0
            self.seller_orders = defaultdict(int)
            self.sfn_starts = 0
            self.transitions = 0
            self.executions_ended = 0
            interpreter = world.interpreter
            original_start = interpreter.start

            def start(name, payload):
                started = original_start(name, payload)
                self.sfn_starts += bool(started)
                return started

            interpreter.start = start

        def _execution_ended(self, execution) -> None:
            if execution.name in self.by_id and not self.by_id[execution.name].ended:
                self.transitions += execution.transitions
                self.executions_ended += 1
            super()._execution_ended(execution)

        def _sweep(self):
            self.meter.in_sweep = True
            self.meter.sweep_ticks += 1
            try:
                return super()._sweep()
            finally:
                self.meter.in_sweep = False

        def _count(self, method, *args):
            if self.plan.active:
                self.api_requests += 1
            return method(*args)

        def _checkout(self, sim_order):
            if sim_order.checkout_attempts == 0:
                self.seller_orders[sim_order.plan.seller.seller_id] += 1
            return self._count(super()._checkout, sim_order)

        def _call_webhook(self, handler, body, signature):
            return self._count(super()._call_webhook, handler, body, signature)

        def _ship(self, sim_order, attempt):
            return self._count(super()._ship, sim_order, attempt)

        def _allocate(self, sim_order, attempt):
            return self._count(super()._allocate, sim_order, attempt)

        def _callback(self, rail, reference):
            return self._count(super()._callback, rail, reference)

        def _withdraw(self, party_key, request_key, attempt):
            return self._count(super()._withdraw, party_key, request_key, attempt)

    return ScaleSimulation


# -- the model --------------------------------------------------------------------------------------
@dataclass
class Model:
    """A metered sample scaled to ``rate`` money movements per second (see the module doc)."""

    rate: float
    label: str
    orders: int
    steps: int
    violations: int
    commits: int
    transfers: int
    wcu_total: float
    rcu_total: float
    requests: dict
    keys: dict  # (table, pk, sk) -> KeyLoad
    own_conflicts: int
    sfn_starts: int
    transitions: int
    executions_ended: int
    task_invocations: int
    api_requests: int
    seller_orders: dict = field(default_factory=dict)  # seller id -> sample orders
    parties: dict = field(default_factory=dict)  # member id or wallet -> seller id
    seller_rate: float = 5.0  # orders/s of the busiest seller (an assumption, see the module doc)
    sweep_requests: int = 0
    sweep_ticks: int = 0

    @property
    def movements_per_order(self) -> float:
        return self.commits / self.orders

    @property
    def order_rate(self) -> float:
        return self.rate / self.movements_per_order

    @property
    def scale(self) -> float:
        return self.order_rate / self.orders

    def _per_unit(self, key) -> tuple[str, float]:
        """How a key's sample load scales: ("shared", lambda/N), ("party", the busiest seller's orders/s per
        sample order of its seller) or ("order", 0: its busiest second is its figure)."""
        party = party_of(key[1], self.parties)
        if party is not None:
            return "party", min(self.seller_rate, self.order_rate) / max(1, self.seller_orders.get(party, 0))
        if CLASSES[classify(key[0], key[1], key[2] or "doc")]:
            return "shared", self.scale
        return "order", 0.0

    def key_rate(self, key) -> float:
        """WCU/s on one key at the modelled rate."""
        load = self.keys[key]
        mode, factor = self._per_unit(key)
        if mode == "order":
            return load.peak
        # The sweeper's writes come once a tick, at most its limits' worth, whatever the order rate.
        return (load.wcu - load.sweep_wcu) * factor + load.sweep_peak / SWEEP_SECONDS

    def txn_rate(self, key) -> float:
        return self.keys[key].transactions * self._per_unit(key)[1]

    def classes(self) -> list[dict]:
        rows = {name: {"class": name, "keys": 0, "wcu_per_s": 0.0, "hottest": 0.0, "hottest_key": "-",
                       "txn_per_s": 0.0, "conflicts_per_s": 0.0} for name in CLASSES}
        for key, load in self.keys.items():
            row = rows[classify(key[0], key[1], key[2] or "doc")]
            rate = self.key_rate(key)
            row["keys"] += 1
            row["wcu_per_s"] += load.wcu * self.scale  # every key's share of the platform's traffic
            if rate > row["hottest"]:
                row["hottest"], row["hottest_key"] = rate, f"{key[0]}:{key[1]}"
            if not key[0].startswith("gsi:"):
                r = self.txn_rate(key)
                row["txn_per_s"] += r
                row["conflicts_per_s"] += r * (1 - math.exp(-r * WINDOW_S))
        return [r for r in rows.values() if r["keys"]]

    @property
    def hottest(self) -> tuple[float, str]:
        best = max(self.keys, key=self.key_rate)
        return self.key_rate(best), f"{best[0]}:{best[1]}"

    def hottest_in(self, table: str) -> tuple[float, str]:
        keys = [k for k in self.keys if k[0] == table]
        best = max(keys, key=self.key_rate)
        return self.key_rate(best), f"{best[0]}:{best[1]}"

    @property
    def conflicts_per_s(self) -> float:
        return sum(r["conflicts_per_s"] for r in self.classes()) + self.own_conflicts * self.scale

    # per order
    @property
    def wcu_per_order(self) -> float:
        return self.wcu_total / self.orders

    @property
    def rcu_per_order(self) -> float:
        return self.rcu_total / self.orders

    @property
    def transitions_per_order(self) -> float:
        return self.transitions / max(1, self.executions_ended)

    @property
    def starts_per_order(self) -> float:
        return self.sfn_starts / self.orders

    @property
    def lambda_per_order(self) -> float:
        return (self.task_invocations + self.api_requests) / self.orders

    @property
    def api_per_order(self) -> float:
        return self.api_requests / self.orders

    def costs(self) -> dict:
        p = PRICES
        lam = self.lambda_per_order
        return {
            "dynamodb writes": self.wcu_per_order * p["dynamodb_write_per_million"] / 1e6,
            "dynamodb reads": self.rcu_per_order * p["dynamodb_read_per_million"] / 1e6,
            "step functions (standard)": self.transitions_per_order * self.starts_per_order
            * p["sfn_standard_per_1000_transitions"] / 1e3,
            "lambda": lam * (p["lambda_per_million_requests"] / 1e6 + LAMBDA_GB * LAMBDA_BILLED_S * p["lambda_per_gb_second"]),
            "api gateway": self.api_per_order * p["apigw_rest_per_million"] / 1e6,
        }

    @property
    def cost_per_order(self) -> float:
        return sum(self.costs().values())

    def line(self) -> str:
        hottest, _ = self.hottest
        return (f"scale: rate {self.rate:g}/s, hottest key {hottest:.0f} WCU/s (limit {QUOTAS['partition_wcu']}), "
                f"conflicts {self.conflicts_per_s:.0f}/s, sfn starts {self.order_rate * self.starts_per_order:.0f}/s, "
                f"cost per order ${self.cost_per_order:.4f}")


def measure(rate: float, orders: int, seed: int = 1, shards=None, faults: str = "none", label: str = "",
            seller_rate: float = 5.0) -> Model:
    """Run ``orders`` orders through the metered simulator and scale them to ``rate`` movements/s."""
    from chalicelib.ledger.shards import Shards
    from chalicelib.settings import DEFAULT_LEDGER_SHARDS

    shards = Shards(DEFAULT_LEDGER_SHARDS) if shards is None else shards
    with _index_shards(bool(shards.counts)):
        simulation = _simulation_class()(seed, orders, shards, faults)
        result = simulation.run()
    meter = simulation.meter
    if meter.commits == 0:
        raise RuntimeError("the sample moved no money")
    return Model(rate=rate, label=label, orders=result.orders, steps=result.steps, violations=len(result.violations),
                 commits=meter.commits, transfers=meter.transfers, wcu_total=meter.wcu_total, rcu_total=meter.rcu_total,
                 requests=dict(meter.requests), keys=dict(meter.keys), own_conflicts=meter.own_conflicts,
                 sfn_starts=simulation.sfn_starts, transitions=simulation.transitions,
                 executions_ended=simulation.executions_ended, task_invocations=simulation.world.invocations,
                 api_requests=simulation.api_requests, seller_orders=dict(simulation.seller_orders),
                 parties=_parties(simulation), seller_rate=seller_rate, sweep_requests=meter.sweep_requests,
                 sweep_ticks=meter.sweep_ticks)


@contextlib.contextmanager
def _index_shards(enabled: bool):
    """The unsharded run leaves the constant index keys whole too (the app table's and the ledger's
    sparse indexes: ``INDEX_SHARDS`` in ``chalicelib/documents.py`` and ``chalicelib/ledger/dynamo.py``)."""
    from chalicelib import documents
    from chalicelib.ledger import dynamo
    from chalicelib.sharding import Shards

    saved = documents.INDEX_SHARDS, dynamo.INDEX_SHARDS
    if not enabled:
        documents.INDEX_SHARDS = dynamo.INDEX_SHARDS = Shards({})
    try:
        yield
    finally:
        documents.INDEX_SHARDS, dynamo.INDEX_SHARDS = saved


def _parties(simulation) -> dict:
    parties = {}
    for seller in simulation.workload.sellers:
        parties[seller.msisdn] = seller.seller_id
    for seller_id, members in getattr(simulation, "members", {}).items():
        for member in members:
            parties[member["member_id"]] = seller_id
            wallet = (member.get("payout") or {}).get("msisdn")
            if wallet:
                parties[wallet] = seller_id
    return parties


# -- the report ------------------------------------------------------------------------------------
def table(model: Model) -> list[str]:
    lines = [f"{'key class':<26} {'keys':>6} {'WCU/s all':>10} {'hottest WCU/s':>14} {'txn/s':>9} "
             f"{'conflicts/s':>12}  hottest key"]
    for row in model.classes():
        flag = "  OVER" if row["hottest"] > QUOTAS["partition_wcu"] else ""
        shared = "" if CLASSES[row["class"]] else " (one order's busiest second)"
        lines.append(f"{row['class']:<26} {row['keys']:>6} {row['wcu_per_s']:>10.0f} {row['hottest']:>14.0f} "
                     f"{row['txn_per_s']:>9.0f} {row['conflicts_per_s']:>12.1f}  {row['hottest_key']}{shared}{flag}")
    return lines


def express_per_order(model: Model, seconds: float = 2.0) -> float:
    """What the synchronous intake phases would cost as Express workflows (per order): one request per
    phase execution, ``seconds`` of duration each at 64 MB."""
    p = PRICES
    phases = 3  # intake (paid -> escrow -> awaiting customs), release+payout start, settle
    return phases * (p["sfn_express_per_million_requests"] / 1e6 + seconds * EXPRESS_GB * p["sfn_express_per_gb_second"])


def report(model: Model, out=print) -> None:
    out(f"== {model.label}: {model.orders} sample orders, {model.steps} steps, violations {model.violations}")
    out(f"money movements per order {model.movements_per_order:.2f} (ledger commits; {model.transfers / model.orders:.2f}"
        f" transfers) -> {model.order_rate:.0f} orders/s at {model.rate:g} movements/s")
    out(f"per order: {model.wcu_per_order:.1f} WCU, {model.rcu_per_order:.1f} RCU, "
        f"{sum(model.requests.values()) / model.orders:.1f} DynamoDB requests "
        f"({', '.join(f'{k} {v / model.orders:.1f}' for k, v in sorted(model.requests.items()) if v)})")
    starts = model.order_rate * model.starts_per_order
    transitions = starts * model.transitions_per_order
    out(f"step functions: {model.starts_per_order:.2f} starts and {model.transitions_per_order:.1f} state transitions "
        f"per order -> {starts:.0f} starts/s (Standard quota: refill {QUOTAS['sfn_start_refill']}/s, bucket "
        f"{QUOTAS['sfn_start_bucket']}), {transitions:.0f} transitions/s (quota {QUOTAS['sfn_transitions_refill']}/s)")
    out(f"lambda: {model.lambda_per_order:.1f} invocations per order ({model.task_invocations / model.orders:.1f} workflow "
        f"tasks + {model.api_per_order:.1f} API requests) -> {model.order_rate * model.lambda_per_order:.0f}/s; "
        f"the sweeper's 2 per minute aside")
    out(f"sweeper: {model.sweep_requests / max(1, model.sweep_ticks):.1f} DynamoDB requests a tick in the sample, "
        f"once a minute whatever the rate (at most 100 payouts and 50 messages a tick), not counted per order")
    for line in table(model):
        out(line)
    costs = model.costs()
    out("cost per order: " + ", ".join(f"{k} ${v:.5f}" for k, v in costs.items()) + f" = ${model.cost_per_order:.4f}")
    sfn = costs["step functions (standard)"]
    out(f"  Standard state transitions ${sfn:.5f} per order vs Express for the short phases ${express_per_order(model):.6f}")


def main(argv: list[str] | None = None) -> int:
    from chalicelib.ledger.shards import Shards
    from chalicelib.settings import DEFAULT_LEDGER_SHARDS

    parser = argparse.ArgumentParser(prog="python -m sim.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10_000, help="money movements (ledger commits) per second")
    parser.add_argument("--orders", type=int, default=300, help="sample orders run through the simulator")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--faults", choices=("none", "light"), default="none")
    parser.add_argument("--seller-rate", type=float, default=5.0,
                        help="orders per second of the busiest seller (its accounts, documents, wallet counters)")
    parser.add_argument("--shards", choices=("default", "none", "both"), default="both",
                        help="settings.DEFAULT_LEDGER_SHARDS, Shards({}) (no sharding), or both runs (default)")
    args = parser.parse_args(argv)
    runs = {"default": [("sharded", Shards(DEFAULT_LEDGER_SHARDS))], "none": [("unsharded", Shards({}))],
            "both": [("unsharded", Shards({})), ("sharded", Shards(DEFAULT_LEDGER_SHARDS))]}[args.shards]
    models = []
    for label, shards in runs:
        model = measure(args.rate, args.orders, args.seed, shards, args.faults, seller_rate=args.seller_rate,
                        label=f"{label} {json.dumps(shards.counts) if shards.counts else '(Shards({}))'}")
        report(model)
        print(model.line().replace("scale:", f"  {label}:"))
        print()
        models.append(model)
    if len(models) == 2:
        (u_hot, u_key), (s_hot, s_key) = models[0].hottest, models[1].hottest
        print(f"hottest key unsharded {u_hot:.0f} WCU/s ({u_key}), sharded {s_hot:.0f} WCU/s ({s_key})")
        (ua, ua_key), (sa, sa_key) = models[0].hottest_in("accounts"), models[1].hottest_in("accounts")
        print(f"hottest ledger account item unsharded {ua:.0f} WCU/s ({ua_key}), sharded {sa:.0f} WCU/s ({sa_key}): "
              f"{ua / sa:.1f}x")
    print(models[-1].line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
