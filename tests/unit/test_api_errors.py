"""The one table from domain errors to HTTP, and the error envelope."""
import json
import logging

import pytest

from chalicelib.api.errors import STATUS_BY_ERROR, error_body, status_for, to_http
from chalicelib.errors import (
    BusinessRuleViolation,
    Conflict,
    Forbidden,
    InvalidSignature,
    InvalidState,
    NotFound,
    ProviderUnavailable,
    Unauthorized,
    ValidationError,
)
from chalicelib.fx.errors import QuoteExpired, RateSourceUnavailable
from chalicelib.ledger import LedgerRejected, Result


@pytest.mark.parametrize(
    "error, status, code",
    [
        (ValidationError("validation_error", "bad"), 400, "validation_error"),
        (InvalidSignature(message="stale"), 400, "invalid_signature"),
        (Unauthorized(message="no token"), 401, "unauthorized"),
        (Forbidden(message="nope"), 403, "forbidden"),
        (NotFound(message="no such order"), 404, "not_found"),
        (InvalidState(message="not shipped"), 409, "invalid_state"),
        (Conflict("request_in_progress", "busy"), 409, "request_in_progress"),
        (BusinessRuleViolation("limit_exceeded", "too much"), 422, "limit_exceeded"),
        (QuoteExpired(message="too late"), 422, "quote_expired"),
        (ProviderUnavailable(message="MoMo is down"), 503, "provider_unavailable"),
    ],
)
def test_each_kind_of_domain_error_has_its_status_and_keeps_its_code(error, status, code):
    http = to_http(error, "req-1")
    assert http.status == status
    assert http.body["error"]["code"] == code
    assert http.body["error"]["message"] == error.message
    assert http.body["error"]["request_id"] == "req-1"


def test_the_table_covers_every_kind_in_chalicelib_errors():
    import chalicelib.errors as kinds

    declared = {
        obj for obj in vars(kinds).values() if isinstance(obj, type) and issubclass(obj, kinds.MizaniError)
    } - {kinds.MizaniError}
    assert declared == set(STATUS_BY_ERROR)


def test_a_ledger_refusal_for_lack_of_credits_reads_insufficient_funds():
    http = to_http(LedgerRejected(Result.EXCEEDS_CREDITS, "payout:p1"), "req-2")
    assert http.status == 422
    assert http.body["error"]["code"] == "insufficient_funds"


def test_other_ledger_refusals_keep_the_ledger_code_as_422():
    http = to_http(LedgerRejected(Result.DEBIT_ACCOUNT_NOT_FOUND, "t1"), "req-3")
    assert (http.status, http.code) == (422, "debit_account_not_found")


def test_provider_trouble_is_503_and_says_a_retry_may_help():
    for error in (ProviderUnavailable(message="down"), RateSourceUnavailable(message="rates down")):
        http = to_http(error, "req-4")
        assert http.status == 503
        assert http.body["error"]["retryable"] is True


def test_only_provider_trouble_carries_retryable():
    assert "retryable" not in to_http(NotFound(message="x"), "r").body["error"]


def test_a_validation_error_with_a_path_lists_the_field():
    http = to_http(ValidationError("unsupported_currency", "JPY is not traded", path="currency"), "req-5")
    assert http.body == {
        "error": {
            "code": "unsupported_currency",
            "message": "JPY is not traded",
            "request_id": "req-5",
            "fields": [{"path": "currency", "message": "JPY is not traded"}],
        }
    }


def test_a_validation_error_may_list_several_fields():
    fields = [{"path": "a", "message": "m1"}, {"path": "b.0", "message": "m2"}]
    http = to_http(ValidationError("validation_error", "see fields", fields=fields), "r")
    assert http.body["error"]["fields"] == fields


def test_unauthorized_asks_for_a_bearer_token():
    assert to_http(Unauthorized(message="x"), "r").headers == {"WWW-Authenticate": "Bearer"}


def test_an_unexpected_exception_is_a_500_that_leaks_nothing_but_is_logged(caplog):
    try:
        raise KeyError("secret_table_name")
    except KeyError as exc:
        with caplog.at_level(logging.ERROR, logger="mizani.api"):
            http = to_http(exc, "req-6")
    assert http.status == 500
    assert set(http.body["error"]) == {"code", "message", "request_id"}
    assert http.body["error"]["code"] == "internal_error"
    assert "secret_table_name" not in json.dumps(http.body)
    assert "Traceback" not in json.dumps(http.body)
    assert "req-6" in caplog.text and "secret_table_name" in caplog.text


def test_status_for_an_unknown_exception_is_500():
    assert status_for(RuntimeError("x")) == 500


def test_error_body_has_exactly_the_envelope_members():
    assert error_body("not_found", "no such order", "r1") == {
        "error": {"code": "not_found", "message": "no such order", "request_id": "r1"}
    }
