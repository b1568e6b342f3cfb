"""The CardGateway contract on the in-memory fake, Stripe amounts, error translation, wiring."""
import json
import subprocess
import sys

import pytest

from chalicelib.api.errors import status_for, to_http
from chalicelib.errors import ProviderUnavailable, ValidationError
from chalicelib.money import SUPPORTED_CURRENCIES, Money, exponent
from chalicelib.payments import (
    CardDeclined,
    CardGateway,
    FakeCardGateway,
    IdempotencyKeyReused,
    PaymentNotFound,
    PaymentNotRefundable,
    PaymentProviderMisconfigured,
    PaymentProviderUnavailable,
    PaymentRejected,
    RefundExceedsPayment,
    StripeCardGateway,
    build_card_gateway,
    from_stripe_amount,
    to_stripe_amount,
    translate_stripe_error,
)
from chalicelib.settings import Settings

CNY_1234_56 = Money(123456, "CNY")


@pytest.fixture
def gateway():
    return FakeCardGateway()


def paid_intent(gateway, amount=CNY_1234_56, order_id="ord_1"):
    intent = gateway.create_payment_intent(amount, f"pi:{order_id}", {"order_id": order_id})
    gateway.pay(intent.payment_intent_id)
    return intent


# -- FakeCardGateway: the contract ------------------------------------------------


def test_both_gateways_implement_the_port():
    assert isinstance(FakeCardGateway(), CardGateway)
    assert isinstance(StripeCardGateway("sk_test_x"), CardGateway)


def test_a_new_payment_intent_awaits_a_payment_method_and_keeps_its_metadata(gateway):
    intent = gateway.create_payment_intent(CNY_1234_56, "pi:ord_1", {"order_id": "ord_1"})
    assert intent.status == "requires_payment_method" and not intent.succeeded
    assert intent.amount == CNY_1234_56 and intent.metadata == {"order_id": "ord_1"}
    assert intent.client_secret.startswith(intent.payment_intent_id + "_secret_")
    assert gateway.retrieve_payment_intent(intent.payment_intent_id) == intent


def test_the_same_key_and_arguments_return_the_first_intent_without_a_second_one(gateway):
    first = gateway.create_payment_intent(CNY_1234_56, "pi:ord_1", {"order_id": "ord_1"})
    again = gateway.create_payment_intent(CNY_1234_56, "pi:ord_1", {"order_id": "ord_1"})
    assert again == first
    assert [op for op, _ in gateway.calls] == ["create_payment_intent"]


@pytest.mark.parametrize(
    "amount, metadata",
    [(Money(123457, "CNY"), {"order_id": "ord_1"}), (Money(123456, "USD"), {"order_id": "ord_1"}),
     (CNY_1234_56, {"order_id": "ord_2"})],
)
def test_the_same_key_with_other_arguments_is_refused(gateway, amount, metadata):
    gateway.create_payment_intent(CNY_1234_56, "pi:ord_1", {"order_id": "ord_1"})
    with pytest.raises(IdempotencyKeyReused) as e:
        gateway.create_payment_intent(amount, "pi:ord_1", metadata)
    assert e.value.code == "idempotency_key_reused"


def test_a_key_used_to_create_an_intent_cannot_refund(gateway):
    intent = paid_intent(gateway)
    with pytest.raises(IdempotencyKeyReused):
        gateway.refund(intent.payment_intent_id, Money(100, "CNY"), "pi:ord_1")


def test_a_retried_refund_refunds_once(gateway):
    intent = paid_intent(gateway)
    first = gateway.refund(intent.payment_intent_id, Money(100000, "CNY"), "refund:ord_1")
    again = gateway.refund(intent.payment_intent_id, Money(100000, "CNY"), "refund:ord_1")
    assert again == first and first.status == "succeeded"
    assert gateway.refunded(intent.payment_intent_id) == Money(100000, "CNY")
    assert len(gateway.refunds) == 1


def test_refunds_beyond_what_is_left_are_refused_and_not_remembered(gateway):
    intent = paid_intent(gateway)
    gateway.refund(intent.payment_intent_id, Money(100000, "CNY"), "refund:1")
    with pytest.raises(RefundExceedsPayment) as e:
        gateway.refund(intent.payment_intent_id, Money(23457, "CNY"), "refund:2")
    assert e.value.code == "refund_exceeds_payment"
    # Like Stripe, a refused request does not bind its key: corrected, it goes through.
    assert gateway.refund(intent.payment_intent_id, Money(23456, "CNY"), "refund:2").amount == Money(23456, "CNY")
    assert gateway.refunded(intent.payment_intent_id) == CNY_1234_56


