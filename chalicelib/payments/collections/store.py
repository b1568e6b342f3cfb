"""Each collection's record in the app table: ``collection#<reference>``.

Written before the provider is asked (so a callback or a retry always finds it), it holds what
was asked (order, rail, amount, payer), what the provider said back (M-Pesa's MerchantRequestID /
CheckoutRequestID, the receipt from a callback), the state, and the refund. While it is open it
carries an index entry (``collections#open``) that the poller walks; the state is changed only by
conditional updates, and a final state is never replaced.
"""
from __future__ import annotations

from chalicelib.documents import DocumentExists, Documents

OPEN_INDEX = "collections#open"
FINAL = frozenset({"succeeded", "failed"})


class CollectionStore:
    def __init__(self, docs: Documents):
        self.docs = docs

    @staticmethod
    def key(reference: str) -> str:
        return f"collection#{reference}"

    def create(self, record: dict, created_at: str) -> tuple[dict, bool]:
        """(the record, True) if written now; (the stored one, False) if it was there already. The open
        marker (``sk=open``, indexed under ``collections#open``) is what the poller walks."""
        reference = record["reference"]
        try:
            self.docs.put_new(self.key(reference), {**record, "state": "requesting", "created_at": created_at})
            created = True
        except DocumentExists:
            created = False
        try:
            self.docs.put_new(self.key(reference), {"reference": reference}, sk="open",
                              index=(OPEN_INDEX, f"{created_at}#{reference}"))
        except DocumentExists:
            pass
        return self.get(reference), created

    def get(self, reference: str) -> dict | None:
        return self.docs.get(self.key(reference)) if isinstance(reference, str) else None

    def update(self, reference: str, fields: dict) -> dict:
        """Merge ``fields`` (nested objects merged key by key, so two writers of the refund's parts never
        erase each other's); a final ``state`` is never replaced (re-checked on every optimistic retry)."""

        def mutate(doc: dict) -> dict | None:
            new = dict(fields)
            if doc.get("state") in FINAL and new.get("state") not in (None, doc["state"]):
                new.pop("state")
            merged = _merge(doc, new)
            return merged if merged != doc else None

        return self.docs.update(self.key(reference), mutate)

    def finish(self, reference: str, state: str, fields: dict | None = None) -> dict:
        """Make the collection final (once; a final state is never replaced) and close its open marker."""
        record = self.update(reference, {**(fields or {}), "state": state})
        if record.get("state") in FINAL:
            self.docs.delete(self.key(reference), sk="open")
        return record

    def open(self, limit: int = 100) -> list[str]:
        """The references of open collections, oldest first."""
        return [d["reference"] for d in self.docs.query_index(OPEN_INDEX, limit=limit, newest_first=False)]


def _merge(old: dict, new: dict) -> dict:
    out = dict(old)
    for key, value in new.items():
        out[key] = _merge(old[key], value) if isinstance(value, dict) and isinstance(old.get(key), dict) else value
    return out
