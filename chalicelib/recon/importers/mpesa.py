"""M-Pesa B2C results: the statement CSV, or the Result callbacks as JSON.

CSV (what ``GET /sandbox/statements/mpesa_b2c`` serves; header names
case-insensitive, any order, extra columns such as ``ResultDesc``/``PartyB`` ignored):

==============================  ======================================================
``ConversationID``              Safaricom's id of the request
``OriginatorConversationID``    our payout id (``reference``); required
``TransactionID``               the M-Pesa receipt (``raw_id``); required when ResultCode 0
``Amount``                      (or ``TransactionAmount``) positive, major units (whole KES)
``Currency``                    optional, default ``KES``
``ResultCode``                  ``0`` settled; any other integer: failed, no money moved
``CompletedAt``                 (or ``TransactionCompletedDateTime``) RFC 3339, or Daraja's
                                ``dd.mm.yyyy HH:MM:SS`` in Nairobi time (UTC+3); UTC day taken
==============================  ======================================================

JSON: a list of Daraja Result callback bodies (``[{"Result": {...}}, ...]``) or
one body. ``TransactionAmount`` and ``TransactionCompletedDateTime`` come from
``ResultParameters``; a failed result has neither (it is counted, not matched).
``line`` is the 1-based position in the list.

Every line is a payout: ``kind`` ``payout``, amount negative.
"""
from __future__ import annotations

import json
import re

from chalicelib.recon.importers.shared import looks_like_json, make_batch
from chalicelib.recon.model import FAILED, SETTLED, ProviderBatch, StatementError
from chalicelib.recon.parsing import (
    BadLine, CsvFormat, Errors, collect, eat_day_of, fast_amounts, fast_currencies, fast_instant_days,
    fast_required, parse_currency, parse_decimal, require, text_of,
)

SOURCE = "mpesa_b2c"
DEFAULT_CURRENCY = "KES"
COLUMNS = {
    "conversation_id": ("conversationid",),
    "reference": ("originatorconversationid",),
    "raw_id": ("transactionid", "transactionreceipt"),
    "amount": ("amount", "transactionamount"),
    "currency": ("currency",),
    "result_code": ("resultcode",),
    "completed": ("completedat", "transactioncompleteddatetime"),
}
OPTIONAL = {"currency", "conversation_id"}
OUTPUTS = ("reference", "amount_minor", "currency", "day", "raw_id", "status")


def status_of(text) -> str:
    """``SETTLED`` for ResultCode 0, ``FAILED`` for any other integer (``BadLine``: not an integer)."""
    if isinstance(text, bool):
        raise BadLine(f"ResultCode {text!r} is not an integer")
    value = str(text).strip() if text is not None else ""
    if not re.fullmatch(r"-?[0-9]{1,18}", value):
        raise BadLine(f"ResultCode {text!r} is not an integer")
    return SETTLED if int(value) == 0 else FAILED


def _slow(get: dict) -> tuple:
    errors: list[str] = []
    reference = collect(errors, require, get["reference"], "OriginatorConversationID")
    currency = collect(errors, parse_currency, get["currency"] or DEFAULT_CURRENCY)
    amount = collect(errors, parse_decimal, get["amount"], currency) if currency else None
    if amount is not None and amount <= 0:
        errors.append(f"amount {get['amount']!r} must be positive")
    day = collect(errors, eat_day_of, get["completed"], "CompletedAt")
    status = collect(errors, status_of, get["result_code"])
    raw_id = (get["raw_id"] or "").strip() or (get["conversation_id"] or "")
    if status == SETTLED and not (get["raw_id"] or "").strip():
        errors.append("TransactionID is empty on a successful result")
    if errors:
        raise BadLine("; ".join(errors))
    return reference, -amount, currency, day, raw_id, status


