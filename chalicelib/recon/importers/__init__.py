"""Statement importers: a provider's file in, a ``ProviderBatch`` out, strictly.

``parse_statement(source, content)`` picks the importer for a source:

=================  =========================================================================
``stripe_balance``  Stripe's itemized balance change report (CSV) or a Balance Transactions
                    API list (JSON, ``{"object": "list", "data": [...]}``): ``stripe.py``
``mtn_momo``        MTN MoMo disbursement statement (CSV): ``momo.py``
``mpesa_b2c``       M-Pesa B2C results (CSV, or the Result callbacks as a JSON list): ``mpesa.py``
``camt053``         ISO 20022 camt.053 bank-to-customer statement (XML): ``camt053.py``
=================  =========================================================================

A malformed line is never dropped: the importer raises ``StatementError``
listing every bad line with its number and the reason.
"""
from __future__ import annotations

from typing import Callable

from chalicelib.recon.model import SETTLED, SOURCES, ProviderBatch, StatementError, all_equal


def parse_statement(source: str, content: str | bytes) -> ProviderBatch:
    """Parse a statement of ``source`` (one of ``SOURCES``)."""
    importer = _importers().get(source)
    if importer is None:
        raise StatementError(source, [(0, f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")])
    return importer(content)


def _importers() -> dict[str, Callable[[str | bytes], ProviderBatch]]:
    from chalicelib.recon.importers import camt053, momo, mpesa, stripe

    return {"stripe_balance": stripe.parse, "mtn_momo": momo.parse, "mpesa_b2c": mpesa.parse, "camt053": camt053.parse}


def csv_format(source: str, content: str | bytes):
    """``(FORMAT, batch)`` of a statement in one of the CSV formats (``FORMAT.read_range`` over
    byte ranges, then ``batch(lines, cols)``), or ``None`` (XML, JSON: parsed whole)."""
    if source == "camt053" or looks_like_json(content):
        return None
    from chalicelib.recon.importers import momo, mpesa, stripe

    module = {"stripe_balance": stripe, "mtn_momo": momo, "mpesa_b2c": mpesa}.get(source)
    return None if module is None else (module.FORMAT, module.batch)


def make_batch(source: str, lines, cols: dict, *, kind=None, fee=False, orig=False) -> ProviderBatch:
    """A ``ProviderBatch`` from an importer's output columns (``kind`` may be one value for all)."""
    n = len(cols["reference"])
    status = cols.get("status")
    if status is not None and all_equal(status, SETTLED):
        status = None
    fees = cols.get("fee_minor") if fee else None
    orig_minor = cols.get("orig_minor") if orig else None
    orig_currency = cols.get("orig_currency") if orig else None
    if orig_minor is not None and all_equal(orig_minor, None):
        orig_minor = orig_currency = None
    return ProviderBatch(
        source, SOURCES[source], line=lines, reference=cols["reference"], amount_minor=cols["amount_minor"],
        currency=cols["currency"], day=cols["day"], kind=[kind] * n if isinstance(kind, str) else cols["kind"],
        raw_id=cols["raw_id"], fee_minor=fees, status=status, orig_minor=orig_minor, orig_currency=orig_currency,
    )


def looks_like_json(content: str | bytes) -> bool:
    head = content[:4096].lstrip() if isinstance(content, str) else bytes(content[:4096]).lstrip()
    if isinstance(head, bytes):
        head = head.removeprefix(b"\xef\xbb\xbf").lstrip()
        return head[:1] in (b"{", b"[")
    return head.removeprefix("\ufeff").lstrip()[:1] in ("{", "[")
