"""The payout-rail port: send money to a mobile-money wallet, then learn its fate.

The one rule every adapter obeys, because money depends on it:

    Only the provider can say ``failed``. A timeout, a connection error, a 5xx,
    a queue timeout or an answer we cannot read is ``unknown``, NEVER ``failed``.

``failed`` voids the seller's pending transfer and gives the money back; if the
provider had in fact paid, the platform would pay twice. So when in doubt the
caller gets ``unknown`` and polls ``status(reference)`` until a final state
(``succeeded`` / ``failed``) or until its own deadline sends the payout to manual
review.

The caller's ``reference`` (the ledger's pending transfer id) is the idempotency
key at the provider: sending the same reference twice never pays twice on a rail
whose ``resend_is_idempotent`` is true (MTN dedupes ``X-Reference-Id``; see each
adapter). ``status()`` answering ``unknown`` with reason ``not_found`` means the
provider has no record of the reference: on such a rail the caller may call
``send`` again with the SAME reference.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from chalicelib.errors import ValidationError
from chalicelib.money import Money, exponent
from chalicelib.http import RailNotSent  # noqa: F401  (re-exported: part of the port)
from chalicelib.secrets import RailConfigError  # noqa: F401  (re-exported: the adapters raise it)

RailState = Literal["succeeded", "failed", "pending", "unknown"]

#: States after which the provider will not change its mind.
FINAL_STATES = frozenset({"succeeded", "failed"})
_STATES = frozenset({"succeeded", "failed", "pending", "unknown"})

#: ``RailStatus.reason`` when the provider says it has never seen the reference.
NOT_FOUND = "not_found"


@dataclass(frozen=True)
class RailStatus:
    """What the provider says about one payment, normalised.

    ``provider_reference`` is the provider's own id for the money movement once it
    has one (MTN ``financialTransactionId``, M-Pesa ``TransactionID``); ``None``
    before. ``reason`` is a short machine-readable cause (provider code first).
    ``raw`` keeps the provider's answer (or what we know of the failure) for the
    audit trail; it never holds credentials.
    """

    state: RailState
    provider_reference: str | None = None
    reason: str | None = None
    raw: dict = field(default_factory=dict)
    #: The wallet holder's name as the provider reported it with the payment (M-Pesa), if any.
    payee_name: str | None = None

    def __post_init__(self) -> None:
        if self.state not in _STATES:
            raise ValueError(f"unknown rail state {self.state!r}")

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES


@dataclass(frozen=True)
class PayeeCheck:
    """What a rail says about a wallet before any money goes to it.

    ``checked`` is False when the rail offers no such check (M-Pesa B2C: the holder's name
    only comes back with a payment's result). ``active`` False: the wallet does not exist,
    is barred or inactive. ``holder_name`` is ``None`` when the rail reports no name.
    """

    checked: bool
    active: bool | None = None
    holder_name: str | None = None


@runtime_checkable
class PayoutRail(Protocol):
    """A mobile-money payout provider.

    ``send`` answers ``pending`` (accepted, in progress), ``succeeded``, ``failed``
    (the provider refused or reported failure) or ``unknown`` (see module doc).
    It raises ``ValidationError`` for input it will not send and ``RailNotSent``
    when it is certain nothing reached the provider. ``status`` never raises for
    provider trouble: it answers ``unknown``; it is given the payout's wallet and
    currency (a rail whose API needs them, as Airtel's country headers do).
    ``check_payee`` asks whether a wallet exists and whose it is (``RailNotSent``
    when the provider cannot answer).
    """

    name: str
    resend_is_idempotent: bool

    def send(self, reference: str, amount: Money, msisdn: str, note: str) -> RailStatus: ...

    def status(self, reference: str, *, msisdn: str | None = None, currency: str | None = None) -> RailStatus: ...

    def check_payee(self, msisdn: str, currency: str) -> PayeeCheck: ...

    def callback_payout(self, body, *, payout_id: str | None = None, token: str | None = None,
                        kind: str = "result") -> str | None:
        """Which payout a provider callback makes us ask about, or ``None`` when the callback is
        refused (wrong token, another payout, not ours). Raises ``ValidationError`` for a body
        that is not the provider's callback. Never decides the payout's fate."""


# -- helpers shared by the adapters ------------------------------------------------

_MSISDN_RE = re.compile(r"^\+?(\d{8,15})$")


def normalize_msisdn(msisdn: str) -> str:
    """E.164 digits without the ``+`` (what MTN's ``partyId`` and M-Pesa's ``PartyB`` take)."""
    if not isinstance(msisdn, str):
        raise ValidationError("invalid_msisdn", "the wallet number must be a string of digits", path="msisdn")
    match = _MSISDN_RE.fullmatch(msisdn.strip().replace(" ", ""))
    if not match:
        raise ValidationError("invalid_msisdn", f"{msisdn!r} is not an E.164 number (8 to 15 digits)", path="msisdn")
    return match.group(1)


def check_reference(reference: str) -> str:
    if not isinstance(reference, str) or not reference.strip() or len(reference) > 100:
        raise ValidationError("invalid_reference", "the payout reference must be 1 to 100 characters", path="reference")
    return reference


def major_units(amount: Money) -> str:
    """``Money(1250, "EUR")`` -> ``"12.50"``; ``Money(1500000, "RWF")`` -> ``"1500000"`` (exact, no float)."""
    exp = exponent(amount.currency)
    return format(amount.to_decimal(), f".{exp}f")


_NOTE_UNSAFE = re.compile(r"[^0-9A-Za-z .,:;#/()_\-+]")


def safe_note(note: str, limit: int) -> str:
    """A provider-safe free-text note: printable ASCII subset, at most ``limit`` characters.

    MTN refuses some punctuation (an apostrophe is a documented 400) and notes over
    160 characters; M-Pesa's ``Remarks`` stop at 100. Accents and quotes become spaces.
    """
    cleaned = _NOTE_UNSAFE.sub(" ", note or "").strip()
    cleaned = re.sub(r"\s+", " ", cleaned)
    return cleaned[:limit].strip() or "Mizani payout"
