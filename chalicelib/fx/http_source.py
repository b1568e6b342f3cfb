"""``HttpRateSource``: live rates over HTTP (``MIZANI_FX_SOURCE=http``, ``MIZANI_FX_URL``).

The endpoint answers the snapshot's JSON shape (``{"base", "as_of", "source", "rates":
{cur: "decimal string"}}``). The adapter uses urllib3 (already deployed as a dependency of
botocore; imported lazily so ``import app`` stays fast) with:

- a connect and a read timeout on every attempt;
- bounded retries (urllib3 ``Retry``) on connection errors, read errors and 429/5xx, with
  exponential backoff; ``Retry-After`` is not honoured, so a Lambda never sleeps for minutes;
- a short in-process cache (``cache_ttl_seconds``): a warm container asks at most once per TTL;
- strict validation of the payload (``parse_rates``): decimal strings only, positive, dated.

Failures surface as ``RateSourceUnavailable`` (transport, non-200) or ``InvalidRates``
(payload), both ``ProviderUnavailable``: a quote is refused rather than priced on bad data.
A failed refresh never serves an expired cache entry.
"""
from __future__ import annotations

import json
import threading
import time
from typing import Callable

from chalicelib.fx.errors import InvalidRates, RateSourceUnavailable
from chalicelib.fx.rates import Rates, parse_rates

#: Statuses worth another attempt: throttling and server-side failures.
RETRY_STATUSES = (429, 500, 502, 503, 504)


class HttpRateSource:
    """A ``RateSource`` fetching the rates JSON from ``url`` with timeouts, retries and a TTL cache."""

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float = 5.0,
        retries: int = 2,
        backoff_factor: float = 0.2,
        cache_ttl_seconds: float = 60.0,
        max_bytes: int = 1_000_000,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        if not url.startswith(("http://", "https://")):
            raise ValueError("the FX rates URL must be http:// or https://")
        import urllib3  # lazily: keeps cold start of routes that never price FX cheap
        from urllib3.util.retry import Retry

        self.url = url
        self.cache_ttl_seconds = cache_ttl_seconds
        self.max_bytes = max_bytes
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cached: Rates | None = None
        self._cached_at = 0.0
        self._http_error = urllib3.exceptions.HTTPError
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            backoff_factor=backoff_factor,
            backoff_max=2.0,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET"}),
            raise_on_status=False,  # after the last attempt, hand back the response: we raise our own error
            respect_retry_after_header=False,
        )
        self._pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout_seconds, read=timeout_seconds),
            retries=retry,
            headers={"Accept": "application/json", "User-Agent": "mizani-fx/1"},
        )

    def latest(self) -> Rates:
        # The lock also collapses a burst of concurrent callers into one fetch.
        with self._lock:
            if self._cached is not None and self._monotonic() - self._cached_at < self.cache_ttl_seconds:
                return self._cached
            rates = self._fetch()
            self._cached, self._cached_at = rates, self._monotonic()
            return rates

    def invalidate(self) -> None:
        """Forget the cached rates: the next ``latest()`` fetches."""
        with self._lock:
            self._cached = None

    def close(self) -> None:
        self._pool.clear()

    def _fetch(self) -> Rates:
        # Messages never echo the URL: it may carry a provider's API key.
        try:
            response = self._pool.request("GET", self.url, preload_content=False)
        except self._http_error as exc:
            raise RateSourceUnavailable(message=f"the FX rate source did not answer ({type(exc).__name__})") from None
        try:
            if response.status != 200:
                raise RateSourceUnavailable(
                    message=f"the FX rate source answered HTTP {response.status}", status=response.status
                )
            body = response.read(self.max_bytes + 1)
        except self._http_error as exc:
            raise RateSourceUnavailable(message=f"reading the FX rates failed ({type(exc).__name__})") from None
        finally:
            response.release_conn()
        if len(body) > self.max_bytes:
            raise InvalidRates(message=f"the FX rates payload is larger than {self.max_bytes} bytes")
        try:
            payload = json.loads(body)
        except ValueError:  # includes UnicodeDecodeError
            raise InvalidRates(message="the FX rate source did not answer JSON") from None
        return parse_rates(payload)
