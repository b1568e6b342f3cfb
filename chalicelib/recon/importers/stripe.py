"""Stripe balance transactions: the itemized balance change report (CSV) or the API list (JSON).

CSV: Stripe's ``balance_change_from_activity.itemized`` report (header names
case-insensitive, any order, extra columns ignored):

=============================  ============================================================
``balance_transaction_id``     ``txn_...`` (``raw_id``); required
``created_utc``                (or ``created``) ``YYYY-MM-DD HH:MM:SS`` UTC
``reporting_category``         ``charge``, ``refund``, ``partial_capture_reversal``, ``fee``...
``currency``                   lower case, as Stripe writes it
``gross``, ``fee``, ``net``    signed decimal strings in major units; ``net = gross - fee``
``payment_intent_id``          ``pi_...``: the matching reference (optional column; empty for
                               lines without one, which fall back to ``source_id`` then the id)
``source_id``                  optional
``customer_facing_amount``,    optional; when Stripe converted (customer paid in another
``customer_facing_currency``   currency), the amount before conversion (``orig_*``)
=============================  ============================================================

JSON: ``{"object": "list", "data": [balance transaction, ...], "has_more": false}``
(or a bare list): ``id``, ``amount``/``fee``/``net`` (integers of minor units),
``currency``, ``created`` (unix seconds), ``reporting_category`` (else ``type``),
``source``. The payment intent is taken from ``payment_intent`` on the item (our
export adds it), or from ``source.payment_intent`` when the list was fetched with
``expand[]=data.source``; else the reference is the source id. A page with
``has_more: true`` is refused: a partial list would report every later line as a break.
``line`` is the 1-based position in ``data``.

Minor units: ISO 4217 exponents, which are Stripe's for every currency Mizani trades
(Stripe's special cases ISK/HUF/TWD/UGX-payouts do not arise in balance transactions
of these currencies).

Kinds: ``charge`` and ``partial_capture_reversal`` are ``card_payment`` (their sum is
the captured amount); ``refund`` and ``refund_failure`` are ``card_refund``; ``dispute`` and
``dispute_reversal`` are ``card_dispute`` and ``card_dispute_reversal``; any other
category is kept as the kind (``payout``, ``fee``, ``dispute``...) and, unless the
ledger books it under that code, is reported ``missing_in_ledger``.
"""
from __future__ import annotations

import json
from itertools import repeat
from operator import ne, sub

from chalicelib.recon.importers.shared import looks_like_json, make_batch
from chalicelib.recon.model import ProviderBatch, StatementError
from chalicelib.recon.parsing import (
    BadLine, CsvFormat, Errors, collect, day_of_unix, fast_amounts, fast_currencies, fast_instant_days,
    fast_required, parse_currency, parse_decimal, parse_instant_day, parse_minor, require, text_of,
)

SOURCE = "stripe_balance"
KINDS = {
    "charge": "card_payment",
    "payment": "card_payment",
    "partial_capture_reversal": "card_payment",
    "refund": "card_refund",
    "refund_failure": "card_refund",
    "payment_refund": "card_refund",
    "dispute": "card_dispute",  # the disputed amount withdrawn (the dispute fee is the line's fee)
    "dispute_reversal": "card_dispute_reversal",  # given back: the dispute was won
}
COLUMNS = {
    "raw_id": ("balance_transaction_id", "id"),
    "created": ("created_utc", "created"),
    "category": ("reporting_category",),
    "currency": ("currency",),
    "gross": ("gross", "amount"),
    "fee": ("fee",),
    "net": ("net",),
    "payment_intent": ("payment_intent_id",),
    "source_id": ("source_id",),
    "cf_amount": ("customer_facing_amount",),
    "cf_currency": ("customer_facing_currency",),
}
OPTIONAL = {"payment_intent", "source_id", "cf_amount", "cf_currency"}
OUTPUTS = ("reference", "amount_minor", "currency", "day", "kind", "fee_minor", "raw_id", "orig_minor",
           "orig_currency")


def kind_of(category: str) -> str:
    category = category.strip()
    if not category:
        raise BadLine("reporting_category is empty")
    return KINDS.get(category, category)


def _reference(payment_intent: str | None, source_id: str | None, raw_id: str) -> str:
    return (payment_intent or "").strip() or (source_id or "").strip() or raw_id


def _orig(cf_amount: str | None, cf_currency: str | None, currency: str, gross: int) -> tuple[int | None, str]:
    if not cf_currency or not cf_currency.strip():
        return None, ""
    orig_currency = parse_currency(cf_currency, upper=True)
    if orig_currency == currency:
        return None, ""
    minor = abs(parse_decimal(cf_amount, orig_currency, "customer_facing_amount"))
    return (-minor if gross < 0 else minor), orig_currency


def _slow(get: dict) -> tuple:
    errors: list[str] = []
    raw_id = collect(errors, require, get["raw_id"], "balance_transaction_id")
    day = collect(errors, parse_instant_day, get["created"], "created_utc")
    kind = collect(errors, kind_of, get["category"] or "")
    currency = collect(errors, parse_currency, get["currency"], True)
    gross = fee = net = orig = None
    if currency:
        gross = collect(errors, parse_decimal, get["gross"], currency, "gross")
        fee = collect(errors, parse_decimal, get["fee"], currency, "fee")
        net = collect(errors, parse_decimal, get["net"], currency, "net")
        if None not in (gross, fee, net) and net != gross - fee:
            errors.append(f"net {get['net']} is not gross {get['gross']} - fee {get['fee']}")
        if gross is not None:
            orig = collect(errors, _orig, get["cf_amount"], get["cf_currency"], currency, gross)
    if errors:
        raise BadLine("; ".join(errors))
    reference = _reference(get["payment_intent"], get["source_id"], raw_id)
    return reference, gross, currency, day, kind, fee, raw_id, orig[0], orig[1]


