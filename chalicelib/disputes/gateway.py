"""The ``DisputeGateway`` port: submit a dispute's evidence to the card processor.

``StripeDisputeGateway`` (``chalicelib/payments/stripe_disputes.py``) calls Stripe's
``POST /v1/disputes/{id}`` with ``evidence[...]`` and ``submit=true``; ``FakeDisputeGateway``
records the calls. Both are idempotent under the caller's key (``mizani:<dispute>:evidence``):
the evidence is submitted once, however often the webhook that asks for it is retried.
"""
from __future__ import annotations

import abc
import threading

#: The evidence fields Mizani fills (Stripe's names, docs.stripe.com/api/disputes/evidence_object).
EVIDENCE_FIELDS = ("product_description", "shipping_carrier", "shipping_tracking_number", "shipping_date",
                   "uncategorized_text")


class DisputeGateway(abc.ABC):
    """Port to the card processor's disputes."""

    @abc.abstractmethod
    def submit_evidence(self, dispute_id: str, evidence: dict[str, str], idempotency_key: str,
                        metadata: dict[str, str] | None = None) -> str:
        """Submit ``evidence`` (``EVIDENCE_FIELDS``) to the bank now; the dispute's status afterwards.
        Raises ``PaymentNotFound`` for an unknown dispute, ``PaymentProviderUnavailable`` (retryable)."""


class FakeDisputeGateway(DisputeGateway):
    """In memory: every submission, and what each key answered (a repeated key replays)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.submitted: dict[str, dict] = {}  # dispute id -> evidence
        self.calls: list[tuple[str, str]] = []  # (dispute id, key)
        self.fail_next = 0  # the next N calls raise PaymentProviderUnavailable

    def submit_evidence(self, dispute_id, evidence, idempotency_key, metadata=None):
        from chalicelib.payments.errors import PaymentProviderUnavailable

        with self._lock:
            self.calls.append((dispute_id, idempotency_key))
            if self.fail_next:
                self.fail_next -= 1
                raise PaymentProviderUnavailable(message="Stripe: simulated outage")
            unknown = sorted(set(evidence) - set(EVIDENCE_FIELDS))
            if unknown:
                raise ValueError(f"not evidence fields: {unknown}")
            self.submitted.setdefault(dispute_id, dict(evidence))
            return "under_review"
