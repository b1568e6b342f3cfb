"""Stripe simulator: the subset of Stripe's v1 API that Mizani's real ``stripe`` client uses,
in Stripe's wire format, plus sandbox controls that play the buyer and Stripe's dashboard.

Stripe's API (what ``stripe.StripeClient`` with ``base_addresses={"api": <sandbox>}`` calls):

- ``POST /v1/payment_intents``, ``GET /v1/payment_intents/<id>``
- ``POST /v1/refunds``, ``GET /v1/refunds/<id>``, ``GET /v1/charges/<id>``
- ``GET /v1/balance_transactions`` (list object; ``limit``, ``starting_after``,
  ``ending_before``, ``type``, ``currency``, ``source``, ``expand[]=data.source``),
  ``GET /v1/balance_transactions/<id>`` (``expand[]=source``)
- ``GET /v1/events/<id>``

Wire format as Stripe's: form-encoded bodies with bracket syntax (``metadata[order_id]=``);
``Authorization: Bearer sk_test_...`` (or HTTP Basic with the key as user), anything else
answers 401; ``Idempotency-Key`` replays the first response for the same endpoint and
parameters (``Idempotent-Replayed: true``) and answers 400 ``idempotency_error`` for
different ones; errors are ``{"error": {"type", "code", "message", "param"}}`` with
Stripe's statuses (400, 401, 402, 404); every reply has a ``Request-Id``.

Sandbox controls (not Stripe's API; no auth):

- ``POST /sandbox/payments/<pi_id>/pay`` ``{"outcome": "succeeded"|"failed"}``: the buyer
  pays (an id that is not a PaymentIntent goes to the simulator that owns it, ``ctx.payers``:
  a mobile-money collection approved on the phone, a bank transfer arriving). Success creates a charge and a balance transaction (reporting_category ``charge``,
  fee 2.9 % + a fixed fee, see ``FIXED_FEE_MINOR``); failure leaves the PI in
  ``requires_payment_method`` with ``last_payment_error``. Then the signed
  ``payment_intent.succeeded`` / ``payment_intent.payment_failed`` event is POSTed to
  ``ctx.api_base_url + "/v1/webhooks/stripe"``. Answers ``{"payment_intent", "webhook"}``,
  ``webhook`` being the delivery result (``status`` = the API's HTTP status).
- ``POST /sandbox/stripe/events/<event_id>/resend`` ``{"timestamp_offset": -600,
  "secret": "..."}`` (both optional): deliver the same event (same body) again, signed
  ``timestamp_offset`` seconds off now (stale or future), or with another secret.
- ``GET /sandbox/stripe/events``: every event and its deliveries, oldest first.
- ``GET /sandbox/statements/stripe_balance``: the itemized balance change report (CSV,
  columns of Stripe's ``balance_change_from_activity.itemized`` report, amounts in major
  units as decimal strings), one balance transaction a line, oldest first.

Refunds also record ``refund.created`` and ``charge.refunded`` events. Only the types in
``MIZANI_STRIPE_WEBHOOK_EVENTS`` (comma-separated, ``*`` for all; default the two payment
events and the five ``charge.dispute.*`` ones) are delivered, like a Stripe endpoint subscribed to those types; the others can be
read with ``GET /v1/events/<id>`` or delivered with ``resend``.

Webhooks are signed like Stripe's: ``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
"<t>.<body>" keyed with the secret>``, the secret being ``MIZANI_STRIPE_WEBHOOK_SECRET``
(default ``whsec_local``). Deliveries are synchronous (the pay call returns after the API
answered) and are made without holding the simulator's lock, so the API may call back.

State lives in memory behind one lock (the provider server is threaded); ``reset()``
forgets everything.
"""
from __future__ import annotations

import base64
import copy
import csv
import hashlib
import hmac
import io
import json
import re
import secrets
import string
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable, Optional
from urllib.parse import parse_qsl

from flask import Blueprint, Response, g, has_request_context, request

from sandbox.simulators import SimulatorContext
from sandbox.simulators.stripe_disputes import DISPUTE_EVENTS, StripeDisputes
from sandbox.simulators.stripe_wallets import CONFIRM_PARAMS, StripeWallets

DEFAULT_WEBHOOK_SECRET = "whsec_local"
DEFAULT_WEBHOOK_EVENTS = ("payment_intent.succeeded", "payment_intent.payment_failed", *DISPUTE_EVENTS)
#: The API version the simulator stamps on events when the client did not send ``Stripe-Version``.
DEFAULT_API_VERSION = "2026-10-28.endive"
WEBHOOK_PATH = "/v1/webhooks/stripe"

