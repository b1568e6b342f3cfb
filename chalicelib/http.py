"""One small HTTP client for every outbound call (rails, SMS, FX rates), over urllib3.

urllib3 ships with botocore, so this adds no dependency. One ``PoolManager`` per
client (connections are reused across warm Lambda invocations), connect and read
timeouts from ``settings.http_timeout_seconds``, and a deliberate retry policy:

* ``retry=True`` (GETs, token requests): bounded (``max_retries``) retries with
  exponential backoff on connection errors, read timeouts and 429/500/502/503/504.
  These requests change nothing at the provider.
* ``retry=False`` (every money-moving POST): exactly one attempt. A blind retry
  of a POST whose first attempt may have been processed is how platforms pay
  twice. Adapters decide themselves whether a repeat is safe (MTN: the same
  ``X-Reference-Id`` is refused with 409, so a repeat cannot pay twice).

Two bounds keep a provider from holding a Lambda past its timeout:

* a provider's ``Retry-After`` is honoured but capped at ``retry_after_cap_seconds``
  (``MIZANI_HTTP_RETRY_AFTER_CAP_SECONDS``, 5 s; urllib3's own cap is six hours);
* every request, all its attempts and waits together, ends within ``deadline_seconds``
  (``MIZANI_HTTP_DEADLINE_SECONDS``, 20 s, below the API's 30-second Lambda timeout):
  each attempt's timeouts shrink to what is left, and a wait that would end past the
  deadline is not started (the last answer, or the last transport error, is final).

The retry loop is ours, not urllib3's ``Retry``: urllib3 cannot bound the total time.
Transport failures raise ``TransportError`` carrying whether the request may have
reached the provider; HTTP error statuses are returned, never raised.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Callable
from urllib.parse import urlencode

from chalicelib.errors import ProviderUnavailable

#: Statuses worth a retry for requests that change nothing (never applied to money POSTs).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Longest exponential backoff between two attempts (a provider's Retry-After has its own cap).
BACKOFF_MAX_SECONDS = 2.0


class TransportError(ProviderUnavailable):
    """No HTTP answer: connection refused, DNS, TLS, connect or read timeout, or the deadline.

    ``maybe_delivered`` is False only when the connection was never established,
    so the provider cannot have seen the request.
    """

    code = "provider_unavailable"

    def __init__(self, message: str, *, maybe_delivered: bool, kind: str):
        super().__init__("provider_unavailable", message, kind=kind)
        self.maybe_delivered = maybe_delivered
        self.kind = kind  # "timeout" | "connect" | "protocol" | "deadline"


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
    attempts: int = 1  # how many requests this answer took (retries included)
    truncated: bool = False  # the body was longer than the caller's ``max_body_bytes``

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


def retry_after_seconds(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """A ``Retry-After`` header in seconds (delta-seconds or an HTTP date; RFC 9110 10.2.3), or None."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now())


