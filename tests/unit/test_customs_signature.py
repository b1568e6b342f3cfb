"""The customs webhook signature: HMAC over "<t>.<body>", 300 s either way."""
import pytest

from chalicelib.api.signatures import sign, verify
from chalicelib.errors import InvalidSignature

BODY = b'{"event_id":"e1","status":"cleared"}'
NOW = 1_800_000_000


def test_a_fresh_signature_verifies():
    verify(BODY, sign(BODY, "s3cret", NOW), "s3cret", now=NOW + 299)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        f"t={NOW}",
        sign(BODY, "other-secret", NOW),
        sign(BODY + b" ", "s3cret", NOW),
        sign(BODY, "s3cret", NOW - 301),  # stale
        sign(BODY, "s3cret", NOW + 301),  # from the future
    ],
)
def test_bad_stale_or_future_signatures_are_refused(header):
    with pytest.raises(InvalidSignature) as e:
        verify(BODY, header, "s3cret", now=NOW)
    assert e.value.code == "invalid_signature"


def test_one_matching_signature_among_several_is_enough_for_secret_rotation():
    good = sign(BODY, "new", NOW).split(",")[1]
    verify(BODY, f"t={NOW},v1={'0' * 64},{good}", "new", now=NOW)
