"""MTN MoMo Collection ``requesttopay`` (and Disbursement ``refund``), implementing ``CollectionRail``.

Wire format (MTN Open API):

* ``POST /collection/token/`` with ``Authorization: Basic base64(api_user:api_key)`` and the Collection
  product's ``Ocp-Apim-Subscription-Key`` -> ``{"access_token", "token_type", "expires_in"}`` (cached;
  a 401 drops it and asks once more: ``chalicelib.http.BearerToken``, as the payout rail does).
* ``POST /collection/v1_0/requesttopay`` with ``Authorization: Bearer``, ``X-Reference-Id`` (a v4-formatted
  UUID), ``X-Target-Environment``, ``X-Callback-Url`` and the subscription key; body ``{"amount": "<major
  units>", "currency", "externalId", "payer": {"partyIdType": "MSISDN", "partyId"}, "payerMessage",
  "payeeNote"}`` -> ``202 Accepted``; the payer approves on the phone. A reused ``X-Reference-Id`` is
  ``409 RESOURCE_ALREADY_EXIST``, so repeating the request never asks twice.
* ``GET /collection/v1_0/requesttopay/{referenceId}`` -> ``{"amount", "currency", "financialTransactionId",
  "externalId", "payer", "payerMessage", "payeeNote", "status": "PENDING" | "SUCCESSFUL" | "FAILED",
  "reason"?}``; 404 when MTN has no such request. MTN PUTs the same body to ``X-Callback-Url`` once, never
  retried: a hint; the GET is the verdict.
* Refund (Disbursement product, its own token and key): ``POST /disbursement/v1_0/refund`` with its own
  ``X-Reference-Id``, body ``{"amount", "currency", "externalId", "payerMessage", "payeeNote",
  "referenceIdToRefund"}`` (the request-to-pay's ``X-Reference-Id``) -> 202; ``GET
  /disbursement/v1_0/refund/{referenceId}`` -> the same status object.

Ids: ``X-Reference-Id`` = ``momo_reference_id(reference)`` of the payout rail (UUID5 under its namespace,
formatted v4), so a retried request carries the same id; the refund's is derived from
``refund:<reference>``. Our ``reference`` travels as ``externalId`` (MTN's reconciliation field) on both,
so the collection statement shows the order's reference on the payment and on its refund.

Variables: ``MIZANI_MOMO_COLLECTION_SUBSCRIPTION_KEY``, ``MIZANI_MOMO_COLLECTION_API_USER``,
``MIZANI_MOMO_COLLECTION_API_KEY`` (the Collection product's), ``MIZANI_MOMO_COLLECTION_CALLBACK_URL``
(a base: ``<url>/<reference>/<token>``), and the payout rail's ``MIZANI_MOMO_BASE_URL``,
``MIZANI_MOMO_TARGET_ENVIRONMENT`` and Disbursement credentials (for refunds).
"""
from __future__ import annotations

import time
from typing import Callable

from chalicelib.http import BearerToken, HttpClient, HttpResponse, TransportError
from chalicelib.money import Money
from chalicelib.payouts.rails.callbacks import CallbackUrls
from chalicelib.payouts.rails.momo import MOMO_NOTE_LIMIT, map_transfer_status, momo_reference_id, parse_callback
from chalicelib.payouts.rails.port import NOT_FOUND, RailNotSent, RailStatus, major_units, normalize_msisdn, safe_note

Secret = str | Callable[[], str]

#: Local-sandbox defaults of the Collection product (NOT secrets: the simulator on 127.0.0.1 only).
LOCAL_COLLECTION_API_USER = "9a1c4e2b-5d7f-4a3b-8c6d-0e1f2a3b4c5d"
LOCAL_COLLECTION_API_KEY = "momo-collection-local-api-key"
LOCAL_COLLECTION_SUBSCRIPTION_KEY = "momo-collection-local-subscription-key"


def _reveal(secret: Secret) -> str:
    return secret() if callable(secret) else secret


def refund_reference_id(reference: str) -> str:
    """The refund's ``X-Reference-Id`` (deterministic, never the request-to-pay's)."""
    return momo_reference_id(f"refund:{reference}")


