"""Buyers' payment methods against fakes: the registry, checkout's refusals, and bank transfers in escrow."""
import pytest

from chalicelib import bootstrap
from chalicelib.documents import MemoryDocuments
from chalicelib.errors import BusinessRuleViolation, InvalidState, ValidationError
from chalicelib.escrow.service import EscrowService, Principal
from chalicelib.fx import MemoryQuoteStore, QuoteService, SnapshotRateSource
from chalicelib.iso20022 import parse_creditor_reference
from chalicelib.ledger import Ledger
from chalicelib.ledger.memory import MemoryLedgerStore
from chalicelib.money import SUPPORTED_CURRENCIES, Money
from chalicelib.payments import methods
from chalicelib.payments.bank import reference_for
from chalicelib.payments.fake import FakeCardGateway
from chalicelib.rails import RAILS
from chalicelib.settings import Settings
from chalicelib.workflow.engine import FakeWorkflow

BUYER = Principal("buyer-1", "buyer")
SELLER = Principal("coop-1", "seller")
FINANCE = Principal("fin-1", "finance")
COFFEE = [{"description": "Washed arabica, grade A", "hs_code": "090111", "quantity": "100", "unit": "kg",
           "unit_price": Money(1200, "USD")}]
CONTAINER = [{"description": "Washed arabica, one container", "hs_code": "090111", "quantity": "100000", "unit": "kg",
              "unit_price": Money(1200, "USD")}]  # 1,200,000.00 USD


# -- the registry ------------------------------------------------------------------------------------


def test_every_method_of_the_contract_is_in_the_registry_and_collections_come_from_the_rails():
    assert set(methods.METHOD_NAMES) == {"card", "alipay", "wechat_pay", "mtn_momo", "mpesa", "bank_transfer"}
    collecting = {m.name for m in methods.METHODS.values() if m.kind == methods.COLLECTION}
    assert collecting == {r.name for r in RAILS.values() if r.collection is not None}
    assert methods.method("mpesa").currencies == RAILS["mpesa"].collection.currencies == {"KES"}


def test_a_card_payment_tops_out_at_eight_digits_and_a_bank_transfer_takes_any_amount():
    assert methods.method("card").accepts(Money(99_999_999, "USD"))
    assert not methods.method("card").accepts(Money(100_000_000, "USD"))
    assert methods.method("bank_transfer").accepts(Money(10**14, "USD"))
    assert methods.methods_for(Money(120_000_000, "USD")) == ["bank_transfer"]
    assert methods.methods_for(Money(5_000_000, "KES")) == ["card", "mpesa", "bank_transfer"]


def test_an_amount_above_the_method_limit_is_limit_exceeded_naming_the_methods_that_can_take_it():
    with pytest.raises(BusinessRuleViolation) as refused:
        methods.check_amount(methods.method("mpesa"), Money(30_000_000, "KES"))  # 300,000 KES > 250,000
    assert refused.value.code == "limit_exceeded"
    assert refused.value.detail["methods"] == ["card", "bank_transfer"]
    assert "bank_transfer" in refused.value.message


@pytest.mark.parametrize("method_name, currency, payer, path", [
    ("alipay", "RWF", None, "pay_currency"),        # Alipay presents CNY, USD, EUR, GBP
    ("mpesa", "RWF", "254712345678", "pay_currency"),  # STK push collects KES only
    ("mtn_momo", "RWF", None, "payer_msisdn"),      # a collection needs the wallet
    ("card", "CNY", "250788123456", "payer_msisdn"),  # a card has no wallet
    ("mtn_momo", "RWF", "254712345678", "payer_msisdn"),  # a Safaricom number is no MTN wallet
    ("mtn_momo", "UGX", "250788123456", "pay_currency"),  # a Rwandan MTN wallet pays RWF, not UGX
])
def test_a_method_that_cannot_pay_that_currency_or_that_payer_is_a_validation_error(method_name, currency, payer, path):
    with pytest.raises(ValidationError) as refused:
        methods.check_currency_and_payer(methods.method(method_name), currency, payer, local_stage=False)
    assert refused.value.code == "validation_error" and refused.value.path == path


