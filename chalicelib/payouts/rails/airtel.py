"""Airtel Money (Airtel Africa Open API, Disbursement) adapter, implementing ``PayoutRail``.

Wire format (Airtel's developer documentation; base https://openapi.airtel.africa,
staging https://openapiuat.airtel.africa):

* ``POST /auth/oauth2/token`` with JSON ``{"client_id", "client_secret", "grant_type":
  "client_credentials"}`` -> ``{"access_token", "expires_in": "180", "token_type"}``.
  Cached until shortly before it expires; a 401 later drops it and asks once more.
* Every call carries ``Authorization: Bearer``, ``X-Country`` (ISO 3166 alpha-2) and
  ``X-Currency`` (ISO 4217). A msisdn is the national number, without country code.
* ``POST /standard/v1/disbursements/`` body ``{"payee": {"msisdn", "wallet_type":
  "NORMAL"}, "reference", "pin", "transaction": {"amount", "id", "type": "B2C"}}``: ``pin``
  is the disbursement PIN encrypted with Airtel's RSA public key (PKCS#1 v1.5, Base64);
  ``transaction.id`` is our payout id. Answer ``{"data": {"transaction": {"reference_id",
  "airtel_money_id", "id", "status"}}, "status": {"code", "message", "response_code",
  "result_code", "success"}}``.
* ``GET /standard/v1/disbursements/{id}``: the same ``data.transaction`` with ``status``
  ``TS`` (success), ``TF`` (failed), ``TIP`` (in progress), ``TA`` (ambiguous), ``TE``
  (expired); ``DP00900001015`` when Airtel has no such transaction.
* ``GET /standard/v1/users/{msisdn}``: the KYC enquiry (``first_name``, ``last_name``,
  ``is_barred``, ``reg_status``), our payee check.
* Airtel POSTs ``{"transaction": {"id", "status_code", "airtel_money_id", "message"}}`` to
  the callback URL configured in its portal. It is a hint: ``parse_callback`` names the
  payout, whose status is then asked with the GET above (poll-first, as for MTN).

Finality. Only ``TS``/``TF``/``TE`` (expired: failed) from a GET, about the very
transaction asked (``data.transaction.id``), or the disbursement answer itself with a
documented success or failure code, are final. ``DP00900001000`` / ``TA`` (ambiguous),
``DP00900001006`` / ``TIP`` (in progress) and ``DP00900001014`` (timed out, may have
succeeded) are ``pending``/``unknown``: we ask again. A transport error or 5xx is ``unknown``.

Re-sending. Airtel refuses a second disbursement with the same ``transaction.id``
(``DP00900001017``, "duplicate transaction id: enquire for the original"), so
``resend_is_idempotent`` is True: a repeat becomes a status read.
"""
from __future__ import annotations

import base64
import json
import re
import time
from typing import Callable
from urllib.parse import quote

from chalicelib.errors import ValidationError
from chalicelib.money import Money, exponent
from chalicelib.http import BearerToken, HttpClient, HttpResponse, TransportError
from chalicelib.payouts.rails.port import NOT_FOUND, PayeeCheck, RailNotSent, RailStatus, check_reference

Secret = str | Callable[[], str]

