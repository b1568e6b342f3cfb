"""The Stripe SDK's requests over Mizani's one HTTP client (``chalicelib.http``).

``stripe.StripeClient`` takes an ``http_client``: ``StripeHttp`` is a ``stripe.HTTPClient`` whose
``request`` is one attempt of ``chalicelib.http.HttpClient`` (its pool, timeouts and deadline),
while the decision to retry stays the SDK's: it retries connection errors, 409s, 5xx and
``Stripe-Should-Retry: true`` up to ``max_network_retries`` times, every POST under the same
``Idempotency-Key`` (ours, or the one the SDK adds), so a retry never charges or refunds twice.

What this adds to the SDK's own client: one deadline for the whole call, retries and their
waits included (``settings.http_deadline_seconds``, below every Lambda's timeout): each attempt
gets only what is left of it, and a retry whose backoff would end past it is not made. Imported
only where a Stripe client is built (``import stripe`` costs ~100 ms of a cold start).
"""
from __future__ import annotations

import time
from typing import Any

import stripe

from chalicelib.http import HttpClient, TransportError


class StripeHttp(stripe.HTTPClient):
    """A ``stripe.HTTPClient`` over ``HttpClient``, with one deadline per SDK call."""

    name = "mizani"

    def __init__(self, http: HttpClient, clock=time.monotonic) -> None:
        super().__init__()
        self._http = http
        self._clock = clock

    def _left(self) -> float | None:
        deadline = getattr(self._thread_local, "deadline", None)
        return None if deadline is None else deadline - self._clock()

    def request_with_retries(self, method, url, headers, post_data=None, max_network_retries=None, *, _usage=None):
        # One deadline for the call: every attempt and every wait between them.
        self._thread_local.deadline = self._clock() + self._http.deadline_seconds
        try:
            return super().request_with_retries(method, url, headers, post_data, max_network_retries, _usage=_usage)
        finally:
            self._thread_local.deadline = None

    def _should_retry(self, response, api_connection_error, num_retries, max_network_retries) -> bool:
        if not super()._should_retry(response, api_connection_error, num_retries, max_network_retries):
            return False
        left = self._left()
        # the SDK waits at least INITIAL_DELAY * 2^(n-1) (at most MAX_DELAY) before retry n; no wait past the deadline
        shortest_wait = min(self.INITIAL_DELAY * 2 ** num_retries, self.MAX_DELAY) / 2
        return left is None or left > max(shortest_wait, self.INITIAL_DELAY)

    def request(self, method: str, url: str, headers, post_data: Any = None, *, _usage=None):
        from urllib3 import HTTPHeaderDict  # the SDK reads response headers case-insensitively

        try:
            answer = self._http.request(method.upper(), url, headers=dict(headers or {}), data=post_data,
                                        retry=False, deadline_seconds=self._left())
        except TransportError as error:
            # The SDK retries it (with the request's Idempotency-Key): a POST is never applied twice.
            raise stripe.APIConnectionError(f"Unexpected error communicating with Stripe: {error}",
                                            should_retry=error.kind != "deadline") from error
        return answer.body, answer.status, HTTPHeaderDict(answer.headers)

    def request_stream(self, method, url, headers, post_data=None, *, _usage=None):
        raise NotImplementedError("Mizani reads no streamed Stripe responses")

    def close(self) -> None:
        self._http.close()


def stripe_client(api_key: str, api_base: str | None, max_network_retries: int, timeout_seconds: float):
    """A ``stripe.StripeClient`` for ``api_key`` (pointed at ``api_base`` when given: the sandbox)."""
    kwargs: dict = {"base_addresses": {"api": api_base}} if api_base else {}
    return stripe.StripeClient(api_key, max_network_retries=max_network_retries,
                               http_client=StripeHttp(HttpClient(timeout_seconds, max_retries=0)), **kwargs)
