"""Checkout by payment method: start the buyer's payment, and give it back.

``Checkout.start`` is what order creation calls once the order is priced; it dispatches on the
method's kind (``methods.py``) and answers the order's ``payment`` member:

* ``stripe`` (card, Alipay, WeChat Pay): a PaymentIntent under the key ``mizani:<order>:payment_intent``
  (a retried checkout finds the same intent); Alipay and WeChat Pay are confirmed at once, so the
  intent carries Stripe's ``next_action`` (the redirect or the QR code the buyer's app opens);
* ``collection`` (MTN MoMo, M-Pesa): the collection request to the payer's wallet, under a reference
  derived from the order (``collections/``);
* ``bank``: the order's bank reference and the account to pay (``bank.py``); nothing is sent.

Every ``payment`` has ``provider``, ``method`` and ``payment_id`` (the PaymentIntent id, the
collection reference, the bank reference). Refunds of card-like methods stay in the escrow service
(Stripe refunds under ``mizani:<order>:refund``); ``refund`` here serves the other kinds.

Nothing here moves ledger money: the escrow service books what these report.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from chalicelib.errors import ProviderUnavailable
from chalicelib.money import Money
from chalicelib.payments.methods import BANK, COLLECTION, STRIPE, PaymentMethod


#: Where Alipay sends the buyer back in the local stage (``MIZANI_PAYMENT_RETURN_URL`` elsewhere).
LOCAL_RETURN_URL = "http://127.0.0.1:8000/v1/health"


class MethodNotConfigured(ProviderUnavailable):
    """The payment method is known but this stage has no adapter for it (HTTP 503, code ``not_configured``;
    a retry does not help until an operator configures it)."""

    code = "not_configured"
    retryable = False


@dataclass(frozen=True)
class RefundOutcome:
    """What the provider said about giving a payment back: ``succeeded``, ``pending`` (ask again),
    ``failed`` (nothing went back), or ``owed`` (a bank transfer finance makes by hand)."""

    state: str
    reference: str = ""
    reason: str | None = None
    raw: dict = field(default_factory=dict, compare=False)


class Checkout:
    """Starts and refunds payments by method; ports are injected (``bootstrap``)."""

    def __init__(self, cards, collections=None, bank=None, return_url: str | None = None):
        self.cards = cards
        self.collections = collections  # collections.service.Collections
        self.bank = bank  # bank.BankTransfers
        self.return_url = return_url

    def start(self, order_id: str, chosen: PaymentMethod, pay: Money, metadata: Mapping[str, str],
              payer_msisdn: str | None = None) -> dict:
        """The order's ``payment`` member once the payment is started (idempotent per order)."""
        if chosen.kind == STRIPE:
            return self._stripe(order_id, chosen, pay, metadata)
        if chosen.kind == COLLECTION:
            if self.collections is None:
                raise MethodNotConfigured(message=f"{chosen.display_name} collections are not configured here")
            return self.collections.request(order_id, chosen.rail, pay, payer_msisdn)
        if chosen.kind == BANK:
            if self.bank is None:
                raise MethodNotConfigured(message="bank transfers are not configured here")
            return self.bank.start(order_id, pay)
        raise MethodNotConfigured(message=f"no checkout for {chosen.name}")

    def _stripe(self, order_id: str, chosen: PaymentMethod, pay: Money, metadata: Mapping[str, str]) -> dict:
        extra = {}
        if chosen.name != "card":  # the card flow is confirmed by the buyer's client (Payment Element)
            if chosen.name == "alipay" and not self.return_url:
                raise MethodNotConfigured(message="Alipay needs MIZANI_PAYMENT_RETURN_URL (where the buyer comes back)")
            extra = {"payment_method_type": chosen.stripe_type, "return_url": self.return_url}
        intent = self.cards.create_payment_intent(
            pay, idempotency_key=f"mizani:{order_id}:payment_intent", metadata=metadata, **extra,
        )
        payment = {
            "provider": "stripe",
            "method": chosen.name,
            "payment_id": intent.payment_intent_id,
            "payment_intent_id": intent.payment_intent_id,
            "client_secret": intent.client_secret,
        }
        if getattr(intent, "next_action", None):
            payment["next_action"] = dict(intent.next_action)
        return payment

    def refund(self, order: dict, chosen: PaymentMethod, amount: Money) -> RefundOutcome:
        """Give ``amount`` of a collection back to the payer's wallet; a bank transfer is owed."""
        if chosen.kind == COLLECTION:
            if self.collections is None:
                raise MethodNotConfigured(message=f"{chosen.display_name} collections are not configured here")
            return self.collections.refund(order["payment"]["payment_id"], amount)
        if chosen.kind == BANK:
            return RefundOutcome("owed", reference=order["payment"]["payment_id"])
        raise MethodNotConfigured(message=f"{chosen.name} refunds go through the card processor")
