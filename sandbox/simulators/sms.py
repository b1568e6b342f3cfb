"""Africa's Talking SMS simulator: ``POST /version1/messaging``, delivery reports, ``GET /sandbox/sms``.

Speaks Africa's Talking's wire format, so ``AfricasTalkingSms`` runs unchanged
against it: form-encoded ``username``, ``to`` (comma-separated numbers),
``message``, optional ``from``; headers ``apiKey`` and ``Accept:
application/json``; answer ``201`` with ``{"SMSMessageData": {"Message",
"Recipients": [{"statusCode", "number", "status", "cost", "messageId",
"messageParts"}]}}``. Credentials are ``MIZANI_SMS_USERNAME`` / ``MIZANI_SMS_API_KEY``
from ``ctx.env``, defaulting to the local-sandbox constants.

Like the real gateway it accepts long messages and splits them into parts; it
records the part count and encoding of each message (``parts``, ``encoding``)
so a test can see a message that broke the platform's one-part rule. A number
that is not E.164 gets recipient ``statusCode`` 403 ``InvalidPhoneNumber``.

Delivery reports, as AT sends them: for every accepted message, one form-encoded POST
(``id``, ``status``, ``phoneNumber``, ``networkCode`` ``99999``, AT's sandbox network
"Athena"; ``failureReason`` with ``Rejected`` / ``Failed`` only) to the delivery reports
URL, ``report_delay_ms`` after the answer to the send has gone (default 1000: the
network's time). The URL is ``MIZANI_SMS_DELIVERY_REPORTS_URL``
from ``ctx.env`` (what one sets in AT's dashboard), else the local API's
``/v1/webhooks/sms/delivery``; ``POST /sandbox/sms/account`` ``{"delivery_reports_url"}``
changes it. Sent once, never retried (the faults ``lose_callback`` / ``duplicate_callback``
lose the next report or send it twice). ``POST /sandbox/sms/<message_id>/report``
``{"status"?, "failure_reason"?}`` sends a report for a message now (again, or another
status) and answers ``{"report": {"url", "status", "error"}}`` with what the API answered.

Test numbers (scripted outcomes; any other number is accepted with 101 and reported ``Success``):

================  ==========================================================
+250788000403     refused at send time: 403 ``InvalidPhoneNumber``
+250788000406     refused at send time: 406 ``UserInBlacklist``
+250788000407     refused at send time: 407 ``CouldNotRoute`` (retryable)
+250788000600     accepted, never reported
+250788000601     accepted, reported ``AbsentSubscriber``
+250788000602     accepted, reported ``Failed`` / ``UserDoesNotExist``
+250788000603     accepted, reported ``Rejected`` / ``DeliveryFailure``
+250788000604     accepted, reported ``Expired``
================  ==========================================================

``POST /sandbox/sms/numbers/<number>`` ``{"send_status_code"?: int | null, "delivery_status"?:
str | null, "failure_reason"?: str}`` scripts any other number the same way (``DELETE`` forgets
it; ``GET /sandbox/sms/numbers`` lists every script). ``POST /sandbox/sms/account``
``{"status_code": 405}`` plays an account-wide answer (405 ``InsufficientBalance``, 401
``RiskHold``, 402 ``InvalidSenderId``, 500/501) for every recipient until it is set back to
``null`` (the operator topped up).

``GET /sandbox/sms`` -> ``{"messages": [{"to": "+<E.164>", "message", "sent_at",
"from", "message_id", "parts", "encoding", "status_code", "status", "delivery_status",
"report_status"}]}``, the messages accepted, newest last (``?to=`` filters);
``delivery_status`` is what was (or will be) reported, ``report_status`` the HTTP status the
delivery reports URL answered (``null`` until then). ``GET /sandbox/sms/requests`` ->
``{"requests": [{"to", "message", "status_code", "status", "message_id", "at"}]}``: every
recipient of every send, refused ones too (``?to=`` filters).
Faults: ``POST /sandbox/faults/sms`` with ``latency_ms``, ``report_delay_ms`` and the one-shot
``error_before_processing`` (500, nothing sent) / ``error_after_success`` (sent,
answers 500) / ``lose_callback`` / ``duplicate_callback`` (the next delivery report).
"""
from __future__ import annotations

import itertools
import re
import threading
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlencode

from flask import Blueprint, jsonify, make_response, request

from chalicelib.notify.sms_gateway import (
    ACCEPTED_CODES,
    DELIVERY_STATUSES,
    LOCAL_SMS_API_KEY,
    LOCAL_SMS_USERNAME,
    recipient_status,
    sms_length,
)
from sandbox.simulators.momo import Faults, env_or_local, rfc3339, utc_now

