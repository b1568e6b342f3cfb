"""Statement importers: a provider's file in, a ``ProviderBatch`` out, strictly.

``parse_statement(source, content)`` picks the importer for a source:

=================  =========================================================================
``stripe_balance``  Stripe's itemized balance change report (CSV) or a Balance Transactions
                    API list (JSON, ``{"object": "list", "data": [...]}``): ``stripe.py``
``mtn_momo``        MTN MoMo disbursement statement (CSV): ``momo.py``
``airtel_money``    Airtel Money disbursement statement (the sandbox's CSV): ``airtel.py``
``mpesa_b2c``       M-Pesa B2C results (CSV, or the Result callbacks as a JSON list): ``mpesa.py``
``camt053``         ISO 20022 camt.053 bank-to-customer statement (XML): ``camt053.py``
``mtn_momo_collection``  MTN MoMo Collection account statement (CSV): ``momo_collection.py``
``mpesa_c2b``       M-Pesa paybill (C2B) statement, STK pushes and reversals (CSV): ``mpesa_c2b.py``
=================  =========================================================================

MTN's and Airtel's share the rules of a payout statement (``payout_csv.py``); every
importer builds its batch with ``shared.make_batch``.

A malformed line is never dropped: the importer raises ``StatementError``
listing every bad line with its number and the reason.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from chalicelib.rails import RAILS
from chalicelib.recon.importers.shared import looks_like_json
from chalicelib.recon.model import SOURCES, ProviderBatch, StatementError

#: The importer module of each source (in this package): ``parse(content)``; the CSV formats
#: also have ``FORMAT`` (a ``parsing.CsvFormat``) and ``batch(lines, cols)``. Imported on first use.
IMPORTERS = {
    "stripe_balance": "stripe",
    "camt053": "camt053",
    **{rail.recon_source: rail.recon_importer for rail in RAILS.values()},  # the rail registry's
    # and each collecting rail's collection account (mtn_momo_collection, mpesa_c2b)
    **{rail.collection.recon_source: rail.collection.recon_importer for rail in RAILS.values() if rail.collection},
}


def importer(source: str) -> ModuleType | None:
    """The importer module of ``source``, or ``None`` for a source without one."""
    name = IMPORTERS.get(source)
    return None if name is None else importlib.import_module(f"{__name__}.{name}")


def parse_statement(source: str, content: str | bytes) -> ProviderBatch:
    """Parse a statement of ``source`` (one of ``SOURCES``)."""
    module = importer(source)
    if module is None:
        raise StatementError(source, [(0, f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")])
    return module.parse(content)


def csv_format(source: str, content: str | bytes):
    """``(FORMAT, batch)`` of a statement in one of the CSV formats (``FORMAT.read_range`` over
    byte ranges, then ``batch(lines, cols)``), or ``None`` (XML, JSON: parsed whole)."""
    module = importer(source)
    if module is None or not hasattr(module, "FORMAT") or looks_like_json(content):
        return None
    return module.FORMAT, module.batch
