"""Bodies an attacker sends: each is a clear 400 with a stable code, never a 500."""
import pytest

from chalicelib.api.routing import parse_json_object
from chalicelib.errors import ValidationError
from chalicelib.payouts.rails import airtel, momo, mpesa

DEEP_ARRAY = b"[" * 50_000 + b"]" * 50_000
DEEP_OBJECT = b'{"a":' * 50_000 + b"1" + b"}" * 50_000


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
@pytest.mark.parametrize("parse", [momo.parse_callback, airtel.parse_callback, mpesa.parse_result_callback,
                                   mpesa.parse_queue_timeout_callback, parse_json_object],
                         ids=["mtn", "airtel", "mpesa-result", "mpesa-timeout", "api-body"])
def test_a_body_nested_too_deeply_is_a_validation_error(parse, body):
    with pytest.raises(ValidationError):
        parse(body)
