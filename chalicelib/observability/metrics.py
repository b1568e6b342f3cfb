"""Counts as CloudWatch metrics, in the Embedded Metric Format (EMF), built by Powertools.

Each ``count`` is one EMF document with its own dimensions (Powertools'
``AmazonCloudWatchEMFProvider``, a fresh one per count: no state shared between the threads
of the sandbox or the requests of a warm container, nothing to flush at the end). Where it goes:

- in Lambda (outside the ``local`` stage): one line on stdout, which CloudWatch Logs turns
  into the metric (namespace ``Mizani``, ``MIZANI_METRICS_NAMESPACE``);
- in the local stage: a DEBUG line of the ``mizani.metrics`` logger (``make run`` with
  ``MIZANI_LOG_LEVEL=DEBUG`` shows them; the demo stays quiet);
- inside ``capture()``: appended to the list it yields (tests), and nowhere else.

A metric must never break the money path: an error building or writing one is logged and
swallowed.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
from typing import Iterator

log = logging.getLogger("mizani.metrics")

NAMESPACE_DEFAULT = "Mizani"
SERVICE = "mizani"

#: The metrics Mizani emits, and the dimensions each carries.
PAYOUTS = "Payouts"  # outcome (succeeded | failed), rail
WEBHOOK_DUPLICATES = "WebhookDuplicates"  # webhook (the route's name)
RECONCILIATION_BREAKS = "ReconciliationBreaks"  # source, outcome (amount_mismatch | missing_* | duplicate)
MANUAL_REVIEWS = "ManualReviews"  # (none)
USSD_SESSIONS = "UssdSessions"  # (none)
#: A gauge, reported by the payout sweeper every minute (0 when none): payouts sent more than an hour
#: ago with no final answer from their rail. infra/alarms.py's PayoutsUnknownAlarm reads it.
PAYOUTS_UNKNOWN = "PayoutsUnknownOverAnHour"

_captures: list[list[dict]] = []
_captures_lock = threading.Lock()


def document(name: str, value: float = 1, **dimensions: str) -> dict:
    """The EMF document of one count of ``name`` with these dimensions."""
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.metric_properties import MetricUnit

    provider = AmazonCloudWatchEMFProvider(
        namespace=os.environ.get("MIZANI_METRICS_NAMESPACE") or NAMESPACE_DEFAULT, service=SERVICE,
        metric_set={}, dimension_set={}, metadata_set={})
    for key, dim in dimensions.items():
        provider.add_dimension(name=key, value=str(dim))
    provider.add_metric(name=name, unit=MetricUnit.Count, value=value)
    return provider.serialize_metric_set()


def count(name: str, value: float = 1, **dimensions: str) -> None:
    """Emit one count (see the module docstring for where it goes); never raises."""
    try:
        with _captures_lock:
            capturing = bool(_captures)
        if not capturing and _local() and not log.isEnabledFor(logging.DEBUG):
            return  # locally a metric is only a DEBUG line: not built when nothing would print it
        doc = document(name, value, **dimensions)
        with _captures_lock:
            if _captures:
                _captures[-1].append(doc)
                return
        if _local():
            log.debug("metric %s %s", name, json.dumps(doc, separators=(",", ":")))
        else:
            sys.stdout.write(json.dumps(doc, separators=(",", ":")) + "\n")
            sys.stdout.flush()
    except Exception:  # noqa: BLE001 - a metric never fails a payout or a request
        log.warning("metric %s not emitted", name, exc_info=True)


@contextlib.contextmanager
def capture() -> Iterator[list[dict]]:
    """Collect the EMF documents emitted inside the block (tests), instead of writing them."""
    got: list[dict] = []
    with _captures_lock:
        _captures.append(got)
    try:
        yield got
    finally:
        with _captures_lock:
            _captures.remove(got)


def counted(docs: list[dict], name: str, **dimensions: str) -> float:
    """The sum of ``name``'s values in ``docs`` whose dimensions include these (tests, checks)."""
    total = 0.0
    for doc in docs:
        if all(str(doc.get(k)) == str(v) for k, v in dimensions.items()):
            names = {m["Name"] for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
            if name in names:
                value = doc[name]  # EMF: the value, or a list of values
                total += sum(map(float, value)) if isinstance(value, list) else float(value)
    return total


def _local() -> bool:
    from chalicelib import settings

    return settings.get().is_local


# -- the named counts ---------------------------------------------------------------------------

def payout(outcome: str, rail: str) -> None:
    count(PAYOUTS, outcome=outcome, rail=rail or "unknown")


def webhook_duplicate(webhook: str) -> None:
    count(WEBHOOK_DUPLICATES, webhook=webhook)


def reconciliation_breaks(source: str, by_outcome: dict[str, int]) -> None:
    for outcome, n in sorted(by_outcome.items()):
        if n:
            count(RECONCILIATION_BREAKS, n, source=source, outcome=outcome)


def manual_review() -> None:
    count(MANUAL_REVIEWS)


def ussd_session() -> None:
    count(USSD_SESSIONS)


def payouts_unknown(n: int) -> None:
    count(PAYOUTS_UNKNOWN, n)
