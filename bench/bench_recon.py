"""Reconciliation benchmark: 1,000,000 statement lines against 1,000,000 ledger lines.

``python bench/bench_recon.py [--lines N] [--seed S] [--keep DIR]``

Generates (deterministically) a ledger export of N payout lines and an MTN MoMo
statement derived from it: most payouts one-to-one, about 1 % split into two
statement lines under the same ``externalId`` (the one-to-many case), and a few
injected discrepancies of every class (dropped line, changed amount, repeated
line, a second payment for a paid payout, a foreign line, a split that does not
add up). Both files are written as CSV to a temporary directory.

The contenders then run, each in its own subprocess (so their peak memories do not
mix), on the same two files:

- ``ours``: ``chalicelib.recon.parallel.reconcile_parallel`` as the CLI and the local service
  call it: a large CSV statement goes to the columnar engine (``chalicelib.recon.columnar``,
  Polars), which reads and checks both files, matches the one-to-one keys in columns and hands
  every other key to the pure engine's group rules.
- ``ours-python``: the same call with ``MIZANI_RECON_ENGINE=python``: the pure-Python engine
  in one process, what a Lambda runs (the strict MTN importer and the ledger CSV reader, then
  ``reconcile_chunk`` and ``combine``).
- ``ours-2p`` (only with ``--only``): the pure engine on two forked workers (each parses a byte
  range of both files and reconciles one partition of the references).
- ``duckdb``: DuckDB (multi-threaded, C++) ``read_csv`` of both files into typed
  tables (parse), then the same rules written in SQL: the simple keys by a join, the
  keys with several lines by window functions, and the settlement per currency and
  day (match). ``duckdb-1t``: the same on one thread.

Both timings include reading the files and producing the breaks and the settlement;
each phase is also shown. ``import duckdb`` / ``import polars`` / ``import chalicelib.recon``
and generating the data are excluded. Peak memory is the subprocess's max RSS
(``VmHWM``), interpreter and libraries included, with the RSS after imports shown for
reference; for ``ours`` on several processes it is the SUM of every worker's own peak
(an upper bound: pages a forked worker shares with worker 0 count in both). The parent then checks that both contenders found
exactly the same breaks (line, reference, outcome) and the same settlement, and
that those are the injected ones, and says whether ``ours`` was no slower than
``duckdb`` (all threads) in this run. It prints figures; it asserts no timing.

Fairness notes: our importer validates more than DuckDB's typed ``read_csv`` does
(status vocabulary, positive amounts, exact decimals per the currency's ISO 4217
exponent, real calendar dates) and reports every bad line; DuckDB would stop at the
first cast error. The columnar engine makes the same checks in columns and hands a file
that fails any of them to the pure importer, which lists the bad lines. The SQL hard-codes the bench's currency exponent (2, GHS) and
implements the rules this data exercises (no Stripe fees or FX in an MTN statement).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CURRENCY = "GHS"  # 2 decimals: amounts go through real decimal parsing
START = date(2026, 5, 1)
DAYS = 28


# -- data ------------------------------------------------------------------------------------

def generate(lines: int, seed: int, directory: str) -> dict:
    """Write ``ledger.csv`` and ``statement.csv``; return the expected breaks and counts."""
    rng = random.Random(seed)
    per_class = max(1, min(25, lines // 40_000))
    # ledger: payouts po_<n>, in day order (as an export by day would be)
    amounts = [rng.randint(100, 5_000_000) for _ in range(lines)]
    days = sorted(rng.randrange(DAYS) for _ in range(lines))
    refs = [f"po_{i:08d}" for i in range(lines)]
    # choose lines for each injection (disjoint), and the splits
    pool = rng.sample(range(lines), per_class * 6 + max(1, lines // 100))
    drop = set(pool[:per_class])
    change = set(pool[per_class:2 * per_class])
    repeat_line = set(pool[2 * per_class:3 * per_class])
    paid_twice = set(pool[3 * per_class:4 * per_class])
    split_bad = set(pool[4 * per_class:5 * per_class])
    split = set(pool[6 * per_class:]) | split_bad
    foreign = per_class

    with open(os.path.join(directory, "ledger.csv"), "w") as f:
        f.write("transfer_id,provider,kind,reference,amount_minor,currency,day\n")
        day_text = [(START + timedelta(days=d)).isoformat() for d in range(DAYS)]
        f.writelines(f"{r},mtn_momo,payout,{r},{-a},{CURRENCY},{day_text[d]}\n" for r, a, d in zip(refs, amounts, days))

    expected: list[tuple] = []
    rows: list[tuple] = []  # (day, time, ext, amount_minor, txn id)
    txn = 10_000_000
    for i in range(lines):
        if i in drop:
            expected.append((None, refs[i], "missing_at_provider"))
            continue
        t = rng.randrange(86_400)
        amount = amounts[i]
        if i in split:
            first = amount // 3 or 1
            second = amount - first
            if i in split_bad:
                second += 7
            rows.append((days[i], t, refs[i], first, txn, i in split_bad))
            rows.append((days[i], t, refs[i], second, txn + 1, i in split_bad))
            txn += 2
            continue
        if i in change:
            amount += rng.choice([-1, 1]) * rng.randint(1, 999)
        rows.append((days[i], t, refs[i], amount, txn, i in change))
        if i in repeat_line:
            rows.append((days[i], t, refs[i], amount, txn, "repeat"))
        if i in paid_twice:
            txn += 1
            rows.append((days[i], min(t + 1, 86_399), refs[i], amount, txn, "twice"))
        txn += 1
    for k in range(foreign):
        rows.append((rng.randrange(DAYS), rng.randrange(86_400), f"ext_foreign_{k}", rng.randint(100, 99_999), txn, "foreign"))
        txn += 1
    rows.sort(key=lambda r: (r[0], r[1]))
    with open(os.path.join(directory, "statement.csv"), "w") as f:
        f.write("financialTransactionId,externalId,amount,currency,status,date\n")
        out = []
        for line, (d, t, ext, amount, tid, mark) in enumerate(rows, 2):
            stamp = f"{(START + timedelta(days=d)).isoformat()}T{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}Z"
            out.append(f"{tid},{ext},{amount // 100}.{amount % 100:02d},{CURRENCY},SUCCESSFUL,{stamp}\n")
            if mark is True:
                expected.append((line, ext, "amount_mismatch"))
            elif mark == "repeat":
                expected.append((line, ext, "duplicate"))
            elif mark == "twice":
                expected.append((line, ext, "duplicate"))
            elif mark == "foreign":
                expected.append((line, ext, "missing_in_ledger"))
        f.writelines(out)
    return {"ledger_lines": lines, "statement_lines": len(rows), "per_class": per_class,
            "splits": len(split), "expected": sorted(expected, key=_break_key)}


def _break_key(b) -> tuple:
    return (b[0] is None, b[0] or 0, b[1], b[2])


# -- contenders (each runs in a subprocess) ----------------------------------------------------

def _rss_mb() -> float:
    """Peak resident memory of this process in MB. Linux's VmHWM starts afresh at exec;
    ``ru_maxrss`` (elsewhere) would also count the parent's memory at fork."""
    from chalicelib.recon.parallel import peak_rss_mb

    return peak_rss_mb() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(directory: str, workers: int | None = None, engine: str = "auto") -> dict:
    os.environ["MIZANI_RECON_ENGINE"] = engine
    from chalicelib.recon import columnar
    from chalicelib.recon.inputs import reconciliation_id
    from chalicelib.recon.parallel import reconcile_parallel

    # ``available`` imports Polars (whatever the engine), like ``import duckdb``: not timed
    if not columnar.available() and engine != "python":
        raise SystemExit("the columnar engine needs Polars (requirements-dev.txt): make bench installs it")

    import gc
    gc.collect()
    base = _rss_mb()
    t0 = time.perf_counter()
    with open(os.path.join(directory, "statement.csv"), "rb") as f:
        content = f.read()
    with open(os.path.join(directory, "ledger.csv"), "rb") as f:
        ledger_content = f.read()
    stats: dict = {}
    t_read = time.perf_counter() - t0
    rec = reconcile_parallel("mtn_momo", content, ledger_content, workers=workers, stats=stats,
                             reconciliation_id=reconciliation_id("mtn_momo", content))
    t2 = time.perf_counter()
    own = _rss_mb()
    return {
        "parse_s": t_read + stats["parse_s"], "match_s": stats["match_s"], "total_s": t2 - t0,
        "rss_after_imports_mb": base, "workers": stats["workers"], "engine": stats["engine"],
        # every process's own peak, summed: an upper bound of the peak at any one moment (pages
        # the forked workers share with worker 0, such as the file contents, count once per process)
        "peak_rss_mb": own + sum(stats["worker_peak_rss_mb"]),
        "peak_rss_each_mb": [own, *stats["worker_peak_rss_mb"]],
        "breaks": [[b.line, b.reference, b.outcome] for b in rec.breaks],
        "settlement": sorted([r.currency, r.day.isoformat(), r.expected, r.reported] for r in rec.settlement),
        "summary": {k: v for k, v in rec.summary.items() if k != "classified"},
    }