# Local-sandbox defaults. NOT secrets: they only authenticate traffic to the simulator on 127.0.0.1.
LOCAL_AIRTEL_CLIENT_ID = "airtel-local-client-id"
LOCAL_AIRTEL_CLIENT_SECRET = "airtel-local-client-secret"
LOCAL_AIRTEL_PIN = "1357"
#: The simulator's PIN encryption key (its private half is in sandbox/simulators/airtel_keys.py).
LOCAL_AIRTEL_PIN_PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAmJza+Bbt4Y0xdJGit+gU
pxg2apEnycF0C/kp+KN7E9tEUjvDzVyYLBgmg5MA3EI2jwol+EHfT1tC8Jeel06M
eHIOEkBf+kvZw6tEctThAWIWhoK+avRd8koMrFC6dxMxwS8LsjjDrr5yXiO6wHy3
X0DG0MrKAHzi9AjTpkxjkX50tI3fbL1Q92D2G9v6PGEuBuxekRUj/dNT9nzlj/Ap
Xb/IqyqcmOcdUSfx9BhctXQFZgVewMnhSq9MQ35PgE9NlnekA4mlTtUzXxalvdem
Io4cUZGxPbAuISKMfcZQhmpFIAesukPblNDrxHdQ9wLsXSLoqw4qX1Jc6s3ivesM
jQIDAQAB
-----END PUBLIC KEY-----
"""

#: ``data.transaction.status`` values.
TRANSACTION_STATES = {"TS": "succeeded", "TF": "failed", "TE": "failed", "TIP": "pending", "TA": "unknown"}

#: ``status.response_code`` of a disbursement or its enquiry.
SUCCESS = "DP00900001001"
AMBIGUOUS = "DP00900001000"
IN_PROGRESS = "DP00900001006"
TIMED_OUT = "DP00900001014"  # "may have succeeded": never a failure
NOT_FOUND_CODE = "DP00900001015"
DUPLICATE_CODES = frozenset({"DP00900001017", "DP00900001011"})  # the id (or a similar transaction) exists
FAILURE_CODES = {
    "DP00900001003": "daily_limit_reached",
    "DP00900001004": "invalid_amount",
    "DP00900001005": "transaction_failed",
    "DP00900001007": "insufficient_funds",
    "DP00900001009": "invalid_initiatee",
    "DP00900001010": "payee_not_allowed",
    "DP00900001012": "invalid_mobile_number",
    "DP00900001013": "refused",
    "DP00900001016": "signature_mismatch",
}
#: KYC enquiry codes.
KYC_FOUND = "DP02200000001"
KYC_NOT_FOUND = "DP02200000002"


def _reveal(secret: Secret) -> str:
    return secret() if callable(secret) else secret


def encrypt_pin(pin: str, public_key_pem: str) -> str:
    """Airtel's PIN encryption: RSA PKCS#1 v1.5 with Airtel's public key, Base64."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    pem = public_key_pem.strip()
    if not pem.startswith("-----BEGIN"):  # Airtel's portal shows the bare Base64 SubjectPublicKeyInfo
        pem = "-----BEGIN PUBLIC KEY-----\n" + pem + "\n-----END PUBLIC KEY-----"
    key = serialization.load_pem_public_key(pem.encode())
    return base64.b64encode(key.encrypt(pin.encode(), padding.PKCS1v15())).decode()


