"""``StripeDisputeGateway``: Stripe's ``POST /v1/disputes/{id}`` (evidence, ``submit=true``).

The disputes' half of the Stripe adapter (``stripe_adapter.py`` holds PaymentIntents, refunds and
webhooks): the same ``stripe.StripeClient`` settings, the SDK imported only inside functions, the
idempotency key sent per request, Stripe's errors translated by ``translate_stripe_error``.
"""
from __future__ import annotations

import threading
from typing import Any

from chalicelib.disputes.gateway import EVIDENCE_FIELDS, DisputeGateway
from chalicelib.payments.errors import PaymentNotFound, PaymentProviderMisconfigured
from chalicelib.payments.port import check_idempotency_key, check_metadata
from chalicelib.payments.stripe_adapter import translate_stripe_error
from chalicelib.secrets import secret_of


class StripeDisputeGateway(DisputeGateway):
    def __init__(self, api_key: str, api_base: str | None = None, max_network_retries: int = 2,
                 timeout_seconds: float = 10.0) -> None:
        if not api_key:
            raise PaymentProviderMisconfigured(message="no Stripe API key is configured (MIZANI_STRIPE_API_KEY)")
        self._api_key = api_key
        self._api_base = api_base.rstrip("/") if api_base else None
        self._max_network_retries = max_network_retries
        self._timeout_seconds = timeout_seconds
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never print the key
        return f"StripeDisputeGateway(api_base={self._api_base or 'https://api.stripe.com'!r})"

    def submit_evidence(self, dispute_id, evidence, idempotency_key, metadata=None):
        if not isinstance(dispute_id, str) or not dispute_id:
            raise PaymentNotFound(message="a dispute id is a non-empty string")
        check_idempotency_key(idempotency_key)
        unknown = sorted(set(evidence) - set(EVIDENCE_FIELDS))
        if unknown:
            raise ValueError(f"not evidence fields: {unknown}")
        params: dict = {"evidence": dict(evidence), "submit": True}
        metadata = check_metadata(metadata)
        if metadata:
            params["metadata"] = metadata
        import stripe

        try:
            dispute = self._stripe().v1.disputes.update(dispute_id, params=params,
                                                        options={"idempotency_key": idempotency_key})
        except stripe.StripeError as error:
            raise translate_stripe_error(error, "update_dispute") from error
        return dispute["status"]

    def _stripe(self):
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from chalicelib.payments.stripe_http import stripe_client  # lazy, as in stripe_adapter.py

                    self._client = stripe_client(self._api_key, self._api_base, self._max_network_retries,
                                                 self._timeout_seconds)
        return self._client


def build_dispute_gateway(settings) -> StripeDisputeGateway:
    """The container's dispute gateway (the settings of ``build_card_gateway``)."""
    if settings.is_local and secret_of(settings, "stripe_api_key").startswith(("sk_live_", "rk_live_")):
        raise PaymentProviderMisconfigured(message="a live Stripe key is configured in the local stage")
    return StripeDisputeGateway(secret_of(settings, "stripe_api_key"), api_base=settings.stripe_api_base or None,
                                timeout_seconds=settings.http_timeout_seconds)
