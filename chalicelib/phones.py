"""Wallet numbers: which country and mobile network a number belongs to, checked against a rail.

Parsing and the network lookup come from libphonenumber's Python port (``phonenumbers``),
imported on first use only (it is large, and ``import app`` must stay cheap). A wallet
number is stored as E.164 digits without the ``+`` (``250788123456``).
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.errors import ValidationError
from chalicelib.rails import Rail


@dataclass(frozen=True)
class WalletNumber:
    """One parsed wallet number."""

    e164: str  # digits, country code first, no "+"
    country: str  # ISO 3166 alpha-2, "" if unknown
    national: str  # the national significant number (no trunk 0): what Airtel's API takes
    network: str  # the mobile network libphonenumber names for it ("MTN", "Airtel", "Safaricom"), "" if unknown


def parse(msisdn: str, path: str = "payout.msisdn") -> WalletNumber:
    """Parse E.164 digits (a leading ``+`` is tolerated); ``validation_error`` if not a valid mobile number."""
    import phonenumbers
    from phonenumbers import PhoneNumberType, carrier

    digits = str(msisdn or "").strip().lstrip("+")
    try:
        number = phonenumbers.parse(f"+{digits}", None)
    except phonenumbers.NumberParseException:
        raise ValidationError("validation_error", f"{msisdn!r} is not a phone number in E.164 form", path=path) from None
    if not digits.isdigit() or not phonenumbers.is_valid_number(number):
        raise ValidationError("validation_error", f"{msisdn!r} is not a valid phone number", path=path)
    if phonenumbers.number_type(number) not in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        raise ValidationError("validation_error", f"{msisdn!r} is not a mobile number", path=path)
    return WalletNumber(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+"),
        country=phonenumbers.region_code_for_number(number) or "",
        national=str(number.national_number),
        network=carrier.name_for_number(number, "en") or "",
    )


def wallet_for_rail(msisdn: str, rail: Rail, currency: str, *, local_stage: bool, path: str = "payout.msisdn") -> WalletNumber:
    """The wallet number, checked: a mobile number of a country and network ``rail`` serves, in
    a currency the rail pays there. In the local stage the rail's sandbox numbers (MTN's test
    numbers) are valid in any country the rail serves."""
    if currency not in rail.currencies:
        raise ValidationError("validation_error", f"{rail.name} does not pay out in {currency}", path="payout.currency")
    if local_stage and str(msisdn).lstrip("+") in rail.sandbox_numbers:
        digits = str(msisdn).lstrip("+")
        return WalletNumber(digits, "", digits, rail.display_name)
    wallet = parse(msisdn, path)
    if wallet.country not in rail.countries:
        raise ValidationError(
            "validation_error", f"{rail.display_name} does not pay wallets in {wallet.country or 'that country'}", path=path
        )
    if currency not in rail.countries[wallet.country]:
        raise ValidationError(
            "validation_error", f"{rail.display_name} pays {wallet.country} wallets in "
            f"{', '.join(sorted(rail.countries[wallet.country]))}, not {currency}", path="payout.currency"
        )
    if wallet.network not in rail.networks:
        raise ValidationError(
            "validation_error", f"{wallet.e164} is on {wallet.network or 'no known mobile network'}, not {rail.display_name}",
            path=path,
        )
    return wallet