def parse_callback(body) -> str | None:
    """The payout a callback names (``transaction.id``), or ``None``. Its claim is never used."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body or b"{}")
        except (ValueError, RecursionError):
            raise ValidationError("invalid_callback", "the Airtel callback body is not JSON") from None
    transaction = body.get("transaction") if isinstance(body, dict) else None
    reference = transaction.get("id") if isinstance(transaction, dict) else None
    return str(reference) if reference else None


def _status_of(payload) -> dict:
    return payload.get("status") if isinstance(payload, dict) and isinstance(payload.get("status"), dict) else {}


def _transaction_of(payload) -> dict:
    data = payload.get("data") if isinstance(payload, dict) else None
    tx = data.get("transaction") if isinstance(data, dict) else None
    return tx if isinstance(tx, dict) else {}


class AirtelMoneyRail:
    """Airtel Money Disbursement as a ``PayoutRail`` (see the module doc)."""

    name = "airtel_money"
    resend_is_idempotent = True  # a repeated transaction.id is refused (DP00900001017)

    def __init__(
        self,
        base_url: str,
        client_id: Secret,
        client_secret: Secret,
        pin: Secret,
        pin_public_key: Secret,
        *,
        http: HttpClient | None = None,
        timeout_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.base_url = base_url.rstrip("/")
        self._pin = pin
        self._pin_public_key = pin_public_key
        self._encrypted_pin: str | None = None
        self.http = http or HttpClient(timeout_seconds)
        self._tokens = BearerToken(
            self.http, "Airtel", "POST", f"{self.base_url}/auth/oauth2/token",
            credentials=lambda: (_reveal(client_id), _reveal(client_secret)),
            default_ttl=180, clock=clock, client_credentials_body=True,
        )

    # -- plumbing ------------------------------------------------------------------
    def _wallet(self, msisdn: str):
        from chalicelib import phones

        return phones.parse(msisdn, path="msisdn")

    def _pin_field(self) -> str:
        # PKCS#1 v1.5 padding is random, so one ciphertext serves every request: encrypt once.
        if self._encrypted_pin is None:
            self._encrypted_pin = encrypt_pin(_reveal(self._pin), _reveal(self._pin_public_key))
        return self._encrypted_pin

    def _call(self, method: str, path: str, country: str, currency: str, body: dict | None = None,
              retry: bool = False) -> HttpResponse:
        """One authenticated call; a 401 re-authenticates once (Airtel processed nothing)."""
        for auth_attempt in range(2):
            token = self._tokens.get()
            headers = {"Authorization": f"Bearer {token}", "X-Country": country, "X-Currency": currency,
                       "Accept": "*/*"}
            response = self.http.request(method, f"{self.base_url}{path}", headers=headers, json_body=body, retry=retry)
            if response.status == 401 and auth_attempt == 0:
                self._tokens.drop(token)
                continue
            return response
        return response

    def _amount(self, amount: Money) -> int | str:
        """Airtel's ``transaction.amount`` in major units: whole ones only (the registry says so)."""
        scale = 10 ** exponent(amount.currency)
        if amount.minor % scale:
            raise ValidationError("amount_not_whole_units", f"Airtel Money is paid in whole {amount.currency}", path="amount")
        return amount.minor // scale

    # -- PayoutRail ------------------------------------------------------------------
    def send(self, reference: str, amount: Money, msisdn: str, note: str) -> RailStatus:
        check_reference(reference)
        amount.require_positive()
        wallet = self._wallet(msisdn)
        body = {
            "payee": {"msisdn": wallet.national, "wallet_type": "NORMAL"},
            "reference": (re.sub(r"[^0-9A-Za-z]", "", reference) or "Mizani")[:64].ljust(4, "0"),
            "pin": self._pin_field(),
            "transaction": {"amount": self._amount(amount), "id": reference, "type": "B2C"},
        }
        try:
            response = self._call("POST", "/standard/v1/disbursements/", wallet.country, amount.currency, body)
        except TransportError as err:
            if not err.maybe_delivered:
                raise RailNotSent("provider_unavailable", f"Airtel unreachable: {err.message}") from err
            return RailStatus("unknown", reason=err.kind, raw={"error": err.message})
        payload = response.json()
        raw = {"http_status": response.status, "body": payload if payload is not None else response.text[:500]}
        if response.status in (401, 403, 429):
            raise RailNotSent("provider_unavailable", f"Airtel did not accept the request (HTTP {response.status})",
                              http_status=response.status)
        if response.status >= 500 or response.status == 408 or not isinstance(payload, dict):
            return RailStatus("unknown", reason=f"http_{response.status}", raw=raw)
        code = str(_status_of(payload).get("response_code") or "")
        if code in DUPLICATE_CODES:
            return self.status(reference, msisdn=msisdn, currency=amount.currency)
        return self._interpret(payload, raw, sending=True)

    def _interpret(self, payload: dict, raw: dict, sending: bool = False) -> RailStatus:
        status = _status_of(payload)
        code = str(status.get("response_code") or "")
        tx = _transaction_of(payload)
        airtel_id = tx.get("airtel_money_id") or None
        state = TRANSACTION_STATES.get(str(tx.get("status") or "").upper())
        if code == SUCCESS and state in ("succeeded", "failed"):
            reason = None if state == "succeeded" else f"{tx.get('status')}: {tx.get('message') or status.get('message') or ''}".strip()
            return RailStatus(state, provider_reference=airtel_id, reason=reason, raw=raw)
        if code == SUCCESS and state == "pending" or code == IN_PROGRESS:
            return RailStatus("pending", provider_reference=airtel_id, raw=raw)
        if code in FAILURE_CODES:
            return RailStatus("failed", provider_reference=airtel_id, reason=f"{code}:{FAILURE_CODES[code]}", raw=raw)
        if code == NOT_FOUND_CODE:
            return RailStatus("unknown", reason=NOT_FOUND, raw=raw)
        if code in (AMBIGUOUS, TIMED_OUT) or code == SUCCESS:
            return RailStatus("unknown", provider_reference=airtel_id, reason=f"ambiguous:{code}", raw=raw)
        if sending and status.get("success") is False and raw.get("http_status", 200) < 500:
            # A gateway refusal (ROUTER1xx / ESB0000xx: wrong PIN, bad currency, validation): nothing was created.
            result = status.get("result_code") or code or raw.get("http_status")
            return RailStatus("failed", reason=f"rejected:{result}", raw=raw)
        return RailStatus("unknown", reason=f"unrecognised:{code or 'missing'}", raw=raw)

    def status(self, reference: str, *, msisdn: str | None = None, currency: str | None = None) -> RailStatus:
        """Every Airtel call names its country and currency: the payout's wallet and currency."""
        if not msisdn or not currency:
            return RailStatus("unknown", reason="status_needs_wallet", raw={"reference": reference})
        country = self._wallet(msisdn).country
        try:
            response = self._call("GET", f"/standard/v1/disbursements/{quote(reference, safe='')}", country, currency,
                                  retry=True)
        except (TransportError, RailNotSent) as err:
            return RailStatus("unknown", reason="status_unavailable", raw={"error": err.message})
        payload = response.json()
        raw = {"http_status": response.status, "body": payload if payload is not None else response.text[:500]}
        if response.status == 404:
            return RailStatus("unknown", reason=NOT_FOUND, raw=raw)
        if response.status != 200 or not isinstance(payload, dict):
            return RailStatus("unknown", reason=f"http_{response.status}", raw=raw)
        answered = _transaction_of(payload).get("id")
        if answered is not None and str(answered) != reference:
            # An answer about another transaction says nothing about this one.
            return RailStatus("unknown", reason="answer_for_another_transaction", raw=raw)
        return self._interpret(payload, raw)

    def callback_payout(self, body, *, payout_id: str | None = None, token: str | None = None,
                        kind: str = "result") -> str | None:
        """Airtel calls the one URL set in its portal: the body names the payout, which is then asked
        about (GET); what the callback claims is never used, so it needs no secret to be harmless."""
        reference = parse_callback(body)
        return reference if payout_id is None or reference in (None, payout_id) else None

    def check_payee(self, msisdn: str, currency: str) -> PayeeCheck:
        """Airtel's KYC enquiry: is the wallet registered and not barred, and whose is it."""
        wallet = self._wallet(msisdn)
        try:
            response = self._call("GET", f"/standard/v1/users/{wallet.national}", wallet.country, currency, retry=True)
        except TransportError as err:
            raise RailNotSent("provider_unavailable", f"Airtel unreachable: {err.message}") from err
        payload = response.json()
        code = str(_status_of(payload).get("response_code") or "")
        if response.status == 404 or code == KYC_NOT_FOUND:
            return PayeeCheck(checked=True, active=False, holder_name=None)
        if response.status != 200 or code != KYC_FOUND:
            raise RailNotSent("provider_unavailable", f"Airtel's KYC enquiry failed (HTTP {response.status}, {code or '-'})",
                              http_status=response.status)
        data = payload.get("data") or {}
        barred = data.get("is_barred") in (True, "true", "Y") or str(data.get("reg_status") or "").upper() == "BARRED"
        name = " ".join(str(data.get(k) or "").strip() for k in ("first_name", "last_name")).strip()
        return PayeeCheck(checked=True, active=not barred, holder_name=name or None)


