"""Domain errors to HTTP, in exactly one table.

``chalicelib.errors`` says what kind of failure happened; this module alone says
which HTTP status and which wire code that kind becomes. The error body is always

    {"error": {"code", "message", "request_id", "fields"?: [{"path", "message"}], "retryable"?, "methods"?}}

(``methods``: on ``limit_exceeded`` at checkout, the payment methods that can take the amount.)

Anything that is not a ``MizaniError`` is a bug: it becomes ``500 internal_error``
with no detail in the body; the traceback goes to the log under the request id.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from chalicelib.errors import (
    BusinessRuleViolation,
    Conflict,
    Forbidden,
    InvalidSignature,
    InvalidState,
    MizaniError,
    NotConfigured,
    NotFound,
    ProviderUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    ValidationError,
)

logger = logging.getLogger("mizani.api")

#: The table. Looked up along the exception's MRO, so a subclass (the ledger's
#: ``LedgerRejected`` is a ``BusinessRuleViolation``) maps like its base unless listed itself.
STATUS_BY_ERROR: dict[type[MizaniError], int] = {
    ValidationError: 400,
    InvalidSignature: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    UnsupportedMediaType: 415,
    InvalidState: 409,
    Conflict: 409,
    BusinessRuleViolation: 422,
    ProviderUnavailable: 503,
    NotConfigured: 503,
}


#: Domain codes renamed on the wire, so clients see one stable vocabulary
#: (the ledger says ``exceeds_credits``; a client understands ``insufficient_funds``).
WIRE_CODES: dict[str, str] = {
    "exceeds_credits": "insufficient_funds",
}

INTERNAL_ERROR_MESSAGE = "An internal error occurred. Quote the request_id when you contact support."


@dataclass(frozen=True)
class HttpError:
    """An error ready for the wire: status code, body, and extra headers."""

    status: int
    body: dict
    headers: dict

    @property
    def code(self) -> str:
        return self.body["error"]["code"]


def status_for(error: BaseException) -> int:
    """HTTP status of ``error`` per the table; 500 for anything the table does not know."""
    for kind in type(error).__mro__:
        status = STATUS_BY_ERROR.get(kind)  # type: ignore[arg-type]
        if status is not None:
            return status
    return 500


def wire_code(error: MizaniError) -> str:
    return WIRE_CODES.get(error.code, error.code)


def error_body(
    code: str,
    message: str,
    request_id: str,
    fields: list[dict] | None = None,
    retryable: bool | None = None,
    methods: list[str] | None = None,
) -> dict:
    """The one error envelope; optional members appear only when they say something."""
    error: dict = {"code": code, "message": message, "request_id": request_id}
    if fields:
        error["fields"] = [{"path": str(f["path"]), "message": str(f["message"])} for f in fields]
    if retryable is not None:
        error["retryable"] = retryable
    if methods:
        error["methods"] = [str(m) for m in methods]
    return {"error": error}


def _fields_of(error: MizaniError) -> list[dict] | None:
    fields = error.detail.get("fields")
    if fields:
        return list(fields)
    path = getattr(error, "path", None)
    if path:
        return [{"path": path, "message": error.message}]
    return None


def to_http(error: BaseException, request_id: str) -> HttpError:
    """Translate any exception raised while serving a request into its HTTP reply."""
    status = status_for(error)
    if status == 500 or not isinstance(error, MizaniError):
        # A bug, not a domain outcome: log everything, tell the client nothing but the id.
        logger.error("unhandled error request_id=%s", request_id, exc_info=error)
        return HttpError(500, error_body("internal_error", INTERNAL_ERROR_MESSAGE, request_id), {})
    retryable = True if error.retryable else None  # the error says so itself (MizaniError.retryable)
    headers: dict = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status >= 500 and not isinstance(error, NotConfigured):  # that one is logged once, where it is found
        logger.warning("provider trouble request_id=%s code=%s: %s", request_id, error.code, error.message)
    body = error_body(wire_code(error), error.message, request_id, fields=_fields_of(error), retryable=retryable,
                      methods=error.detail.get("methods"))
    return HttpError(status, body, headers)
