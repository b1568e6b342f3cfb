"""Provider twins on virtual time: the payout rails (``FakeRail`` made time-driven) and the SMS gateway.

``SimRail`` is ``chalicelib.payouts.rails.fake.FakeRail`` whose payments settle at a moment the
seed decides (pending until then, then ``succeeded`` or ``failed``) instead of by a script, and
whose faults come from the fault plan:

``rail.not_sent``               the request certainly did not reach the provider (``RailNotSent``)
``rail.lost_request``           the request was lost on the way: ``unknown``, and the provider never heard of it
``rail.timeout_after_success``  the provider took the payment, the reply timed out: ``unknown``
``rail.5xx_after_success``      the provider took the payment and answered 503: ``unknown``
``rail.status_unknown``         a status query timed out: ``unknown``
``rail.callback_lost`` / ``rail.callback_twice`` / ``rail.callback_late``
                                the provider's callback (a hint: the payout is asked about) is lost,
                                comes twice, or comes late (after later payouts' callbacks)

A rail that dedupes on the reference (MTN, Airtel: ``resend_is_idempotent``) answers a repeated
send with the first payment; one that does not (M-Pesa) pays a repeated send AGAIN, as Safaricom
would, so a double send shows up as money in the wallet that the ledger never paid.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from chalicelib.errors import ProviderUnavailable
from chalicelib.http import RailNotSent
from chalicelib.money import Money
from chalicelib.payouts.rails.fake import FakePayment, FakeRail
from chalicelib.payouts.rails.port import NOT_FOUND, PayeeCheck, RailStatus, check_reference, normalize_msisdn
from sim.clock import SECOND

FAILURE_REASONS = ("PAYEE_NOT_FOUND", "PAYER_LIMIT_REACHED", "NOT_ALLOWED")


@dataclass
class SimPayment(FakePayment):
    """One payment the provider holds: pending until ``settles_at_ns``, then ``outcome``."""

    settles_at_ns: int = 0
    outcome: str = "succeeded"
    reason: str | None = None
    clock: object = None
    payee_name: str | None = None

    def current(self) -> RailStatus:
        raw = {"sim": True, "reference": self.reference}
        if self.clock.now_ns < self.settles_at_ns:
            return RailStatus("pending", raw=raw)
        if self.outcome == "succeeded":
            return RailStatus("succeeded", provider_reference=self.provider_reference, raw=raw, payee_name=self.payee_name)
        return RailStatus("failed", reason=self.reason or "FAILED", raw=raw)


class SimRail(FakeRail):
    """A payout rail twin (see the module doc). ``callbacks(rail, reference, delay_ns)`` schedules a callback."""

    def __init__(self, name: str, *, resend_is_idempotent: bool, clock, rng, plan, callbacks, checks_payee: bool = True,
                 names_payee: bool = False, trace=None):
        super().__init__(name)
        self.resend_is_idempotent = resend_is_idempotent
        self.clock = clock
        self.rng = rng
        self.plan = plan
        self.callbacks = callbacks
        self.checks_payee = checks_payee  # False: no account-holder check before paying (M-Pesa)
        self.names_payee = names_payee  # True: a payment's result carries the holder's name (M-Pesa)
        self.by_wallet: dict[str, list[SimPayment]] = defaultdict(list)
        self.repeats: list[SimPayment] = []  # second payments of one reference (a rail without dedup)
        self.archived: dict[str, int] = defaultdict(int)  # wallet -> minor units credited by forgotten payments
        self.sends = 0
        self.observer = None  # observer(rail, payment, repeated): the checker sees every payment taken
        self.trace = trace or (lambda text: None)

    # -- PayoutRail ---------------------------------------------------------------
    def send(self, reference: str, amount: Money, msisdn: str, note: str) -> RailStatus:
        answer = self._send(reference, amount, msisdn, note)
        self.trace(f"rail {self.name} send {reference} {amount} -> {answer.state}"
                   + (f" ({answer.reason})" if answer.reason else ""))
        return answer

    def _send(self, reference: str, amount: Money, msisdn: str, note: str) -> RailStatus:
        check_reference(reference)
        amount.require_positive()
        wallet = normalize_msisdn(msisdn)
        self.sends += 1
        if self.plan.hit("rail.not_sent", self.name, reference):
            self.trace(f"rail {self.name} send {reference} -> not sent")
            raise RailNotSent("provider_unavailable", f"{self.name}: connection refused")
        existing = self.payments.get(reference)
        if existing is not None and self.resend_is_idempotent:
            existing.sends += 1
            return existing.current()
        if self.plan.hit("rail.lost_request", self.name, reference):
            return RailStatus("unknown", reason="timeout", raw={"sim": True, "reference": reference})
        payment = self._new_payment(reference, amount, wallet, note)
        if existing is not None:
            self.repeats.append(payment)  # the provider pays a repeated reference again
        else:
            self.payments[reference] = payment
        self.by_wallet[wallet].append(payment)
        if self.observer is not None:
            self.observer(self, payment, existing is not None)
        if self.plan.hit("rail.timeout_after_success", self.name, reference):
            return RailStatus("unknown", reason="timeout", raw={"sim": True, "reference": reference})
        if self.plan.hit("rail.5xx_after_success", self.name, reference):
            return RailStatus("unknown", reason="http_503", raw={"sim": True, "reference": reference})
        return payment.current()

    def status(self, reference: str, **_wallet) -> RailStatus:
        if self.plan.hit("rail.status_unknown", self.name, reference):
            return RailStatus("unknown", reason="timeout", raw={"sim": True, "reference": reference})
        payment = self.payments.get(reference)
        if payment is None:
            return RailStatus("unknown", reason=NOT_FOUND, raw={"sim": True, "reference": reference})
        payment.status_calls += 1
        return payment.current()

    def check_payee(self, msisdn: str, currency: str) -> PayeeCheck:
        if not self.checks_payee:
            return PayeeCheck(checked=False)
        return super().check_payee(msisdn, currency)

    # -- what really happened ---------------------------------------------------------
    def credited(self, msisdn: str) -> list[Money]:
        wallet = normalize_msisdn(msisdn)
        return [p.amount for p in self.by_wallet.get(wallet, ()) if p.current().state == "succeeded"]

    def wallet_total(self, wallet: str) -> int:
        """Minor units the wallet has received, forgotten payments included (``credited``, summed:
        a payment counts once it has settled as succeeded, as ``SimPayment.current`` says)."""
        wallet = normalize_msisdn(wallet)
        total = self.archived.get(wallet, 0)
        held = self.by_wallet.get(wallet)
        if held:
            now_ns = self.clock.now_ns
            total += sum(p.amount.minor for p in held if p.outcome == "succeeded" and now_ns >= p.settles_at_ns)
        return total

    def payments_for(self, reference: str) -> list[SimPayment]:
        found = [self.payments[reference]] if reference in self.payments else []
        return found + [p for p in self.repeats if p.reference == reference]

    def forget(self, references) -> None:
        """Drop final payments from memory, keeping what they credited (the simulator's memory bound)."""
        for reference in references:
            payment = self.payments.pop(reference, None)
            if payment is None:
                continue
            if payment.current().state == "succeeded":
                self.archived[payment.msisdn] += payment.amount.minor
            held = self.by_wallet.get(payment.msisdn)
            if held is not None:
                held.remove(payment)
                if not held:
                    del self.by_wallet[payment.msisdn]

    # -- internals -------------------------------------------------------------------
    def _new_payment(self, reference: str, amount: Money, wallet: str, note: str) -> SimPayment:
        rng = self.rng
        draw = rng.random()
        # Most mobile-money payouts are final within seconds; a few take minutes, a very few hours.
        if draw < 0.35:
            delay = 0
        elif draw < 0.90:
            delay = rng.randint(1, 60) * SECOND
        elif draw < 0.98:
            delay = rng.randint(60, 600) * SECOND
        else:
            delay = rng.randint(600, 2 * 3600) * SECOND
        failed = rng.random() < 0.02
        payment = SimPayment(reference, amount, wallet, note, f"{self.name.upper()[:3]}{next(self._ids):09d}",
                             self._default, settles_at_ns=self.clock.now_ns + delay,
                             outcome="failed" if failed else "succeeded",
                             reason=rng.choice(FAILURE_REASONS) if failed else None, clock=self.clock,
                             payee_name=self.holders.get(wallet) if self.names_payee else None)
        self.callbacks(self, reference, delay)
        return payment


class SimSms:
    """The SMS gateway twin: ``FakeSms`` that forgets what it sent (counted) and is down when the plan says so."""

    def __init__(self, plan):
        from chalicelib.notify.sms_gateway import FakeSms

        self.inner = FakeSms()
        self.plan = plan
        self.sent = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def send(self, to_e164: str, message: str) -> str:
        return self.submit(to_e164, message).message_id

    def submit(self, to_e164: str, message: str):
        if self.plan.hit("sms.gateway_down", to_e164):
            raise ProviderUnavailable("provider_unavailable", "the SMS gateway did not answer")
        receipt = self.inner.submit(to_e164, message)
        self.inner.sent.clear()
        self.sent += 1
        return receipt