class HttpClient:
    """A pooled urllib3 client with explicit timeouts, an opt-in bounded retry, a capped
    ``Retry-After`` and a total deadline per request (see the module docstring)."""

    def __init__(
        self,
        timeout_seconds: float = 10.0,
        *,
        connect_timeout_seconds: float | None = None,
        max_retries: int = 2,
        backoff_factor: float = 0.2,
        pool_maxsize: int = 8,
        retry_after_cap_seconds: float | None = None,
        deadline_seconds: float | None = None,
        headers: dict | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        import urllib3  # lazy: keeps `import app` cheap

        if retry_after_cap_seconds is None or deadline_seconds is None:
            from chalicelib import settings

            conf = settings.get()
            if retry_after_cap_seconds is None:
                retry_after_cap_seconds = conf.http_retry_after_cap_seconds
            if deadline_seconds is None:
                deadline_seconds = conf.http_deadline_seconds
        self._urllib3 = urllib3
        self.read_timeout = float(timeout_seconds)
        self.connect_timeout = (float(connect_timeout_seconds) if connect_timeout_seconds is not None
                                else min(self.read_timeout, 3.05))
        self.timeout = urllib3.Timeout(connect=self.connect_timeout, read=self.read_timeout)
        self.max_retries = max_retries
        self.backoff_factor = backoff_factor
        self.retry_after_cap_seconds = float(retry_after_cap_seconds)
        self.deadline_seconds = float(deadline_seconds)
        self._clock, self._sleep = clock, sleep
        self._pool = urllib3.PoolManager(num_pools=8, maxsize=pool_maxsize, retries=False, timeout=self.timeout,
                                         headers=headers)
        # One attempt per urllib3 call: no redirects followed, no retries of its own (the loop below decides).
        self._one_attempt = urllib3.util.Retry(total=0, connect=0, read=0, redirect=0, status=0, other=0,
                                               raise_on_status=False)

    def _backoff(self, attempt: int) -> float:
        """The wait after the ``attempt``-th failed attempt (0, then factor * 2^n, at most 2 s)."""
        if attempt <= 1:
            return 0.0
        return min(BACKOFF_MAX_SECONDS, self.backoff_factor * (2 ** (attempt - 1)))

    def _wait_for(self, attempt: int, response=None) -> float:
        """The backoff, or the provider's ``Retry-After`` (429/503) when longer, capped."""
        wait = self._backoff(attempt)
        if response is not None and response.status in (429, 503):
            asked = retry_after_seconds(response.headers.get("Retry-After"))
            if asked is not None:
                wait = max(wait, min(asked, self.retry_after_cap_seconds))
        return wait

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict | None = None,
        json_body=None,
        form: dict | None = None,
        retry: bool = False,
        max_body_bytes: int | None = None,
        data: bytes | str | None = None,
        deadline_seconds: float | None = None,
    ) -> HttpResponse:
        """Send one request (``retry=True`` only for requests that change nothing at the provider).

        ``data``: a body already encoded by the caller (its ``Content-Type`` in ``headers``).
        ``max_body_bytes``: read at most this much of the body (one byte more, to tell;
        ``truncated`` says so). The whole exchange ends within the client's ``deadline_seconds``,
        or within this call's, when it gives a shorter one (what is left of a caller's own deadline)."""
        exc = self._urllib3.exceptions
        send_headers = dict(headers or {})
        body = None
        if data is not None:
            body = data.encode("utf-8") if isinstance(data, str) else data
        elif json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode("utf-8")
            send_headers.setdefault("Content-Type", "application/json")
        elif form is not None:
            body = urlencode(form).encode("utf-8")
            send_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        allowed = self.deadline_seconds if deadline_seconds is None else min(self.deadline_seconds, deadline_seconds)
        if allowed <= 0:
            raise TransportError("the request's deadline passed", maybe_delivered=False, kind="deadline")
        deadline = self._clock() + allowed
        attempts_allowed = 1 + (self.max_retries if retry else 0)
        attempt = 0
        while True:
            attempt += 1
            left = deadline - self._clock()
            if left <= 0:  # only reachable after a wait: the first attempt always has the whole deadline
                raise TransportError("the request's deadline passed", maybe_delivered=True, kind="deadline")
            timeout = self._urllib3.Timeout(connect=min(self.connect_timeout, left), read=min(self.read_timeout, left))
            try:
                response = self._send(method, url, body, send_headers, timeout, max_body_bytes)
            except exc.MaxRetryError as err:  # our one attempt failed: unwrap the cause
                error = _transport_error(err.reason or err, exc)
            except exc.HTTPError as err:
                error = _transport_error(err, exc)
            else:
                if attempt < attempts_allowed and response.status in RETRY_STATUSES:
                    wait = self._wait_for(attempt, response)
                    if self._clock() + wait < deadline:
                        self._sleep(wait)
                        continue
                return HttpResponse(status=response.status, body=response.data, headers=dict(response.headers),
                                    attempts=attempt, truncated=response.truncated)
            # a transport error: retried like an error status, within the attempts and the deadline
            if attempt >= attempts_allowed:
                raise error
            wait = self._wait_for(attempt)
            if self._clock() + wait >= deadline:
                raise error
            self._sleep(wait)

    def _send(self, method, url, body, headers, timeout, max_body_bytes):
        response = self._pool.request(method, url, body=body, headers=headers, retries=self._one_attempt,
                                      timeout=timeout, preload_content=False)
        try:
            if max_body_bytes is None:
                data = response.read() or b""
            else:
                data = response.read(max_body_bytes + 1) or b""
        finally:
            response.release_conn()
        truncated = max_body_bytes is not None and len(data) > max_body_bytes
        return _Answer(response.status, data[: max_body_bytes] if truncated else data, response.headers, truncated)

    def close(self) -> None:
        self._pool.clear()


@dataclass(frozen=True)
class _Answer:
    status: int
    data: bytes
    headers: object
    truncated: bool


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