def _fast(raw: dict, n: int) -> dict | None:
    if not fast_required(raw["raw_id"]):
        return None
    if raw["cf_currency"] is not None and any(raw["cf_currency"]):
        return None  # conversions are rare: the slow path handles such blocks
    currencies = fast_currencies(raw["currency"], upper=True)
    if currencies is None:
        return None
    currency, exp = currencies
    gross = fast_amounts(raw["gross"], exp)
    fee = fast_amounts(raw["fee"], exp) if gross is not None else None
    net = fast_amounts(raw["net"], exp) if fee is not None else None
    if net is None or any(map(ne, net, map(sub, gross, fee))):
        return None
    days = fast_instant_days(raw["created"])
    if days is None:
        return None
    kinds = {}
    for category in set(raw["category"]):
        try:
            kinds[category] = kind_of(category)
        except BadLine:
            return None
    kind = [kinds.popitem()[1]] * n if len(kinds) == 1 else list(map(kinds.__getitem__, raw["category"]))
    pis = raw["payment_intent"]
    if pis is not None and fast_required(pis):
        references = list(pis)
    else:
        sources = raw["source_id"] or repeat(None)
        references = list(map(_reference, pis or repeat(None), sources, raw["raw_id"]))
    return {"reference": references, "amount_minor": gross, "currency": currency, "day": days, "kind": kind,
            "fee_minor": fee, "raw_id": list(raw["raw_id"]), "orig_minor": [None] * n, "orig_currency": [""] * n}


FORMAT = CsvFormat(SOURCE, COLUMNS, OPTIONAL, OUTPUTS, _fast, _slow)


def batch(lines, cols: dict) -> ProviderBatch:
    """The batch of the CSV format's output columns (``FORMAT.read`` or ``FORMAT.read_range``)."""
    return make_batch(SOURCE, lines, cols, fee=True, orig=True)


def parse(content: str | bytes) -> ProviderBatch:
    """Parse a Stripe balance report (CSV) or balance transaction list (JSON)."""
    if looks_like_json(content):
        return _parse_json(content)
    return batch(*FORMAT.read(content))


def _parse_json(content: str | bytes) -> ProviderBatch:
    text = text_of(SOURCE, content)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise StatementError(SOURCE, [(e.lineno, f"not JSON: {e.msg}")]) from None
    if isinstance(doc, dict):
        if doc.get("object") != "list" or not isinstance(doc.get("data"), list):
            raise StatementError(SOURCE, [(0, 'expected a Stripe list: {"object": "list", "data": [...]}')])
        if doc.get("has_more"):
            raise StatementError(SOURCE, [(0, "has_more is true: this is one page of the list; fetch every page "
                                              "and join their data arrays")])
        items = doc["data"]
    elif isinstance(doc, list):
        items = doc
    else:
        raise StatementError(SOURCE, [(0, "expected a Stripe list of balance transactions")])
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
    return make_batch(SOURCE, lines, cols, fee=True, orig=True)


def _json_item(item) -> tuple:
    if not isinstance(item, dict):
        raise BadLine("expected a balance transaction object")
    if item.get("object", "balance_transaction") != "balance_transaction":
        raise BadLine(f"object {item.get('object')!r} is not a balance_transaction")
    errors: list[str] = []
    raw_id = collect(errors, require, _str(item.get("id")), "id")
    day = collect(errors, day_of_unix, item.get("created"))
    kind = collect(errors, kind_of, _str(item.get("reporting_category") or item.get("type")))
    currency = collect(errors, parse_currency, _str(item.get("currency")), True)
    gross = collect(errors, parse_minor, item.get("amount"), "amount")
    fee = collect(errors, parse_minor, item.get("fee", 0), "fee")
    net = collect(errors, parse_minor, item.get("net"), "net")
    if None not in (gross, fee, net) and net != gross - fee:
        errors.append(f"net {net} is not amount {gross} - fee {fee}")
    source = item.get("source")
    payment_intent = item.get("payment_intent")
    orig_minor, orig_currency = None, ""
    if isinstance(source, dict):
        payment_intent = payment_intent or source.get("payment_intent")
        if isinstance(payment_intent, dict):
            payment_intent = payment_intent.get("id")
        src_currency = _str(source.get("currency")).upper()
        if currency and gross is not None and src_currency and src_currency != currency:
            orig_currency = collect(errors, parse_currency, src_currency) or ""
            orig_minor = collect(errors, parse_minor, source.get("amount"), "source.amount")
            if orig_minor is not None:
                orig_minor = -abs(orig_minor) if gross < 0 else abs(orig_minor)
        source = source.get("id")
    if errors:
        raise BadLine("; ".join(errors))
    reference = _reference(_str(payment_intent), _str(source), raw_id)
    return reference, gross, currency, day, kind, fee, raw_id, orig_minor, orig_currency


def _str(value) -> str:
    return value if isinstance(value, str) else ""
