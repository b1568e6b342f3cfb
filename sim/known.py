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


#: Fixed, and so gone from here: ``task-fails-after-its-terminal-write`` (a Settle, PayoutFailed or
#: Refund whose terminal write committed before its invocation failed ended the execution at
#: AwaitingOperator, paging an operator for an order that was done; the escrow workflow's
#: ``AlreadyOver?`` choice now ends it where the order ended).
KNOWN_BUGS: dict[str, KnownBug] = {}
