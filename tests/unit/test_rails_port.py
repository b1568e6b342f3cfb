"""The payout-rail port: RailStatus, and the helpers every adapter shares."""
import pytest

from chalicelib.errors import ValidationError
from chalicelib.money import Money
from chalicelib.payouts.rails import FINAL_STATES, PayoutRail, RailStatus
from chalicelib.payouts.rails.port import check_reference, major_units, normalize_msisdn, safe_note


def test_only_succeeded_and_failed_are_final():
    assert FINAL_STATES == {"succeeded", "failed"}
    assert RailStatus("succeeded").is_final and RailStatus("failed", reason="X").is_final
    assert not RailStatus("pending").is_final and not RailStatus("unknown").is_final


def test_a_rail_status_refuses_a_state_outside_the_four():
    with pytest.raises(ValueError):
        RailStatus("timeout")


def test_wallet_numbers_become_e164_digits_without_plus():
    assert normalize_msisdn("+250788123456") == "250788123456"
    assert normalize_msisdn("46733123450") == "46733123450"
    assert normalize_msisdn(" +254 712 345678") == "254712345678"


@pytest.mark.parametrize("bad", ["", "0788-123-456", "+12", "1234567890123456", "abc", None])
def test_wallet_numbers_that_are_not_e164_are_refused(bad):
    with pytest.raises(ValidationError) as err:
        normalize_msisdn(bad)
    assert err.value.code == "invalid_msisdn"


def test_amounts_travel_in_major_units_with_the_currency_exponent():
    assert major_units(Money(1250, "EUR")) == "12.50"
    assert major_units(Money(1_500_000, "RWF")) == "1500000"
    assert major_units(Money(7, "KES")) == "0.07"


def test_notes_are_cleaned_of_characters_providers_refuse_and_cut_to_the_limit():
    assert safe_note("Farmer's payout — order #12", 160) == "Farmer s payout order #12"
    assert len(safe_note("x" * 300, 160)) == 160
    assert safe_note("", 100) == "Mizani payout"


def test_references_must_be_short_non_empty_strings():
    assert check_reference("payout:o-1:1") == "payout:o-1:1"
    for bad in ("", "   ", "x" * 101, None):
        with pytest.raises(ValidationError):
            check_reference(bad)


def test_the_adapters_and_the_fake_satisfy_the_port():
    from chalicelib.payouts.rails import FakeRail
    from chalicelib.payouts.rails.momo import MtnMomoRail
    from chalicelib.payouts.rails.mpesa import MpesaB2CRail

    assert isinstance(FakeRail(), PayoutRail)
    assert isinstance(MtnMomoRail("http://x", "u", "k", "s", "sandbox"), PayoutRail)
    assert isinstance(MpesaB2CRail("http://x", "k", "s", "i", "c", "600000", "http://r", "http://t"), PayoutRail)
    from chalicelib.payouts.rails.airtel import AirtelMoneyRail

    assert isinstance(AirtelMoneyRail("http://x", "id", "secret", "1234", "key"), PayoutRail)
