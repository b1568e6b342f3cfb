"""The SMS gateway port, the Africa's Talking adapter, and ``FakeSms``.

``SmsGateway.send(to_e164, message) -> message_id``; the adapters also offer
``submit(to_e164, message) -> SmsReceipt`` (the id plus the recipient's status code),
which the outbox uses when it is there. The outbox (another module) drains queued
messages into it and owns retries; this port only says, on the error itself, whether
a retry can help (``error.retryable``) and whether the trouble is the whole account's
(``error.detail["account_wide"]``: every other message would meet it too):

* ``ProviderUnavailable`` (retryable): timeout, connection error, 5xx, gateway
  errors, insufficient balance, risk hold, bad credentials or sender id, no route:
  the message was not accepted now but may be later (after an operator fixes the account).
* ``SmsRejected`` (permanent): the number is invalid, unsupported or blacklisted;
  sending again will not help.
* ``ValidationError``: the input is not sendable (bad number, longer than the
  platform's one-part limit); permanent too.

Africa's Talking has no idempotency key: a timeout after the request left may
mean the SMS went out, so an outbox retry can deliver twice. We accept that for
notifications (never for money), and never retry the POST inside this adapter.

Wire format (Africa's Talking SMS): ``POST {base}/version1/messaging``,
form-encoded ``username``, ``to``, ``message``, ``from`` (sender id, optional),
headers ``apiKey`` and ``Accept: application/json`` -> ``201`` with
``{"SMSMessageData": {"Message": "Sent to 1/1 Total Cost: ...", "Recipients":
[{"statusCode": 101, "number", "status": "Success", "cost", "messageId"}]}}``.
Each recipient's ``statusCode`` and what Mizani does about it is one table,
``RECIPIENT_STATUSES`` (below). Live base ``https://api.africastalking.com``,
sandbox ``https://api.sandbox.africastalking.com``.

Delivery reports (AT's "SMS notifications", set once in AT's dashboard under SMS ->
SMS Callback URLs -> Delivery Reports) arrive form-encoded with ``id`` (the
``messageId`` above), ``status``, ``phoneNumber``, ``networkCode``, ``failureReason``
(only with ``Rejected`` / ``Failed``) and ``retryCount`` (premium SMS only). The
status values and which of them are final is the table ``DELIVERY_STATUSES``.

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

from chalicelib.errors import BusinessRuleViolation, MizaniError, ProviderUnavailable, ValidationError
from chalicelib.i18n.gsm import UNKNOWN, gsm7, is_gsm7, septets

#: The platform sends one-part messages only (160 GSM-7 characters, or 70 UCS-2).
MAX_PARTS = 1

# Local-sandbox defaults. NOT secrets: they only authenticate traffic to the simulator on 127.0.0.1.
LOCAL_SMS_USERNAME = "sandbox"
LOCAL_SMS_API_KEY = "at-local-api-key"
LOCAL_SMS_SENDER_ID = "MIZANI"


# -- what Africa's Talking's answers mean ---------------------------------------------------

ACCEPTED, REJECTED, RETRY = "accepted", "rejected", "retry"


@dataclass(frozen=True)
class RecipientStatus:
    """One of Africa's Talking's per-recipient ``statusCode`` values, and what Mizani does about it.

    ``outcome``: ``accepted`` (AT took the message), ``rejected`` (the number is the problem:
    never sent again) or ``retry`` (a later attempt can succeed). ``account_wide``: the account
    or the gateway is the problem, so every other queued message would meet it too (the outbox
    stops its drain instead of spending an attempt of each). ``why`` is the reason, in words."""

    code: int
    name: str
    outcome: str
    account_wide: bool
    why: str


#: Every ``statusCode`` Africa's Talking documents. A code not here is retried (bounded), as if
#: it were gateway trouble: an unknown answer is no proof that the number is bad.
RECIPIENT_STATUSES: dict[int, RecipientStatus] = {s.code: s for s in (
    RecipientStatus(100, "Processed", ACCEPTED, False, "AT accepted the message"),
    RecipientStatus(101, "Sent", ACCEPTED, False, "AT sent the message on to the network"),
    RecipientStatus(102, "Queued", ACCEPTED, False, "AT queued the message"),
    RecipientStatus(401, "RiskHold", RETRY, True,
                    "AT's risk team holds the account; once AT support lifts the hold, a retry goes"),
    RecipientStatus(402, "InvalidSenderId", RETRY, True,
                    "the sender id is not (yet) approved for the account; an operator fixes the setting"),
    RecipientStatus(403, "InvalidPhoneNumber", REJECTED, False, "AT cannot send to that number"),
    RecipientStatus(404, "UnsupportedNumberType", REJECTED, False, "the number cannot take an SMS (landline, ...)"),
    RecipientStatus(405, "InsufficientBalance", RETRY, True,
                    "the AT account ran out of credit; a retry after an operator tops it up goes"),
    RecipientStatus(406, "UserInBlacklist", REJECTED, False, "the subscriber blocked messages from our sender id"),
    RecipientStatus(407, "CouldNotRoute", RETRY, False,
                    "AT found no route to that network just now; routes come back"),
    # AT documents 409 as Nigeria's rule for promotional sender ids outside the allowed hours:
    # the number is fine, the hour is not, and a later attempt passes. The backoff reaches past
    # a night (see outbox.RetryPolicy); should it be the subscriber's own DND, attempts run out.
    RecipientStatus(409, "DoNotDisturbRejection", RETRY, False,
                    "refused at this hour (Nigeria, promotional sender ids); a later attempt passes"),
    RecipientStatus(500, "InternalServerError", RETRY, True, "AT failed internally"),
    RecipientStatus(501, "GatewayError", RETRY, True, "the gateway between AT and the network failed"),
    RecipientStatus(502, "RejectedByGateway", RETRY, False, "the network's gateway refused the message just now"),
)}

ACCEPTED_CODES = frozenset(c for c, s in RECIPIENT_STATUSES.items() if s.outcome == ACCEPTED)
PERMANENT_CODES = frozenset(c for c, s in RECIPIENT_STATUSES.items() if s.outcome == REJECTED)


def recipient_status(code: int | None) -> RecipientStatus:
    """The table entry for ``code``; an unknown or missing code is treated as retryable gateway trouble."""
    found = RECIPIENT_STATUSES.get(code) if code is not None else None
    return found or RecipientStatus(code or 0, "Unknown", RETRY, False, "an answer AT does not document")


@dataclass(frozen=True)
class DeliveryStatus:
    """A delivery report's ``status`` value. ``rank`` orders the progress of one message: a
    report never moves a message back to a lower rank, and a ``final`` status is never replaced."""

    name: str
    rank: int
    final: bool
    delivered: bool = False


#: AT's delivery report statuses. AT marks Rejected, Success and Failed as final; Expired
#: (the network discarded the message) cannot progress either. AbsentSubscriber (the phone
#: was off or out of coverage) is kept as the latest news but not as final: the network may
#: still deliver when the phone comes back, and a later Success then replaces it.
DELIVERY_STATUSES: dict[str, DeliveryStatus] = {s.name: s for s in (
    DeliveryStatus("Sent", 1, False),
    DeliveryStatus("Submitted", 2, False),
    DeliveryStatus("Buffered", 3, False),
    DeliveryStatus("AbsentSubscriber", 4, False),
    DeliveryStatus("Success", 9, True, delivered=True),
    DeliveryStatus("Rejected", 9, True),
    DeliveryStatus("Failed", 9, True),
    DeliveryStatus("Expired", 9, True),
)}


@runtime_checkable
class SmsGateway(Protocol):
    """Sends one SMS and returns the gateway's message id."""

    def send(self, to_e164: str, message: str) -> str: ...


