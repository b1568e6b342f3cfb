"""MTN MoMo Disbursement API adapter (``/disbursement/...``), implementing ``PayoutRail``.

Wire format (MTN Open API, Disbursement product):

* ``POST /disbursement/token/`` with ``Authorization: Basic base64(api_user:api_key)``
  and ``Ocp-Apim-Subscription-Key``, no body -> ``{"access_token", "token_type",
  "expires_in"}``. The token is cached until shortly before it expires; a 401 on
  a later call drops it and asks once more.
* ``POST /disbursement/v1_0/transfer`` with ``Authorization: Bearer``,
  ``X-Reference-Id``, ``X-Target-Environment``, ``Ocp-Apim-Subscription-Key`` and
  optionally ``X-Callback-Url``; body ``{"amount": "<major units>", "currency",
  "externalId", "payee": {"partyIdType": "MSISDN", "partyId"}, "payerMessage",
  "payeeNote"}`` -> ``202 Accepted``, empty body. A reused ``X-Reference-Id`` is
  ``409 RESOURCE_ALREADY_EXIST``.
* ``GET /disbursement/v1_0/transfer/{referenceId}`` -> ``{"amount", "currency",
  "financialTransactionId", "externalId", "payee", "status": "SUCCESSFUL" |
  "FAILED" | "PENDING", "reason"?}``; 404 when MTN has no such transfer.
* MTN calls ``X-Callback-Url`` once (never retried) with the same body as the
  GET. It is a shortcut only: ``parse_callback`` tells the caller which reference
  to re-query; the status from ``GET`` is what counts.

The reference id. MTN wants ``X-Reference-Id`` to be a UUID, version 4 by its own
error text ("X-Reference-Id does not meet UUID Version 4"). Ours must be
deterministic, so that a retried Lambda sends the same id and MTN's 409 turns a
repeat into a no-op: ``momo_reference_id(reference)`` is UUID5(MOMO_NAMESPACE,
reference) with the version nibble set to 4 (``uuid.UUID(..., version=4)``), a
well-formed v4 UUID carrying 122 bits of the SHA-1 of our reference.
``MOMO_NAMESPACE`` must never change: every in-flight transfer is found by it.
Our own ``reference`` travels as ``externalId`` (MTN's reconciliation field).

Retrying ``send``. Because MTN refuses a second transfer with the same
``X-Reference-Id``, repeating the POST after a timeout or 5xx cannot pay twice:
either the first attempt never arrived and the repeat creates the transfer, or
it did and the repeat answers 409, which we turn into a status query.
``send_retries`` (default 0) enables such repeats inside one ``send`` call; by
default the caller's poll loop does the equivalent (``status`` -> ``not_found``
-> ``send`` again).
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Callable

from chalicelib.errors import ValidationError
from chalicelib.money import Money
from chalicelib.payouts.rails.callbacks import CallbackUrls
from chalicelib.http import BearerToken, HttpClient, HttpResponse, TransportError
from chalicelib.payouts.rails.port import (
    NOT_FOUND,
    PayeeCheck,
    RailNotSent,
    RailStatus,
    check_reference,
    major_units,
    normalize_msisdn,
    safe_note,
)

#: Namespace of our X-Reference-Id derivation. NEVER change it (see module doc).
MOMO_NAMESPACE = uuid.UUID("6f1d7c9e-3b2a-5e0f-9a41-6d3c2b1a0f57")

#: MTN refuses payerMessage / payeeNote longer than this.
MOMO_NOTE_LIMIT = 160

Secret = str | Callable[[], str]


def momo_reference_id(reference: str) -> str:
    """The deterministic MTN ``X-Reference-Id`` (a v4-formatted UUID) for our payout ``reference``."""
    derived = uuid.uuid5(MOMO_NAMESPACE, check_reference(reference))
    return str(uuid.UUID(bytes=derived.bytes, version=4))


def map_transfer_status(body: dict) -> RailStatus:
    """Normalise MTN's transfer object (GET answer or callback body) to a ``RailStatus``."""
    if not isinstance(body, dict):
        return RailStatus("unknown", reason="unreadable_status", raw={"body": body})
    status = str(body.get("status") or "").upper()
    reason = body.get("reason")
    if isinstance(reason, dict):  # older MTN answers nest {"code", "message"}
        reason = reason.get("code") or reason.get("message")
    ftid = body.get("financialTransactionId") or None
    if status == "SUCCESSFUL":
        return RailStatus("succeeded", provider_reference=ftid, raw=body)
    if status in ("FAILED", "REJECTED"):
        return RailStatus("failed", provider_reference=ftid, reason=str(reason or status), raw=body)
    if status in ("PENDING", "CREATED", "ONGOING"):
        return RailStatus("pending", provider_reference=ftid, reason=str(reason) if reason else None, raw=body)
    # TIMEOUT, EXPIRED or anything new: MTN has not said the money did not move.
    return RailStatus("unknown", provider_reference=ftid, reason=f"unrecognised_status:{status or 'missing'}", raw=body)


