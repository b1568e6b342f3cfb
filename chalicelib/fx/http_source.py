"""``HttpRateSource``: live rates over HTTP (``MIZANI_FX_SOURCE=http``, ``MIZANI_FX_URL``).

The endpoint answers the snapshot's JSON shape (``{"base", "as_of", "source", "rates":
{cur: "decimal string"}}``). The adapter goes through ``chalicelib.http.HttpClient``, the
client of every outbound call (imported lazily so ``import app`` stays fast), with:

- a connect and a read timeout on every attempt, and one total deadline for all of them;
- bounded retries on connection errors, read errors and 429/5xx, with exponential
  backoff; a ``Retry-After`` is honoured only up to the client's cap (5 s), so a Lambda
  never sleeps for minutes;
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

HEADERS = {"Accept": "application/json", "User-Agent": "mizani-fx/1"}


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
        http=None,
    ):
        if not url.startswith(("http://", "https://")):
            raise ValueError("the FX rates URL must be http:// or https://")
        from chalicelib.http import HttpClient  # lazily: keeps cold start of routes that never price FX cheap

        self.url = url
        self.cache_ttl_seconds = cache_ttl_seconds
        self.max_bytes = max_bytes
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cached: Rates | None = None
        self._cached_at = 0.0
        self.http = http or HttpClient(timeout_seconds, connect_timeout_seconds=timeout_seconds,
                                       max_retries=retries, backoff_factor=backoff_factor)

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
        self.http.close()

    def _fetch(self) -> Rates:
        from chalicelib.http import TransportError

        # Messages never echo the URL: it may carry a provider's API key.
        try:
            response = self.http.request("GET", self.url, headers=HEADERS, retry=True, max_body_bytes=self.max_bytes)
        except TransportError as exc:
            raise RateSourceUnavailable(message=f"the FX rate source did not answer ({exc.kind})") from None
        if response.status != 200:
            raise RateSourceUnavailable(
                message=f"the FX rate source answered HTTP {response.status}", status=response.status
            )
        if response.truncated:
            raise InvalidRates(message=f"the FX rates payload is larger than {self.max_bytes} bytes")
        try:
            payload = json.loads(response.body)
        except ValueError:  # includes UnicodeDecodeError
            raise InvalidRates(message="the FX rate source did not answer JSON") from None
        return parse_rates(payload)
