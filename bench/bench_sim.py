"""The simulator (``sim/``): simulated orders per second on one core, with the default faults and
without any, what a step costs, and what that rate means for a 1,000,000-order run (``make sim
ORDERS=1000000 JOBS=2``: two worlds of 500,000 orders, one process each). Each run is one seed's
world, checkout to settlement. Figures are CPU time of this process (the machine's load average is
printed beside them: under load the wall time is longer, and other processes' cache traffic makes
the CPU time a little longer too)."""
from __future__ import annotations

import os
import time

from bench.common import row

ORDERS = 1000
MILLION = 1_000_000
JOBS = 2


def _measure(faults: str) -> tuple[float, float, object]:
    from sim.runner import Simulation

    simulation = Simulation(1, ORDERS, faults=faults, stop_on_first=False)
    wall, cpu = time.perf_counter(), time.process_time()
    result = simulation.run()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    print(f"Simulator: {ORDERS} orders of seed 1, every invariant checked after every step")
    for faults in ("default", "none"):
        load = os.getloadavg()[0]
        wall, cpu, result = _measure(faults)
        rate = result.orders / cpu
        row(f"faults {faults}: simulated orders per second (CPU time)", f"{rate:.0f} orders/s")
        row(f"faults {faults}: steps, faults injected, violations", f"{result.steps}, {result.faults}, "
                                                                   f"{len(result.violations)}")
        row(f"faults {faults}: CPU per order, per step", f"{cpu / result.orders * 1000:.1f} ms, "
                                                        f"{cpu / result.steps * 1e6:.0f} us")
        row(f"faults {faults}: wall time (load average {load:.1f} at the start)", f"{wall:.1f} s")
        if faults == "default":
            # Each world of a split run is one process: on idle cores the run takes one world's CPU time.
            row(f"faults default: {MILLION:,} orders in {JOBS} worlds on {JOBS} idle cores, at this rate",
                f"{MILLION / JOBS / rate / 60:.0f} min")
