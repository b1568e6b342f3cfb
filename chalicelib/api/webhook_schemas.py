"""What providers send to our webhooks and gateway callbacks, for the OpenAPI document.

Documentation only: each view reads its raw body itself (a signature is computed over the exact
bytes, and a provider's hint is parsed by its rail's adapter), so these models are never used to
validate. They say what the adapters read (``chalicelib.payments``, ``chalicelib.payouts.rails``,
``chalicelib.payments.collections``, ``chalicelib.ussd``, ``chalicelib.api.forms``); the other
fields a provider sends are allowed (``extra="allow"``): the body is the provider's, not ours.

``*_REQUEST`` are the ``RequestDoc`` of each route (``api.route(..., request_doc=...)``).
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel

from chalicelib.api.routing import JSON, HeaderDoc, RequestDoc
from chalicelib.api.trade_schemas import CustomsEvent

FORM = "application/x-www-form-urlencoded"
#: ``t=<unix seconds>,v1=<hex HMAC-SHA256>`` (``chalicelib.api.signatures``; Stripe's has the same form).
SIGNATURE_PATTERN = r"^t=[0-9]+(,v[0-9]+=[0-9a-fA-F]+)+$"


class ProviderBody(BaseModel):
    """Base of a provider's body: the fields we read; any other is allowed."""

    model_config = ConfigDict(extra="allow", defer_build=True)


class StripeEventData(ProviderBody):
    object: dict[str, Any] = Field(description="the PaymentIntent or Dispute the event is about")


class StripeEvent(ProviderBody):
    """A Stripe event: ``payment_intent.succeeded``, ``payment_intent.payment_failed``, ``charge.dispute.*``."""

    id: str = Field(description="evt_...; an event is handled once")
    object: str = Field(default="event")
    type: str = Field(examples=["payment_intent.succeeded"])
    created: int = Field(description="unix seconds")
    data: StripeEventData
    livemode: bool = False


class MomoParty(ProviderBody):
    partyIdType: str = Field(examples=["MSISDN"])
    partyId: str


class MomoCallback(ProviderBody):
    """MTN MoMo's callback: the same body as the transfer's (or request-to-pay's) GET status."""

    financialTransactionId: str | None = None
    externalId: str | None = Field(default=None, description="our reference (the payout or collection id)")
    amount: str | None = None
    currency: str | None = None
    payee: MomoParty | None = None
    payer: MomoParty | None = None
    status: str | None = Field(default=None, examples=["SUCCESSFUL", "FAILED", "PENDING"])
    reason: Any = None


class MpesaParameter(ProviderBody):
    Key: str
    Value: Any = None


class MpesaParameters(ProviderBody):
    ResultParameter: list[MpesaParameter] | MpesaParameter | None = None


class MpesaReferenceData(ProviderBody):
    ReferenceItem: list[MpesaParameter] | MpesaParameter | None = None


class MpesaResultBody(ProviderBody):
    ResultType: int | str | None = None
    ResultCode: int | str | None = None
    ResultDesc: str | None = None
    OriginatorConversationID: str | None = None
    ConversationID: str | None = None
    TransactionID: str | None = None
    ResultParameters: MpesaParameters | None = None
    ReferenceData: MpesaReferenceData | None = None


class MpesaResult(ProviderBody):
    """Safaricom Daraja's POST to a B2C ResultURL or QueueTimeOutURL (a Transaction Status answer too)."""

    Result: MpesaResultBody


class MpesaStkItem(ProviderBody):
    Name: str
    Value: Any = None


class MpesaStkMetadata(ProviderBody):
    Item: list[MpesaStkItem] = []


class MpesaStkCallbackBody(ProviderBody):
    MerchantRequestID: str | None = None
    CheckoutRequestID: str | None = None
    ResultCode: int | str | None = None
    ResultDesc: str | None = None
    CallbackMetadata: MpesaStkMetadata | None = None


class MpesaStkEnvelope(ProviderBody):
    stkCallback: MpesaStkCallbackBody


class MpesaStkCallback(ProviderBody):
    """M-Pesa Express (STK push) result, or a reversal's result (``Result``, as a B2C result)."""

    Body: MpesaStkEnvelope | None = None
    Result: MpesaResultBody | None = None


class AirtelTransaction(ProviderBody):
    id: str = Field(description="our payout id (the transaction id we sent)")
    message: str | None = None
    status_code: str | None = Field(default=None, examples=["TS", "TF"])
    airtel_money_id: str | None = None


class AirtelCallback(ProviderBody):
    """Airtel Money's disbursement callback, sent to the one URL set in its portal."""

    transaction: AirtelTransaction


class UssdForm(ProviderBody):
    """Africa's Talking's USSD request, form-encoded; ``text`` is the session's inputs joined by ``*``."""

    sessionId: str
    serviceCode: str = Field(examples=["*384*123#"])
    phoneNumber: str = Field(examples=["+250788123456"])
    networkCode: str | None = None
    text: str = ""


class SmsDeliveryReport(ProviderBody):
    """Africa's Talking's SMS delivery report, form-encoded."""

    id: str = Field(description="the messageId Africa's Talking gave at send time")
    status: str = Field(examples=["Success", "Failed", "Rejected", "Buffered"])
    phoneNumber: str = Field(examples=["+250788123456"])
    networkCode: str | None = None
    failureReason: str | None = None
    retryCount: str | None = None


class CollectionCallback(RootModel[MomoCallback | MpesaStkCallback]):
    """A collection's callback: MTN's request-to-pay body, or M-Pesa's STK push / reversal result."""


class RailCallback(RootModel[MomoCallback | MpesaResult | AirtelCallback]):
    """A payout rail's callback: MTN MoMo's, M-Pesa's B2C result or timeout, or Airtel's."""


def _signature(name: str, what: str) -> HeaderDoc:
    return HeaderDoc(name, f"{what}: t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<raw body>'>; a wrong, "
                           "missing or stale one (over 300 s, or in the future) is 400 invalid_signature",
                     pattern=SIGNATURE_PATTERN)


STRIPE_REQUEST = RequestDoc((JSON,), StripeEvent, headers=(_signature("Stripe-Signature", "Stripe's signature"),))
CUSTOMS_REQUEST = RequestDoc((JSON,), CustomsEvent, headers=(_signature("Mizani-Signature", "the customs authority's"),))
BANK_REQUEST = RequestDoc(("application/xml", "text/xml"), None,
                          headers=(_signature("Mizani-Signature", "the bank's"),))
MOMO_REQUEST = RequestDoc((JSON,), MomoCallback, required=False)
MPESA_REQUEST = RequestDoc((JSON,), MpesaResult, required=False)
COLLECTION_REQUEST = RequestDoc((JSON,), CollectionCallback, required=False)
RAIL_REQUEST = RequestDoc((JSON,), RailCallback, required=False)
AIRTEL_REQUEST = RequestDoc((JSON,), AirtelCallback, required=False)
USSD_REQUEST = RequestDoc((FORM,), UssdForm, required=False)
SMS_DELIVERY_REQUEST = RequestDoc((FORM,), SmsDeliveryReport)
