"""M-Pesa results kept in the app table, keyed by our payout reference.

Daraja answers asynchronously (result and queue-timeout callbacks), so the rail's
``status()`` reads what the webhook stored here. Rules (as ``InMemoryMpesaResultStore``):
a final outcome is never replaced; a non-final one only fills an empty slot or
replaces another non-final one.
"""
from __future__ import annotations

from chalicelib.documents import DocumentExists, Documents
from chalicelib.payouts.rails.mpesa import MpesaCallback
from chalicelib.payouts.rails.port import RailStatus


def _to_doc(status: RailStatus) -> dict:
    return {"state": status.state, "provider_reference": status.provider_reference, "reason": status.reason}


class DynamoMpesaResultStore:
    def __init__(self, docs: Documents):
        self.docs = docs

    def get(self, reference: str) -> RailStatus | None:
        doc = self.docs.get(f"mpesaresult#{reference}")
        return RailStatus(doc["state"], doc.get("provider_reference"), doc.get("reason")) if doc else None

    def record(self, callback: MpesaCallback) -> MpesaCallback:
        if not callback.reference:
            return callback
        key = f"mpesaresult#{callback.reference}"
        try:
            self.docs.put_new(key, _to_doc(callback.status))
        except DocumentExists:
            def keep_final(current: dict) -> dict | None:
                if current["state"] in ("succeeded", "failed") or not callback.status.is_final and callback.status.state == "unknown":
                    return None
                return _to_doc(callback.status)

            self.docs.update(key, keep_final)
        return callback
