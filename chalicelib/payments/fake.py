"""``FakeCardGateway``: the in-memory twin of ``StripeCardGateway`` for fast tests.

Same contract, same errors, same idempotency semantics as Stripe's API (and the
sandbox simulator): a key remembers the operation and its arguments; a replay with
the same arguments returns the first result without doing anything; other arguments
or another operation raise ``IdempotencyKeyReused``. Like Stripe, a request refused
for its arguments (a refund larger than what is left) is not remembered, so the key
can be retried once the arguments are right.

Test helpers: ``pay()`` plays the buyer, ``fail_next()`` makes the next calls raise
(e.g. ``PaymentProviderUnavailable``), ``calls`` records what reached the "processor".
"""
from __future__ import annotations

import itertools
import secrets
import threading
from typing import Mapping, Optional

from chalicelib.errors import InvalidState
from chalicelib.money import Money
from chalicelib.payments.errors import (
    CardDeclined,
    IdempotencyKeyReused,
    PaymentNotFound,
    PaymentNotRefundable,
    PaymentRejected,
    RefundExceedsPayment,
)
from chalicelib.payments.model import (
    PI_REQUIRES_ACTION,
    PI_REQUIRES_PAYMENT_METHOD,
    PI_SUCCEEDED,
    PaymentIntentRef,
    RefundRef,
)
from chalicelib.payments.port import (
    CardGateway,
    check_idempotency_key,
    check_metadata,
    check_payment_amount,
    check_wallet,
)


def _fake_next_action(pi_id: str, kind: Optional[str], return_url: Optional[str]) -> Optional[dict]:
    """Stripe's ``next_action`` shapes for a wallet confirmed at creation (no real URLs)."""
    if kind == "alipay":
        return {"type": "alipay_handle_redirect", "alipay_handle_redirect": {
            "native_data": None, "native_url": None, "return_url": return_url, "url": f"https://fake.invalid/alipay/{pi_id}"}}
    if kind == "wechat_pay":
        return {"type": "wechat_pay_display_qr_code", "wechat_pay_display_qr_code": {
            "data": f"weixin://wxpay/bizpayurl?pr={pi_id}", "hosted_instructions_url": f"https://fake.invalid/wechat/{pi_id}",
            "image_data_url": "data:image/png;base64,", "image_url_png": f"https://fake.invalid/wechat/{pi_id}.png",
            "image_url_svg": f"https://fake.invalid/wechat/{pi_id}.svg"}}
    return None


