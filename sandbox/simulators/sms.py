"""Africa's Talking SMS simulator: ``POST /version1/messaging`` and ``GET /sandbox/sms``.

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

``GET /sandbox/sms`` -> ``{"messages": [{"to": "+<E.164>", "message", "sent_at",
"from", "message_id", "parts", "encoding"}]}``, newest last (``?to=`` filters).
Faults: ``POST /sandbox/faults/sms`` with ``latency_ms`` and the one-shot
``error_before_processing`` (500, nothing sent) / ``error_after_success`` (sent,
answers 500).
"""
from __future__ import annotations

import itertools
import re
import threading
import uuid
from dataclasses import dataclass
from decimal import Decimal

from flask import Blueprint, jsonify, request

from chalicelib.notify.sms_gateway import LOCAL_SMS_API_KEY, LOCAL_SMS_USERNAME, sms_length
from sandbox.simulators.momo import Faults, env_or_local, rfc3339, utc_now

_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
COST_PER_PART = "KES 0.8000"


@dataclass
class SentMessage:
    message_id: str
    to: str
    message: str
    sender: str
    sent_at: str
    parts: int
    encoding: str

    def to_json(self) -> dict:
        return {
            "to": self.to,
            "message": self.message,
            "sent_at": self.sent_at,
            "from": self.sender,
            "message_id": self.message_id,
            "parts": self.parts,
            "encoding": self.encoding,
        }


class SmsSimulator:
    """State and routes of the Africa's Talking SMS simulator (see module doc)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.username = env_or_local(ctx, "MIZANI_SMS_USERNAME", LOCAL_SMS_USERNAME)
        self.api_key = env_or_local(ctx, "MIZANI_SMS_API_KEY", LOCAL_SMS_API_KEY)
        self.faults = Faults()
        self._lock = threading.Lock()
        self.blueprint = self._build_blueprint()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.messages: list[SentMessage] = []
            self._ids = itertools.count(1)
        self.faults.reset()

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
        recipients = []
        with self._lock:
            for number in numbers:
                if not _E164.fullmatch(number):
                    recipients.append({
                        "statusCode": 403, "number": number, "status": "InvalidPhoneNumber",
                        "cost": "0", "messageId": "None",
                    })
                    continue
                message_id = f"ATXid_{uuid.uuid4().hex[:24]}{next(self._ids):04d}"
                self.messages.append(
                    SentMessage(message_id, number, message, sender, rfc3339(utc_now()), length.parts, length.encoding)
                )
                recipients.append({
                    "statusCode": 101, "number": number, "status": "Success",
                    "cost": COST_PER_PART, "messageId": message_id, "messageParts": length.parts,
                })
        if self.faults.take("error_after_success"):
            return "Internal Server Error", 500
        sent_count = sum(1 for r in recipients if r["statusCode"] == 101)
        summary = f"Sent to {sent_count}/{len(numbers)} Total Cost: KES {Decimal('0.8') * length.parts * sent_count:.4f}"
        return jsonify({"SMSMessageData": {"Message": summary, "Recipients": recipients}}), 201


def make(ctx) -> SmsSimulator:
    """The simulator contract: an object with ``.blueprint`` and ``.reset()``."""
    return SmsSimulator(ctx)