@dataclass(frozen=True)
class MomoCallback:
    """A parsed MTN callback: which payout to re-query, and what the callback claimed."""

    reference: str | None  # our reference (MTN's externalId)
    claimed: RailStatus  # never act on this alone: call ``rail.status(reference)``


def parse_callback(body: bytes | str | dict) -> MomoCallback:
    """Parse the body MTN PUTs/POSTs to ``X-Callback-Url`` (same shape as the GET status)."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):
            raise ValidationError("invalid_callback", "the MTN callback body is not JSON") from None
    if not isinstance(body, dict):
        raise ValidationError("invalid_callback", "the MTN callback body is not a JSON object")
    external_id = body.get("externalId")
    return MomoCallback(reference=str(external_id) if external_id else None, claimed=map_transfer_status(body))


def _reveal(secret: Secret) -> str:
    return secret() if callable(secret) else secret


class MtnMomoRail:
    """MTN MoMo Disbursement ``transfer`` as a ``PayoutRail``."""

    name = "mtn_momo"
    resend_is_idempotent = True  # MTN refuses a reused X-Reference-Id with 409

    def __init__(
        self,
        base_url: str,
        api_user: Secret,
        api_key: Secret,
        subscription_key: Secret,
        target_environment: str,
        callback_url: str | None = None,
        *,
        http: HttpClient | None = None,
        timeout_seconds: float = 10.0,
        send_retries: int = 0,
        callbacks: CallbackUrls | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.base_url = base_url.rstrip("/")
        self._api_user = api_user
        self._api_key = api_key
        self._subscription_key = subscription_key
        self.target_environment = target_environment
        self.callback_url = callback_url
        # With ``callbacks``, MTN is told ``<callback_url>/<reference>/<token>`` (see callbacks.py).
        self.callbacks = callbacks
        self.http = http or HttpClient(timeout_seconds)
        self.send_retries = max(0, int(send_retries))
        self._clock = clock
        self._tokens = BearerToken(
            self.http, "MTN", "POST", f"{self.base_url}/disbursement/token/",
            credentials=lambda: (_reveal(self._api_user), _reveal(self._api_key)),
            extra_headers=lambda: {"Ocp-Apim-Subscription-Key": _reveal(self._subscription_key)},
            clock=clock,
        )

    # -- token -----------------------------------------------------------------
    def _access_token(self) -> str:
        """A cached bearer token; raises ``RailNotSent`` if MTN will not give one."""
        return self._tokens.get()

    def _drop_token(self, token: str) -> None:
        self._tokens.drop(token)

    def _headers(self, token: str, reference_id: str | None = None) -> dict:
        headers = {
            "Authorization": f"Bearer {token}",
            "X-Target-Environment": self.target_environment,
            "Ocp-Apim-Subscription-Key": _reveal(self._subscription_key),
        }
        if reference_id:
            headers["X-Reference-Id"] = reference_id
        return headers

    # -- PayoutRail ----------------------------------------------------------------
    def send(self, reference: str, amount: Money, msisdn: str, note: str) -> RailStatus:
        check_reference(reference)
        if not isinstance(amount, Money):
            raise ValidationError("invalid_amount", "amount must be Money", path="amount")
        amount.require_positive()
        reference_id = momo_reference_id(reference)
        message = safe_note(note, MOMO_NOTE_LIMIT)
        body = {
            "amount": major_units(amount),
            "currency": amount.currency,
            "externalId": reference,
            "payee": {"partyIdType": "MSISDN", "partyId": normalize_msisdn(msisdn)},
            "payerMessage": message,
            "payeeNote": message,
        }
        attempts = 1 + self.send_retries
        last: RailStatus | None = None
        for attempt in range(attempts):
            if attempt:
                time.sleep(min(2.0, 0.2 * 2 ** (attempt - 1)))
            last = self._post_transfer(reference, reference_id, body)
            if last.state != "unknown":
                return last
        return last

    def _post_transfer(self, reference: str, reference_id: str, body: dict) -> RailStatus:
        url = f"{self.base_url}/disbursement/v1_0/transfer"
        for auth_attempt in range(2):
            token = self._access_token()
            headers = self._headers(token, reference_id)
            if self.callback_url:
                headers["X-Callback-Url"] = (
                    self.callbacks.url(self.callback_url, reference) if self.callbacks else self.callback_url
                )
            try:
                response = self.http.request("POST", url, headers=headers, json_body=body, retry=False)
            except TransportError as err:
                if not err.maybe_delivered:
                    raise RailNotSent("provider_unavailable", f"MTN unreachable: {err.message}") from err
                return RailStatus("unknown", reason=err.kind, raw={"referenceId": reference_id, "error": err.message})
            if response.status == 401 and auth_attempt == 0:
                self._drop_token(token)  # expired or revoked: MTN did not process the request
                continue
            return self._interpret_send(reference, reference_id, response)
        raise RailNotSent("provider_unavailable", "MTN refused our credentials (HTTP 401)", http_status=401)

    def _interpret_send(self, reference: str, reference_id: str, response: HttpResponse) -> RailStatus:
        raw = {"referenceId": reference_id, "http_status": response.status, "body": response.json() or response.text[:500]}
        if response.status in (200, 201, 202):
            return RailStatus("pending", raw=raw)
        if response.status == 409:
            # RESOURCE_ALREADY_EXIST: MTN already holds this X-Reference-Id. It is ours
            # (derived from the reference), so the truth is whatever GET says.
            return self.status(reference)
        if response.status in (401, 403, 429):
            raise RailNotSent(
                "provider_unavailable", f"MTN did not accept the request (HTTP {response.status})", http_status=response.status
            )
        if response.status >= 500 or response.status == 408:
            return RailStatus("unknown", reason=f"http_{response.status}", raw=raw)
        # Any other 4xx: MTN validated and refused the request; no transfer exists.
        body = response.json()
        code = body.get("code") if isinstance(body, dict) else None
        return RailStatus("failed", reason=f"rejected:{code or response.status}", raw=raw)

    def status(self, reference: str, **_wallet) -> RailStatus:
        reference_id = momo_reference_id(reference)
        url = f"{self.base_url}/disbursement/v1_0/transfer/{reference_id}"
        for auth_attempt in range(2):
            try:
                token = self._access_token()
            except RailNotSent as err:
                return RailStatus("unknown", reason="token_unavailable", raw={"referenceId": reference_id, "error": err.message})
            try:
                response = self.http.request("GET", url, headers=self._headers(token), retry=True)
            except TransportError as err:
                return RailStatus("unknown", reason=err.kind, raw={"referenceId": reference_id, "error": err.message})
            if response.status == 401 and auth_attempt == 0:
                self._drop_token(token)
                continue
            if response.status == 200:
                return map_transfer_status(response.json())
            raw = {"referenceId": reference_id, "http_status": response.status, "body": response.json() or response.text[:500]}
            if response.status == 404:
                return RailStatus("unknown", reason=NOT_FOUND, raw=raw)
            return RailStatus("unknown", reason=f"http_{response.status}", raw=raw)
        return RailStatus("unknown", reason="http_401", raw={"referenceId": reference_id})

    def _get(self, path: str) -> HttpResponse:
        """An authenticated GET (a 401 re-authenticates once); raises ``RailNotSent`` on transport trouble."""
        for auth_attempt in range(2):
            token = self._access_token()
            try:
                response = self.http.request("GET", f"{self.base_url}{path}", headers=self._headers(token), retry=True)
            except TransportError as err:
                raise RailNotSent("provider_unavailable", f"MTN unreachable: {err.message}") from err
            if response.status == 401 and auth_attempt == 0:
                self._drop_token(token)
                continue
            return response
        return response

    def callback_payout(self, body, *, payout_id: str | None = None, token: str | None = None,
                        kind: str = "result") -> str | None:
        """The payout MTN's callback makes us ask about, or ``None`` (refused: changes nothing).

        On the payout's own URL the token must be that payout's and the body may not name another;
        on the bare URL (transfers sent before tokened URLs) the body's ``externalId`` is asked about."""
        callback = parse_callback(body or b"{}")
        if payout_id is None:
            return callback.reference
        if self.callbacks is None or not self.callbacks.verify(payout_id, token) or callback.reference not in (None, payout_id):
            return None
        return payout_id

    def check_payee(self, msisdn: str, currency: str) -> PayeeCheck:
        """MTN's account-holder checks: ``.../accountholder/msisdn/{n}/active`` (``{"result": bool}``),
        then ``.../accountholder/msisdn/{n}/basicuserinfo`` for the holder's name."""
        number = normalize_msisdn(msisdn)
        active = self._get(f"/disbursement/v1_0/accountholder/msisdn/{number}/active")
        body = active.json()
        if active.status == 404:
            return PayeeCheck(checked=True, active=False)
        if active.status != 200 or not isinstance(body, dict) or not isinstance(body.get("result"), bool):
            raise RailNotSent("provider_unavailable", f"MTN's account-holder check failed (HTTP {active.status})",
                              http_status=active.status)
        if not body["result"]:
            return PayeeCheck(checked=True, active=False)
        info = self._get(f"/disbursement/v1_0/accountholder/msisdn/{number}/basicuserinfo")
        details = info.json() if info.status == 200 else None
        name = None
        if isinstance(details, dict):
            name = " ".join(str(details.get(k) or "").strip() for k in ("given_name", "family_name")).strip() or None
        return PayeeCheck(checked=True, active=True, holder_name=name)