def test_an_unpaid_intent_cannot_be_refunded(gateway):
    intent = gateway.create_payment_intent(CNY_1234_56, "pi:ord_1", {})
    with pytest.raises(PaymentNotRefundable):
        gateway.refund(intent.payment_intent_id, CNY_1234_56, "refund:ord_1")


def test_a_refund_in_another_currency_is_refused(gateway):
    intent = paid_intent(gateway)
    with pytest.raises(PaymentRejected) as e:
        gateway.refund(intent.payment_intent_id, Money(100, "USD"), "refund:ord_1")
    assert e.value.code == "currency_mismatch"


def test_unknown_intents_are_not_found(gateway):
    with pytest.raises(PaymentNotFound):
        gateway.retrieve_payment_intent("pi_nope")
    with pytest.raises(PaymentNotFound):
        gateway.refund("pi_nope", CNY_1234_56, "refund:x")


def test_a_declined_card_leaves_the_intent_payable(gateway):
    intent = gateway.create_payment_intent(CNY_1234_56, "pi:ord_1", {})
    with pytest.raises(CardDeclined):
        gateway.pay(intent.payment_intent_id, "failed")
    assert gateway.pay(intent.payment_intent_id).status == "succeeded"


def test_after_an_outage_the_retry_with_the_same_key_creates_exactly_one_intent(gateway):
    gateway.fail_next(PaymentProviderUnavailable(message="timeout"))
    with pytest.raises(ProviderUnavailable):
        gateway.create_payment_intent(CNY_1234_56, "pi:ord_1", {})
    intent = gateway.create_payment_intent(CNY_1234_56, "pi:ord_1", {})
    assert gateway.create_payment_intent(CNY_1234_56, "pi:ord_1", {}) == intent
    assert len(gateway.calls) == 1


@pytest.mark.parametrize("key", ["", "k" * 256, None, 42])
def test_idempotency_keys_are_1_to_255_characters(gateway, key):
    with pytest.raises(ValidationError):
        gateway.create_payment_intent(CNY_1234_56, key, {})


@pytest.mark.parametrize(
    "metadata",
    [{"order_id": 42}, {"k" * 41: "v"}, {"order_id": "v" * 501}, {f"k{i}": "v" for i in range(51)}, {"a[b]": "v"}],
)
def test_metadata_outside_stripes_limits_is_refused_before_any_call(gateway, metadata):
    with pytest.raises(ValidationError):
        gateway.create_payment_intent(CNY_1234_56, "pi:1", metadata)
    assert gateway.calls == []


@pytest.mark.parametrize("amount", [Money(0, "CNY"), Money(-5, "CNY")])
def test_only_positive_amounts_are_charged(gateway, amount):
    with pytest.raises(ValidationError):
        gateway.create_payment_intent(amount, "pi:1", {})


# -- Stripe amounts --------------------------------------------------------------


@pytest.mark.parametrize("currency", sorted(SUPPORTED_CURRENCIES))
def test_stripe_minor_units_equal_ours_for_every_currency_mizani_trades(currency):
    money = Money(1500000, currency)
    assert to_stripe_amount(money) == 1500000
    assert from_stripe_amount(1500000, currency.lower()) == money


def test_rwf_ugx_and_xof_are_zero_decimal_at_stripe_too():
    assert {c for c in ("RWF", "UGX", "XOF", "CNY", "KES") if exponent(c) == 0} == {"RWF", "UGX", "XOF"}
    assert to_stripe_amount(Money(1500000, "RWF")) == 1500000  # 1,500,000 RWF, not 15,000.00


def test_currencies_where_stripe_and_iso_disagree_are_converted():
    assert to_stripe_amount(Money(5, "ISK")) == 500  # ISO: no minor unit; Stripe: two-decimal
    assert from_stripe_amount(500, "isk") == Money(5, "ISK")
    assert to_stripe_amount(Money(1200, "MGA")) == 12  # ISO: 2 decimals; Stripe: zero-decimal
    with pytest.raises(ValidationError):
        to_stripe_amount(Money(1250, "MGA"))
    with pytest.raises(ValidationError):
        to_stripe_amount(Money(5124, "KWD"))  # three-decimal: Stripe wants the last digit 0
    assert to_stripe_amount(Money(5120, "KWD")) == 5120


# -- translating Stripe's errors ----------------------------------------------------


