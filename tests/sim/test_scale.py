"""The scale model (sim/scale.py): its arithmetic on known workloads, and its command's last line."""
from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

from sim.scale import (
    WINDOW_S,
    KeyLoad,
    Meter,
    Model,
    classify,
    item_size,
    write_units,
)

ROOT = Path(__file__).resolve().parents[2]
LAST_LINE = re.compile(r"^scale: rate \d+(\.\d+)?/s, hottest key \d+ WCU/s \(limit 1000\), conflicts \d+/s, "
                       r"sfn starts \d+/s, cost per order \$\d+\.\d{4}$")


def test_item_sizes_and_units_follow_dynamodb_rules():
    assert item_size({"pk": {"S": "abc"}}) == 2 + 3
    assert item_size({"n": {"N": "12345"}}) == 1 + 4  # (5 digits + 1) // 2 + 1
    assert write_units(100, transactional=False) == 1
    assert write_units(100, transactional=True) == 2
    assert write_units(1024, transactional=True) == 2
    assert write_units(1025, transactional=True) == 4
    assert write_units(3000, transactional=False) == 3


def _meter(now=[0]):
    return Meter(now_ns=lambda: now[0], step=lambda: now[0], active=lambda: True)


def _model(keys, commits, orders, rate) -> Model:
    return Model(rate=rate, label="t", orders=orders, steps=0, violations=0, commits=commits, transfers=commits,
                 wcu_total=sum(k.wcu for k in keys.values()), rcu_total=0, requests={}, keys=keys, own_conflicts=0,
                 sfn_starts=orders, transitions=10 * orders, executions_ended=orders, task_invocations=5 * orders,
                 api_requests=5 * orders)


def test_a_known_workload_gives_known_wcu_per_key():
    # 10 orders, 2 movements each: each movement one transactional update of a small psp item.
    meter = _meter()
    for i in range(20):
        meter.write("accounts", "psp:stripe:USD", 200, transactional=True)
    model = _model(dict(meter.keys), commits=20, orders=10, rate=1000)
    # 1000 movements/s at 2 per order = 500 orders/s; each order writes the item twice at 2 WCU.
    assert model.order_rate == 500
    key = ("accounts", "psp:stripe:USD", "")
    assert model.key_rate(key) == 500 * 2 * 2
    assert model.txn_rate(key) == 1000
    r = 1000
    assert math.isclose(model.classes()[0]["conflicts_per_s"], r * (1 - math.exp(-r * WINDOW_S)))
    assert model.hottest == (2000, "accounts:psp:stripe:USD")


def test_sharded_and_unsharded_hottest_keys_differ_by_about_the_shard_count():
    from chalicelib.ledger.shards import Shards

    shards = Shards({"psp:": 4})
    unsharded, sharded = _meter(), _meter()
    for n in range(2000):
        transfer_id = f"ord_{n:020x}:capture"
        unsharded.write("accounts", "psp:stripe:USD", 200, transactional=True)
        physical = shards.physical("psp:stripe:USD", shards.shard_of("psp:stripe:USD", transfer_id))
        sharded.write("accounts", physical, 200, transactional=True)
    hot_u = _model(dict(unsharded.keys), 2000, 1000, 10_000).hottest[0]
    hot_s = _model(dict(sharded.keys), 2000, 1000, 10_000).hottest[0]
    assert 3.3 < hot_u / hot_s <= 4.0


def test_an_orders_own_keys_do_not_grow_with_the_rate():
    keys = {("app", "order#ord_0123456789abcdef0123", ""): KeyLoad(wcu=40, writes=10, peak=6)}
    slow = _model(dict(keys), commits=4, orders=1, rate=10)
    fast = _model(dict(keys), commits=4, orders=1, rate=10_000)
    assert slow.key_rate(next(iter(keys))) == fast.key_rate(next(iter(keys))) == 6


def test_what_the_sweeper_writes_once_a_minute_does_not_grow_with_the_rate():
    meter = _meter()
    for tick in range(3):  # three ticks put the same 10 open payouts back in the sweeper's queue
        meter.sweep_ticks += 1
        meter.in_sweep = True
        for _ in range(10):
            meter.write("gsi:gsi1", "payouts#open", 100, transactional=False)
        meter.in_sweep = False
    meter.write("gsi:gsi1", "payouts#open", 100, transactional=False)  # one payout opened by an order
    key = ("gsi:gsi1", "payouts#open", "")
    slow = _model(dict(meter.keys), commits=4, orders=1, rate=4)
    fast = _model(dict(meter.keys), commits=4, orders=1, rate=4000)
    assert slow.key_rate(key) == 1 * 1 + 10 / 60  # one order/s, plus the busiest tick spread over its minute
    assert fast.key_rate(key) == 1000 * 1 + 10 / 60


def test_at_ten_thousand_movements_a_second_only_the_sharded_design_keeps_every_key_under_its_limit():
    """The README's claim, on the default sample: unsharded, platform accounts and constant index keys
    pass 1,000 WCU/s; with the settings' shards and the app's index shards, no key does."""
    from chalicelib.ledger.shards import Shards
    from chalicelib.settings import DEFAULT_LEDGER_SHARDS
    from sim.scale import measure

    unsharded = measure(10_000, 300, shards=Shards({}))
    sharded = measure(10_000, 300, shards=Shards(DEFAULT_LEDGER_SHARDS))
    assert unsharded.hottest_in("accounts")[0] > 1000
    assert sharded.hottest[0] < 1000, sharded.hottest
    assert sharded.violations == 0


def test_key_classes():
    assert classify("accounts", "psp:stripe:USD/3") == "psp shards"
    assert classify("accounts", "fx:RWF") == "fx shards"
    assert classify("accounts", "float:mtn_momo:RWF/1") == "float shards"
    assert classify("accounts", "revenue:fees:USD") == "revenue shards"
    assert classify("accounts", "seller:sel00001") == "seller/member accounts"
    assert classify("entries", "psp:stripe:USD") == "platform histories"
    assert classify("accounts", "escrow:ord_0123") == "order ledger items"
    assert classify("app", "order#ord_0123") == "order documents"
    assert classify("app", "walletday#mtn_momo#250780000001#2026-12-01", "counter") == "counters"
    assert classify("gsi:gsi1", "outbox#pending") == "index partitions (GSI)"


def test_the_command_prints_the_last_line_in_the_exact_format():
    run = subprocess.run([sys.executable, "-m", "sim.scale", "--rate", "1000", "--orders", "8", "--shards", "default"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    last = run.stdout.strip().splitlines()[-1]
    assert LAST_LINE.match(last), last
    assert "rate 1000/s" in last
