"""PIN hashing: scrypt over HMAC(pepper, number:PIN), a fresh salt each time, nothing of the PIN kept."""
import pytest

from chalicelib.ussd.pins import SCRYPT_N, PinHasher, is_valid_pin

MSISDN = "250788123456"


@pytest.fixture(scope="module")
def hasher():
    return PinHasher("server-side-pepper")  # the deployed cost: these tests also prove it runs


@pytest.fixture(scope="module")
def stored(hasher):
    return hasher.hash(MSISDN, "482916")


def test_the_right_pin_verifies_and_others_do_not(hasher, stored):
    assert hasher.verify(MSISDN, "482916", stored)
    assert not hasher.verify(MSISDN, "482917", stored)
    assert not hasher.verify(MSISDN, "48291", stored)


def test_a_hash_is_bound_to_its_number_and_its_pepper(hasher, stored):
    assert not hasher.verify("250788123457", "482916", stored)
    assert not PinHasher("another-pepper").verify(MSISDN, "482916", stored)


def test_the_same_pin_hashes_differently_each_time_and_never_shows(hasher, stored):
    again = hasher.hash(MSISDN, "482916")
    assert again != stored and hasher.verify(MSISDN, "482916", again)
    assert "482916" not in stored and "482916" not in again


def test_the_stored_hash_names_its_scheme_and_cost(stored):
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt-hmac-sha256", SCRYPT_N, 8, 1)


def test_a_hash_made_at_another_cost_still_verifies(hasher):
    cheap = PinHasher("server-side-pepper", n=2**4).hash(MSISDN, "1234")
    assert hasher.verify(MSISDN, "1234", cheap)


@pytest.mark.parametrize("encoded", ["", "garbage", "bcrypt$1$2$3$x$y", "scrypt-hmac-sha256$16$8$1$!!$!!",
                                     "scrypt-hmac-sha256$x$8$1$AAAA$AAAA"])
def test_a_damaged_hash_verifies_nothing(hasher, encoded):
    assert not hasher.verify(MSISDN, "1234", encoded)


@pytest.mark.parametrize("pin, valid", [("1234", True), ("123456", True), ("0000", True), ("123", False),
                                        ("1234567", False), ("12a4", False), ("١٢٣٤", False), ("", False)])
def test_a_pin_is_four_to_six_ascii_digits(pin, valid):
    assert is_valid_pin(pin) is valid


def test_an_invalid_pin_is_never_hashed(hasher):
    with pytest.raises(ValueError):
        hasher.hash(MSISDN, "12")


def test_the_pepper_may_be_a_secret_reference_read_on_first_use():
    calls = []

    def pepper():
        calls.append(1)
        return "from-ssm"

    lazy = PinHasher(pepper, n=2**4)
    assert calls == []
    assert lazy.verify(MSISDN, "1234", lazy.hash(MSISDN, "1234")) and calls
