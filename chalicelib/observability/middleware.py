"""Chalice middleware for the non-HTTP functions: each workflow task and scheduled function runs
in its own log scope and ends with one JSON line saying how it went.

Registered in ``app.py`` for ``pure_lambda`` (the Step Functions tasks) and ``scheduled``
(EventBridge) events. The scope carries the Lambda request id (``context.aws_request_id``),
the function's name (``manual_review``, from ``mizani-<stage>-manual_review``) and the ids the
event names (``order_id``, ``payout_id``, ``reconciliation_id``, ``dispute_id``), so every line the
task's code logs carries them too. A ``manual_review`` task that left its order in manual review counts one ``ManualReviews``.
HTTP requests get theirs in ``api.routing`` (it knows the request id and the path's ids).
"""
from __future__ import annotations

import logging
import time

from chalicelib.observability.logs import install, scope

log = logging.getLogger("mizani.tasks")

#: Ids a task's event may carry at its top level (the state machines' Payloads).
EVENT_IDS = ("order_id", "payout_id", "reconciliation_id", "dispute_id")


def function_name(context) -> str | None:
    """The app's name of the function: ``mizani-dev-settle`` -> ``settle`` (Chalice names the
    Lambda ``<app>-<stage>-<name>``; the sandbox ``<prefix>-<name>``; names have no dash)."""
    name = getattr(context, "function_name", None)
    return name.rsplit("-", 1)[-1] if isinstance(name, str) and name else None


def ids_of(event) -> dict[str, str]:
    data = event.to_dict() if hasattr(event, "to_dict") else event
    if not isinstance(data, dict):
        return {}
    return {k: data[k] for k in EVENT_IDS if isinstance(data.get(k), str) and data[k]}


def task_scope(event, get_response):
    """The middleware: scope, run, one closing line (``task`` with ``outcome`` and ``ms``)."""
    install()
    context = getattr(event, "context", None)
    name = function_name(context)
    started = time.perf_counter()
    with scope(request_id=getattr(context, "aws_request_id", None), function=name, **ids_of(event)):
        try:
            result = get_response(event)
        except Exception as error:
            # the runtime reports the exception to Step Functions / EventBridge; the line says which
            log.info("task", extra={"outcome": "error", "error": type(error).__name__,
                                    "ms": round((time.perf_counter() - started) * 1000, 1)})
            raise
        if name == "manual_review" and isinstance(result, dict) and result.get("status") == "manual_review":
            # not an order the review found already over (its execution ends where the order ended)
            from chalicelib.observability import metrics

            metrics.manual_review()
        log.info("task", extra={"outcome": "ok", "ms": round((time.perf_counter() - started) * 1000, 1)})
        return result
