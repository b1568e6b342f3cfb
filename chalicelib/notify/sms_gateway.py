"""The SMS gateway port, the Africa's Talking adapter, and ``FakeSms``.

``SmsGateway.send(to_e164, message) -> message_id``. The outbox (another module)
drains queued messages into it and owns retries; this port only says whether a
retry can help:

* ``ProviderUnavailable`` (retryable): timeout, connection error, 5xx, gateway
  errors, insufficient balance, risk hold, bad credentials or sender id: the
  message was not accepted now but may be later (after an operator fixes the account).
* ``SmsRejected`` (permanent): the number is invalid, unsupported or blacklisted;
  sending again will not help.
* ``ValidationError``: the input is not sendable (bad number, longer than the
  platform's one-part limit).

Africa's Talking has no idempotency key: a timeout after the request left may
mean the SMS went out, so an outbox retry can deliver twice. We accept that for
notifications (never for money), and never retry the POST inside this adapter.

Wire format (Africa's Talking SMS): ``POST {base}/version1/messaging``,
form-encoded ``username``, ``to``, ``message``, ``from`` (sender id, optional),
headers ``apiKey`` and ``Accept: application/json`` -> ``201`` with
``{"SMSMessageData": {"Message": "Sent to 1/1 Total Cost: ...", "Recipients":
[{"statusCode": 101, "number", "status": "Success", "cost", "messageId"}]}}``.
Recipient ``statusCode``: 100 Processed, 101 Sent, 102 Queued (accepted);
401 RiskHold, 402 InvalidSenderId, 403 InvalidPhoneNumber, 404 UnsupportedNumberType,
405 InsufficientBalance, 406 UserInBlacklist, 407 CouldNotRoute, 409 DoNotDisturbRejection,
500 InternalServerError, 501 GatewayError, 502 RejectedByGateway.
Live base ``https://api.africastalking.com``, sandbox ``https://api.sandbox.africastalking.com``.

Configuration (``build_sms_gateway``): ``MIZANI_SMS_BASE_URL``, ``MIZANI_SMS_USERNAME``,
``MIZANI_SMS_API_KEY`` (may be an SSM / Secrets Manager ARN), ``MIZANI_SMS_SENDER_ID``
(optional), with local-sandbox defaults in the ``local`` stage only.
"""
from __future__ import annotations

import itertools
import math
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Protocol, runtime_checkable

from chalicelib.errors import BusinessRuleViolation, ProviderUnavailable, ValidationError

#: The platform sends one-part messages only (160 GSM-7 characters, or 70 UCS-2).
MAX_PARTS = 1

ACCEPTED_CODES = frozenset({100, 101, 102})
PERMANENT_CODES = frozenset({403, 404, 406, 409})  # the recipient, not the account, is the problem

# Local-sandbox defaults. NOT secrets: they only authenticate traffic to the simulator on 127.0.0.1.
LOCAL_SMS_USERNAME = "sandbox"
LOCAL_SMS_API_KEY = "at-local-api-key"
LOCAL_SMS_SENDER_ID = "MIZANI"


@runtime_checkable
class SmsGateway(Protocol):
    """Sends one SMS and returns the gateway's message id."""

    def send(self, to_e164: str, message: str) -> str: ...


class SmsRejected(BusinessRuleViolation):
    """The gateway refused the recipient for good (invalid, unsupported or blacklisted number)."""

    code = "sms_rejected"


# -- message length (GSM 03.38) ------------------------------------------------------------