@dataclass(frozen=True)
class SmsReceipt:
    """What the gateway said when it accepted one message."""

    message_id: str
    status_code: int | None = None
    status: str = ""


class SmsRejected(BusinessRuleViolation):
    """The gateway refused the recipient for good (invalid, unsupported or blacklisted number)."""

    code = "sms_rejected"


def recipient_error(code: int | None, to: str, status: str = "") -> MizaniError:
    """The error for a recipient AT did not accept with ``code`` (``RECIPIENT_STATUSES`` decides
    which kind), carrying ``status_code``, ``status`` and ``account_wide`` in its detail."""
    entry = recipient_status(code)
    status = status or entry.name
    detail = {"status_code": code, "status": status, "account_wide": entry.account_wide}
    if entry.outcome == REJECTED:
        return SmsRejected("sms_rejected", f"SMS gateway refused {to}: {status} ({entry.why})", **detail)
    return ProviderUnavailable("provider_unavailable", f"SMS gateway did not send: {status} ({entry.why})", **detail)


def submit_to(gateway, to_e164: str, message: str) -> SmsReceipt:
    """``gateway.submit`` where the gateway has it, else ``send`` (a bare ``SmsGateway``)."""
    submit = getattr(gateway, "submit", None)
    if callable(submit):
        return submit(to_e164, message)
    return SmsReceipt(str(gateway.send(to_e164, message)))


# -- message length (GSM 03.38; the alphabet is chalicelib.i18n.gsm's, the platform's one definition) --------

@dataclass(frozen=True)
class SmsLength:
    encoding: str  # "GSM-7" | "UCS-2"
    units: int  # septets (extension characters count 2) or UTF-16 code units
    parts: int