def from_settings(settings, *, http: HttpClient | None = None, **_ports) -> AirtelMoneyRail:
    """The rail as the registry builds it, from ``MIZANI_AIRTEL_*``:

    MIZANI_AIRTEL_BASE_URL          e.g. https://openapi.airtel.africa (local: the sandbox)
    MIZANI_AIRTEL_CLIENT_ID         secret
    MIZANI_AIRTEL_CLIENT_SECRET     secret
    MIZANI_AIRTEL_PIN               secret; the disbursement PIN
    MIZANI_AIRTEL_PIN_PUBLIC_KEY    Airtel's RSA public key for the PIN (PEM or bare Base64)
    """
    from chalicelib.payouts.rails import config as c

    return AirtelMoneyRail(
        base_url=c.env_value("MIZANI_AIRTEL_BASE_URL", settings, c.local_sandbox_url(settings)),
        client_id=c.secret_value("MIZANI_AIRTEL_CLIENT_ID", settings, LOCAL_AIRTEL_CLIENT_ID),
        client_secret=c.secret_value("MIZANI_AIRTEL_CLIENT_SECRET", settings, LOCAL_AIRTEL_CLIENT_SECRET),
        pin=c.secret_value("MIZANI_AIRTEL_PIN", settings, LOCAL_AIRTEL_PIN),
        pin_public_key=c.secret_value("MIZANI_AIRTEL_PIN_PUBLIC_KEY", settings, LOCAL_AIRTEL_PIN_PUBLIC_KEY),
        http=http,
        timeout_seconds=c.http_timeout(settings),
    )
