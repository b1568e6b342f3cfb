"""HttpRateSource against a tiny HTTP server on 127.0.0.1: retries, timeouts, cache, strict payloads."""
from __future__ import annotations

import json
import socket
import threading
from decimal import Decimal

import pytest

from chalicelib.fx import InvalidRates, RateSourceUnavailable
from chalicelib.fx.http_source import HttpRateSource
from helpers import LocalHttpServer

GOOD = {
    "base": "USD",
    "as_of": "2026-11-27T16:00:00Z",
    "source": "test feed",
    "rates": {"CNY": "7.1035", "RWF": "1451.80", "KES": "129.15"},
}


class RatesServer(LocalHttpServer):
    """Answers scripted responses in order (the last one repeats); counts requests."""

    def __init__(self) -> None:
        self.script: list[tuple[int, bytes]] = [(200, json.dumps(GOOD).encode())]
        self.requests = 0
        self.release = threading.Event()  # a handler told to "hang" waits on this
        super().__init__()
        self.url += "/v1/rates"

    def answer(self, handler) -> None:
        self.requests += 1
        status, body = self.script[min(self.requests, len(self.script)) - 1]
        if status == 0:  # hang until the test ends
            self.release.wait(10)
            return
        self.reply_json(handler, status, body)

    def close(self) -> None:
        self.release.set()
        super().close()


@pytest.fixture
def server():
    srv = RatesServer()
    yield srv
    srv.close()


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def source(url: str, **kwargs) -> HttpRateSource:
    kwargs.setdefault("backoff_factor", 0)
    kwargs.setdefault("timeout_seconds", 2)
    return HttpRateSource(url, **kwargs)


def test_fetches_and_validates_the_rates(server):
    rates = source(server.url).latest()
    assert rates.base == "USD" and rates.source == "test feed"
    assert rates.rates["RWF"] == Decimal("1451.80")


def test_a_server_error_is_retried_and_the_next_answer_used(server):
    server.script = [(500, b"oops"), (200, json.dumps(GOOD).encode())]
    rates = source(server.url, retries=2).latest()
    assert rates.rates["CNY"] == Decimal("7.1035")
    assert server.requests == 2


def test_retries_are_bounded_and_then_the_source_is_unavailable(server):
    server.script = [(503, b"down")]
    with pytest.raises(RateSourceUnavailable) as err:
        source(server.url, retries=2).latest()
    assert err.value.code == "rate_source_unavailable" and err.value.detail["status"] == 503
    assert server.requests == 3  # the first attempt and two retries


def test_a_client_error_is_not_retried(server):
    server.script = [(404, b"{}")]
    with pytest.raises(RateSourceUnavailable):
        source(server.url, retries=3).latest()
    assert server.requests == 1


def test_a_hanging_server_times_out_into_unavailable(server):
    server.script = [(0, b"")]
    with pytest.raises(RateSourceUnavailable):
        source(server.url, retries=0, timeout_seconds=0.2).latest()


def test_nobody_listening_is_unavailable():
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RateSourceUnavailable):
        source(f"http://127.0.0.1:{port}/rates", retries=0).latest()


@pytest.mark.parametrize(
    "body",
    [
        b"<html>not json</html>",
        json.dumps({**GOOD, "rates": {"CNY": 7.1035}}).encode(),  # a float
        json.dumps({**GOOD, "rates": {"CNY": "-7.1"}}).encode(),  # negative
        json.dumps({**GOOD, "rates": {"CNY": "0"}}).encode(),  # zero
        json.dumps({k: v for k, v in GOOD.items() if k != "as_of"}).encode(),
        b"\xff\xfe",
    ],
)
def test_a_malformed_payload_is_refused(server, body):
    server.script = [(200, body)]
    with pytest.raises(InvalidRates):
        source(server.url).latest()


def test_an_oversized_payload_is_refused(server):
    server.script = [(200, b" " * 2048 + json.dumps(GOOD).encode())]
    with pytest.raises(InvalidRates):
        source(server.url, max_bytes=1024).latest()


def test_rates_are_cached_for_the_ttl_then_refetched(server):
    ticks = Ticks()
    src = source(server.url, cache_ttl_seconds=60, monotonic=ticks)
    first = src.latest()
    ticks.now += 59
    assert src.latest() is first and server.requests == 1
    ticks.now += 2
    src.latest()
    assert server.requests == 2


def test_a_failed_refresh_does_not_serve_expired_rates(server):
    ticks = Ticks()
    src = source(server.url, cache_ttl_seconds=60, retries=0, monotonic=ticks)
    src.latest()
    server.script = [(200, b"")] * 1 + [(500, b"down")]  # request 2 onwards: down
    ticks.now += 61
    with pytest.raises(RateSourceUnavailable):
        src.latest()


def test_only_http_urls_are_accepted():
    with pytest.raises(ValueError):
        HttpRateSource("file:///etc/passwd")