class MtnMomoCollection:
    """MTN MoMo Collection as a ``CollectionRail``."""

    name = "mtn_momo"
    request_is_idempotent = True  # MTN refuses a reused X-Reference-Id with 409

    def __init__(self, base_url: str, api_user: Secret, api_key: Secret, subscription_key: Secret,
                 target_environment: str, callback_url: str | None, callbacks: CallbackUrls, *,
                 disbursement_user: Secret, disbursement_key: Secret, disbursement_subscription_key: Secret,
                 http: HttpClient | None = None, timeout_seconds: float = 10.0, clock=time.monotonic):
        self.base_url = base_url.rstrip("/")
        self.target_environment = target_environment
        self.callback_url = callback_url
        self.callbacks = callbacks
        self.http = http or HttpClient(timeout_seconds)
        self._key = subscription_key
        self._disbursement_key = disbursement_subscription_key
        self._tokens = BearerToken(
            self.http, "MTN Collection", "POST", f"{self.base_url}/collection/token/",
            credentials=lambda: (_reveal(api_user), _reveal(api_key)),
            extra_headers=lambda: {"Ocp-Apim-Subscription-Key": _reveal(self._key)}, clock=clock)
        self._refund_tokens = BearerToken(
            self.http, "MTN Disbursement", "POST", f"{self.base_url}/disbursement/token/",
            credentials=lambda: (_reveal(disbursement_user), _reveal(disbursement_key)),
            extra_headers=lambda: {"Ocp-Apim-Subscription-Key": _reveal(self._disbursement_key)}, clock=clock)

    # -- HTTP ----------------------------------------------------------------------------------
    def _call(self, tokens: BearerToken, key: Secret, method: str, path: str, *, reference_id: str | None = None,
              body: dict | None = None, callback: str | None = None, retry: bool = False) -> HttpResponse:
        """One authenticated call (a 401 re-authenticates once: MTN processed nothing). ``TransportError``
        and ``RailNotSent`` (no token) propagate."""
        for attempt in range(2):
            token = tokens.get()
            headers = {"Authorization": f"Bearer {token}", "X-Target-Environment": self.target_environment,
                       "Ocp-Apim-Subscription-Key": _reveal(key)}
            if reference_id:
                headers["X-Reference-Id"] = reference_id
            if callback:
                headers["X-Callback-Url"] = callback
            response = self.http.request(method, f"{self.base_url}{path}", headers=headers, json_body=body, retry=retry)
            if response.status == 401 and attempt == 0:
                tokens.drop(token)
                continue
            return response
        return response

    def _post(self, tokens, key, path, reference_id, body, callback=None) -> RailStatus:
        try:
            response = self._call(tokens, key, "POST", path, reference_id=reference_id, body=body, callback=callback)
        except RailNotSent:
            raise
        except TransportError as err:
            if not err.maybe_delivered:
                raise RailNotSent("provider_unavailable", f"MTN unreachable: {err.message}") from err
            return RailStatus("unknown", reason=err.kind, raw={"referenceId": reference_id, "error": err.message})
        raw = {"referenceId": reference_id, "http_status": response.status, "body": response.json() or response.text[:500]}
        if response.status in (200, 201, 202):
            return RailStatus("pending", raw=raw)
        if response.status == 409:
            return RailStatus("unknown", reason="already_exists", raw=raw)  # ours: the GET tells
        if response.status in (401, 403, 429):
            raise RailNotSent("provider_unavailable", f"MTN did not accept the request (HTTP {response.status})",
                              http_status=response.status)
        if response.status >= 500 or response.status == 408:
            return RailStatus("unknown", reason=f"http_{response.status}", raw=raw)
        body = response.json()
        code = body.get("code") if isinstance(body, dict) else None
        return RailStatus("failed", reason=f"rejected:{code or response.status}", raw=raw)

    def _get(self, tokens, key, path: str, reference_id: str) -> RailStatus:
        try:
            response = self._call(tokens, key, "GET", path, retry=True)
        except (TransportError, RailNotSent) as err:
            return RailStatus("unknown", reason="unreachable", raw={"referenceId": reference_id, "error": str(err)})
        if response.status == 200:
            return map_transfer_status(response.json())
        raw = {"referenceId": reference_id, "http_status": response.status}
        return RailStatus("unknown", reason=NOT_FOUND if response.status == 404 else f"http_{response.status}", raw=raw)

    # -- CollectionRail ------------------------------------------------------------------------------
    def request(self, reference: str, amount: Money, msisdn: str, note: str, record: dict) -> RailStatus:
        reference_id = momo_reference_id(reference)
        message = safe_note(note, MOMO_NOTE_LIMIT)
        body = {"amount": major_units(amount), "currency": amount.currency, "externalId": reference,
                "payer": {"partyIdType": "MSISDN", "partyId": normalize_msisdn(msisdn)},
                "payerMessage": message, "payeeNote": message}
        callback = self.callbacks.url(self.callback_url, reference) if self.callback_url else None
        sent = self._post(self._tokens, self._key, "/collection/v1_0/requesttopay", reference_id, body, callback)
        return self.status(reference, record) if sent.reason == "already_exists" else sent

    def status(self, reference: str, record: dict) -> RailStatus:
        reference_id = momo_reference_id(reference)
        return self._get(self._tokens, self._key, f"/collection/v1_0/requesttopay/{reference_id}", reference_id)

    def refund(self, reference: str, amount: Money, record: dict) -> RailStatus:
        reference_id = refund_reference_id(reference)
        body = {"amount": major_units(amount), "currency": amount.currency, "externalId": reference,
                "payerMessage": "Mizani refund", "payeeNote": "Mizani refund",
                "referenceIdToRefund": momo_reference_id(reference)}
        sent = self._post(self._refund_tokens, self._disbursement_key, "/disbursement/v1_0/refund", reference_id, body)
        return self.refund_status(reference, record) if sent.reason == "already_exists" or sent.state == "pending" else sent

    def refund_status(self, reference: str, record: dict) -> RailStatus:
        reference_id = refund_reference_id(reference)
        return self._get(self._refund_tokens, self._disbursement_key, f"/disbursement/v1_0/refund/{reference_id}",
                         reference_id)

    def callback_hint(self, reference: str, token: str | None, body, record: dict) -> dict | None:
        """MTN's callback on the collection's own URL: nothing to keep but that it came (the GET decides)."""
        if not self.callbacks.verify(reference, token):
            return None
        callback = parse_callback(body or b"{}")
        if callback.reference not in (None, reference):
            return None
        return {}