def test_a_wallet_of_the_rail_is_the_payer_and_mtn_sandbox_numbers_are_wallets_locally():
    assert methods.check_currency_and_payer(methods.method("mpesa"), "KES", "+254712345678", local_stage=False) == "254712345678"
    assert methods.check_currency_and_payer(methods.method("mtn_momo"), "RWF", "46733123450", local_stage=True) == "46733123450"


def test_every_provider_a_currency_is_paid_through_has_a_platform_account():
    ledger = Ledger(MemoryLedgerStore())
    bootstrap.ensure_platform_accounts(ledger)
    for cur in SUPPORTED_CURRENCIES:
        for provider in methods.providers_for(cur):
            assert ledger.get_account(f"psp:{provider}:{cur}").kind == "asset"
    assert ledger.get_account("psp:mpesa:KES") and ledger.get_account("psp:mpesa:RWF") is None
    assert ledger.get_account("refunds:owed:USD").kind == "liability"


def test_a_bank_reference_is_an_iso_11649_reference_derived_from_the_order():
    ref = reference_for("ord_abc")
    assert ref == reference_for("ord_abc") != reference_for("ord_abd")
    assert parse_creditor_reference(ref) == ref and len(ref) == 20
    assert parse_creditor_reference(ref[:-1] + ("0" if ref[-1] != "0" else "1")) is None  # one typo fails the check


# -- checkout and bank transfers in escrow ------------------------------------------------------------


@pytest.fixture
def world():
    ledger = Ledger(MemoryLedgerStore())
    bootstrap.ensure_platform_accounts(ledger)
    workflow = FakeWorkflow()
    quotes = QuoteService(SnapshotRateSource(), MemoryQuoteStore(), default_spread_bps=50)
    service = EscrowService(MemoryDocuments(), ledger, quotes, FakeCardGateway(), workflow, Settings(fee_bps=150))
    service.register_seller(SELLER, "Kivu Hills Coffee Co-operative", "RW",
                            {"rail": "mtn_momo", "msisdn": "250788123456", "currency": "RWF"})
    return service, ledger, workflow


def test_a_card_order_keeps_its_method_and_payment_id(world):
    service, *_ = world
    order = service.create_order(BUYER, "coop-1", "CNY", COFFEE, "k1")
    payment = order["payment"]
    assert payment["method"] == "card" and payment["provider"] == "stripe"
    assert payment["payment_id"] == payment["payment_intent_id"] and payment["payment_id"].startswith("pi_")


def test_a_container_by_card_is_refused_and_by_bank_transfer_is_priced_not_tariff_free(world):
    service, *_ = world
    with pytest.raises(BusinessRuleViolation) as refused:
        service.create_order(BUYER, "coop-1", "USD", CONTAINER, "c1")
    assert refused.value.code == "limit_exceeded" and refused.value.detail["methods"] == ["bank_transfer"]
    order = service.create_order(BUYER, "coop-1", "USD", CONTAINER, "c2", "bank_transfer")
    bank = order["payment"]["bank_transfer"]
    assert order["tariff_free"] is False and order["status"] == "awaiting_payment"
    assert bank["amount"] == order["pay"] == {"amount": 120_000_000, "currency": "USD"}
    assert bank["reference"] == order["payment"]["payment_id"] and bank["account"]["iban"]


def _bank_order(service, key="b1"):
    order = service.create_order(BUYER, "coop-1", "USD", COFFEE, key, "bank_transfer")
    return order, Money(order["pay"]["amount"], "USD")