DUCKDB_PARSE = """
CREATE TABLE raw_p AS SELECT * FROM read_csv('{dir}/statement.csv', header = true, columns = {{
    'financialTransactionId': 'VARCHAR', 'externalId': 'VARCHAR', 'amount': 'DECIMAL(18,2)',
    'currency': 'VARCHAR', 'status': 'VARCHAR', 'date': 'VARCHAR'}});
CREATE TABLE p AS SELECT rowid + 2 AS line, externalId AS ref, -CAST(amount * 100 AS BIGINT) AS amt,
    currency AS cur, CAST(substr(date, 1, 10) AS DATE) AS day, financialTransactionId AS raw_id
    FROM raw_p WHERE status = 'SUCCESSFUL';
CREATE TABLE l AS SELECT transfer_id AS tid, reference AS ref, amount_minor AS amt, currency AS cur, day
    FROM read_csv('{dir}/ledger.csv', header = true, columns = {{
    'transfer_id': 'VARCHAR', 'provider': 'VARCHAR', 'kind': 'VARCHAR', 'reference': 'VARCHAR',
    'amount_minor': 'BIGINT', 'currency': 'VARCHAR', 'day': 'DATE'}}) WHERE provider = 'mtn_momo';
"""

# The same rules as chalicelib.recon.engine, in SQL: keys with one provider line and at most
# one ledger line by a join; keys with several lines on a side by window functions.
DUCKDB_MATCH = """
CREATE TEMP TABLE pk AS SELECT ref, count(*) AS n FROM p GROUP BY ref;
CREATE TEMP TABLE lk AS SELECT ref, count(*) AS n FROM l GROUP BY ref;
CREATE TEMP TABLE out_p (line BIGINT, ref VARCHAR, outcome VARCHAR, cls VARCHAR, p_amt BIGINT, cur VARCHAR,
    day DATE, tid VARCHAR, l_amt BIGINT);
CREATE TEMP TABLE out_l (ref VARCHAR, tid VARCHAR, amt BIGINT, cur VARCHAR, day DATE);
-- simple keys
INSERT INTO out_p
SELECT p.line, p.ref,
       CASE WHEN l.tid IS NULL THEN 'missing_in_ledger'
            WHEN p.amt = l.amt AND p.cur = l.cur THEN 'matched' ELSE 'amount_mismatch' END,
       '', p.amt, p.cur, p.day, l.tid, l.amt
FROM p JOIN pk ON pk.ref = p.ref AND pk.n = 1
LEFT JOIN lk ON lk.ref = p.ref
LEFT JOIN l ON l.ref = p.ref
WHERE coalesce(lk.n, 0) <= 1;
-- ledger keys no provider line refers to
INSERT INTO out_l SELECT l.ref, l.tid, l.amt, l.cur, l.day FROM l ANTI JOIN pk ON pk.ref = l.ref;
-- keys with several lines on a side
CREATE TEMP TABLE cp AS SELECT p.* FROM p JOIN pk USING (ref) LEFT JOIN lk USING (ref) WHERE pk.n > 1 OR lk.n > 1;
CREATE TEMP TABLE cl AS SELECT l.* FROM l JOIN lk USING (ref) JOIN pk USING (ref) WHERE pk.n > 1 OR lk.n > 1;
CREATE TEMP TABLE cp1 AS SELECT *, row_number() OVER (PARTITION BY ref, raw_id ORDER BY line) AS rep FROM cp;
INSERT INTO out_p SELECT line, ref, 'duplicate', 'repeated_line', amt, cur, day, NULL, NULL
    FROM cp1 WHERE rep > 1 AND raw_id <> '';
CREATE TEMP TABLE cp2 AS SELECT *, row_number() OVER (PARTITION BY ref, cur, amt ORDER BY line) AS k
    FROM cp1 WHERE rep = 1 OR raw_id = '';
CREATE TEMP TABLE cl2 AS SELECT *, row_number() OVER (PARTITION BY ref, cur, amt ORDER BY tid) AS k FROM cl;
CREATE TEMP TABLE pairs AS SELECT cp2.line, cl2.tid FROM cp2 JOIN cl2 USING (ref, cur, amt, k);
INSERT INTO out_p SELECT cp2.line, cp2.ref, 'matched', '', cp2.amt, cp2.cur, cp2.day, pairs.tid, cp2.amt
    FROM cp2 JOIN pairs USING (line);
CREATE TEMP TABLE lp AS SELECT * FROM cp2 ANTI JOIN pairs USING (line);
CREATE TEMP TABLE ll AS SELECT * FROM cl2 ANTI JOIN pairs USING (tid);
CREATE TEMP TABLE gs AS
    SELECT ref FROM (SELECT ref, count(*) AS n, sum(amt) AS s, min(cur) AS c1, max(cur) AS c2 FROM lp GROUP BY ref) a
    JOIN (SELECT ref, count(*) AS n, sum(amt) AS s, min(cur) AS c1, max(cur) AS c2 FROM ll GROUP BY ref) b USING (ref)
    WHERE (a.n = 1 OR b.n = 1) AND a.n + b.n > 2 AND a.s = b.s AND a.c1 = a.c2 AND b.c1 = b.c2 AND a.c1 = b.c1;
INSERT INTO out_p SELECT line, ref, 'matched', 'split', amt, cur, day, NULL, amt FROM lp SEMI JOIN gs USING (ref);
CREATE TEMP TABLE lp2 AS SELECT lp.* FROM lp ANTI JOIN gs USING (ref);
CREATE TEMP TABLE ll2 AS SELECT ll.* FROM ll ANTI JOIN gs USING (ref);
CREATE TEMP TABLE twice AS SELECT lp2.line FROM lp2
    SEMI JOIN (SELECT DISTINCT ref, cur, amt FROM cp2 JOIN pairs USING (line)) m USING (ref, cur, amt);
INSERT INTO out_p SELECT line, ref, 'duplicate', 'paid_twice', amt, cur, day, NULL, NULL
    FROM lp2 SEMI JOIN twice USING (line);
CREATE TEMP TABLE lp3 AS SELECT *, row_number() OVER (PARTITION BY ref ORDER BY line) AS r,
    count(*) OVER (PARTITION BY ref) AS n FROM lp2 ANTI JOIN twice USING (line);
CREATE TEMP TABLE ll3 AS SELECT *, row_number() OVER (PARTITION BY ref ORDER BY tid) AS r,
    count(*) OVER (PARTITION BY ref) AS n FROM ll2;
-- one ledger line against several provider lines that do not add up
INSERT INTO out_p SELECT lp3.line, lp3.ref, 'amount_mismatch', 'split', lp3.amt, lp3.cur, lp3.day, ll3.tid,
    CASE WHEN lp3.r = 1 THEN ll3.amt ELSE NULL END
    FROM lp3 JOIN ll3 USING (ref) WHERE ll3.n = 1 AND lp3.n > 1;
-- otherwise pair in order; extras are missing on the other side
INSERT INTO out_p SELECT lp3.line, lp3.ref, 'amount_mismatch', '', lp3.amt, lp3.cur, lp3.day, ll3.tid, ll3.amt
    FROM lp3 JOIN ll3 USING (ref, r) WHERE NOT (ll3.n = 1 AND lp3.n > 1);
INSERT INTO out_p SELECT lp3.line, lp3.ref, 'missing_in_ledger', '', lp3.amt, lp3.cur, lp3.day, NULL, NULL
    FROM lp3 LEFT JOIN (SELECT ref, max(n) AS n FROM ll3 GROUP BY ref) c USING (ref)
    WHERE lp3.r > coalesce(c.n, 0) AND NOT (coalesce(c.n, 0) = 1 AND lp3.n > 1);
INSERT INTO out_l SELECT ll3.ref, ll3.tid, ll3.amt, ll3.cur, ll3.day
    FROM ll3 LEFT JOIN (SELECT ref, max(n) AS n FROM lp3 GROUP BY ref) c USING (ref)
    WHERE ll3.r > coalesce(c.n, 0) AND NOT (ll3.n = 1 AND coalesce(c.n, 0) > 1);
"""

