"""What every importer uses: telling a JSON statement from a CSV one, and building the batch."""
from __future__ import annotations

from chalicelib.recon.model import SETTLED, SOURCES, ProviderBatch, all_equal


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
    """Whether the statement starts (after a BOM and blanks) like a JSON document: ``{`` or ``[``."""
    head = content[:4096].lstrip() if isinstance(content, str) else bytes(content[:4096]).lstrip()
    if isinstance(head, bytes):
        head = head.removeprefix(b"\xef\xbb\xbf").lstrip()
        return head[:1] in (b"{", b"[")
    return head.removeprefix("\ufeff").lstrip()[:1] in ("{", "[")
