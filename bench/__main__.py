"""``python -m bench``: run every ``bench/bench_*.py`` module's ``main()``, in name order.

``python -m bench ledger fx`` runs only ``bench_ledger`` and ``bench_fx``.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def modules(selected: list[str]) -> list[str]:
    found = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("bench_"))
    if selected:
        wanted = {s if s.startswith("bench_") else f"bench_{s}" for s in selected}
        unknown = wanted - set(found)
        if unknown:
            raise SystemExit(f"no such benchmark: {', '.join(sorted(unknown))} (have: {', '.join(found)})")
        found = [m for m in found if m in wanted]
    return found


def main(argv: list[str] | None = None) -> int:
    names = modules(sys.argv[1:] if argv is None else argv)
    if not names:
        print("no benchmarks yet (add bench/bench_<topic>.py with a main())")
        return 0
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        started = time.perf_counter()
        print(f"== {name} ==", flush=True)
        module.main()
        print(f"   ({name} took {time.perf_counter() - started:.1f} s)\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