def from_settings(settings, *, http: HttpClient | None = None, **_ports) -> MtnMomoCollection:
    """The adapter from ``MIZANI_MOMO_COLLECTION_*`` and the payout rail's ``MIZANI_MOMO_*`` (``config.py``)."""
    from chalicelib.payouts.rails import config as c

    api = c.local_api_url()
    return MtnMomoCollection(
        base_url=c.env_value("MIZANI_MOMO_BASE_URL", settings, c.local_sandbox_url(settings)),
        api_user=c.secret_value("MIZANI_MOMO_COLLECTION_API_USER", settings, LOCAL_COLLECTION_API_USER),
        api_key=c.secret_value("MIZANI_MOMO_COLLECTION_API_KEY", settings, LOCAL_COLLECTION_API_KEY),
        subscription_key=c.secret_value("MIZANI_MOMO_COLLECTION_SUBSCRIPTION_KEY", settings,
                                        LOCAL_COLLECTION_SUBSCRIPTION_KEY),
        target_environment=c.env_value("MIZANI_MOMO_TARGET_ENVIRONMENT", settings, c.LOCAL_MOMO_TARGET_ENVIRONMENT),
        callback_url=c.env_value("MIZANI_MOMO_COLLECTION_CALLBACK_URL", settings,
                                 f"{api}/v1/webhooks/collections/mtn_momo", required=False),
        callbacks=c.callback_urls("mtn_momo_collection", settings),
        disbursement_user=c.secret_value("MIZANI_MOMO_API_USER", settings, c.LOCAL_MOMO_API_USER),
        disbursement_key=c.secret_value("MIZANI_MOMO_API_KEY", settings, c.LOCAL_MOMO_API_KEY),
        disbursement_subscription_key=c.secret_value("MIZANI_MOMO_SUBSCRIPTION_KEY", settings,
                                                     c.LOCAL_MOMO_SUBSCRIPTION_KEY),
        http=http,
        timeout_seconds=c.http_timeout(settings),
    )
