"""Alipay and WeChat Pay in the Stripe simulator, as Stripe's PaymentIntents API does them.

Mixed into ``StripeSimulator`` (``stripe.py``). A PaymentIntent created with
``payment_method_types[]=alipay`` (or ``wechat_pay``), ``payment_method_data[type]=<the same>`` and
``confirm=true`` is confirmed at once (Stripe's server-side confirmation):

- Alipay needs a ``return_url`` (where Alipay sends the buyer back); the intent becomes
  ``requires_action`` with ``next_action = {"type": "alipay_handle_redirect",
  "alipay_handle_redirect": {"native_data", "native_url", "return_url", "url"}}``: ``url`` is the
  page the buyer's browser opens (here ``/sandbox/stripe/alipay/<pi>``).
- WeChat Pay needs ``payment_method_options[wechat_pay][client]`` (``web``, or ``ios`` / ``android``
  with an ``app_id``); the intent becomes ``requires_action`` with ``next_action = {"type":
  "wechat_pay_display_qr_code", "wechat_pay_display_qr_code": {"data", "hosted_instructions_url",
  "image_data_url", "image_url_png", "image_url_svg"}}``: ``data`` is the QR code's content
  (``weixin://wxpay/bizpayurl?pr=...``), the URLs show it.

Either method takes only its presentment currencies (Alipay: aud cad cny eur gbp hkd jpy nzd sgd
usd myr; WeChat Pay: aud cad cny eur gbp hkd jpy sgd usd dkk nok sek chf), else 400
``payment_intent_invalid_currency``. ``POST /sandbox/payments/<pi>/pay`` plays the buyer approving
in the app: the charge carries ``payment_method_details.type`` = the method (and its
``transaction_id``); a failed attempt leaves the intent ``requires_payment_method`` with
``last_payment_error.code = "payment_method_provider_decline"``. Refunds are the card's.
"""
from __future__ import annotations

import base64
import zlib

#: Presentment currencies per wallet (docs.stripe.com/payments/alipay, /payments/wechat-pay).
WALLET_CURRENCIES = {
    "alipay": frozenset("aud cad cny eur gbp hkd jpy nzd sgd usd myr".split()),
    "wechat_pay": frozenset("aud cad cny eur gbp hkd jpy sgd usd dkk nok sek chf".split()),
}
METHOD_TYPES = frozenset({"card", *WALLET_CURRENCIES})
WECHAT_CLIENTS = frozenset({"web", "ios", "android"})
#: ``payment_intents.create`` parameters for confirming at creation (added to the card's).
CONFIRM_PARAMS = frozenset({"confirm", "payment_method_data", "payment_method_options", "return_url"})