def sms_length(message: str) -> SmsLength:
    """How many SMS parts ``message`` takes: 160/153 septets in GSM-7, else 70/67 UCS-2 units."""
    if is_gsm7(message):
        units = septets(message)
        parts = 1 if units <= 160 else math.ceil(units / 153)
        return SmsLength("GSM-7", units, parts)
    units = len(message.encode("utf-16-le")) // 2
    parts = 1 if units <= 70 else math.ceil(units / 67)
    return SmsLength("UCS-2", units, parts)


def to_gsm7(text: str) -> str:
    """``text`` in the GSM 03.38 alphabet where it can be (``i18n.gsm7``: ``ç`` -> ``c``, typographic
    quotes and dashes plain), keeping a character that has no GSM spelling at all (the text is then
    UCS-2, 70 characters a part) instead of writing ``?`` for it."""
    if is_gsm7(text):
        return text
    out = []
    for ch in text:
        plain = gsm7(ch)
        out.append(ch if plain == UNKNOWN and ch != UNKNOWN else plain)
    return "".join(out)


def fit_one_sms(text: str) -> str:
    """``text`` as one SMS part: in GSM-7 where ``to_gsm7`` can make it so; if what is left outside
    the alphabet makes it longer than one UCS-2 part, with ``?`` for those characters; cut (ending
    in ``.``) only if it is still longer than 160 septets. Composed texts fit already; this is the
    outbox's guard, so that a message is never refused for its length."""
    kept = to_gsm7(text)
    if sms_length(kept).parts <= 1:
        return kept
    plain = gsm7(text)
    if septets(plain) <= 160:
        return plain
    cut, used = [], 0
    for ch in plain:
        used += septets(ch)
        if used > 159:
            break
        cut.append(ch)
    return "".join(cut).rstrip() + "."


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


def _gateway_trouble(message: str, **detail) -> ProviderUnavailable:
    return ProviderUnavailable("provider_unavailable", message, account_wide=True, **detail)


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
        return self.submit(to_e164, message).message_id

    def submit(self, to_e164: str, message: str) -> SmsReceipt:
        """Send one message; the receipt of an accepted one, else the error ``recipient_error`` names."""
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
            raise ProviderUnavailable("provider_unavailable", f"SMS gateway: {err.message}", retryable=True,
                                      account_wide=True, maybe_delivered=err.maybe_delivered) from err
        if response.status >= 500 or response.status in (401, 403, 429):
            raise _gateway_trouble(f"SMS gateway answered HTTP {response.status}", http_status=response.status)
        body = response.json()
        data = body.get("SMSMessageData") if isinstance(body, dict) else None
        if response.status not in (200, 201) or not isinstance(data, dict):
            detail = response.text[:200]
            if response.status == 400 and "phone" in detail.lower():
                raise SmsRejected("sms_rejected", f"SMS gateway refused the number: {detail}")
            raise _gateway_trouble(f"SMS gateway answered HTTP {response.status}: {detail}")
        recipients = data.get("Recipients") or []
        if not recipients or not isinstance(recipients[0], dict):
            summary = str(data.get("Message") or "no recipients accepted")
            if "invalidphonenumber" in summary.replace(" ", "").lower():
                raise SmsRejected("sms_rejected", f"SMS gateway refused the number: {summary}", status_code=403)
            raise _gateway_trouble(f"SMS gateway: {summary}")
        recipient = recipients[0]
        status_code = _int(recipient.get("statusCode"))
        status = str(recipient.get("status") or "")
        message_id = str(recipient.get("messageId") or "")
        if status_code in ACCEPTED_CODES and message_id and message_id != "None":
            return SmsReceipt(message_id, status_code, status)
        raise recipient_error(status_code, to, status)


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
    """In-memory ``SmsGateway``: records what was sent; ``fail_next`` scripts an error,
    ``answer_next`` one of AT's recipient status codes (the error it means, or an acceptance)."""

    def __init__(self, max_parts: int = MAX_PARTS):
        self.max_parts = max_parts
        self.sent: list[SentSms] = []
        self.calls = 0
        self._scripted: list[BaseException | int] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def fail_next(self, error: BaseException) -> None:
        self._scripted.append(error)

    def answer_next(self, *status_codes: int) -> None:
        self._scripted.extend(status_codes)

    def send(self, to_e164: str, message: str) -> str:
        return self.submit(to_e164, message).message_id

    def submit(self, to_e164: str, message: str) -> SmsReceipt:
        to = normalize_e164(to_e164)
        check_message(message, self.max_parts)
        with self._lock:
            self.calls += 1
            answer = self._scripted.pop(0) if self._scripted else 101
            if isinstance(answer, BaseException):
                raise answer
            if answer not in ACCEPTED_CODES:
                raise recipient_error(answer, to)
            message_id = f"FAKE-SMS-{next(self._ids):06d}"
            self.sent.append(SentSms(message_id, to, message, datetime.now(timezone.utc)))
            return SmsReceipt(message_id, answer, RECIPIENT_STATUSES[answer].name)

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