_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
COST_PER_PART = "KES 0.8000"
#: AT's network code for its sandbox ("Athena").
SANDBOX_NETWORK_CODE = "99999"
REPORT_PATH = "/v1/webhooks/sms/delivery"
DEFAULT_REPORT_DELAY_MS = 1000
#: AT sends ``failureReason`` only with these statuses.
_WITH_REASON = frozenset({"Rejected", "Failed"})


@dataclass(frozen=True)
class NumberScript:
    """What the gateway does with one number: refuse it at send time (``send_status_code``), or
    accept it and report ``delivery_status`` (``None``: never report)."""

    send_status_code: int | None = None
    delivery_status: str | None = "Success"
    failure_reason: str = ""

    def to_json(self) -> dict:
        return {"send_status_code": self.send_status_code, "delivery_status": self.delivery_status,
                "failure_reason": self.failure_reason}


TEST_NUMBERS: dict[str, NumberScript] = {
    "+250788000403": NumberScript(send_status_code=403),
    "+250788000406": NumberScript(send_status_code=406),
    "+250788000407": NumberScript(send_status_code=407),
    "+250788000600": NumberScript(delivery_status=None),
    "+250788000601": NumberScript(delivery_status="AbsentSubscriber"),
    "+250788000602": NumberScript(delivery_status="Failed", failure_reason="UserDoesNotExist"),
    "+250788000603": NumberScript(delivery_status="Rejected", failure_reason="DeliveryFailure"),
    "+250788000604": NumberScript(delivery_status="Expired"),
}


@dataclass
class SentMessage:
    """A message the gateway accepted, with what it will report (``delivery_status``) and what the
    delivery reports URL answered (``report_status``)."""

    message_id: str
    to: str
    message: str
    sender: str
    sent_at: str
    parts: int
    encoding: str
    status_code: int = 101
    status: str = "Success"
    delivery_status: str | None = None
    failure_reason: str = ""
    report_status: int | None = None

    def to_json(self) -> dict:
        return {
            "to": self.to,
            "message": self.message,
            "sent_at": self.sent_at,
            "from": self.sender,
            "message_id": self.message_id,
            "parts": self.parts,
            "encoding": self.encoding,
            "status_code": self.status_code,
            "status": self.status,
            "delivery_status": self.delivery_status,
            "report_status": self.report_status,
        }


@dataclass
class Report:
    """One delivery report POSTed (or lost): where, what, and what the API answered."""

    url: str
    form: dict
    status: int | None = None
    error: str | None = None

    def to_json(self) -> dict:
        return {"url": self.url, "form": self.form, "status": self.status, "error": self.error}


@dataclass
class Account:
    """The AT account's state: an account-wide answer, its delivery reports URL, its number scripts."""

    status_code: int | None = None  # an account-wide answer for every recipient (None: healthy)
    delivery_reports_url: str = ""
    scripts: dict[str, NumberScript] = field(default_factory=lambda: dict(TEST_NUMBERS))