class FakeCardGateway(CardGateway):
    """In-memory ``CardGateway``; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._intents: dict[str, PaymentIntentRef] = {}
        self._refunded: dict[str, int] = {}  # payment_intent_id -> minor units refunded so far
        self._refunds: dict[str, RefundRef] = {}
        self._keys: dict[str, tuple[str, tuple, object]] = {}  # key -> (operation, arguments, result)
        self._failures: list[BaseException] = []
        self.calls: list[tuple[str, tuple]] = []  # every operation that reached the "processor"

    # -- CardGateway ---------------------------------------------------------
    def create_payment_intent(
        self, amount: Money, idempotency_key: str, metadata: Mapping[str, str],
        payment_method_type: Optional[str] = None, return_url: Optional[str] = None,
    ) -> PaymentIntentRef:
        check_payment_amount(amount)
        check_idempotency_key(idempotency_key)
        check_wallet(payment_method_type, return_url)
        metadata = check_metadata(metadata)
        arguments = (amount, tuple(sorted(metadata.items())))
        if payment_method_type:
            arguments += (payment_method_type, return_url)
        with self._lock:
            replay = self._replay(idempotency_key, "create_payment_intent", arguments)
            if replay is not None:
                return replay
            self._maybe_fail()
            self.calls.append(("create_payment_intent", arguments))
            pi_id = f"pi_fake{next(self._ids):06d}"
            intent = PaymentIntentRef(
                payment_intent_id=pi_id,
                client_secret=f"{pi_id}_secret_{secrets.token_hex(12)}",
                status=PI_REQUIRES_ACTION if payment_method_type else PI_REQUIRES_PAYMENT_METHOD,
                amount=amount,
                metadata=dict(metadata),
                amount_received=Money.zero(amount.currency),
                next_action=_fake_next_action(pi_id, payment_method_type, return_url),
            )
            self._intents[pi_id] = intent
            self._refunded[pi_id] = 0
            self._keys[idempotency_key] = ("create_payment_intent", arguments, intent)
            return intent

    def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntentRef:
        with self._lock:
            self._maybe_fail()
            return self._intent(payment_intent_id)

    def refund(
        self,
        payment_intent_id: str,
        amount: Money,
        idempotency_key: str,
        metadata: Optional[Mapping[str, str]] = None,
    ) -> RefundRef:
        check_payment_amount(amount)
        check_idempotency_key(idempotency_key)
        metadata = check_metadata(metadata)
        arguments = (payment_intent_id, amount, tuple(sorted(metadata.items())))
        with self._lock:
            replay = self._replay(idempotency_key, "refund", arguments)
            if replay is not None:
                return replay
            self._maybe_fail()
            intent = self._intent(payment_intent_id)
            if intent.status != PI_SUCCEEDED:
                raise PaymentNotRefundable(
                    message=f"PaymentIntent {payment_intent_id} has no successful charge to refund",
                    provider="fake",
                )
            if amount.currency != intent.amount.currency:
                raise PaymentRejected(
                    "currency_mismatch",
                    f"refund in {amount.currency} of a payment in {intent.amount.currency}",
                    provider="fake",
                )
            remaining = intent.amount.minor - self._refunded[payment_intent_id]
            if amount.minor > remaining:
                raise RefundExceedsPayment(
                    message=f"refund of {amount} is more than the {Money(remaining, amount.currency)} left on the payment",
                    provider="fake",
                )
            self.calls.append(("refund", arguments))
            self._refunded[payment_intent_id] += amount.minor
            refund = RefundRef(
                refund_id=f"re_fake{next(self._ids):06d}",
                status="succeeded",
                amount=amount,
                payment_intent_id=payment_intent_id,
            )
            self._refunds[refund.refund_id] = refund
            self._keys[idempotency_key] = ("refund", arguments, refund)
            return refund

    # -- test helpers ----------------------------------------------------------
    def pay(self, payment_intent_id: str, outcome: str = "succeeded") -> PaymentIntentRef:
        """Play the buyer: the intent succeeds, or the card is declined (``outcome="failed"``,
        which raises ``CardDeclined`` like a confirmation would, leaving the intent payable)."""
        with self._lock:
            intent = self._intent(payment_intent_id)
            if intent.status == PI_SUCCEEDED:
                raise InvalidState(
                    "payment_intent_unexpected_state", f"PaymentIntent {payment_intent_id} has already succeeded"
                )
            if outcome == "failed":
                raise CardDeclined(message="Your card was declined.", decline_code="generic_decline", provider="fake")
            if outcome != "succeeded":
                raise ValueError(f"outcome is 'succeeded' or 'failed', not {outcome!r}")
            paid = PaymentIntentRef(
                payment_intent_id=intent.payment_intent_id,
                client_secret=intent.client_secret,
                status=PI_SUCCEEDED,
                amount=intent.amount,
                metadata=intent.metadata,
                amount_received=intent.amount,
            )
            self._intents[payment_intent_id] = paid
            return paid

    def fail_next(self, error: BaseException, times: int = 1) -> None:
        """The next ``times`` calls that would reach the processor raise ``error`` instead."""
        with self._lock:
            self._failures.extend([error] * times)

    def refunded(self, payment_intent_id: str) -> Money:
        """Total refunded so far on ``payment_intent_id``."""
        with self._lock:
            intent = self._intent(payment_intent_id)
            return Money(self._refunded[payment_intent_id], intent.amount.currency)

    @property
    def refunds(self) -> list[RefundRef]:
        with self._lock:
            return list(self._refunds.values())

    # -- internals -------------------------------------------------------------
    def _replay(self, key: str, operation: str, arguments: tuple):
        seen = self._keys.get(key)
        if seen is None:
            return None
        seen_operation, seen_arguments, result = seen
        if seen_operation != operation or seen_arguments != arguments:
            raise IdempotencyKeyReused(
                message=f"idempotency key {key!r} was first used for a different request", provider="fake"
            )
        return result

    def _maybe_fail(self) -> None:
        if self._failures:
            raise self._failures.pop(0)

    def _intent(self, payment_intent_id: str) -> PaymentIntentRef:
        intent = self._intents.get(payment_intent_id)
        if intent is None:
            raise PaymentNotFound(message=f"No such payment_intent: {payment_intent_id!r}", provider="fake")
        return intent