def _png_1x1() -> bytes:
    """The smallest valid PNG (one black pixel): a stand-in for the QR code's image."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = chunk(b"IHDR", (1).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0]))
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b"")


class StripeWallets:
    """Wallet confirmation for ``StripeSimulator`` (uses its ``ctx``, ``StripeError`` and ``new_id``)."""

    def confirm_at_creation(self, params: dict, intent: dict) -> None:
        """Validate ``payment_method_types`` and, with ``confirm=true``, confirm a wallet intent."""
        from sandbox.simulators.stripe import StripeError, new_id

        types = intent["payment_method_types"]
        unknown = [t for t in types if t not in METHOD_TYPES]
        if unknown:
            raise StripeError(400, f"The payment method type {unknown[0]!r} is invalid or not activated in the "
                              "Mizani sandbox.", code="payment_intent_invalid_parameter", param="payment_method_types")
        for kind in types:
            if kind in WALLET_CURRENCIES and intent["currency"] not in WALLET_CURRENCIES[kind]:
                raise StripeError(400, f"The currency provided ({intent['currency']}) is invalid for {kind}.",
                                  code="payment_intent_invalid_currency", param="currency")
        confirm = params.get("confirm")
        if confirm not in (None, "true", "false"):
            raise StripeError(400, "Invalid boolean: " + str(confirm), param="confirm")
        data = params.get("payment_method_data")
        if confirm != "true":
            if data is not None or params.get("return_url"):
                raise StripeError(400, "payment_method_data and return_url are only used with confirm=true",
                                  param="payment_method_data")
            return
        kind = data.get("type") if isinstance(data, dict) else None
        if kind not in types or kind not in WALLET_CURRENCIES:
            raise StripeError(400, "The Mizani sandbox confirms only Alipay and WeChat Pay at creation: "
                              "payment_method_data[type] must be one of payment_method_types.",
                              code="parameter_invalid_string", param="payment_method_data[type]")
        options = params.get("payment_method_options") or {}
        sandbox = self.ctx.sandbox_base_url.rstrip("/")
        if kind == "alipay":
            return_url = params.get("return_url")
            if not return_url:
                raise StripeError(400, "A return_url is required to confirm an Alipay PaymentIntent.",
                                  code="parameter_missing", param="return_url")
            next_action = {"type": "alipay_handle_redirect", "alipay_handle_redirect": {
                "native_data": None, "native_url": None, "return_url": return_url,
                "url": f"{sandbox}/sandbox/stripe/alipay/{intent['id']}",
            }}
        else:
            wechat = options.get("wechat_pay") if isinstance(options, dict) else None
            client = wechat.get("client") if isinstance(wechat, dict) else None
            if client not in WECHAT_CLIENTS:
                raise StripeError(400, "payment_method_options[wechat_pay][client] is required (web, ios or android).",
                                  code="parameter_missing", param="payment_method_options[wechat_pay][client]")
            if client != "web" and not wechat.get("app_id"):
                raise StripeError(400, "payment_method_options[wechat_pay][app_id] is required for ios and android.",
                                  code="parameter_missing", param="payment_method_options[wechat_pay][app_id]")
            qr = f"weixin://wxpay/bizpayurl?pr={new_id('', 16)}"
            image = base64.b64encode(_png_1x1()).decode()
            page = f"{sandbox}/sandbox/stripe/wechat_pay/{intent['id']}"
            next_action = {"type": "wechat_pay_display_qr_code", "wechat_pay_display_qr_code": {
                "data": qr, "hosted_instructions_url": page, "image_data_url": f"data:image/png;base64,{image}",
                "image_url_png": f"{page}/qr.png", "image_url_svg": f"{page}/qr.svg",
            }}
        intent.update(status="requires_action", next_action=next_action, payment_method=new_id("pm_1"),
                      confirmation_method="automatic")
        self._wallets[intent["id"]] = kind

    def wallet_of(self, intent: dict) -> str:
        """The wallet a PaymentIntent was confirmed with, or ``card``."""
        return self._wallets.get(intent["id"], "card")

    def wallet_charge(self, intent: dict, charge: dict, succeeded: bool) -> None:
        """The charge and intent of a wallet payment attempt, as Stripe shows them."""
        from sandbox.simulators.stripe import new_id

        kind = self.wallet_of(intent)
        details = {"transaction_id": new_id("", 20), "fingerprint": new_id("", 16)}
        if kind == "alipay":
            details["buyer_id"] = new_id("2088", 12)
        charge["payment_method_details"] = {"type": kind, kind: details}
        if succeeded:
            intent["next_action"] = None
            return
        charge.update(failure_code="payment_method_provider_decline",
                      failure_message=f"The payment was declined by {kind}.",
                      outcome={"network_status": "declined_by_network", "type": "issuer_declined"})
        intent.update(status="requires_payment_method", next_action=None, last_payment_error={
            "type": "invalid_request_error", "code": "payment_method_provider_decline",
            "message": f"The payment was declined by {kind}.", "charge": charge["id"],
            "payment_method": {"id": intent.get("payment_method"), "object": "payment_method", "type": kind},
        })

    def wallet_page(self, pi_id: str) -> tuple[int, str]:
        """The page ``next_action`` sends the buyer to (a sandbox stand-in for Alipay's or WeChat's)."""
        with self._lock:
            intent = self.payment_intents.get(pi_id)
            if intent is None or self.wallet_of(intent) == "card":
                return 404, "no such wallet payment"
            amount, currency, kind = intent["amount"], intent["currency"].upper(), self.wallet_of(intent)
        return 200, (f"<html><body><h1>Mizani sandbox {kind}</h1><p>Pay {amount} ({currency}, Stripe's minor unit) "
                     f"for {pi_id}: POST /sandbox/payments/{pi_id}/pay</p></body></html>")
