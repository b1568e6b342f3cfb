"""``python -m sim --seed 1 --orders 10000``: one simulated run; exit status 1 on a violation.

Prints progress, then a summary, then exactly one last line:
``sim: seed S, orders N, steps K, faults F, violations V, <time> s``.
"""
from __future__ import annotations

import argparse
import hashlib
import sys


def main(argv: list[str] | None = None) -> int:
    import time

    from sim.faults import PROFILES
    from sim.plants import PLANTS
    from sim.runner import run, shard_seed

    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--faults", choices=sorted(PROFILES), default="default", help="fault profile (default: default)")
    parser.add_argument("--trace", metavar="FILE", help="write every step's trace lines to FILE")
    parser.add_argument("--keep-going", action="store_true", help="count every violation instead of stopping at the first")
    parser.add_argument("--until-step", type=int, help="stop after this step (replaying up to a violation)")
    parser.add_argument("--plant", choices=sorted(PLANTS), help="run with a deliberately planted bug")
    parser.add_argument("--interarrival", type=float, default=20.0, help="mean seconds of virtual time between checkouts")
    parser.add_argument("--jobs", type=int, default=1,
                        help="split the orders over this many independent worlds, one process each (seeds derived from --seed)")
    parser.add_argument("--shard", type=int, action="append",
                        help="run only this world of --jobs (1-based; a replay), may repeat")
    parser.add_argument("--strict", action="store_true", help="count the known bugs (sim/known.py) as violations")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    if args.jobs < 1 or any(not 1 <= k <= args.jobs for k in args.shard or ()):
        parser.error("--shard must be between 1 and --jobs")

    started = time.perf_counter()
    results = run(args.seed, args.orders, jobs=args.jobs, shards=[k - 1 for k in args.shard] if args.shard else None,
                  faults=args.faults, trace=args.trace, stop_on_first=not args.keep_going,
                  interarrival=args.interarrival, progress=not args.quiet, until_step=args.until_step, plant=args.plant,
                  strict=args.strict)
    elapsed = time.perf_counter() - started
    shards = [k - 1 for k in args.shard] if args.shard else list(range(args.jobs))
    violations = 0
    for shard, result in zip(shards, results):
        where = f" (world {shard + 1}/{args.jobs}, seed {shard_seed(args.seed, shard, args.jobs)})" if args.jobs > 1 else ""
        for violation in result.violations[:20]:
            print(f"VIOLATION seed {args.seed}{where}, step {violation.step}: {violation.message}")
        if result.violations:
            first = result.violations[0]
            replay = (f"{sys.executable} -m sim --seed {args.seed} --orders {args.orders} --faults {args.faults}"
                      f"{' --strict' if args.strict else ''}"
                      f"{f' --jobs {args.jobs} --shard {shard + 1}' if args.jobs > 1 else ''}"
                      f"{' --plant ' + args.plant if args.plant else ''} --until-step {first.step}"
                      f" --trace sim-{args.seed}.trace")
            print(f"replay: {replay}")
        violations += len(result.violations)
    statuses: dict[str, int] = {}
    faults: dict[str, int] = {}
    for result in results:
        for k, v in result.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
        for k, v in result.fault_counts.items():
            faults[k] = faults.get(k, 0) + v
    fingerprint = hashlib.sha256("".join(r.trace_sha256 for r in results).encode()).hexdigest()
    print(f"ended: {', '.join(f'{k} {v}' for k, v in sorted(statuses.items())) or 'none'}; "
          f"operator cases {sum(r.operator_cases for r in results)}; trace sha256 {fingerprint[:16]}")
    known: dict[str, int] = {}
    for result in results:
        for k, v in result.known.items():
            known[k] = known.get(k, 0) + v
    if known:
        print("known bugs (sim/known.py, not counted; --strict counts them): "
              + ", ".join(f"{k} {v}" for k, v in sorted(known.items())))
        for shard, result in zip(shards, results):
            for tag, example in sorted(result.known_examples.items()):
                where = f" --jobs {args.jobs} --shard {shard + 1}" if args.jobs > 1 else ""
                print(f"  {tag}: first at step {example.step}{f' of world {shard + 1}' if where else ''} "
                      f"(--seed {args.seed} --orders {args.orders}{where} --until-step {example.step}): "
                      f"{example.message[:220]}")
    top = sorted(faults.items(), key=lambda kv: (-kv[1], kv[0]))
    print("faults: " + (", ".join(f"{k} {v}" for k, v in top) or "none"))
    print(f"sim: seed {args.seed}, orders {sum(r.orders for r in results)}, steps {sum(r.steps for r in results)}, "
          f"faults {sum(r.faults for r in results)}, violations {violations}, {elapsed:.1f} s")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
