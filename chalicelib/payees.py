"""Payee checks: before money goes to a wallet, the rail is asked whether it exists and whose it is.

At registration (``assess``): an inactive wallet is refused (``payee_invalid``); a holder name
that does not match the registered name makes the party ``pending_review`` with a
``name_check`` (``{"provider_name", "score"}``), and a party in review is never paid until an
admin sets it ``active``. Before a payout (``PayeeGate.hold_reason``) a check older than
``RECHECK_DAYS`` is repeated. A rail with no check before payment (M-Pesa) is compared after
its first payout, on the name its result carries (``after_payment``).

Names are compared with RapidFuzz's ``token_sort_ratio`` (order-insensitive, 0-100) on names
folded to ASCII lower case; a score of at least ``NAME_MATCH_THRESHOLD`` matches. A
co-operative's wallet is often held by its chair or treasurer, so a mismatch is a review,
not a refusal.
"""
from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta, timezone
from typing import Callable

from chalicelib.errors import BusinessRuleViolation

#: token_sort_ratio at or above this is the same name ("Kivu Hills Coffee" vs "KIVU HILLS COFFEE COOP": 87).
NAME_MATCH_THRESHOLD = 85
#: A payee check older than this is repeated before a payout.
RECHECK_DAYS = 30

ACTIVE, PENDING_REVIEW, BLOCKED = "active", "pending_review", "blocked"


def _fold(name: str, hyphen: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return " ".join(ascii_name.lower().replace("-", hyphen).split())


def name_score(registered: str, provider: str) -> int:
    """How alike two names are, 0-100, word order, case and accents aside; a hyphen may join
    words or part them ("Co-operative" / "COOPERATIVE", "Jean-Claude" / "Jean Claude")."""
    from rapidfuzz import fuzz

    return int(round(max(fuzz.token_sort_ratio(_fold(registered, h), _fold(provider, h)) for h in (" ", ""))))


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def assess(check, registered_name: str, now: datetime) -> dict:
    """The party fields a rail's ``PayeeCheck`` gives: ``status``, ``name_check``, ``payee_checked_at``.

    ``check`` ``None`` (no rail to ask, as in unit tests of other rules) is an unchecked wallet.
    Raises ``payee_invalid`` (422) for an inactive wallet."""
    if check is None or not check.checked:
        return {"status": ACTIVE, "name_check": None, "payee_checked_at": None}
    if check.active is False:
        raise BusinessRuleViolation("payee_invalid", "the rail says this wallet is not active; it cannot be paid")
    fields = {"status": ACTIVE, "name_check": None, "payee_checked_at": _iso(now)}
    if check.holder_name:
        score = name_score(registered_name, check.holder_name)
        fields["name_check"] = {"provider_name": check.holder_name, "score": score}
        if score < NAME_MATCH_THRESHOLD:
            fields["status"] = PENDING_REVIEW
    return fields


class PayeeGate:
    """What the payout path asks of a party before sending it money (see the module doc).

    ``docs`` holds the party (``seller#<id>``); ``rails`` is ``name -> PayoutRail``.
    """

    def __init__(self, docs, rails: Callable, clock: Callable[[], datetime], screening=None):
        self.docs = docs
        self.rails = rails
        self.clock = clock
        self.screening = screening  # ScreeningService: the name against the sanctions lists in force

    def hold_reason(self, party_key: str, party: dict | None = None) -> str | None:
        """``None`` if the party may be paid now, else why not (``screening``, ``review``, ``blocked``).
        ``party``: its document as the caller just read it (one read for this check and the tier's)."""
        party = party if party is not None else self.docs.get(party_key)
        if party is None:
            return None
        if self.screening is not None:
            # Before each payout: screened again if the lists in force changed since (a possible match waits).
            party = self.screening.before_payout(party_key, party)
            held = self.screening.hold_reason(party)
            if held:
                return held
        status = party.get("status", ACTIVE)
        if status == BLOCKED:
            return "blocked"
        if status != ACTIVE:
            return "review"
        checked_at = party.get("payee_checked_at")
        if checked_at and self.clock() - _parse(checked_at) > timedelta(days=RECHECK_DAYS):
            route = party["payout"]
            check = self.rails(route["rail"]).check_payee(route["msisdn"], route["currency"])
            try:
                fields = assess(check, party["name"], self.clock())
            except BusinessRuleViolation:
                fields = {"status": PENDING_REVIEW, "payee_checked_at": _iso(self.clock()),
                          "name_check": {"provider_name": None, "score": 0, "inactive": True}}
            self._set(party_key, fields, only_if_status=ACTIVE)
            if fields["status"] != ACTIVE:
                return "review"
        return None

    def after_payment(self, party_key: str, provider_name: str | None) -> None:
        """A rail that names the payee only in a payment's result (M-Pesa): compare it once."""
        party = self.docs.get(party_key)
        if not provider_name or party is None or party.get("name_check"):
            return
        score = name_score(party["name"], provider_name)
        fields = {"name_check": {"provider_name": provider_name, "score": score}, "payee_checked_at": _iso(self.clock())}
        status = party.get("status", ACTIVE)
        if score < NAME_MATCH_THRESHOLD and status == ACTIVE:
            fields["status"] = PENDING_REVIEW  # a block (an admin's decision) is never softened to a review
        self._set(party_key, fields, only_if_status=status)

    def _set(self, party_key: str, fields: dict, only_if_status: str) -> None:
        def mutate(doc: dict) -> dict | None:
            # An admin's decision taken meanwhile wins: change only the state this check started from.
            if doc.get("status", ACTIVE) != only_if_status:
                return None
            return {**doc, **fields}

        self.docs.update(party_key, mutate)


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))
