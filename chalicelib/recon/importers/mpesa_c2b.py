"""M-Pesa paybill (C2B) statement as Safaricom's organisation portal exports it (CSV): STK push
payments in, reversals out.

Columns (header names case-insensitive, any order, extra ignored): ``Receipt No.`` (``raw_id``),
``Completion Time`` (the day), ``Transaction Status`` (``Completed`` settled; ``Failed``/``Cancelled``
failed; ``Pending``), ``Paid In`` / ``Withdrawn`` (whole or decimal KES; exactly one of them on a line),
``Reason Type`` (``Reversal`` on a reversal) and ``A/C No.`` (the account reference the payer paid to:
our collection reference). A payment (``Paid In``) is ``collection`` (``+``); a reversal (``Withdrawn``)
``collection_refund`` (``-``), under the reference of the payment it reverses. Currency: KES.
"""
from __future__ import annotations

from chalicelib.recon.importers import collection_csv
from chalicelib.recon.model import FAILED, PENDING, SETTLED, ProviderBatch
from chalicelib.recon.parsing import BadLine

SOURCE = "mpesa_c2b"
COLUMNS = {"raw_id": ("receipt no.", "receipt no", "receipt"), "date": ("completion time",),
           "status": ("transaction status",), "paid_in": ("paid in",), "withdrawn": ("withdrawn",),
           "reason": ("reason type",), "reference": ("a/c no.", "a/c no", "account reference")}
STATUSES = {"COMPLETED": SETTLED, "FAILED": FAILED, "CANCELLED": FAILED, "CANCELED": FAILED, "PENDING": PENDING}


def _amount(get: dict) -> str:
    return (get["paid_in"] or get["withdrawn"]).replace(",", "")


def _classify(get: dict) -> tuple[str, int, str]:
    status = STATUSES.get(get["status"].upper())
    if status is None:
        raise BadLine(f"Transaction Status {get['status']!r} is not one of Completed, Failed, Cancelled, Pending")
    paid_in, withdrawn = get["paid_in"].strip(), get["withdrawn"].strip()
    if bool(paid_in) == bool(withdrawn):
        raise BadLine("exactly one of Paid In and Withdrawn is filled on a line")
    if paid_in:
        return "collection", 1, status
    if "revers" not in get["reason"].lower():
        raise BadLine(f"a Withdrawn line of Reason Type {get['reason']!r} is not a reversal of a collection")
    return "collection_refund", -1, status


def parse(content: str | bytes) -> ProviderBatch:
    """Parse an M-Pesa C2B statement; ``StatementError`` lists every malformed line."""
    return collection_csv.parse(SOURCE, content, COLUMNS, _classify, _amount, lambda g: "KES")