#: Stripe's card fee as modelled here: 2.9 % of the gross, rounded half up, plus a fixed part.
FEE_PERCENT = Decimal("2.9")
#: Fixed part of the fee, in the currency's minor units (Stripe's published domestic
#: figures for USD/EUR/GBP; 30 minor units elsewhere, a simulator's choice).
FIXED_FEE_MINOR = {"usd": 30, "eur": 25, "gbp": 20}
DEFAULT_FIXED_FEE_MINOR = 30
#: Stripe's ceiling for one charge (8 digits: 999,999.99 USD). ``MIZANI_STRIPE_MAX_AMOUNT`` overrides.
DEFAULT_MAX_AMOUNT = 99_999_999

#: Stripe's zero- and three-decimal currencies (docs.stripe.com/currencies); others are two-decimal.
ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())

#: Columns of the itemized balance change report, as Stripe names them.
STATEMENT_COLUMNS = [
    "balance_transaction_id",
    "created_utc",
    "reporting_category",
    "currency",
    "gross",
    "fee",
    "net",
    "payment_intent_id",
]

_ID_ALPHABET = string.ascii_letters + string.digits
_KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")

PI_CREATE_PARAMS = frozenset(
    [
        "amount",
        "currency",
        "metadata",
        "automatic_payment_methods",
        "description",
        "payment_method_types",
        "capture_method",
        "receipt_email",
        "statement_descriptor_suffix",
        "expand",
        *CONFIRM_PARAMS,  # Alipay and WeChat Pay confirmed at creation (stripe_wallets.py)
    ]
)
REFUND_CREATE_PARAMS = frozenset(["payment_intent", "charge", "amount", "metadata", "reason", "expand"])
REFUND_REASONS = frozenset(["duplicate", "fraudulent", "requested_by_customer"])


def make(ctx: SimulatorContext) -> "StripeSimulator":
    return StripeSimulator(ctx)


