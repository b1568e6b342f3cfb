"""The simulator (``sim/``): simulated orders per second on one core, with the default faults and
without any, and what a step costs; each run is one seed's world, checkout to settlement."""
from __future__ import annotations

import time

from bench.common import row

ORDERS = 1000


def _measure(faults: str) -> tuple[float, float, object]:
    from sim.runner import Simulation

    simulation = Simulation(1, ORDERS, faults=faults, stop_on_first=False)
    wall, cpu = time.perf_counter(), time.process_time()
    result = simulation.run()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    print(f"Simulator: {ORDERS} orders of seed 1, every invariant checked after every step")
    for faults in ("default", "none"):
        wall, cpu, result = _measure(faults)
        row(f"faults {faults}: simulated orders per second (CPU time)", f"{result.orders / cpu:.0f} orders/s")
        row(f"faults {faults}: steps, faults injected, violations", f"{result.steps}, {result.faults}, "
                                                                   f"{len(result.violations)}")
        row(f"faults {faults}: CPU per order, per step", f"{cpu / result.orders * 1000:.1f} ms, "
                                                        f"{cpu / result.steps * 1e6:.0f} us")
        row(f"faults {faults}: wall time", f"{wall:.1f} s")
