"""What CI runs of the simulator: a couple of thousand orders under the default faults, a few hundred under
heavy ones, and the known bugs (sim/known.py), each a test that fails once the bug is fixed (then delete its
entry)."""
import pytest

from sim.known import KNOWN_BUGS
from sim.runner import Simulation

RUNS = ((1, 2000, "default"), (2, 600, "heavy"))  # (seed, orders, fault profile)


@pytest.fixture(scope="module")
def long_runs():
    return {(seed, faults): Simulation(seed, orders, faults=faults, stop_on_first=False).run()
            for seed, orders, faults in RUNS}


@pytest.mark.parametrize("seed,orders,faults", RUNS)
def test_thousands_of_orders_under_faults_break_no_invariant(long_runs, seed, orders, faults):
    result = long_runs[(seed, faults)]
    assert [v.message for v in result.violations] == []
    assert result.orders == orders
    assert sum(result.statuses.values()) >= orders * 0.98
    assert {"settled", "refunded", "payout_failed", "manual_review"} <= set(result.statuses)


def test_each_known_bug_names_a_run_that_shows_it():
    assert {(bug.seed, bug.orders) for bug in KNOWN_BUGS.values()} <= {(seed, orders) for seed, orders, _ in RUNS}


@pytest.mark.parametrize("bug", sorted(KNOWN_BUGS))
@pytest.mark.xfail(strict=True, reason="a known bug (sim/known.py): this test passes once it is fixed; then delete "
                                       "its entry from KNOWN_BUGS")
def test_the_known_bug_no_longer_shows(long_runs, bug):
    found = {key: result.known.get(bug, 0) for key, result in long_runs.items()}
    assert sum(found.values()) == 0, f"{bug}: {found} ({KNOWN_BUGS[bug].summary[:120]}...)"
