"""What CI runs of the simulator: a few seeds of a couple of thousand orders each, and the known bugs
(sim/known.py), each a test that fails once the bug is fixed (then delete its entry)."""
import pytest

from sim.known import KNOWN_BUGS
from sim.runner import Simulation

SEEDS = (1, 2)
ORDERS = 2000


@pytest.fixture(scope="module")
def long_runs():
    return {seed: Simulation(seed, ORDERS, stop_on_first=False).run() for seed in SEEDS}


@pytest.mark.parametrize("seed", SEEDS)
def test_a_few_thousand_orders_under_faults_break_no_invariant(long_runs, seed):
    result = long_runs[seed]
    assert [v.message for v in result.violations] == []
    assert result.orders == ORDERS
    assert sum(result.statuses.values()) >= ORDERS * 0.99
    assert {"settled", "refunded", "payout_failed", "manual_review"} <= set(result.statuses)


@pytest.mark.parametrize("bug", sorted(KNOWN_BUGS))
@pytest.mark.xfail(strict=True, reason="a known bug (sim/known.py): this test passes once it is fixed; then delete "
                                       "its entry from KNOWN_BUGS")
def test_the_known_bug_no_longer_shows(long_runs, bug):
    found = {seed: result.known.get(bug, 0) for seed, result in long_runs.items()}
    assert sum(found.values()) == 0, f"{bug}: {found} ({KNOWN_BUGS[bug].summary[:120]}...)"
