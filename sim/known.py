"""Bugs the simulator has found in the code under test and that are not fixed yet.

A violation the checker can attribute to one of these (its ``tag``) is counted under the bug's
id and printed as ``known``, not as a new violation, so the runs keep looking for new ones
while the owners fix these. ``--strict`` counts them as violations again. Each bug has a test
(tests/sim/test_known_bugs.py) that fails once the bug is gone, so this list cannot go stale:
when it fails, delete the entry.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownBug:
    """One open bug: where it lives, what it does, and how to see it."""

    id: str
    where: str
    summary: str
    seed: int  # a seed that shows it, with ``orders`` orders (tests/sim/test_long_runs.py runs them)
    orders: int
    faults: str = "default"  # the fault profile of that run


KNOWN_BUGS: dict[str, KnownBug] = {bug.id: bug for bug in (
    KnownBug(
        "task-fails-after-its-terminal-write",
        "infra/escrow.asl.json (Catch -> ManualReview -> AwaitingOperator) with the simulator's faults",
        "narrowed by 068cfc0 (SMS are queued before the terminal status and sent by a drain that cannot fail the "
        "task; ManualReview leaves a finished order as it is): what is left is a Settle, PayoutFailed or Refund "
        "whose own terminal write committed and whose invocation then failed in a way the task's Retry does not "
        "cover (here the simulator's throttling, raised as its own exception class rather than botocore's "
        "ClientError, which the tasks now retry). The order and its money are right; the execution ends at "
        "AwaitingOperator, so an operator is paged for an order that is done.",
        seed=1, orders=2000, faults="default",  # seed 2 (600, heavy) until money and status became one write
    ),
)}