class SmsSimulator:
    """State and routes of the Africa's Talking SMS simulator (see module doc)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.username = env_or_local(ctx, "MIZANI_SMS_USERNAME", LOCAL_SMS_USERNAME)
        self.api_key = env_or_local(ctx, "MIZANI_SMS_API_KEY", LOCAL_SMS_API_KEY)
        self.faults = Faults({"report_delay_ms": DEFAULT_REPORT_DELAY_MS})
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)  # notified when a report is done (sent, lost, dropped)
        self._cancel = threading.Event()
        self.blueprint = self._build_blueprint()
        self.reset()

    def default_reports_url(self) -> str:
        configured = (getattr(self.ctx, "env", None) or {}).get("MIZANI_SMS_DELIVERY_REPORTS_URL") or ""
        if configured:
            return configured
        return f"{self.ctx.api_base_url.rstrip('/')}{REPORT_PATH}" if self.ctx.api_base_url else ""

    def reset(self) -> None:
        self._cancel.set()  # reports still waiting to go are dropped
        with self._lock:
            self._cancel = threading.Event()
            self.messages: list[SentMessage] = []
            self.requests: list[dict] = []
            self.reports: list[Report] = []
            self._unsettled = 0  # reports promised (a message accepted) and not yet done
            self.report_threads: list[threading.Thread] = []  # started (tests join them)
            self._settled.notify_all()
            self.account = Account(delivery_reports_url=self.default_reports_url())
            self._ids = itertools.count(1)
        self.faults.reset()

    # -- routes ----------------------------------------------------------------------------

    def _build_blueprint(self) -> Blueprint:
        bp = Blueprint("sms", __name__)

        @bp.post("/version1/messaging")
        def messaging():
            try:
                return self._messaging()
            finally:
                self.faults.delay()

        @bp.get("/sandbox/sms")
        def sent():
            wanted = request.args.get("to")
            with self._lock:
                messages = [m.to_json() for m in self.messages if not wanted or m.to == wanted]
            return jsonify({"messages": messages})

        @bp.get("/sandbox/sms/requests")
        def requests_seen():
            wanted = request.args.get("to")
            with self._lock:
                seen = [dict(r) for r in self.requests if not wanted or r["to"] == wanted]
            return jsonify({"requests": seen})

        @bp.get("/sandbox/sms/reports")
        def reports_sent():
            with self._lock:
                return jsonify({"reports": [r.to_json() for r in self.reports]})

        @bp.post("/sandbox/sms/<message_id>/report")
        def report_now(message_id):
            body = request.get_json(silent=True)
            body = body if isinstance(body, dict) else {}
            with self._lock:
                found = next((m for m in self.messages if m.message_id == message_id), None)
            if found is None:
                return jsonify({"error": f"no message {message_id}"}), 404
            status = body.get("status", found.delivery_status or "Success")
            if status not in DELIVERY_STATUSES:
                return jsonify({"error": f"status must be one of {sorted(DELIVERY_STATUSES)}"}), 400
            reason = str(body.get("failure_reason") or "")
            return jsonify({"report": self._deliver(found, status, reason).to_json()})

        @bp.get("/sandbox/sms/numbers")
        def scripts():
            with self._lock:
                return jsonify({"numbers": {n: s.to_json() for n, s in self.account.scripts.items()}})

        @bp.route("/sandbox/sms/numbers/<number>", methods=["POST", "DELETE"])
        def script_number(number):
            number = "+" + number.lstrip("+")
            if request.method == "DELETE":
                with self._lock:
                    self.account.scripts.pop(number, None)
                return jsonify({"number": number, "script": None})
            try:
                script = _parse_script(request.get_json(silent=True))
            except ValueError as err:
                return jsonify({"error": str(err)}), 400
            with self._lock:
                self.account.scripts[number] = script
            return jsonify({"number": number, "script": script.to_json()})

        @bp.route("/sandbox/sms/account", methods=["GET", "POST"])
        def account():
            if request.method == "POST":
                body = request.get_json(silent=True)
                if not isinstance(body, dict) or not set(body) <= {"status_code", "delivery_reports_url"}:
                    return jsonify({"error": "give status_code (int or null) and/or delivery_reports_url"}), 400
                code = body.get("status_code")
                if "status_code" in body and code is not None and (
                        isinstance(code, bool) or not isinstance(code, int) or code in ACCEPTED_CODES):
                    return jsonify({"error": "status_code must be a refusing statusCode or null"}), 400
                with self._lock:
                    if "status_code" in body:
                        self.account.status_code = code
                    if "delivery_reports_url" in body:
                        self.account.delivery_reports_url = str(body["delivery_reports_url"] or "")
            with self._lock:
                return jsonify({"status_code": self.account.status_code,
                                "delivery_reports_url": self.account.delivery_reports_url})

        @bp.route("/sandbox/faults/sms", methods=["GET", "POST", "DELETE"])
        def faults():
            if request.method == "DELETE":
                self.faults.reset()
            elif request.method == "POST":
                try:
                    if self.faults.update(request.get_json(silent=True)):
                        raise ValueError("the SMS simulator has no actions")
                except ValueError as err:
                    return jsonify({"error": str(err)}), 400
            return jsonify(self.faults.snapshot())

        return bp

    def _messaging(self):
        if request.headers.get("apiKey") != self.api_key:
            return "The supplied authentication is invalid", 401
        if request.form.get("username") != self.username:
            return "The supplied authentication is invalid", 401
        if self.faults.take("error_before_processing"):
            return "Internal Server Error", 500
        message = request.form.get("message", "")
        numbers = [n.strip() for n in request.form.get("to", "").split(",") if n.strip()]
        if not message or not numbers:
            return "Request is missing required form field 'to' or 'message'", 400
        sender = request.form.get("from", "")
        length = sms_length(message)
        recipients, accepted = [], []
        with self._lock:
            for number in numbers:
                script = self.account.scripts.get(number, NumberScript())
                refusal = 403 if not _E164.fullmatch(number) else (self.account.status_code or script.send_status_code)
                at = rfc3339(utc_now())
                if refusal is not None:
                    status = recipient_status(refusal).name
                    recipients.append({"statusCode": refusal, "number": number, "status": status,
                                       "cost": "0", "messageId": "None"})
                    self.requests.append({"to": number, "message": message, "status_code": refusal, "status": status,
                                          "message_id": None, "at": at})
                    continue
                message_id = f"ATXid_{uuid.uuid4().hex[:24]}{next(self._ids):04d}"
                sent = SentMessage(message_id, number, message, sender, at, length.parts, length.encoding,
                                   delivery_status=script.delivery_status, failure_reason=script.failure_reason)
                self.messages.append(sent)
                accepted.append(sent)
                self._unsettled += 1 if sent.delivery_status else 0
                self.requests.append({"to": number, "message": message, "status_code": 101, "status": "Success",
                                      "message_id": message_id, "at": at})
                recipients.append({
                    "statusCode": 101, "number": number, "status": "Success",
                    "cost": COST_PER_PART, "messageId": message_id, "messageParts": length.parts,
                })
        if self.faults.take("error_after_success"):
            response = make_response("Internal Server Error", 500)
        else:
            sent_count = len(accepted)
            summary = (f"Sent to {sent_count}/{len(numbers)} Total Cost: "
                       f"KES {Decimal('0.8') * length.parts * sent_count:.4f}")
            response = make_response(jsonify({"SMSMessageData": {"Message": summary, "Recipients": recipients}}), 201)

        def report_all():
            for sent in accepted:
                if sent.delivery_status:
                    self._report_later(sent)

        response.call_on_close(report_all)  # the network's reports start once the answer is on its way
        return response

    # -- delivery reports ------------------------------------------------------------------

    def _report_later(self, sent: SentMessage) -> None:
        """The network's report for ``sent``, ``report_delay_ms`` from now, from a thread of its own."""
        if self.faults.take("lose_callback"):
            with self._lock:
                self.reports.append(Report(self.account.delivery_reports_url, {}, error="lost (fault)"))
            self._settle()
            return
        copies = 2 if self.faults.take("duplicate_callback") else 1
        delay = self.faults.setting("report_delay_ms") / 1000.0
        cancel = self._cancel

        def later():
            try:
                if not cancel.wait(delay):  # set: the simulator was reset meanwhile
                    for _ in range(copies):
                        self._deliver(sent, sent.delivery_status, sent.failure_reason)
            finally:
                self._settle(cancel)

        thread = threading.Thread(target=later, name=f"sms-report-{sent.message_id}", daemon=True)
        thread.start()
        with self._lock:
            self.report_threads.append(thread)

    def _settle(self, cancel: threading.Event | None = None) -> None:
        with self._lock:
            if cancel is None or cancel is self._cancel:  # a report from before a reset was counted off by it
                self._unsettled = max(0, self._unsettled - 1)
            self._settled.notify_all()

    def _deliver(self, sent: SentMessage, status: str, failure_reason: str = "") -> Report:
        """POST one delivery report now (form-encoded, as AT does) and record what the API answered."""
        form = {"id": sent.message_id, "status": status, "phoneNumber": sent.to, "networkCode": SANDBOX_NETWORK_CODE}
        if status in _WITH_REASON:
            form["failureReason"] = failure_reason or "DeliveryFailure"
        with self._lock:
            url = self.account.delivery_reports_url
        report = Report(url, form)
        if url:
            req = urllib.request.Request(url, data=urlencode(form).encode(), method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            try:
                with urllib.request.urlopen(req, timeout=10) as response:
                    report.status = response.status
            except urllib.error.HTTPError as err:
                report.status = err.code
            except Exception as err:  # noqa: BLE001 - AT does not care whether we listened
                report.error = str(err)
        else:
            report.error = "no delivery reports URL set"
        with self._lock:
            self.reports.append(report)
            sent.report_status = report.status
        return report

    def wait_for_reports(self, timeout: float = 10.0) -> bool:
        """Wait until every report promised so far is sent, lost or dropped (tests); False on timeout."""
        with self._lock:
            return self._settled.wait_for(lambda: self._unsettled == 0, timeout)


def _parse_script(body) -> NumberScript:
    if not isinstance(body, dict) or not set(body) <= {"send_status_code", "delivery_status", "failure_reason"}:
        raise ValueError("give send_status_code (int or null), delivery_status (str or null), failure_reason")
    code = body.get("send_status_code")
    if code is not None and (isinstance(code, bool) or not isinstance(code, int) or code in ACCEPTED_CODES):
        raise ValueError("send_status_code must be a refusing statusCode (403, 406, 405, ...) or null")
    status = body.get("delivery_status", "Success")
    if status is not None and status not in DELIVERY_STATUSES:
        raise ValueError(f"delivery_status must be one of {sorted(DELIVERY_STATUSES)} or null")
    reason = body.get("failure_reason") or ""
    if not isinstance(reason, str) or len(reason) > 60:
        raise ValueError("failure_reason must be a short string")
    return NumberScript(code, status, reason)


def make(ctx) -> SmsSimulator:
    """The simulator contract: an object with ``.blueprint`` and ``.reset()``."""
    return SmsSimulator(ctx)