DUCKDB_BREAKS = """
SELECT line, ref, outcome FROM out_p WHERE outcome <> 'matched'
UNION ALL SELECT NULL, ref, 'missing_at_provider' FROM out_l
"""

DUCKDB_SETTLEMENT = """
SELECT cur, day, sum(expected)::BIGINT, sum(reported)::BIGINT FROM (
    SELECT cur, day, coalesce(CASE WHEN outcome IN ('matched') THEN p_amt ELSE l_amt END, 0) AS expected,
           p_amt AS reported FROM out_p
    UNION ALL SELECT cur, day, amt, 0 FROM out_l
) GROUP BY ALL
"""


def run_duckdb(directory: str, threads: int | None = None) -> dict:
    import gc

    import duckdb

    gc.collect()
    base = _rss_mb()
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {threads}")
    t0 = time.perf_counter()
    con.execute(DUCKDB_PARSE.format(dir=directory))
    t1 = time.perf_counter()
    con.execute(DUCKDB_MATCH)
    breaks = con.execute(DUCKDB_BREAKS).fetchall()
    settlement = con.execute(DUCKDB_SETTLEMENT).fetchall()
    summary = dict(con.execute("SELECT outcome, count(*) FROM out_p GROUP BY ALL").fetchall())
    summary["missing_at_provider"] = con.execute("SELECT count(*) FROM out_l").fetchone()[0]
    t2 = time.perf_counter()
    return {
        "parse_s": t1 - t0, "match_s": t2 - t1, "total_s": t2 - t0, "rss_after_imports_mb": base,
        "peak_rss_mb": _rss_mb(), "threads": con.execute("SELECT current_setting('threads')").fetchone()[0],
        "breaks": sorted(([b[0], b[1], b[2]] for b in breaks), key=_break_key),
        "settlement": sorted([c, d.isoformat(), e, r] for c, d, e, r in settlement if e or r),
        "summary": summary,
    }


