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


KNOWN_BUGS: dict[str, KnownBug] = {bug.id: bug for bug in (
    KnownBug(
        "asl-poll-budget-without-error",
        "infra/escrow.asl.json (PayoutFinal? -> ManualReview)",
        "after 500 CheckPayout polls the Choice goes to ManualReview, whose Parameters read $.error, which nothing "
        "set on that path: States.Runtime fails the execution (neither retried nor caught) and the order stays "
        "payout_pending for good, its payout reserved, no operator told. A payout deferred by the wallet's daily "
        "limit (sent after midnight), held for a payee review, or lost on M-Pesa reaches the 500th poll (8 h 20 min "
        "at 60 s).",
        seed=1, orders=2000,
    ),
    KnownBug(
        "same-currency-release-credits-pay-less-fee",
        "chalicelib/escrow/service.py (EscrowService.release_escrow)",
        "when the buyer pays in the seller's payout currency (a KES buyer, an M-Pesa seller) but the listing is in "
        "another (USD), the release moves pay - fee to the seller instead of the guaranteed payout: the seller's "
        "balance gets the FX spread of both quotes (about 1 %) on top of what was guaranteed, and the platform's FX "
        "revenue is given away; with every currency the same, the whole-unit rounding remainder goes to the seller.",
        seed=1, orders=2000,
    ),
    KnownBug(
        "checkout-without-payment-link",
        "chalicelib/escrow/service.py (EscrowService.create_order)",
        "the order, its buyer index and pi#<intent> are three writes in one try whose DocumentExists is swallowed, "
        "and a client retry that finds the order returns it at once: when the invocation dies or is throttled "
        "after the order's write and before pi#<intent>'s, that link is never written. The card is charged, "
        "Stripe's payment_intent.succeeded gets 404 for three days, the money never reaches escrow and the order "
        "stays awaiting_payment.",
        seed=2, orders=600,
    ),
    KnownBug(
        "task-fails-after-its-terminal-write",
        "chalicelib/escrow/service.py (finish_payout, refund, manual_review) with infra/escrow.asl.json",
        "Settle, PayoutFailed and Refund write the order's terminal status and then queue the seller's SMS; when "
        "the outbox write is throttled past botocore's retries or the invocation times out after the status "
        "write, the task fails, the Catch sends it to ManualReview, and manual_review() leaves a settled or "
        "refunded order as it is (the execution ends failed, an operator is paged for an order that is done, and "
        "the seller's SMS may never be queued) or moves a payout_failed order on to manual_review (two terminal "
        "statuses).",
        seed=1, orders=2000,
    ),
)}