def from_settings(settings, *, http: HttpClient | None = None, **_ports) -> MtnMomoRail:
    """The rail as the registry builds it, from ``MIZANI_MOMO_*`` (see ``config.py``)."""
    from chalicelib.payouts.rails import config as c

    return MtnMomoRail(
        base_url=c.env_value("MIZANI_MOMO_BASE_URL", settings, c.local_sandbox_url(settings)),
        api_user=c.secret_value("MIZANI_MOMO_API_USER", settings, c.LOCAL_MOMO_API_USER),
        api_key=c.secret_value("MIZANI_MOMO_API_KEY", settings, c.LOCAL_MOMO_API_KEY),
        subscription_key=c.secret_value("MIZANI_MOMO_SUBSCRIPTION_KEY", settings, c.LOCAL_MOMO_SUBSCRIPTION_KEY),
        target_environment=c.env_value("MIZANI_MOMO_TARGET_ENVIRONMENT", settings, c.LOCAL_MOMO_TARGET_ENVIRONMENT),
        callback_url=c.env_value("MIZANI_MOMO_CALLBACK_URL", settings, required=False),
        http=http,
        timeout_seconds=c.http_timeout(settings),
        send_retries=int(getattr(settings, "momo_send_retries", 0) or 0),
        callbacks=c.callback_urls("mtn_momo", settings),
    )
