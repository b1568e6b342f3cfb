"""The Stripe SDK's requests over Mizani's one HTTP client (``chalicelib/payments/stripe_http.py``), against
a Stripe stand-in on 127.0.0.1: the SDK still decides the retries (a 500 is retried under the same
Idempotency-Key, so a card is charged once), and one deadline bounds a call, its retries included."""
from __future__ import annotations

import json

import pytest

from chalicelib import settings
from chalicelib.money import Money
from chalicelib.payments.errors import PaymentProviderUnavailable
from chalicelib.payments.stripe_adapter import StripeCardGateway
from helpers import LocalHttpServer

INTENT = {"id": "pi_3Test", "object": "payment_intent", "amount": 85200, "currency": "cny", "status": "requires_payment_method",
          "client_secret": "pi_3Test_secret_x", "metadata": {"order_id": "ord_1"}}


class FlakyStripe(LocalHttpServer):
    """Answers the first ``failures`` requests 500 (as Stripe does under an incident), then the intent."""

    def __init__(self, failures: int) -> None:
        self.failures, self.seen = failures, []
        super().__init__()

    def answer(self, handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        self.seen.append((handler.command, handler.path, handler.headers.get("Idempotency-Key"),
                          handler.rfile.read(length).decode() if length else ""))
        failing = len(self.seen) <= self.failures
        body = json.dumps({"error": {"type": "api_error", "message": "try again"}} if failing else INTENT).encode()
        self.reply_json(handler, 500 if failing else 200, body, {"Request-Id": f"req_{len(self.seen)}"})


@pytest.fixture
def stripe_down(request, monkeypatch):
    failures, deadline = request.param
    monkeypatch.setenv("MIZANI_HTTP_DEADLINE_SECONDS", str(deadline))
    settings.get.cache_clear()
    server = FlakyStripe(failures)
    yield server
    server.close()
    settings.get.cache_clear()


@pytest.mark.parametrize("stripe_down", [(1, 20)], indirect=True)
def test_a_500_is_retried_by_the_sdk_under_the_same_idempotency_key(stripe_down):
    gateway = StripeCardGateway("sk_test_local", api_base=stripe_down.url, max_network_retries=2, timeout_seconds=5)
    intent = gateway.create_payment_intent(Money(85200, "CNY"), "ord_1-pay", {"order_id": "ord_1"})
    assert intent.payment_intent_id == "pi_3Test" and intent.amount == Money(85200, "CNY")
    (first, second) = stripe_down.seen
    assert first[:2] == second[:2] == ("POST", "/v1/payment_intents")
    assert first[2] == second[2] == "ord_1-pay" and first[3] == second[3]  # the same request, once at Stripe
    assert "amount=85200" in first[3] and "currency=cny" in first[3]


@pytest.mark.parametrize("stripe_down", [(100, 1)], indirect=True)
def test_one_deadline_bounds_a_call_and_its_retries(stripe_down):
    """Ten retries allowed, but the SDK waits at least 0.5 s before each: within a 1-second deadline at
    most two attempts fit, and the caller gets a retryable ``PaymentProviderUnavailable``."""
    gateway = StripeCardGateway("sk_test_local", api_base=stripe_down.url, max_network_retries=10, timeout_seconds=5)
    with pytest.raises(PaymentProviderUnavailable):
        gateway.retrieve_payment_intent("pi_3Test")
    assert 1 <= len(stripe_down.seen) <= 2
    assert all(seen[:2] == ("GET", "/v1/payment_intents/pi_3Test") for seen in stripe_down.seen)