def _fast(raw: dict, n: int) -> dict | None:
    if not fast_required(raw["reference"]) or not fast_required(raw["raw_id"]):
        return None
    currencies = fast_currencies(raw["currency"] if raw["currency"] is not None else [DEFAULT_CURRENCY] * n)
    if currencies is None:
        return None
    currency, exp = currencies
    amounts = fast_amounts(raw["amount"], exp, positive=True, negate=True)
    days = fast_instant_days(raw["completed"]) if amounts is not None else None
    if days is None:
        return None
    mapping = {}
    for code in set(raw["result_code"]):
        try:
            mapping[code] = status_of(code)
        except BadLine:
            return None
    statuses = list(map(mapping.__getitem__, raw["result_code"]))
    return {"reference": list(raw["reference"]), "amount_minor": amounts, "currency": currency, "day": days,
            "raw_id": list(raw["raw_id"]), "status": statuses}


FORMAT = CsvFormat(SOURCE, COLUMNS, OPTIONAL, OUTPUTS, _fast, _slow)


def batch(lines, cols: dict) -> ProviderBatch:
    """The batch of the CSV format's output columns (``FORMAT.read`` or ``FORMAT.read_range``)."""
    return make_batch(SOURCE, lines, cols, kind="payout")


def parse(content: str | bytes) -> ProviderBatch:
    """Parse M-Pesa B2C results (CSV or JSON callbacks); ``StatementError`` lists every bad line."""
    if looks_like_json(content):
        return _parse_json(content)
    return batch(*FORMAT.read(content))


def _parse_json(content: str | bytes) -> ProviderBatch:
    text = text_of(SOURCE, content)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise StatementError(SOURCE, [(e.lineno, f"not JSON: {e.msg}")]) from None
    items = doc if isinstance(doc, list) else [doc]
    errors = Errors(SOURCE)
    cols = {name: [] for name in OUTPUTS}
    lines = []
    for number, item in enumerate(items, 1):
        try:
            values = _json_item(item)
        except BadLine as e:
            errors.add(number, str(e))
            continue
        for name, value in zip(OUTPUTS, values):
            cols[name].append(value)
        lines.append(number)
    errors.raise_if_any()
    return make_batch(SOURCE, lines, cols, kind="payout")


def _json_item(item) -> tuple:
    result = item.get("Result") if isinstance(item, dict) else None
    if not isinstance(result, dict):
        raise BadLine('expected a callback body {"Result": {...}}')
    params = {}
    raw_params = (result.get("ResultParameters") or {}).get("ResultParameter") or []
    if isinstance(raw_params, dict):
        raw_params = [raw_params]
    for p in raw_params:
        if isinstance(p, dict) and "Key" in p:
            params[p["Key"]] = p.get("Value")
    errors: list[str] = []
    reference = collect(errors, require, _text(result.get("OriginatorConversationID")), "OriginatorConversationID")
    status = collect(errors, status_of, result.get("ResultCode"))
    raw_id = _text(result.get("TransactionID")) or _text(params.get("TransactionReceipt"))
    amount, day = 0, None
    if status == SETTLED:
        amount_value = params.get("TransactionAmount")
        if isinstance(amount_value, (int, float)) and not isinstance(amount_value, bool):
            # JSON numbers: whole shillings as Daraja sends them; repr keeps e.g. 10.5 exact enough to re-check
            amount_value = repr(amount_value) if isinstance(amount_value, float) else str(amount_value)
        amount = collect(errors, parse_decimal, _text(amount_value), DEFAULT_CURRENCY, "TransactionAmount")
        if amount is not None and amount <= 0:
            errors.append("TransactionAmount must be positive")
        day = collect(errors, eat_day_of, _text(params.get("TransactionCompletedDateTime")),
                      "TransactionCompletedDateTime")
        if not raw_id:
            errors.append("TransactionID is empty on a successful result")
    if errors:
        raise BadLine("; ".join(errors))
    return reference, -(amount or 0), DEFAULT_CURRENCY, day, raw_id or _text(result.get("ConversationID")), status


def _text(value) -> str:
    return "" if value is None else str(value)
