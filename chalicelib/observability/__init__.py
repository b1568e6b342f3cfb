"""Structured logs and metrics: every log line one JSON object, every count a CloudWatch metric.

- ``logs``: the request's (or task's) keys in context (``scope``, ``bind``: request id, order
  id, payout id, ...), added to every record of the ``mizani.*`` loggers; on the first request
  or task, ``install`` swaps Chalice's text handler for AWS Lambda Powertools' JSON formatter,
  with a last line of defence that masks bearer tokens, Basic credentials and JWTs.
- ``metrics``: named counts (payouts by outcome, webhook duplicates, reconciliation breaks,
  manual reviews, USSD sessions) as CloudWatch Embedded Metric Format documents built by
  Powertools' EMF provider: printed to stdout in Lambda (CloudWatch turns them into metrics),
  a DEBUG log line in the local stage, a list with ``metrics.capture()`` in tests.
- ``middleware``: the Chalice middleware that gives each workflow task and scheduled
  function its scope (its Lambda request id, its name, the order / payout id of its event).

Powertools is imported only when the first line is logged or the first metric is emitted,
never by ``import app`` (cold start: ``make bench``).
"""
from chalicelib.observability.logs import bind, current, install, scope  # noqa: F401
