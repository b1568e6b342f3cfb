"""FX errors. Each subclasses a kind from ``chalicelib.errors``, so the API layer's
one error table maps them by class; the ``code`` is the stable string clients see.
"""
from __future__ import annotations

from chalicelib.errors import BusinessRuleViolation, Conflict, NotFound, ProviderUnavailable


class QuoteNotFound(NotFound):
    """No quote has this id (HTTP 404, code ``not_found``)."""

    code = "not_found"


class QuoteExpired(BusinessRuleViolation):
    """The quote's ``expires_at`` has passed before it was consumed (HTTP 422, code ``quote_expired``)."""

    code = "quote_expired"


class QuoteAlreadyUsed(BusinessRuleViolation):
    """The quote was already consumed by a different consumer (HTTP 422, code ``quote_already_used``)."""

    code = "quote_already_used"


class QuoteIdConflict(Conflict):
    """A quote with this explicit id exists but was asked for different currencies or amounts
    (HTTP 409, code ``quote_exists_with_different_fields``)."""

    code = "quote_exists_with_different_fields"


class RateUnavailable(ProviderUnavailable):
    """The rate source has no rate for a currency the platform trades (code ``rate_unavailable``)."""

    code = "rate_unavailable"


class RateSourceUnavailable(ProviderUnavailable):
    """The live rate source failed, timed out or kept answering errors after its retries
    (code ``rate_source_unavailable``); a later retry may help."""

    code = "rate_source_unavailable"


class InvalidRates(ProviderUnavailable):
    """A rates payload (snapshot file or HTTP answer) is malformed: missing fields, a rate
    that is not a positive decimal string, a naive or unparsable ``as_of`` (code ``invalid_rates``)."""

    code = "invalid_rates"