_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = set("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsLength:
    encoding: str  # "GSM-7" | "UCS-2"
    units: int  # septets (extension characters count 2) or UTF-16 code units
    parts: int


def sms_length(message: str) -> SmsLength:
    """How many SMS parts ``message`` takes: 160/153 septets in GSM-7, else 70/67 UCS-2 units."""
    if all(ch in _GSM7_BASIC or ch in _GSM7_EXTENSION for ch in message):
        units = sum(2 if ch in _GSM7_EXTENSION else 1 for ch in message)
        parts = 1 if units <= 160 else math.ceil(units / 153)
        return SmsLength("GSM-7", units, parts)
    units = len(message.encode("utf-16-le")) // 2
    parts = 1 if units <= 70 else math.ceil(units / 67)
    return SmsLength("UCS-2", units, parts)


_E164_RE = re.compile(r"^\+?([1-9]\d{7,14})$")


def normalize_e164(number: str) -> str:
    """``"+250788123456"`` (accepts the digits without ``+``)."""
    match = _E164_RE.fullmatch((number or "").strip().replace(" ", "")) if isinstance(number, str) else None
    if not match:
        raise ValidationError("invalid_msisdn", f"{number!r} is not an E.164 phone number", path="to")
    return f"+{match.group(1)}"


def check_message(message: str, max_parts: int = MAX_PARTS) -> SmsLength:
    if not isinstance(message, str) or not message.strip():
        raise ValidationError("invalid_message", "an SMS needs some text", path="message")
    length = sms_length(message)
    if length.parts > max_parts:
        limit = 160 if length.encoding == "GSM-7" else 70
        raise ValidationError(
            "sms_too_long",
            f"the message takes {length.parts} SMS parts ({length.units} {length.encoding} units); the limit is {limit}",
            path="message",
        )
    return length


# -- Africa's Talking ---------------------------------------------------------------------

def _reveal(secret) -> str:
    return secret() if callable(secret) else secret


class AfricasTalkingSms:
    """``SmsGateway`` over Africa's Talking's SMS API (see module doc)."""

    def __init__(self, base_url: str, username: str, api_key: str | Callable[[], str], sender_id: str = "",
                 *, http=None, timeout_seconds: float = 10.0, max_parts: int = MAX_PARTS):
        from chalicelib.http import HttpClient

        self.base_url = base_url.rstrip("/")
        self.username = username
        self._api_key = api_key
        self.sender_id = sender_id
        self.max_parts = max_parts
        self.http = http or HttpClient(timeout_seconds)

    def send(self, to_e164: str, message: str) -> str:
        from chalicelib.http import TransportError

        to = normalize_e164(to_e164)
        check_message(message, self.max_parts)
        form = {"username": self.username, "to": to, "message": message}
        if self.sender_id:
            form["from"] = self.sender_id
        try:
            response = self.http.request(
                "POST",
                f"{self.base_url}/version1/messaging",
                headers={"apiKey": _reveal(self._api_key), "Accept": "application/json"},
                form=form,
                retry=False,  # no idempotency key at AT: the outbox decides about repeats
            )
        except TransportError as err:
            raise ProviderUnavailable("provider_unavailable", f"SMS gateway: {err.message}", retryable=True) from err
        if response.status >= 500 or response.status in (401, 403, 429):
            raise ProviderUnavailable(
                "provider_unavailable", f"SMS gateway answered HTTP {response.status}", http_status=response.status
            )
        body = response.json()
        data = body.get("SMSMessageData") if isinstance(body, dict) else None
        if response.status not in (200, 201) or not isinstance(data, dict):
            detail = response.text[:200]
            if response.status == 400 and "phone" in detail.lower():
                raise SmsRejected("sms_rejected", f"SMS gateway refused the number: {detail}")
            raise ProviderUnavailable("provider_unavailable", f"SMS gateway answered HTTP {response.status}: {detail}")
        recipients = data.get("Recipients") or []
        if not recipients:
            summary = str(data.get("Message") or "no recipients accepted")
            if "invalidphonenumber" in summary.replace(" ", "").lower():
                raise SmsRejected("sms_rejected", f"SMS gateway refused the number: {summary}")
            raise ProviderUnavailable("provider_unavailable", f"SMS gateway: {summary}")
        recipient = recipients[0]
        status_code = _int(recipient.get("statusCode"))
        if status_code in ACCEPTED_CODES and recipient.get("messageId"):
            return str(recipient["messageId"])
        status = recipient.get("status") or status_code
        if status_code in PERMANENT_CODES:
            raise SmsRejected("sms_rejected", f"SMS gateway refused {to}: {status}", status_code=status_code)
        raise ProviderUnavailable("provider_unavailable", f"SMS gateway did not send: {status}", status_code=status_code)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# -- Fake -------------------------------------------------------------------------------

@dataclass(frozen=True)
class SentSms:
    message_id: str
    to: str
    message: str
    sent_at: datetime


class FakeSms:
    """In-memory ``SmsGateway``: records what was sent; ``fail_next`` scripts an error."""

    def __init__(self, max_parts: int = MAX_PARTS):
        self.max_parts = max_parts
        self.sent: list[SentSms] = []
        self._errors: list[Exception] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def fail_next(self, error: Exception) -> None:
        self._errors.append(error)

    def send(self, to_e164: str, message: str) -> str:
        to = normalize_e164(to_e164)
        check_message(message, self.max_parts)
        with self._lock:
            if self._errors:
                raise self._errors.pop(0)
            message_id = f"FAKE-SMS-{next(self._ids):06d}"
            self.sent.append(SentSms(message_id, to, message, datetime.now(timezone.utc)))
            return message_id

    def messages_to(self, to_e164: str) -> list[str]:
        to = normalize_e164(to_e164)
        return [m.message for m in self.sent if m.to == to]


def build_sms_gateway(settings=None, *, http=None) -> SmsGateway:
    """The configured Africa's Talking gateway (local stage: the sandbox simulator)."""
    from chalicelib.secrets import env_value, local_sandbox_url, secret_value

    if settings is None:
        from chalicelib import settings as settings_module

        settings = settings_module.get()
    return AfricasTalkingSms(
        base_url=env_value("MIZANI_SMS_BASE_URL", settings, local_sandbox_url(settings)),
        username=env_value("MIZANI_SMS_USERNAME", settings, LOCAL_SMS_USERNAME),
        api_key=secret_value("MIZANI_SMS_API_KEY", settings, LOCAL_SMS_API_KEY),
        sender_id=env_value("MIZANI_SMS_SENDER_ID", settings, LOCAL_SMS_SENDER_ID, required=False) or "",
        http=http,
        timeout_seconds=float(getattr(settings, "http_timeout_seconds", 10.0)),
    )
