"""``FakeRail``: an in-memory provider twin with scriptable outcomes, for service and flow tests.

It behaves like a provider that deduplicates on the reference (as MTN does):
a second ``send`` with a known reference pays nothing and answers the current
status. Outcomes are scripted per wallet number::

    rail = FakeRail()
    rail.script("250788000001", send="unknown", statuses=["pending", "succeeded"])
    rail.script("250788000002", send="failed", reason="PAYEE_NOT_FOUND")
    rail.script("250788000003", send="unknown", recorded=False)   # the request never arrived
    rail.fail_next_send(RailNotSent("provider_unavailable", "token endpoint down"))

``statuses`` are answered by successive ``status`` calls, the last one repeating.
``recorded=False`` models a request lost on the way: ``status`` answers
``unknown``/``not_found`` until the reference is sent again. ``credited`` tells
what each wallet really received (only ``succeeded`` payments count).
"""
from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

from chalicelib.money import Money
from chalicelib.payouts.rails.port import NOT_FOUND, PayeeCheck, RailStatus, check_reference, normalize_msisdn


@dataclass
class _Script:
    send: str = "succeeded"
    statuses: list = field(default_factory=lambda: ["succeeded"])
    recorded: bool = True
    reason: str | None = None


@dataclass
class FakePayment:
    """What the fake provider holds for one reference."""

    reference: str
    amount: Money
    msisdn: str
    note: str
    provider_reference: str
    script: _Script
    status_calls: int = 0
    sends: int = 1

    def current(self) -> RailStatus:
        statuses = self.script.statuses or [self.script.send]
        state = statuses[min(self.status_calls, len(statuses) - 1)]
        return _status(state, self, self.script.reason)


def _status(state: str, payment: FakePayment, reason: str | None) -> RailStatus:
    raw = {"fake": True, "reference": payment.reference}
    if state == "succeeded":
        return RailStatus("succeeded", provider_reference=payment.provider_reference, raw=raw)
    if state == "failed":
        return RailStatus("failed", reason=reason or "FAILED", raw=raw)
    return RailStatus(state, reason=reason, raw=raw)


class FakeRail:
    """A ``PayoutRail`` that keeps everything in memory; see the module doc for scripting."""

    resend_is_idempotent = True

    def __init__(self, name: str = "fake", default_send: str = "succeeded"):
        self.name = name
        self._default = _Script(send=default_send, statuses=[default_send if default_send != "pending" else "succeeded"])
        self._scripts: dict[str, _Script] = {}
        self._errors: list[Exception] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.payments: dict[str, FakePayment] = {}
        self.lost: dict[str, FakePayment] = {}
        self.send_calls: list[tuple[str, Money, str, str]] = []
        self.holders: dict[str, str | None] = {}  # wallet -> holder name (None: inactive wallet)

    # -- scripting ---------------------------------------------------------------
    def script(self, msisdn: str, *, send: str = "succeeded", statuses: list[str] | None = None,
               recorded: bool = True, reason: str | None = None) -> None:
        """Decide what sends to ``msisdn`` answer and what the provider later says."""
        if statuses is None:
            statuses = [send] if send in ("succeeded", "failed") else ["succeeded"]
        self._scripts[normalize_msisdn(msisdn)] = _Script(send, list(statuses), recorded, reason)

    def fail_next_send(self, error: Exception) -> None:
        """The next ``send`` raises ``error`` before anything is recorded (e.g. ``RailNotSent``)."""
        self._errors.append(error)

    # -- PayoutRail ----------------------------------------------------------------
    def send(self, reference: str, amount: Money, msisdn: str, note: str) -> RailStatus:
        check_reference(reference)
        amount.require_positive()
        wallet = normalize_msisdn(msisdn)
        with self._lock:
            self.send_calls.append((reference, amount, wallet, note))
            if self._errors:
                raise self._errors.pop(0)
            existing = self.payments.get(reference)
            if existing is not None:  # the provider dedupes on the reference: no second payment
                existing.sends += 1
                return existing.current()
            script = self._scripts.get(wallet, self._default)
            payment = FakePayment(reference, amount, wallet, note, f"FAKE{next(self._ids):08d}", script)
            if not script.recorded and reference not in self.lost:
                self.lost[reference] = payment
                return RailStatus("unknown", reason="timeout", raw={"fake": True, "reference": reference})
            self.lost.pop(reference, None)
            # A resend of a lost request arrives this time, and the script runs as scripted.
            payment.script = _Script(script.send, script.statuses, True, script.reason)
            self.payments[reference] = payment
            return _status(script.send, payment, script.reason)

    def status(self, reference: str, **_wallet) -> RailStatus:
        with self._lock:
            payment = self.payments.get(reference)
            if payment is None:
                return RailStatus("unknown", reason=NOT_FOUND, raw={"fake": True, "reference": reference})
            answer = payment.current()
            payment.status_calls += 1
            return answer

    def callback_payout(self, body, *, payout_id: str | None = None, token: str | None = None,
                        kind: str = "result") -> str | None:
        """A callback names its payout in the path or as ``{"reference"}``; the fake checks no token."""
        import json

        if payout_id is not None:
            return payout_id
        named = json.loads(body or b"{}").get("reference") if isinstance(body, (bytes, str)) else body.get("reference")
        return str(named) if named else None

    def check_payee(self, msisdn: str, currency: str) -> PayeeCheck:
        """What ``holders`` says of the wallet: absent -> active with no name; ``None`` -> inactive."""
        wallet = normalize_msisdn(msisdn)
        if wallet not in self.holders:
            return PayeeCheck(checked=True, active=True)
        name = self.holders[wallet]
        return PayeeCheck(checked=True, active=name is not None, holder_name=name)

    # -- what really happened --------------------------------------------------------
    def credited(self, msisdn: str) -> list[Money]:
        """Amounts the wallet has received so far (payments whose provider state is ``succeeded``)."""
        wallet = normalize_msisdn(msisdn)
        with self._lock:
            return [
                p.amount for p in self.payments.values()
                if p.msisdn == wallet and p.current().state == "succeeded"
            ]