CONTENDERS = {
    "ours": ("ours (columnar engine)", lambda d: run_ours(d, workers=1)),
    "ours-python": ("ours, pure Python (Lambda)", lambda d: run_ours(d, workers=1, engine="python")),
    "ours-2p": ("ours, pure Python, 2 forked", lambda d: run_ours(d, workers=2, engine="python")),
    "duckdb": ("duckdb", lambda d: run_duckdb(d)),
    "duckdb-1t": ("duckdb, 1 thread", lambda d: run_duckdb(d, threads=1)),
}


def _contender(name: str, directory: str) -> dict:
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--contender", name, "--data", directory],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr}")
    return json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="ledger lines (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=20260509)
    parser.add_argument("--repeat", type=int, default=2, help="runs per contender, alternating; best time kept (default 2)")
    parser.add_argument("--keep", help="write the generated files here and keep them")
    parser.add_argument("--only", choices=sorted(CONTENDERS), action="append", help="run only these contenders")
    parser.add_argument("--contender", choices=sorted(CONTENDERS), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.contender:
        sys.path.insert(0, ROOT)
        print(json.dumps(CONTENDERS[args.contender][1](args.data)))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench_recon_") as tmp:
        directory = args.keep or tmp
        os.makedirs(directory, exist_ok=True)
        t = time.perf_counter()
        info = generate(args.lines, args.seed, directory)
        sizes = {n: os.path.getsize(os.path.join(directory, n)) / 1e6 for n in ("statement.csv", "ledger.csv")}
        print(f"data: {info['ledger_lines']:,} ledger lines ({sizes['ledger.csv']:.0f} MB), "
              f"{info['statement_lines']:,} statement lines ({sizes['statement.csv']:.0f} MB), "
              f"{info['splits']:,} split payouts, {info['per_class']} injected discrepancies per class "
              f"[generated in {time.perf_counter() - t:.1f} s]; {os.cpu_count()} CPUs")
        names = args.only or ["ours", "duckdb", "ours-python", "duckdb-1t"]
        results: dict[str, dict] = {}
        for _ in range(max(1, args.repeat)):
            for name in names:
                r = _contender(name, directory)
                if name not in results or r["total_s"] < results[name]["total_s"]:
                    results[name] = r
        print()
        print(f"{'contender':30} {'parse s':>8} {'match s':>8} {'total s':>8} {'peak RSS MB':>12} "
              f"{'RSS after imports':>18}")
        for name, r in results.items():
            label = CONTENDERS[name][0] + (f", {r['workers']} processes" if r.get("workers", 1) > 1 else "")
            each = r.get("peak_rss_each_mb", [])
            print(f"{label:30} {r['parse_s']:8.2f} {r['match_s']:8.2f} {r['total_s']:8.2f} "
                  f"{r['peak_rss_mb']:12.0f} {r['rss_after_imports_mb']:18.0f}"
                  + (f"   (peak RSS per process: {' + '.join(f'{x:.0f}' for x in each)})" if len(each) > 1 else ""))
        print()
        expected = [list(b) for b in info["expected"]]
        ok = True
        for name, r in results.items():
            got = [list(b) for b in sorted((tuple(b) for b in r["breaks"]), key=_break_key)]
            same = got == expected
            ok &= same
            print(f"{name}: {len(got)} breaks, {'exactly the injected ones' if same else 'NOT the injected ones'}")
        if "ours" in results:
            for name, r in results.items():
                if name == "ours":
                    continue
                same_breaks = results["ours"]["breaks"] == r["breaks"] or sorted(
                    map(tuple, results["ours"]["breaks"]), key=_break_key) == sorted(map(tuple, r["breaks"]), key=_break_key)
                ok &= same_breaks
                print(f"breaks, ours vs {name}: {'identical' if same_breaks else 'DIFFERENT'}")
                same_settlement = results["ours"]["settlement"] == r["settlement"]
                ok &= same_settlement
                print(f"settlement per currency and day, ours vs {name}: "
                      f"{'identical' if same_settlement else 'DIFFERENT'} ({len(r['settlement'])} rows)")
            for name, r in results.items():
                if name != "ours":
                    ours = results["ours"]
                    if name == "duckdb":
                        met = ours["total_s"] <= r["total_s"]
                        print(f"target (ours no slower than DuckDB with all threads): "
                              f"{'MET' if met else 'NOT MET'} ({ours['total_s']:.2f} s vs {r['total_s']:.2f} s)")
                    print(f"time {name} / ours: total {r['total_s'] / ours['total_s']:.2f}, "
                          f"parse {r['parse_s'] / ours['parse_s']:.2f}, match {r['match_s'] / ours['match_s']:.2f} "
                          f"(above 1: ours faster)")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
