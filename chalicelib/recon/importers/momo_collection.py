"""MTN MoMo Collection account statement (CSV): request-to-pay payments in, refunds out.

Columns (header names case-insensitive, any order): ``financialTransactionId`` (``raw_id``),
``externalId`` (our collection reference, ``reference``), ``type`` (``REQUEST_TO_PAY`` -> ``collection``,
``+``; ``REFUND`` -> ``collection_refund``, ``-``), ``amount`` (major units as on the wire), ``currency``,
``status`` (``SUCCESSFUL`` settled; ``FAILED``/``REJECTED``/``EXPIRED``/``TIMEOUT`` failed, no money moved;
``PENDING``/``ONGOING``), ``date`` (RFC 3339). Rules: ``collection_csv``.
"""
from __future__ import annotations

from chalicelib.recon.importers import collection_csv
from chalicelib.recon.model import FAILED, PENDING, SETTLED, ProviderBatch
from chalicelib.recon.parsing import BadLine

SOURCE = "mtn_momo_collection"
COLUMNS = {"raw_id": ("financialtransactionid",), "reference": ("externalid",), "type": ("type",),
           "amount": ("amount",), "currency": ("currency",), "status": ("status",), "date": ("date",)}
STATUSES = {"SUCCESSFUL": SETTLED, "FAILED": FAILED, "REJECTED": FAILED, "EXPIRED": FAILED, "TIMEOUT": FAILED,
            "PENDING": PENDING, "ONGOING": PENDING}
KINDS = {"REQUEST_TO_PAY": ("collection", 1), "REFUND": ("collection_refund", -1)}


def _classify(get: dict) -> tuple[str, int, str]:
    kind = KINDS.get(get["type"].upper())
    status = STATUSES.get(get["status"].upper())
    if kind is None:
        raise BadLine(f"type {get['type']!r} is not REQUEST_TO_PAY or REFUND")
    if status is None:
        raise BadLine(f"status {get['status']!r} is not one of {', '.join(STATUSES)}")
    return kind[0], kind[1], status


def parse(content: str | bytes) -> ProviderBatch:
    """Parse an MTN MoMo Collection statement; ``StatementError`` lists every malformed line."""
    return collection_csv.parse(SOURCE, content, COLUMNS, _classify, lambda g: g["amount"], lambda g: g["currency"])
