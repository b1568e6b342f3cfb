"""The payment-method registry: every way a buyer can pay an order, in one entry each.

A method is data plus the adapter of its kind:

=================  ===========  ==========================================================
method             kind         how the money arrives
=================  ===========  ==========================================================
``card``           stripe       a Stripe PaymentIntent (``payment_method_types[]=card``)
``alipay``         stripe       a PaymentIntent confirmed with Alipay: ``next_action`` is
                                ``alipay_handle_redirect`` (the URL the buyer's app opens)
``wechat_pay``     stripe       a PaymentIntent confirmed with WeChat Pay: ``next_action`` is
                                ``wechat_pay_display_qr_code`` (the QR code the buyer scans)
``mtn_momo``       collection   MTN MoMo Collection request-to-pay to the buyer's wallet
``mpesa``          collection   M-Pesa STK push (Lipa na M-Pesa Online) to the buyer's phone
``bank_transfer``  bank         the buyer's bank transfer to Mizani's account, matched on the
                                order's reference in the bank's camt.054 / camt.053
=================  ===========  ==========================================================

The collection methods come from the rail registry (``chalicelib.rails``: a rail's ``collection``
half), so a rail that starts collecting is one registry entry, not a second list here.

Each method says which pay currencies it takes and the most one payment may be in each
(``max_minor``): a card or wallet payment through Stripe takes at most eight digits of
Stripe's amount (999,999.99 USD, 999,999.99 CNY); a wallet its per-transaction limit; a bank
transfer any amount. ``check_payable`` is what checkout asks: a method that cannot pay that
currency, or a ``payer_msisdn`` that is not a wallet of that rail, is a ``validation_error``;
an amount above the method's limit is ``limit_exceeded`` naming the methods that can take it
(``bank_transfer`` always can).

Every method lands the money the same way: one ledger transfer ``psp:<provider>:<CUR>`` →
``escrow:<order>`` under ``pay:<order>`` (a bank credit under its own entry's id), with the
method's ``ledger_code``; release, refunds and reconciliation read the method from the order.
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.errors import BusinessRuleViolation, ValidationError
from chalicelib.money import SUPPORTED_CURRENCIES, Money

#: Stripe's ``amount`` takes at most eight digits of the currency's (Stripe) minor unit: a card,
#: Alipay or WeChat Pay payment tops out at 999,999.99 USD (or 999,999.99 CNY).
STRIPE_MAX_AMOUNT = 99_999_999
#: Alipay's and WeChat Pay's presentment currencies at Stripe (docs.stripe.com/payments/alipay,
#: /payments/wechat-pay) among those Mizani trades.
ALIPAY_CURRENCIES = frozenset({"CNY", "USD", "EUR", "GBP"})
WECHAT_PAY_CURRENCIES = frozenset({"CNY", "USD", "EUR", "GBP"})

STRIPE, COLLECTION, BANK = "stripe", "collection", "bank"


@dataclass(frozen=True)
class PaymentMethod:
    """One way to pay (see the module doc)."""

    name: str
    display_name: str
    kind: str  # stripe | collection | bank
    #: Whose account the money lands in: ``psp:<provider>:<CUR>`` (``stripe``, the rail, ``bank``).
    provider: str
    #: Pay currencies taken, each with the most one payment may be in minor units (``None``: no limit).
    limits: dict[str, int | None]
    #: Ledger codes of the money landing in escrow and going back (reconciliation matches on them).
    ledger_code: str
    refund_code: str
    #: Stripe's ``payment_method_types`` value (stripe kind).
    stripe_type: str | None = None
    #: The rail of a collection (``chalicelib.rails``), whose wallets pay.
    rail: str | None = None
    #: True when the provider collects whole units of the currency only.
    whole_units: bool = False

    @property
    def currencies(self) -> frozenset[str]:
        return frozenset(self.limits)

    @property
    def needs_payer(self) -> bool:
        """A collection asks a wallet: the order names it (``payer_msisdn``)."""
        return self.kind == COLLECTION

    def max_minor(self, currency: str) -> int | None:
        """The most one payment in ``currency`` may be, in minor units (``None``: any amount)."""
        return self.limits.get(currency)

    def accepts(self, amount: Money) -> bool:
        if amount.currency not in self.limits:
            return False
        if self.kind == STRIPE:
            from chalicelib.payments.amounts import to_stripe_amount

            try:
                return to_stripe_amount(amount) <= STRIPE_MAX_AMOUNT
            except ValidationError:
                return False
        ceiling = self.max_minor(amount.currency)
        return ceiling is None or amount.minor <= ceiling

    def step(self, currency: str) -> int:
        """The smallest amount, in minor units, this method collects in ``currency``."""
        from chalicelib.money import exponent

        return 10 ** exponent(currency) if self.whole_units else 1


def _stripe(name: str, display: str, currencies) -> PaymentMethod:
    return PaymentMethod(name, display, STRIPE, "stripe", {c: None for c in sorted(currencies)},
                         ledger_code="card_payment", refund_code="card_refund", stripe_type=name)


def _build() -> dict[str, PaymentMethod]:
    from chalicelib.rails import collecting_rails

    found = [
        _stripe("card", "card", SUPPORTED_CURRENCIES),
        _stripe("alipay", "Alipay", ALIPAY_CURRENCIES),
        _stripe("wechat_pay", "WeChat Pay", WECHAT_PAY_CURRENCIES),
    ]
    for rail in collecting_rails():
        found.append(PaymentMethod(rail.name, rail.display_name, COLLECTION, rail.name, dict(rail.collection.max_per_tx),
                                   ledger_code="collection", refund_code="collection_refund", rail=rail.name,
                                   whole_units=rail.collection.whole_units))
    found.append(PaymentMethod("bank_transfer", "bank transfer", BANK, "bank", {c: None for c in sorted(SUPPORTED_CURRENCIES)},
                               ledger_code="bank_transfer", refund_code="bank_refund"))
    return {m.name: m for m in found}


METHODS: dict[str, PaymentMethod] = _build()
METHOD_NAMES: tuple[str, ...] = tuple(METHODS)
DEFAULT_METHOD = "card"


def method(name: str | None) -> PaymentMethod:
    """The entry of ``name`` (an order stored before methods existed paid by card)."""
    found = METHODS.get(name or DEFAULT_METHOD)
    if found is None:
        raise ValidationError("validation_error", f"unknown payment method {name!r}; expected one of "
                              f"{', '.join(METHOD_NAMES)}", path="payment_method")
    return found


def of_order(order: dict) -> PaymentMethod:
    """The method an order is paid with."""
    return method((order.get("payment") or {}).get("method"))


def providers_for(currency: str) -> tuple[str, ...]:
    """Every provider buyers can pay ``currency`` through (one ``psp:<provider>:<CUR>`` account each)."""
    return tuple(dict.fromkeys(m.provider for m in METHODS.values() if currency in m.limits))


def methods_for(amount: Money) -> list[str]:
    """The methods that can take ``amount`` at once, in registry order (``bank_transfer`` always)."""
    return [m.name for m in METHODS.values() if m.accepts(amount)]


def check_currency_and_payer(chosen: PaymentMethod, pay_currency: str, payer_msisdn: str | None, *,
                             local_stage: bool) -> str | None:
    """Before pricing: ``validation_error`` unless ``chosen`` can pay ``pay_currency`` and the payer fits
    it (a collection needs a wallet number of its rail, in a country where the rail collects that
    currency; the other methods take none). Returns the payer's wallet as E.164 digits, or ``None``."""
    if pay_currency not in chosen.currencies:
        raise ValidationError("validation_error", f"{chosen.display_name} cannot pay in {pay_currency}; it takes "
                              f"{', '.join(sorted(chosen.currencies))}", path="pay_currency")
    if not chosen.needs_payer:
        if payer_msisdn is not None:
            raise ValidationError("validation_error", f"payer_msisdn is for mobile-money methods, not "
                                  f"{chosen.name}", path="payer_msisdn")
        return None
    if payer_msisdn is None:
        raise ValidationError("validation_error", f"{chosen.display_name} needs the payer's wallet number "
                              "(payer_msisdn)", path="payer_msisdn")
    from chalicelib import phones, rails

    try:
        wallet = phones.wallet_for_rail(payer_msisdn, rails.rail(chosen.rail), pay_currency, local_stage=local_stage,
                                        path="payer_msisdn")
    except ValidationError as error:  # the same checks as a payee's, named for the payer
        path = "pay_currency" if error.path == "payout.currency" else "payer_msisdn"
        raise ValidationError("validation_error", error.message, path=path) from None
    return wallet.e164


def check_amount(chosen: PaymentMethod, pay: Money) -> None:
    """After pricing: ``limit_exceeded`` when ``chosen`` cannot take ``pay`` at once, naming the
    methods that can (``detail["methods"]``; ``bank_transfer`` always can)."""
    if chosen.accepts(pay):
        return
    able = methods_for(pay)
    ceiling = chosen.max_minor(pay.currency)
    if chosen.kind == STRIPE:
        from chalicelib.payments.amounts import from_stripe_amount

        limit = f"the most one {chosen.display_name} payment through Stripe can be ({from_stripe_amount(STRIPE_MAX_AMOUNT, pay.currency)})"
    else:
        limit = f"{chosen.display_name}'s limit of {Money(ceiling, pay.currency)} a payment"
    raise BusinessRuleViolation(
        "limit_exceeded", f"{pay} is above {limit}; pay it with {' or '.join(able)}",
        methods=able,
    )
