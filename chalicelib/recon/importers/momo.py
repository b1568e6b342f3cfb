"""MTN MoMo disbursement statement (CSV).

Columns (header names case-insensitive, any order, extra columns ignored):

==========================  ============================================================
``financialTransactionId``  MTN's transaction id (``raw_id``); required when SUCCESSFUL
``externalId``              our payout id, sent as ``externalId`` (``reference``); required
``amount``                  positive, major units as on the wire (``"1500"`` RWF, ``"12.50"``)
``currency``                ISO 4217, upper case
``status``                  ``SUCCESSFUL`` (settled); ``FAILED``/``REJECTED``/``EXPIRED``/
                            ``TIMEOUT`` (failed: no money moved); ``PENDING``/``ONGOING``
``date``                    RFC 3339 / ISO 8601 date-time (UTC day taken) or date
==========================  ============================================================

Every line is a payout: ``kind`` ``payout``, amount negative (money left our float). The
rules are those of every payout statement (``payout_csv``).
"""
from __future__ import annotations

from chalicelib.recon.importers.payout_csv import PayoutCsv
from chalicelib.recon.model import FAILED, PENDING, SETTLED, ProviderBatch

SOURCE = "mtn_momo"
STATUSES = {
    "SUCCESSFUL": SETTLED,
    "FAILED": FAILED, "REJECTED": FAILED, "EXPIRED": FAILED, "TIMEOUT": FAILED,
    "PENDING": PENDING, "ONGOING": PENDING,
}
COLUMNS = {
    "raw_id": ("financialtransactionid",),
    "reference": ("externalid",),
    "amount": ("amount",),
    "currency": ("currency",),
    "status": ("status",),
    "date": ("date",),
}
STATEMENT = PayoutCsv(SOURCE, COLUMNS, STATUSES, reference_label="externalId", raw_id_label="financialTransactionId",
                      date_label="date", settled_label="SUCCESSFUL")
FORMAT = STATEMENT.format
OUTPUTS = FORMAT.outputs
status_of = STATEMENT.status_of


def batch(lines, cols: dict) -> ProviderBatch:
    """The batch of the CSV format's output columns (``FORMAT.read`` or ``FORMAT.read_range``)."""
    return STATEMENT.batch(lines, cols)


def parse(content: str | bytes) -> ProviderBatch:
    """Parse an MTN MoMo statement CSV; ``StatementError`` lists every malformed line."""
    return STATEMENT.parse(content)
