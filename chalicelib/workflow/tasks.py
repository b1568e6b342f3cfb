"""Bodies of the escrow workflow's task functions (``@app.lambda_function`` in app.py).

Each body is safe to run twice: the ledger ids and status steps it uses are
derived from the order. An exception's class name becomes the Step Functions
error name: ``TransientError`` is retried with backoff by the state machine,
anything else is caught and sent to ManualReview.
"""
from __future__ import annotations

import json
import logging

from chalicelib.errors import MizaniError

log = logging.getLogger("mizani.workflow")


class TransientError(Exception):
    """A retry may help: a provider is down or slow, or the ledger was contended."""


class CustomsClearedLate(Exception):
    """AwaitCustoms timed out, but customs had cleared the shipment first (its answer to the task token
    came after the timeout): the workflow releases the escrow instead of refunding (``Refund``'s Catch)."""


class OrderDisputed(Exception):
    """The buyer disputed the card payment: the workflow waits for the dispute (``AwaitDispute*``)
    and then runs this step again."""


def _escrow():
    from chalicelib import bootstrap

    return bootstrap.escrow()


def _payouts():
    from chalicelib import bootstrap

    return bootstrap.order_payouts()


#: DynamoDB / AWS answers a retry can fix (throttling, a conflicting transaction, a service hiccup).
_TRANSIENT_AWS_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "TransactionConflictException", "TransactionInProgressException",
    # A transaction cancelled by throttling or another transaction (the adapters handle their own
    # conditions' cancellations and never let those out): nothing was written.
    "TransactionCanceledException",
})


def _aws_trouble(error: Exception) -> bool:
    """A timeout or a dropped connection to AWS, or a throttling / conflict answer: worth a retry
    (Step Functions backs off), never a reason for ManualReview."""
    from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, HTTPClientError

    if isinstance(error, (BotoConnectionError, HTTPClientError)):
        return True  # ReadTimeoutError, ConnectTimeoutError, EndpointConnectionError, ConnectionClosedError
    if isinstance(error, ClientError):
        return error.response.get("Error", {}).get("Code") in _TRANSIENT_AWS_CODES
    return False


def transient_on_provider_trouble(fn):
    def wrapper(event, context=None):
        try:
            return fn(event)
        except MizaniError as error:
            if not error.retryable:  # the error's own word (MizaniError.retryable), as the HTTP mapping reads it
                raise
            log.warning("transient failure in %s: %s", fn.__name__, error)
            raise TransientError(str(error)) from error
        except Exception as error:
            if not _aws_trouble(error):
                raise
            log.warning("AWS trouble in %s: %s", fn.__name__, type(error).__name__)
            raise TransientError(f"{type(error).__name__}: {error}") from error

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def held_by_disputes(fn):
    """A step refused because the order is disputed (code ``disputed``) raises ``OrderDisputed``."""

    def wrapper(event, context=None):
        try:
            return fn(event)
        except MizaniError as error:
            if error.code == "disputed":
                raise OrderDisputed(str(error)) from error
            raise

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@transient_on_provider_trouble
def customs_wait(event: dict) -> dict:
    """AwaitCustoms: store the task token on the order; customs' webhook answers it."""
    _escrow().customs_wait(event["order_id"], event["task_token"])
    return {"order_id": event["order_id"], "waiting": True}


@held_by_disputes
@transient_on_provider_trouble
def release_escrow(event: dict) -> dict:
    order = _escrow().release_escrow(event["order_id"])
    return {"order_id": order["order_id"], "status": order["status"]}


@transient_on_provider_trouble
def start_payout(event: dict) -> dict:
    state = _payouts().start_for_order(event["order_id"])
    return {"order_id": event["order_id"], "state": state}


@transient_on_provider_trouble
def check_payout(event: dict) -> dict:
    state = _payouts().check_for_order(event["order_id"])
    return {"order_id": event["order_id"], "state": state, "checks": int(event.get("checks", 0)) + 1}


@transient_on_provider_trouble
def settle(event: dict) -> dict:
    order = _payouts().finish_for_order(event["order_id"], event["outcome"])
    return {"order_id": order["order_id"], "status": order["status"]}


@held_by_disputes
@transient_on_provider_trouble
def refund(event: dict) -> dict:
    error = (event.get("error") or {}).get("Error", "refund")
    reason = {"CustomsRejected": "customs rejected the shipment", "States.Timeout": "customs did not answer in time"}.get(
        error, error
    )
    if error == "States.Timeout":
        decided = _escrow().customs_timed_out(event["order_id"])
        if (decided.get("customs") or {}).get("outcome") == "cleared":
            raise CustomsClearedLate(f"order {event['order_id']}: customs cleared it before the timeout")
    order = _escrow().refund(event["order_id"], reason)
    return {"order_id": order["order_id"], "status": order["status"]}


@transient_on_provider_trouble
def dispute_wait(event: dict) -> dict:
    """AwaitDispute*: keep the task token on the order; the dispute's close answers it."""
    order = _escrow().dispute_wait(event["order_id"], event["task_token"])
    return {"order_id": event["order_id"], "status": order["status"]}


def _error_message(cause) -> str:
    """The message of a Step Functions error ``Cause``. A Lambda error's Cause is the function's
    error payload (``errorType``, ``errorMessage``, ``stackTrace``): keep only the message, since
    the note lands on the order's timeline, which the buyer and the seller read."""
    if isinstance(cause, str):
        try:
            payload = json.loads(cause)
        except ValueError:
            return cause
        if isinstance(payload, dict) and "errorMessage" in payload:
            return str(payload["errorMessage"])
    return str(cause or "")


def manual_review(event: dict, context=None) -> dict:
    error = event.get("error") or {}
    cause = f"{error.get('Error', 'unexpected')}: {_error_message(error.get('Cause'))[:300]}"
    order = _payouts().review(event["order_id"], cause)
    return {"order_id": order["order_id"], "status": order["status"]}
