"""One small HTTP client for the payout and SMS adapters, over urllib3.

urllib3 ships with botocore, so this adds no dependency. One ``PoolManager`` per
client (connections are reused across warm Lambda invocations), connect and read
timeouts from ``settings.http_timeout_seconds``, and a deliberate retry policy:

* ``retry=True`` (GETs, token requests): urllib3 ``Retry`` with exponential
  backoff, bounded (``max_retries``), on connection errors, read timeouts and
  429/500/502/503/504. These requests change nothing at the provider.
* ``retry=False`` (every money-moving POST): exactly one attempt. A blind retry
  of a POST whose first attempt may have been processed is how platforms pay
  twice. Adapters decide themselves whether a repeat is safe (MTN: the same
  ``X-Reference-Id`` is refused with 409, so a repeat cannot pay twice).

Transport failures raise ``TransportError`` carrying whether the request may have
reached the provider; HTTP error statuses are returned, never raised.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import urlencode

from chalicelib.errors import ProviderUnavailable

#: Statuses worth a retry for requests that change nothing (never applied to money POSTs).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class TransportError(ProviderUnavailable):
    """No HTTP answer: connection refused, DNS, TLS, connect or read timeout.

    ``maybe_delivered`` is False only when the connection was never established,
    so the provider cannot have seen the request.
    """

    code = "provider_unavailable"

    def __init__(self, message: str, *, maybe_delivered: bool, kind: str):
        super().__init__("provider_unavailable", message, kind=kind)
        self.maybe_delivered = maybe_delivered
        self.kind = kind  # "timeout" | "connect" | "protocol"


class RailNotSent(ProviderUnavailable):
    """The payment request never reached the provider (no token, throttled, refused credentials).

    Nothing happened at the provider; calling ``send`` again later with the same
    reference is safe. Operators should look if it persists (credentials, IP allow-list).
    """

    code = "provider_unavailable"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    headers: dict = field(default_factory=dict)

    def json(self):
        """The body as JSON, or ``None`` when it is empty or not JSON (providers send HTML on 5xx)."""
        if not self.body:
            return None
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class HttpClient:
    """A pooled urllib3 client with explicit timeouts and an opt-in, bounded retry."""

    def __init__(
        self,
        timeout_seconds: float = 10.0,
        *,
        connect_timeout_seconds: float | None = None,
        max_retries: int = 2,
        backoff_factor: float = 0.2,
        pool_maxsize: int = 8,
    ):
        import urllib3  # lazy: keeps `import app` cheap

        self._urllib3 = urllib3
        read = float(timeout_seconds)
        connect = float(connect_timeout_seconds) if connect_timeout_seconds is not None else min(read, 3.05)
        self.timeout = urllib3.Timeout(connect=connect, read=read)
        self.max_retries = max_retries
        self.backoff_factor = backoff_factor
        self._pool = urllib3.PoolManager(num_pools=8, maxsize=pool_maxsize, retries=False, timeout=self.timeout)

    def _retry_policy(self, retry: bool):
        Retry = self._urllib3.util.Retry
        if not retry:
            return Retry(total=0, connect=0, read=0, redirect=0, status=0, other=0, raise_on_status=False)
        return Retry(
            total=self.max_retries,
            connect=self.max_retries,
            read=self.max_retries,
            status=self.max_retries,
            other=0,
            redirect=0,
            backoff_factor=self.backoff_factor,
            backoff_max=2.0,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "POST", "PUT", "HEAD"}),  # only reached when the caller opted in
            respect_retry_after_header=True,
            raise_on_status=False,
        )

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict | None = None,
        json_body=None,
        form: dict | None = None,
        retry: bool = False,
    ) -> HttpResponse:
        """Send one request (``retry=True`` only for requests that change nothing at the provider)."""
        exc = self._urllib3.exceptions
        send_headers = dict(headers or {})
        body = None
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode("utf-8")
            send_headers.setdefault("Content-Type", "application/json")
        elif form is not None:
            body = urlencode(form).encode("utf-8")
            send_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        try:
            response = self._pool.request(
                method,
                url,
                body=body,
                headers=send_headers,
                retries=self._retry_policy(retry),
                timeout=self.timeout,
                preload_content=True,
            )
        except exc.MaxRetryError as err:  # retries exhausted: unwrap the cause
            raise _transport_error(err.reason or err, exc) from err
        except exc.HTTPError as err:
            raise _transport_error(err, exc) from err
        return HttpResponse(status=response.status, body=response.data or b"", headers=dict(response.headers))

    def close(self) -> None:
        self._pool.clear()


def _transport_error(err, exc) -> TransportError:
    if isinstance(err, exc.ConnectTimeoutError):
        return TransportError(f"connect timeout: {err}", maybe_delivered=False, kind="connect")
    if isinstance(err, exc.NewConnectionError) or isinstance(err, (ConnectionRefusedError,)):
        return TransportError(f"connection failed: {err}", maybe_delivered=False, kind="connect")
    if isinstance(err, (exc.ReadTimeoutError, exc.TimeoutError)):
        return TransportError(f"read timeout: {err}", maybe_delivered=True, kind="timeout")
    return TransportError(f"transport error: {err}", maybe_delivered=True, kind="protocol")


#: Renew a bearer token this many seconds before the provider says it expires.
TOKEN_EXPIRY_SKEW_SECONDS = 60


class BearerToken:
    """One provider's OAuth bearer token, fetched with HTTP Basic credentials and cached
    until shortly before it expires (MTN's token endpoint and Daraja's OAuth work alike).

    ``get`` raises ``RailNotSent`` when the provider gives no token: nothing was sent.
    Asking for a token changes nothing at the provider, so it is retried with backoff.
    """

    def __init__(self, http: "HttpClient", provider: str, method: str, url: str, credentials, extra_headers=None,
                 default_ttl: int = 3600, clock=None, client_credentials_body: bool = False):
        import threading
        import time

        self.http, self.provider, self.method, self.url = http, provider, method, url
        self.credentials = credentials  # () -> (user, secret); secrets are read at use, never stored here
        self.extra_headers = extra_headers or (lambda: {})
        self.default_ttl = default_ttl
        # OAuth2 client credentials in a JSON body (Airtel) instead of HTTP Basic (MTN, Daraja).
        self.client_credentials_body = client_credentials_body
        self.clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def get(self) -> str:
        import base64

        with self._lock:
            if self._token and self.clock() < self._expires_at:
                return self._token
            user, secret = self.credentials()
            if self.client_credentials_body:
                auth = {"headers": {"Accept": "*/*", **self.extra_headers()},
                        "json_body": {"client_id": user, "client_secret": secret, "grant_type": "client_credentials"}}
            else:
                basic = base64.b64encode(f"{user}:{secret}".encode()).decode()
                auth = {"headers": {"Authorization": f"Basic {basic}", **self.extra_headers()}}
            try:
                response = self.http.request(self.method, self.url, retry=True, **auth)
            except TransportError as err:
                raise RailNotSent("provider_unavailable", f"{self.provider} token endpoint unreachable: {err.message}") from err
            body = response.json() or {}
            token = body.get("access_token") if isinstance(body, dict) else None
            if response.status != 200 or not token:
                raise RailNotSent("provider_unavailable", f"{self.provider} refused a token (HTTP {response.status})",
                                  http_status=response.status)
            try:
                expires_in = int(body.get("expires_in", self.default_ttl))
            except (TypeError, ValueError):
                expires_in = self.default_ttl
            self._token = token
            self._expires_at = self.clock() + max(0, expires_in - TOKEN_EXPIRY_SKEW_SECONDS)
            return token

    def drop(self, token: str) -> None:
        """Forget ``token`` (the provider answered 401 with it); the next ``get`` fetches anew."""
        with self._lock:
            if self._token == token:
                self._token = None