class StripeError(Exception):
    """A Stripe-shaped error reply."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 code: Optional[str] = None, param: Optional[str] = None, extra: Optional[dict] = None):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type, "code": code, "message": message, "param": param, **(extra or {})}}


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def decode_form(pairs: list[tuple[str, str]]) -> dict:
    """Stripe's bracket syntax to nested values: ``a[b]=1`` -> ``{"a": {"b": "1"}}``;
    ``a[0]=x`` / ``a[]=x`` -> ``{"a": ["x"]}``. Leaves stay strings, as on the wire."""
    root: dict = {}
    for raw_key, value in pairs:
        match = _KEY_RE.match(raw_key)
        if not match:
            raise StripeError(400, f"Invalid parameter name: {raw_key!r}", param=raw_key)
        parts = [match.group(1)] + re.findall(r"\[([^\[\]]*)\]", match.group(2))
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise StripeError(400, f"Invalid parameter: {raw_key} mixes a value and a hash", param=parts[0])
            node = child
        last = parts[-1]
        if last == "":
            last = str(len(node))
        if isinstance(node.get(last), dict):
            raise StripeError(400, f"Invalid parameter: {raw_key} mixes a value and a hash", param=parts[0])
        node[last] = value
    return _lists(root)


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _lists(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def major_units(minor: int, currency: str) -> str:
    """``123456, "usd"`` -> ``"1234.56"``; ``1500000, "rwf"`` -> ``"1500000"`` (Stripe's report format)."""
    places = 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2
    value = Decimal(minor).scaleb(-places)
    return f"{value:.{places}f}"


def card_fee(amount: int, currency: str) -> int:
    percent = (Decimal(amount) * FEE_PERCENT / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(percent) + FIXED_FEE_MINOR.get(currency, DEFAULT_FIXED_FEE_MINOR)


def sign(payload: str, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header value for ``payload`` signed at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.{payload}".encode("utf-8"), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class StripeSimulator(StripeDisputes, StripeWallets):
    """The simulator; ``blueprint`` serves it, ``reset()`` forgets everything."""

    def __init__(self, ctx: SimulatorContext, clock: Callable[[], float] = time.time) -> None:
        self.ctx = ctx
        self.clock = clock
        self._lock = threading.RLock()
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1: never via a proxy
        self.reset()
        self.blueprint = self._build_blueprint()

    def reset(self) -> None:
        with self._lock:
            self.payment_intents: dict[str, dict] = {}
            self.charges: dict[str, dict] = {}
            self.refunds: dict[str, dict] = {}
            self.balance_transactions: list[dict] = []  # oldest first
            self.events: dict[str, dict] = {}  # id -> {"event", "payload", "deliveries"}
            # Not part of Stripe's balance transaction object: what the report's payment_intent_id needs.
            self._txn_payment_intent: dict[str, Optional[str]] = {}
            self._idempotency: dict[tuple[str, str], dict] = {}
            self._api_versions: dict[str, str] = {}  # pi id -> Stripe-Version of its creation request
            self._reset_disputes()
            self._wallets: dict[str, str] = {}  # pi id -> alipay | wechat_pay (stripe_wallets.py)

    # -- settings from the stage environment -------------------------------------
    def _webhook_secret(self) -> str:
        return self.ctx.env.get("MIZANI_STRIPE_WEBHOOK_SECRET") or DEFAULT_WEBHOOK_SECRET

    def _delivered_types(self) -> Optional[frozenset]:
        raw = self.ctx.env.get("MIZANI_STRIPE_WEBHOOK_EVENTS")
        if not raw:
            return frozenset(DEFAULT_WEBHOOK_EVENTS)
        if raw.strip() == "*":
            return None  # all
        return frozenset(t.strip() for t in raw.split(",") if t.strip())

    def _max_amount(self) -> int:
        raw = self.ctx.env.get("MIZANI_STRIPE_MAX_AMOUNT")
        return int(raw) if raw else DEFAULT_MAX_AMOUNT

    def _now(self) -> int:
        return int(self.clock())

    # -- HTTP plumbing ----------------------------------------------------------------
    def _reply(self, body: Any, status: int = 200, headers: Optional[dict] = None) -> Response:
        response = Response(json.dumps(body, indent=2), status=status, mimetype="application/json")
        response.headers["Request-Id"] = g.get("stripe_request_id") or new_id("req_", 14)
        response.headers["Stripe-Version"] = request.headers.get("Stripe-Version", DEFAULT_API_VERSION)
        for name, value in (headers or {}).items():
            response.headers[name] = value
        return response

    def _api_key(self) -> str:
        """The secret key of the request (Bearer or Basic), or a 401 like Stripe's."""
        header = request.headers.get("Authorization", "")
        key = ""
        if header.startswith("Bearer "):
            key = header[len("Bearer "):].strip()
        elif header.startswith("Basic "):
            try:
                key = base64.b64decode(header[len("Basic "):]).decode("utf-8").split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                key = ""
        if not key:
            raise StripeError(
                401,
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        if not key.startswith("sk_test_") or len(key) <= len("sk_test_"):
            shown = key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else "****"
            raise StripeError(401, f"Invalid API Key provided: {shown}", code="api_key_invalid")
        return key

    def _api(self, handler: Callable[..., tuple[int, dict]], idempotent: bool = False):
        """Wrap a /v1 handler: auth, form decoding, idempotency, Stripe-shaped errors."""

        def view(**path_args):
            g.stripe_request_id = new_id("req_", 14)
            g.stripe_pending_deliveries = []
            try:
                api_key = self._api_key()
                if request.method == "POST":
                    params = decode_form(parse_qsl(request.get_data(as_text=True), keep_blank_values=True))
                else:
                    params = decode_form(parse_qsl(request.query_string.decode("utf-8"), keep_blank_values=True))
                key = request.headers.get("Idempotency-Key") if idempotent else None
                if key is None:
                    status, body = handler(params, **path_args)
                    response = self._reply(body, status)
                else:
                    response = self._idempotent(api_key, key, params, handler, path_args)
            except StripeError as e:
                status, body = e.status, e.body
                headers = {"WWW-Authenticate": 'Bearer realm="Stripe"'} if status == 401 else None
                return self._reply(body, status, headers)
            # Webhooks go out after the state is committed and the lock released: the API may call back.
            for event_id in g.stripe_pending_deliveries:
                self.deliver(event_id)
            return response

        view.__name__ = handler.__name__
        return view

    def _idempotent(self, api_key: str, key: str, params: dict, handler, path_args) -> Response:
        if len(key) > 255:
            raise StripeError(400, "Idempotency-Key must be at most 255 characters long.", param="Idempotency-Key")
        fingerprint = (request.method, request.path, json.dumps(params, sort_keys=True))
        with self._lock:  # the whole request under the lock: a concurrent twin waits, then replays
            seen = self._idempotency.get((api_key, key))
            if seen is not None:
                if seen["fingerprint"] != fingerprint:
                    raise StripeError(
                        400,
                        "Keys for idempotent requests can only be used with the same parameters they were first "
                        f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
                        type="idempotency_error",
                    )
                return self._reply(seen["body"], seen["status"], {"Idempotency-Key": key, "Idempotent-Replayed": "true"})
            try:
                status, body = handler(params, **path_args)
            except StripeError as e:
                # Like Stripe: a request refused by validation is not saved (the key may be retried
                # with corrected parameters); a request that ran (e.g. a declined card, 402) is.
                if e.status in (400, 404):
                    raise
                status, body = e.status, e.body
            self._idempotency[(api_key, key)] = {"fingerprint": fingerprint, "status": status, "body": body}
            return self._reply(body, status, {"Idempotency-Key": key})

    # -- validation helpers ----------------------------------------------------------------
    @staticmethod
    def _only(params: dict, allowed: frozenset) -> None:
        for name in params:
            if name not in allowed:
                raise StripeError(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)

    @staticmethod
    def _amount(raw: Any, param: str = "amount", required: bool = True) -> Optional[int]:
        if raw is None or raw == "":
            if required:
                raise StripeError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)
            return None
        if not isinstance(raw, str) or not re.fullmatch(r"-?\d{1,18}", raw):
            raise StripeError(400, "Invalid integer: " + str(raw), code="parameter_invalid_integer", param=param)
        value = int(raw)
        if value < 1:
            raise StripeError(400, "This value must be greater than or equal to 1.", code="parameter_invalid_integer",
                              param=param)
        return value

    @staticmethod
    def _currency(raw: Any) -> str:
        if raw is None or raw == "":
            raise StripeError(400, "Missing required param: currency.", code="parameter_missing", param="currency")
        currency = str(raw).lower()
        if not re.fullmatch(r"[a-z]{3}", currency) or not _is_iso_currency(currency):
            raise StripeError(400, f"Invalid currency: {raw}. Stripe currently supports these currencies: ...",
                              code="parameter_invalid_string", param="currency")
        return currency

    @staticmethod
    def _metadata(raw: Any) -> dict:
        if raw is None or raw == "":
            return {}
        if not isinstance(raw, dict):
            raise StripeError(400, "Invalid object", param="metadata")
        if len(raw) > 50:
            raise StripeError(400, "Metadata can have at most 50 keys.", param="metadata")
        metadata = {}
        for key, value in raw.items():
            if not isinstance(value, str):
                raise StripeError(400, f"Invalid metadata value for key {key}", param=f"metadata[{key}]")
            if len(key) > 40:
                raise StripeError(400, "Metadata keys can be at most 40 characters long.", param=f"metadata[{key}]")
            if len(value) > 500:
                raise StripeError(400, "Metadata values can be at most 500 characters long.", param=f"metadata[{key}]")
            if value != "":  # an empty value unsets the key
                metadata[key] = value
        return metadata

    # -- Stripe API: PaymentIntents --------------------------------------------------------
    def create_payment_intent(self, params: dict) -> tuple[int, dict]:
        self._only(params, PI_CREATE_PARAMS)
        amount = self._amount(params.get("amount"))
        currency = self._currency(params.get("currency"))
        if amount > self._max_amount():
            raise StripeError(400, f"Amount must be no more than {major_units(self._max_amount(), currency)} "
                              f"{currency}", code="amount_too_large", param="amount")
        metadata = self._metadata(params.get("metadata"))
        capture_method = params.get("capture_method", "automatic")
        if capture_method not in ("automatic", "automatic_async"):
            raise StripeError(400, f"capture_method={capture_method} is not supported by the Mizani sandbox",
                              code="parameter_invalid_string", param="capture_method")
        description = params.get("description")
        if description is not None and len(description) > 1000:
            raise StripeError(400, "Description can be at most 1000 characters.", param="description")
        apm = params.get("automatic_payment_methods")
        if apm is not None and (not isinstance(apm, dict) or apm.get("enabled") not in ("true", "false")):
            raise StripeError(400, "Invalid automatic_payment_methods[enabled]: must be true or false",
                              param="automatic_payment_methods[enabled]")
        method_types = params.get("payment_method_types")
        if method_types is not None and not isinstance(method_types, list):
            raise StripeError(400, "Invalid array", param="payment_method_types")
        apm_enabled = apm is not None and apm.get("enabled") == "true"
        if apm_enabled and method_types:
            raise StripeError(400, "You may only specify one of these parameters: automatic_payment_methods, "
                              "payment_method_types.", param="automatic_payment_methods")
        pi_id = new_id("pi_3")
        intent = {
            "id": pi_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "automatic_payment_methods": {"allow_redirects": "always", "enabled": True} if apm_enabled else None,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": capture_method,
            "client_secret": f"{pi_id}_secret_{new_id('', 25)}",
            "confirmation_method": "automatic",
            "created": self._now(),
            "currency": currency,
            "customer": None,
            "description": description,
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": metadata,
            "next_action": None,
            "payment_method": None,
            "payment_method_types": list(method_types) if method_types else ["card"],
            "receipt_email": params.get("receipt_email"),
            "status": "requires_payment_method",
        }
        self.confirm_at_creation(params, intent)  # Alipay / WeChat Pay: requires_action with next_action
        with self._lock:
            self.payment_intents[pi_id] = intent
            self._api_versions[pi_id] = request.headers.get("Stripe-Version") or DEFAULT_API_VERSION
            return 200, copy.deepcopy(intent)

    def get_payment_intent(self, params: dict, pi_id: str) -> tuple[int, dict]:
        with self._lock:
            return 200, copy.deepcopy(self._intent(pi_id, param="intent"))

    def _intent(self, pi_id: str, param: str) -> dict:
        intent = self.payment_intents.get(pi_id)
        if intent is None:
            raise StripeError(404, f"No such payment_intent: '{pi_id}'", code="resource_missing", param=param)
        return intent

    # -- Stripe API: refunds, charges -----------------------------------------------------
    def create_refund(self, params: dict) -> tuple[int, dict]:
        self._only(params, REFUND_CREATE_PARAMS)
        amount = self._amount(params.get("amount"), required=False)
        metadata = self._metadata(params.get("metadata"))
        reason = params.get("reason")
        if reason is not None and reason not in REFUND_REASONS:
            raise StripeError(400, f"Invalid reason: must be one of {', '.join(sorted(REFUND_REASONS))}",
                              param="reason")
        with self._lock:
            if params.get("payment_intent"):
                intent = self._intent(params["payment_intent"], param="payment_intent")
                if intent["status"] != "succeeded" or not intent["latest_charge"]:
                    raise StripeError(
                        400, f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
                        code="payment_intent_unexpected_state", param="payment_intent",
                        extra={"payment_intent": copy.deepcopy(intent)})
                charge = self.charges[intent["latest_charge"]]
            elif params.get("charge"):
                charge = self.charges.get(params["charge"])
                if charge is None:
                    raise StripeError(404, f"No such charge: '{params['charge']}'", code="resource_missing",
                                      param="charge")
                if charge["status"] != "succeeded":
                    raise StripeError(400, f"Charge {charge['id']} has not succeeded and cannot be refunded.",
                                      code="charge_not_refundable", param="charge")
            else:
                raise StripeError(400, "One of the following params should be provided for this request: "
                                  "payment_intent or charge.", code="parameter_missing", param="payment_intent")
            currency = charge["currency"]
            remaining = charge["amount"] - charge["amount_refunded"]
            if remaining == 0:
                raise StripeError(400, f"Charge {charge['id']} has already been refunded.",
                                  code="charge_already_refunded", param="amount")
            amount = remaining if amount is None else amount
            self.refund_refused_by_dispute(charge, amount)
            if amount > remaining:
                raise StripeError(
                    400, f"Refund amount ({major_units(amount, currency)} {currency}) is greater than unrefunded "
                         f"amount on charge ({major_units(remaining, currency)} {currency})",
                    code="amount_too_large", param="amount")
            now = self._now()
            refund_id = new_id("re_3")
            txn = self._balance_transaction(
                amount=-amount, fee=0, currency=currency, source=refund_id, kind="refund",
                description="REFUND FOR CHARGE", payment_intent=charge["payment_intent"], created=now)
            refund = {
                "id": refund_id,
                "object": "refund",
                "amount": amount,
                "balance_transaction": txn["id"],
                "charge": charge["id"],
                "created": now,
                "currency": currency,
                "destination_details": {"card": {"type": "refund"}, "type": "card"},
                "metadata": metadata,
                "payment_intent": charge["payment_intent"],
                "reason": reason,
                "receipt_number": None,
                "source_transfer_reversal": None,
                "status": "succeeded",
                "transfer_reversal": None,
            }
            self.refunds[refund_id] = refund
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            version = self._api_versions.get(charge["payment_intent"] or "", DEFAULT_API_VERSION)
            for event_id in (self._record_event("refund.created", refund, version),
                             self._record_event("charge.refunded", charge, version)):
                if self._subscribed(event_id):
                    g.stripe_pending_deliveries.append(event_id)
            return 200, copy.deepcopy(refund)

    def get_refund(self, params: dict, refund_id: str) -> tuple[int, dict]:
        with self._lock:
            refund = self.refunds.get(refund_id)
            if refund is None:
                raise StripeError(404, f"No such refund: '{refund_id}'", code="resource_missing", param="id")
            return 200, copy.deepcopy(refund)

    def get_charge(self, params: dict, charge_id: str) -> tuple[int, dict]:
        with self._lock:
            charge = self.charges.get(charge_id)
            if charge is None:
                raise StripeError(404, f"No such charge: '{charge_id}'", code="resource_missing", param="id")
            return 200, copy.deepcopy(charge)

    # -- Stripe API: balance transactions, events --------------------------------------------
    def _balance_transaction(self, *, amount: int, fee: int, currency: str, source: str, kind: str,
                             description: str, payment_intent: Optional[str], created: int) -> dict:
        txn = {
            "id": new_id("txn_3"),
            "object": "balance_transaction",
            "amount": amount,
            "available_on": created + 2 * 86400,
            "created": created,
            "currency": currency,
            "description": description,
            "exchange_rate": None,
            "fee": fee,
            "fee_details": (
                [{"amount": fee, "application": None, "currency": currency, "description": "Stripe processing fees",
                  "type": "stripe_fee"}] if fee else []
            ),
            "net": amount - fee,
            "reporting_category": kind,
            "source": source,
            "status": "pending",
            "type": kind,
        }
        self.balance_transactions.append(txn)
        self._txn_payment_intent[txn["id"]] = payment_intent
        return txn

    def list_balance_transactions(self, params: dict) -> tuple[int, dict]:
        limit_raw = params.get("limit", "10")
        if not isinstance(limit_raw, str) or not limit_raw.isdigit() or not 1 <= int(limit_raw) <= 100:
            raise StripeError(400, "Invalid integer: limit must be between 1 and 100", code="parameter_invalid_integer",
                              param="limit")
        limit = int(limit_raw)
        with self._lock:
            rows = list(reversed(self.balance_transactions))  # newest first, like Stripe's lists
            for name in ("type", "currency", "source"):
                if params.get(name):
                    wanted = params[name].lower() if name == "currency" else params[name]
                    rows = [t for t in rows if t[name] == wanted]
            ids = [t["id"] for t in rows]
            if params.get("starting_after"):
                cursor = params["starting_after"]
                if cursor not in ids:
                    raise StripeError(404, f"No such balance_transaction: '{cursor}'", code="resource_missing",
                                      param="starting_after")
                rows = rows[ids.index(cursor) + 1:]
                page = rows[:limit]
                has_more = len(rows) > limit
            elif params.get("ending_before"):
                cursor = params["ending_before"]
                if cursor not in ids:
                    raise StripeError(404, f"No such balance_transaction: '{cursor}'", code="resource_missing",
                                      param="ending_before")
                rows = rows[:ids.index(cursor)]
                page = rows[-limit:]
                has_more = len(rows) > limit
            else:
                page = rows[:limit]
                has_more = len(rows) > limit
            data = [self._expanded(txn, "data.source" in _expand(params)) for txn in page]
            return 200, {"object": "list", "data": data, "has_more": has_more, "url": "/v1/balance_transactions"}

    def get_balance_transaction(self, params: dict, txn_id: str) -> tuple[int, dict]:
        with self._lock:
            for txn in self.balance_transactions:
                if txn["id"] == txn_id:
                    return 200, self._expanded(txn, "source" in _expand(params))
        raise StripeError(404, f"No such balance_transaction: '{txn_id}'", code="resource_missing", param="id")

    def _expanded(self, txn: dict, expand_source: bool) -> dict:
        """A copy of ``txn``; with ``expand_source`` its ``source`` is the charge or refund object."""
        txn = copy.deepcopy(txn)
        if expand_source:
            source = self.charges.get(txn["source"]) or self.refunds.get(txn["source"])
            if source is not None:
                txn["source"] = copy.deepcopy(source)
        return txn

    def get_event(self, params: dict, event_id: str) -> tuple[int, dict]:
        with self._lock:
            record = self.events.get(event_id)
            if record is None:
                raise StripeError(404, f"No such event: '{event_id}'", code="resource_missing", param="id")
            return 200, copy.deepcopy(record["event"])

    # -- events and webhooks -----------------------------------------------------------------
    def _record_event(self, event_type: str, obj: dict, api_version: str) -> str:
        event_id = new_id("evt_3")
        event = {
            "id": event_id,
            "object": "event",
            "api_version": api_version,
            "created": self._now(),
            "data": {"object": copy.deepcopy(obj)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": _request_info(),
            "type": event_type,
        }
        # The body is fixed once: a resend delivers the same bytes, as Stripe does.
        self.events[event_id] = {"event": event, "payload": json.dumps(event, indent=2), "deliveries": []}
        return event_id

    def _subscribed(self, event_id: str) -> bool:
        """Whether the webhook endpoint subscribes to this event's type (``MIZANI_STRIPE_WEBHOOK_EVENTS``)."""
        wanted = self._delivered_types()
        return wanted is None or self.events[event_id]["event"]["type"] in wanted

    def deliver(self, event_id: str, timestamp_offset: int = 0, secret: Optional[str] = None) -> dict:
        """POST the event to the API's Stripe webhook, signed now + ``timestamp_offset``; the delivery record."""
        with self._lock:
            record = self.events.get(event_id)
            if record is None:
                raise StripeError(404, f"No such event: '{event_id}'", code="resource_missing", param="id")
            payload = record["payload"]
        timestamp = self._now() + int(timestamp_offset)
        delivery: dict = {
            "event_id": event_id,
            "type": record["event"]["type"],
            "attempted_at": self._now(),
            "signed_at": timestamp,
            "url": None,
            "status": None,
            "delivered": False,
            "error": None,
            "response": None,
        }
        if not self.ctx.api_base_url:
            delivery["error"] = "no API base URL configured: nothing to deliver to"
        else:
            url = self.ctx.api_base_url.rstrip("/") + WEBHOOK_PATH
            delivery["url"] = url
            outgoing = urllib.request.Request(
                url,
                data=payload.encode("utf-8"),
                method="POST",
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                    "Stripe-Signature": sign(payload, secret or self._webhook_secret(), timestamp),
                },
            )
            try:
                with self._opener.open(outgoing, timeout=float(self.ctx.env.get("MIZANI_HTTP_TIMEOUT_SECONDS") or 10)) as reply:
                    delivery["status"] = reply.status
                    delivery["response"] = reply.read(2000).decode("utf-8", "replace")
            except urllib.error.HTTPError as e:
                delivery["status"] = e.code
                delivery["response"] = e.read(2000).decode("utf-8", "replace")
            except (urllib.error.URLError, OSError) as e:
                delivery["error"] = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
            delivery["delivered"] = delivery["status"] is not None and 200 <= delivery["status"] < 300
        with self._lock:
            if event_id in self.events:
                self.events[event_id]["deliveries"].append(delivery)
        return delivery

    # -- sandbox controls ----------------------------------------------------------------------
    def pay(self, pi_id: str, outcome: str) -> tuple[dict, dict]:
        """The buyer pays ``pi_id``; returns the PaymentIntent and the webhook delivery."""
        if outcome not in ("succeeded", "failed"):
            raise StripeError(400, "outcome must be 'succeeded' or 'failed'", code="parameter_invalid_string",
                              param="outcome")
        with self._lock:
            intent = self._intent(pi_id, param="payment_intent")
            if intent["status"] not in ("requires_payment_method", "requires_action"):
                raise StripeError(400, f"This PaymentIntent's status is {intent['status']}; it cannot be paid again.",
                                  code="payment_intent_unexpected_state", param="payment_intent")
            now = self._now()
            currency, amount = intent["currency"], intent["amount"]
            charge_id = new_id("ch_3")
            payment_method = new_id("pm_1")
            charge = {
                "id": charge_id,
                "object": "charge",
                "amount": amount,
                "amount_captured": 0,
                "amount_refunded": 0,
                "balance_transaction": None,
                "captured": False,
                "created": now,
                "currency": currency,
                "description": intent["description"],
                "failure_code": None,
                "failure_message": None,
                "livemode": False,
                "metadata": dict(intent["metadata"]),  # Stripe copies the PaymentIntent's metadata
                "paid": False,
                "payment_intent": pi_id,
                "payment_method": payment_method,
                "refunded": False,
                "status": "failed",
            }
            if outcome == "succeeded":
                fee = card_fee(amount, currency)
                txn = self._balance_transaction(amount=amount, fee=fee, currency=currency, source=charge_id,
                                                kind="charge", description=intent["description"],
                                                payment_intent=pi_id, created=now)
                charge.update(amount_captured=amount, balance_transaction=txn["id"], captured=True, paid=True,
                              status="succeeded",
                              outcome={"network_status": "approved_by_network", "type": "authorized"})
                intent.update(status="succeeded", amount_received=amount, latest_charge=charge_id,
                              payment_method=payment_method, last_payment_error=None)
                event_type = "payment_intent.succeeded"
                if self.wallet_of(intent) != "card":
                    self.wallet_charge(intent, charge, succeeded=True)
            elif self.wallet_of(intent) != "card":  # the wallet declined: the intent can be paid again
                self.wallet_charge(intent, charge, succeeded=False)
                event_type = "payment_intent.payment_failed"
            else:
                charge.update(failure_code="card_declined", failure_message="Your card was declined.",
                              outcome={"network_status": "declined_by_network", "reason": "generic_decline",
                                       "type": "issuer_declined"})
                intent.update(latest_charge=charge_id, payment_method=None, last_payment_error={
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": "generic_decline",
                    "message": "Your card was declined.",
                    "charge": charge_id,
                    "payment_method": {"id": payment_method, "object": "payment_method", "type": "card"},
                })
                event_type = "payment_intent.payment_failed"
            self.charges[charge_id] = charge
            version = self._api_versions.get(pi_id, DEFAULT_API_VERSION)
            event_id = self._record_event(event_type, intent, version)
            charge_event = self._record_event("charge.succeeded" if outcome == "succeeded" else "charge.failed",
                                              charge, version)
            deliver_primary = self._subscribed(event_id)
            deliver_charge = self._subscribed(charge_event)
            snapshot = copy.deepcopy(intent)
        if deliver_primary:
            webhook = self.deliver(event_id)
        else:
            webhook = {"event_id": event_id, "type": event_type, "delivered": False, "status": None,
                       "error": "event type not subscribed (MIZANI_STRIPE_WEBHOOK_EVENTS)"}
        if deliver_charge:
            self.deliver(charge_event)
        return snapshot, webhook

    def statement_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(STATEMENT_COLUMNS)
        with self._lock:
            for txn in self.balance_transactions:
                currency = txn["currency"]
                writer.writerow([
                    txn["id"],
                    datetime.fromtimestamp(txn["created"], tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
                    txn["reporting_category"],
                    currency,
                    major_units(txn["amount"], currency),
                    major_units(txn["fee"], currency),
                    major_units(txn["net"], currency),
                    self._txn_payment_intent.get(txn["id"]) or "",
                ])
        return out.getvalue()

    # -- the blueprint ----------------------------------------------------------------------------
    def _build_blueprint(self) -> Blueprint:
        bp = Blueprint("stripe_simulator", __name__)
        bp.add_url_rule("/v1/payment_intents", "create_payment_intent",
                        self._api(self.create_payment_intent, idempotent=True), methods=["POST"])
        bp.add_url_rule("/v1/payment_intents/<pi_id>", "get_payment_intent",
                        self._api(self.get_payment_intent), methods=["GET"])
        bp.add_url_rule("/v1/refunds", "create_refund", self._api(self.create_refund, idempotent=True),
                        methods=["POST"])
        bp.add_url_rule("/v1/refunds/<refund_id>", "get_refund", self._api(self.get_refund), methods=["GET"])
        bp.add_url_rule("/v1/charges/<charge_id>", "get_charge", self._api(self.get_charge), methods=["GET"])
        bp.add_url_rule("/v1/balance_transactions", "list_balance_transactions",
                        self._api(self.list_balance_transactions), methods=["GET"])
        bp.add_url_rule("/v1/balance_transactions/<txn_id>", "get_balance_transaction",
                        self._api(self.get_balance_transaction), methods=["GET"])
        bp.add_url_rule("/v1/events/<event_id>", "get_event", self._api(self.get_event), methods=["GET"])

        @bp.route("/sandbox/payments/<pi_id>/pay", methods=["POST"])
        def sandbox_pay(pi_id: str):
            g.stripe_request_id = new_id("req_", 14)
            body = request.get_json(silent=True) or {}
            with self._lock:
                ours = pi_id in self.payment_intents
            if not ours:  # another method's payment (a wallet collection, a bank transfer): its simulator pays it
                for payer in self.ctx.payers:
                    if payer.owns_payment(pi_id):
                        status, reply = payer.pay_payment(pi_id, body)
                        return Response(json.dumps(reply, indent=2), status=status, mimetype="application/json")
            try:
                intent, webhook = self.pay(pi_id, str(body.get("outcome", "succeeded")))
            except StripeError as e:
                return self._reply(e.body, e.status)
            return self._reply({"payment_intent": intent, "webhook": webhook})

        @bp.route("/sandbox/stripe/events/<event_id>/resend", methods=["POST"])
        def sandbox_resend(event_id: str):
            body = request.get_json(silent=True) or {}
            offset = body.get("timestamp_offset", 0)
            if isinstance(offset, bool) or not isinstance(offset, int):
                return self._reply(StripeError(400, "timestamp_offset must be an integer number of seconds",
                                               param="timestamp_offset").body, 400)
            secret = body.get("secret")
            try:
                return self._reply(self.deliver(event_id, offset, secret if isinstance(secret, str) else None))
            except StripeError as e:
                return self._reply(e.body, e.status)

        @bp.route("/sandbox/stripe/events", methods=["GET"])
        def sandbox_events():
            with self._lock:
                listing = [
                    {"id": r["event"]["id"], "type": r["event"]["type"], "created": r["event"]["created"],
                     "payment_intent": _payment_intent_of(r["event"]), "deliveries": copy.deepcopy(r["deliveries"])}
                    for r in self.events.values()
                ]
            return self._reply({"events": listing})

        @bp.route("/sandbox/stripe/<wallet>/<pi_id>", methods=["GET"])
        def sandbox_wallet_page(wallet: str, pi_id: str):
            status, page = self.wallet_page(pi_id)
            return Response(page, status=status, mimetype="text/html")

        self._dispute_routes(bp)

        @bp.route("/sandbox/statements/stripe_balance", methods=["GET"])
        def sandbox_statement():
            return Response(self.statement_csv(), mimetype="text/csv",
                            headers={"Content-Disposition": 'attachment; filename="stripe_balance.csv"'})

        return bp


def _expand(params: dict) -> list:
    """``expand[]=a&expand[]=b`` (decoded to a list) or a single ``expand=a``."""
    expand = params.get("expand") or []
    return expand if isinstance(expand, list) else [expand]


def _request_info() -> dict:
    """The event's ``request`` member: the API request that caused it, as Stripe reports it."""
    if not has_request_context():
        return {"id": None, "idempotency_key": None}
    return {"id": g.get("stripe_request_id"), "idempotency_key": request.headers.get("Idempotency-Key")}


def _payment_intent_of(event: dict) -> Optional[str]:
    obj = event["data"]["object"]
    return obj["id"] if obj.get("object") == "payment_intent" else obj.get("payment_intent")


def _is_iso_currency(currency: str) -> bool:
    try:
        from iso4217 import Currency

        return Currency(currency.upper()).exponent is not None
    except (ImportError, ValueError):
        return False
