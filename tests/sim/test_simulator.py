"""The simulator: clean runs stay clean, one seed replays byte for byte, planted bugs are caught
within a fixed number of seeds, and a violation names the step that replays it."""
import hashlib
import io

import pytest

from sim.plants import PLANTS, planted
from sim.runner import Simulation, run


def simulate(seed, orders, **kwargs):
    trace = io.StringIO()
    result = Simulation(seed, orders, trace_file=trace, **kwargs).run()
    return result, trace.getvalue()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_short_run_under_faults_breaks_no_invariant(seed):
    result, _ = simulate(seed, 300)
    assert result.violations == [], result.violations[0].message
    assert result.orders == 300
    assert sum(result.statuses.values()) >= 290  # (a few end in a known bug: sim/known.py)
    assert result.faults > 50  # it was not a fair-weather run


def test_a_replay_of_a_seed_reproduces_its_trace_byte_for_byte():
    first, first_trace = simulate(7, 100)
    second, second_trace = simulate(7, 100)
    assert first_trace == second_trace
    assert first_trace.count("\n") > 1000
    assert first.trace_sha256 == second.trace_sha256 == hashlib.sha256(first_trace.encode()).hexdigest()
    _, other_trace = simulate(8, 100)
    assert other_trace != first_trace


PLANT_SYMPTOMS = {
    # A second release is refused by the ledger or, where the seller's balance could cover it, is caught
    # by the settlement check (which one comes first depends on the trajectory).
    "release-not-idempotent": ("asked the ledger to move money again", "credited for a payout of"),
    "payment-not-idempotent": "entered escrow as",
    "unknown-is-failed": "but the provider paid it or will",
}


@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_a_planted_bug_is_caught_within_five_seeds(plant):
    caught = None
    with planted(plant):
        for seed in range(1, 6):
            result, _ = simulate(seed, 200)
            if result.violations:
                caught = (seed, result.violations[0])
                break
    assert caught is not None, f"{plant} went unnoticed for 5 seeds"
    symptoms = PLANT_SYMPTOMS[plant]
    assert any(symptom in caught[1].message for symptom in ((symptoms,) if isinstance(symptoms, str) else symptoms))


def test_a_violation_names_the_step_that_replays_it():
    with planted("release-not-idempotent"):
        result, trace = simulate(1, 200)
    violation = result.violations[0]
    with planted("release-not-idempotent"):
        replayed, replay_trace = simulate(1, 200, until_step=violation.step)
    assert [(v.step, v.message) for v in replayed.violations] == [(violation.step, violation.message)]
    assert replay_trace == trace


def test_known_bugs_count_as_violations_when_strict():
    from sim.known import KNOWN_BUGS

    if not KNOWN_BUGS:
        pytest.skip("no known bug left to count")
    bug = next(iter(KNOWN_BUGS.values()))
    strict, _ = simulate(bug.seed, bug.orders, faults=bug.faults, stop_on_first=False, strict=True)
    assert strict.violations, f"seed {bug.seed} is expected to meet {bug.id}"
    assert {v.tag for v in strict.violations} <= set(KNOWN_BUGS)
    assert strict.known == {}


def test_worlds_of_a_split_run_are_the_same_run_alone_or_side_by_side():
    side_by_side = run(4, 120, jobs=2)
    alone = run(4, 120, jobs=2, shards=[1])
    assert [r.orders for r in side_by_side] == [60, 60]
    assert alone[0].trace_sha256 == side_by_side[1].trace_sha256
    assert side_by_side[0].trace_sha256 != side_by_side[1].trace_sha256


def test_the_command_ends_with_one_summary_line_and_fails_on_a_violation(capsys):
    from sim.__main__ import main

    assert main(["--seed", "2", "--orders", "40", "--quiet"]) == 0
    clean = capsys.readouterr().out.strip().splitlines()
    assert clean[-1].startswith("sim: seed 2, orders 40, steps ") and clean[-1].endswith(" s")
    assert ", violations 0, " in clean[-1]
    assert main(["--seed", "1", "--orders", "200", "--quiet", "--plant", "release-not-idempotent"]) == 1
    planted_out = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("VIOLATION seed 1, step ") for line in planted_out)
    assert any(line.startswith("replay: ") and "--until-step" in line for line in planted_out)
    assert ", violations 1, " in planted_out[-1]
