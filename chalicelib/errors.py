"""Domain errors with stable snake_case codes.

Raised in the domain, translated to HTTP in exactly one place
(``chalicelib.api.errors``). Nothing here knows about HTTP; each class only says
what kind of failure it is, and the API layer maps the kind to a status.
"""
from __future__ import annotations


class MizaniError(Exception):
    """Base of every domain error: a stable ``code``, a human ``message``, and whether a retry of
    the same request may succeed (``retryable``: read by the HTTP mapping, which tells the client,
    and by the workflow tasks, which let Step Functions retry instead of going to review)."""

    code = "error"
    retryable = False

    def __init__(self, code: str | None = None, message: str = "", **detail):
        self.code = code or self.code
        self.message = message or self.code.replace("_", " ")
        self.detail = detail
        super().__init__(f"{self.code}: {self.message}")


class ValidationError(MizaniError):
    """The input is malformed or invalid (HTTP 400). ``path`` names the offending field."""

    code = "validation_error"

    def __init__(self, code: str | None = None, message: str = "", path: str | None = None, **detail):
        super().__init__(code, message, **detail)
        self.path = path


class UnsupportedMediaType(MizaniError):
    """A JSON route was sent a body of another media type (HTTP 415)."""

    code = "unsupported_media_type"


class NotFound(MizaniError):
    """The object does not exist, or it is not the caller's (HTTP 404)."""

    code = "not_found"


class InvalidState(MizaniError):
    """The object is not in a state that allows this action (HTTP 409)."""

    code = "invalid_state"


class Conflict(MizaniError):
    """A concurrent request holds the same key, or the data is already another's (HTTP 409)."""

    code = "request_in_progress"


class BusinessRuleViolation(MizaniError):
    """A well-formed request that a business rule refuses: expired quote, insufficient funds (HTTP 422)."""

    code = "business_rule_violation"


class InvalidSignature(MizaniError):
    """A webhook signature is missing, wrong, stale or from the future (HTTP 400)."""

    code = "invalid_signature"


class Unauthorized(MizaniError):
    """No token, or a token that does not verify (HTTP 401)."""

    code = "unauthorized"


class Forbidden(MizaniError):
    """The caller's role may not use this route (HTTP 403)."""

    code = "forbidden"


class NotConfigured(MizaniError):
    """This stage is not configured to serve safely (a secret missing, or left at its public local
    default, outside the local stage): every request is refused until an operator fixes it (HTTP 503)."""

    code = "not_configured"


class ProviderUnavailable(MizaniError):
    """An outside provider failed or timed out; a retry may help (HTTP 502/503, ``retryable``)."""

    code = "provider_unavailable"
    retryable = True
