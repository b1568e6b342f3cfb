"""Airtel Money disbursement statement (CSV).

Airtel publishes no statement file, so the sandbox's (``GET /sandbox/statements/airtel_money``)
uses the Open API's own field names. Columns (header names case-insensitive, any order,
extra columns such as ``reference``, ``msisdn`` and ``message`` ignored):

===================  ====================================================================
``transaction_id``   our payout id, sent as ``transaction.id`` (``reference``); required
``airtel_money_id``  Airtel's transaction id (``raw_id``); required when TS
``amount``           positive, major units as on the wire (``"150000"`` UGX, ``"1500.50"`` KES)
``currency``         ISO 4217, upper case
``status``           ``TS`` (settled); ``TF`` (failed: no money moved); ``TIP``/``TA`` (in
                     progress, ambiguous: not final, so pending; the sandbox lists final ones)
``completed_at``     RFC 3339 / ISO 8601 date-time (UTC day taken) or date
===================  ====================================================================

(The ``reference`` column is the payout's free-text reference, our id cut down to Airtel's
4-64 alphanumerics: not our id, so it is not matched on.)

Every line is a payout from our float: ``kind`` ``payout``, amount negative, by the rules of
every payout statement (``payout_csv``), exactly as MTN MoMo's.
"""
from __future__ import annotations

from chalicelib.recon.importers.payout_csv import PayoutCsv
from chalicelib.recon.model import FAILED, PENDING, SETTLED, ProviderBatch

SOURCE = "airtel_money"
STATUSES = {"TS": SETTLED, "TF": FAILED, "TIP": PENDING, "TA": PENDING}
COLUMNS = {
    "raw_id": ("airtel_money_id",),
    "reference": ("transaction_id",),
    "amount": ("amount",),
    "currency": ("currency",),
    "status": ("status",),
    "date": ("completed_at",),
}
STATEMENT = PayoutCsv(SOURCE, COLUMNS, STATUSES, reference_label="transaction_id", raw_id_label="airtel_money_id",
                      date_label="completed_at", settled_label="TS")
FORMAT = STATEMENT.format
OUTPUTS = FORMAT.outputs
status_of = STATEMENT.status_of


def batch(lines, cols: dict) -> ProviderBatch:
    """The batch of the CSV format's output columns (``FORMAT.read`` or ``FORMAT.read_range``)."""
    return STATEMENT.batch(lines, cols)


def parse(content: str | bytes) -> ProviderBatch:
    """Parse an Airtel Money statement CSV; ``StatementError`` lists every malformed line."""
    return STATEMENT.parse(content)