def stripe_error(kind: str, status: int, code=None, param=None, decline_code=None):
    import stripe

    body = {"error": {"type": "invalid_request_error", "code": code, "message": f"{kind} says no", "param": param}}
    if decline_code:
        body["error"]["decline_code"] = decline_code
    raw = json.dumps(body)
    headers = {"request-id": "req_123"}
    if kind == "card":
        return stripe.CardError("declined", param, code, raw, status, body, headers)
    if kind == "invalid":
        return stripe.InvalidRequestError(f"{kind} says no", param, code, raw, status, body, headers)
    if kind == "idempotency":
        return stripe.IdempotencyError("keys differ", raw, status, body, headers)
    if kind == "auth":
        return stripe.AuthenticationError("bad key", raw, status, body, headers)
    if kind == "permission":
        return stripe.PermissionError("not allowed", raw, status, body, headers)
    if kind == "rate":
        return stripe.RateLimitError("slow down", raw, status, body, headers)
    if kind == "api":
        return stripe.APIError("boom", raw, status, body, headers)
    if kind == "connection":
        return stripe.APIConnectionError("connection refused", should_retry=True)
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind, status, code, operation, expected, http_status",
    [
        ("connection", None, None, "create_payment_intent", PaymentProviderUnavailable, 503),
        ("rate", 429, "rate_limit", "refund", PaymentProviderUnavailable, 503),
        ("api", 500, None, "create_payment_intent", PaymentProviderUnavailable, 503),
        ("api", 409, "idempotency_key_in_use", "refund", PaymentProviderUnavailable, 503),
        ("card", 402, "card_declined", "create_payment_intent", CardDeclined, 422),
        ("invalid", 404, "resource_missing", "retrieve_payment_intent", PaymentNotFound, 404),
        ("invalid", 400, "amount_too_large", "refund", RefundExceedsPayment, 422),
        ("invalid", 400, "charge_already_refunded", "refund", RefundExceedsPayment, 422),
        ("invalid", 400, "payment_intent_unexpected_state", "refund", PaymentNotRefundable, 409),
        ("invalid", 400, "amount_too_large", "create_payment_intent", PaymentRejected, 422),
        ("invalid", 400, "parameter_unknown", "create_payment_intent", PaymentRejected, 422),
        ("idempotency", 400, None, "refund", IdempotencyKeyReused, 422),
        ("auth", 401, None, "refund", PaymentProviderMisconfigured, 500),
        ("permission", 403, None, "refund", PaymentProviderMisconfigured, 500),
    ],
)
def test_stripe_errors_become_domain_errors_with_stable_codes(kind, status, code, operation, expected, http_status):
    error = translate_stripe_error(stripe_error(kind, status, code), operation)
    assert type(error) is expected
    assert status_for(error) == http_status
    assert error.detail["provider"] == "stripe"
    if status is not None:
        assert error.detail["provider_request_id"] == "req_123" and error.detail["http_status"] == status


def test_outages_are_marked_retryable_on_the_wire():
    error = translate_stripe_error(stripe_error("connection", None), "refund")
    assert to_http(error, "req_1").body["error"] == {
        "code": "provider_unavailable", "message": error.message, "request_id": "req_1", "retryable": True,
    }


def test_a_declined_card_keeps_the_issuers_reason():
    error = translate_stripe_error(stripe_error("card", 402, "card_declined", decline_code="insufficient_funds"))
    assert error.code == "card_declined" and error.detail["decline_code"] == "insufficient_funds"


# -- wiring ------------------------------------------------------------------------


def test_build_card_gateway_uses_the_settings_api_base():
    gateway = build_card_gateway(Settings(stripe_api_key="sk_test_abc", stripe_api_base="http://127.0.0.1:8001/"))
    assert isinstance(gateway, StripeCardGateway)
    assert "127.0.0.1:8001" in repr(gateway) and "sk_test_abc" not in repr(gateway)


def test_a_live_key_is_refused_in_the_local_stage():
    with pytest.raises(PaymentProviderMisconfigured):
        build_card_gateway(Settings(stage="local", stripe_api_key="sk_live_abc"))
    assert build_card_gateway(Settings(stage="prod", stripe_api_key="sk_live_abc"))


def test_a_missing_api_key_is_a_configuration_error():
    with pytest.raises(PaymentProviderMisconfigured):
        StripeCardGateway("")


def test_importing_payments_and_building_a_gateway_does_not_import_stripe():
    code = (
        "import sys; import chalicelib.payments as p; from chalicelib.settings import Settings;"
        "p.build_card_gateway(Settings()); p.FakeCardGateway();"
        "print('stripe' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_only_the_adapter_module_mentions_stripe_imports():
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2] / "chalicelib"
    importers = {
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if re.search(r"^\s*(import stripe|from stripe)\b", path.read_text(), re.MULTILINE)
    }
    # the Stripe adapter's modules (PaymentIntents, refunds, webhooks; disputes' evidence; the SDK's
    # requests over our HTTP client), nothing else
    assert importers <= {"payments/stripe_adapter.py", "payments/stripe_disputes.py", "payments/stripe_http.py"}