def test_a_bank_credit_of_the_amount_pays_the_order_once_however_often_it_is_notified(world):
    service, ledger, workflow = world
    order, pay = _bank_order(service)
    for _ in range(3):  # the same entry notified three times (camt.054 repeated, then in camt.053)
        service.bank_credit(order["order_id"], pay, "BANK-ENTRY-1")
    assert service.order(order["order_id"])["status"] == "paid"
    assert ledger.get_account(f"escrow:{order['order_id']}").balance == pay.minor
    assert ledger.get_account("psp:bank:USD").balance == pay.minor
    assert list(workflow.started) == [order["order_id"]] and ledger.trial_balance().balanced


def test_a_partial_bank_payment_goes_to_review_stating_what_was_received_and_the_rest_is_noted(world):
    service, ledger, workflow = world
    order, pay = _bank_order(service)
    service.bank_credit(order["order_id"], Money(pay.minor - 10_000, "USD"), "E1")
    reviewed = service.order(order["order_id"])
    assert reviewed["status"] == "manual_review" and not workflow.started
    assert "1,100.00 USD received in all, less than the order's 1,200.00 USD" in reviewed["timeline"][-1]["detail"]
    service.bank_credit(order["order_id"], Money(10_000, "USD"), "E2")  # the rest arrives
    assert "1,200.00 USD received in all" in service.order(order["order_id"])["timeline"][-1]["detail"]
    assert ledger.get_account(f"escrow:{order['order_id']}").balance == pay.minor


def test_an_excess_bank_payment_goes_to_review_and_a_refund_gives_back_all_that_was_received(world):
    service, ledger, _ = world
    order, pay = _bank_order(service)
    service.bank_credit(order["order_id"], Money(pay.minor + 5_000, "USD"), "E1")
    assert "more than the order's" in service.order(order["order_id"])["timeline"][-1]["detail"]
    refunded = service.refund(order["order_id"], "paid too much")
    assert refunded["status"] == "refunded"
    assert refunded["refund"]["status"] == "owed" and refunded["refund"]["amount"]["amount"] == pay.minor + 5_000
    assert ledger.get_account(f"escrow:{order['order_id']}").balance == 0
    assert ledger.get_account("refunds:owed:USD").balance == pay.minor + 5_000
    owed = service.refunds("owed", 20, None)["refunds"]
    assert [r["order_id"] for r in owed] == [order["order_id"]]


def test_finance_marks_a_bank_refund_paid_once_and_the_money_leaves_the_bank_account(world):
    service, ledger, _ = world
    order, pay = _bank_order(service)
    service.bank_credit(order["order_id"], pay, "E1")
    service.refund(order["order_id"], "customs rejected the shipment")
    for _ in range(2):
        done = service.bank_refund_paid(order["order_id"], "OUR-TRANSFER-77", FINANCE.sub)
    assert done["refund"]["status"] == "paid" and done["refund"]["bank_reference"] == "OUR-TRANSFER-77"
    assert ledger.get_account("refunds:owed:USD").balance == 0
    assert ledger.get_account("psp:bank:USD").balance == 0  # in, then back out
    assert service.refunds("owed", 20, None)["refunds"] == []
    assert [r["order_id"] for r in service.refunds("paid", 20, None)["refunds"]] == [order["order_id"]]
    assert ledger.trial_balance().balanced


def test_a_card_order_has_no_bank_refund_to_mark_paid(world):
    service, *_ = world
    order = service.create_order(BUYER, "coop-1", "CNY", COFFEE, "k1")
    with pytest.raises(InvalidState):
        service.bank_refund_paid(order["order_id"], "X", FINANCE.sub)


def test_a_bank_credit_in_another_currency_is_not_booked(world):
    service, ledger, _ = world
    order, _ = _bank_order(service)
    service.bank_credit(order["order_id"], Money(100, "EUR"), "E1")
    assert service.order(order["order_id"])["status"] == "manual_review"
    assert ledger.get_account(f"escrow:{order['order_id']}") is None or ledger.get_account(
        f"escrow:{order['order_id']}").balance == 0
