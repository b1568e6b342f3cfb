"""The one outbound HTTP client (chalicelib/http.py) against a provider on 127.0.0.1 that
answers 429/503 with ``Retry-After: 3600``: the wait is capped, the whole request ends
within its deadline, and the caller sees a ``ProviderUnavailable``.

Time is a fake clock that only the client's own sleeps advance: the tests assert what the
client did (attempts, each wait, the timeouts it gave urllib3), never how long it took."""
from __future__ import annotations

import json

import pytest

from chalicelib.errors import ProviderUnavailable
from chalicelib.fx import RateSourceUnavailable
from chalicelib.fx.http_source import HttpRateSource
from chalicelib.http import BearerToken, HttpClient, RailNotSent, retry_after_seconds
from helpers import LocalHttpServer


class Throttling(LocalHttpServer):
    """Answers every request with ``status`` and ``Retry-After: 3600``; counts requests."""

    def __init__(self, status: int = 429, retry_after: str = "3600") -> None:
        self.status, self.retry_after, self.requests = status, retry_after, 0
        super().__init__()

    def answer(self, handler) -> None:
        self.requests += 1
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(length)
        self.reply_json(handler, self.status, json.dumps({"error": "slow down"}).encode(), {"Retry-After": self.retry_after})


@pytest.fixture(params=[429, 503])
def provider(request):
    srv = Throttling(status=request.param)
    yield srv
    srv.close()


class FakeTime:
    """A clock only ``sleep`` moves; every wait is recorded."""

    def __init__(self) -> None:
        self.now, self.slept = 0.0, []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def client(time: FakeTime, **kwargs) -> HttpClient:
    kwargs.setdefault("retry_after_cap_seconds", 5.0)
    kwargs.setdefault("deadline_seconds", 20.0)
    return HttpClient(2.0, clock=time.clock, sleep=time.sleep, **kwargs)


def test_retry_after_of_an_hour_is_capped_and_the_retries_stay_bounded(provider):
    time = FakeTime()
    reply = client(time, max_retries=2).request("GET", provider.url + "/status", retry=True)
    assert provider.requests == 3 and reply.attempts == 3  # the first attempt and two retries
    assert reply.status == provider.status
    assert time.slept == [5.0, 5.0]  # the cap, not the hour asked for


def test_the_deadline_ends_the_retries_before_a_wait_that_would_pass_it(provider):
    time = FakeTime()
    reply = client(time, max_retries=10, deadline_seconds=8.0).request("GET", provider.url + "/status", retry=True)
    assert provider.requests == 2  # a third attempt would come after 10 s, past the 8 s deadline
    assert time.slept == [5.0] and time.now <= 8.0
    assert reply.status == provider.status


def _timeouts_given(http: HttpClient) -> list[tuple[float, float]]:
    """Record the (connect, read) timeouts of every attempt ``http`` hands to urllib3."""
    seen, send = [], http._pool.request

    def spy(*args, **kwargs):
        seen.append((kwargs["timeout"].connect_timeout, kwargs["timeout"].read_timeout))
        return send(*args, **kwargs)

    http._pool.request = spy
    return seen


def test_each_attempt_gets_only_the_time_left_before_the_deadline(provider):
    http = client(FakeTime(), max_retries=10, deadline_seconds=6.5)
    timeouts = _timeouts_given(http)
    http.request("GET", provider.url + "/status", retry=True)
    assert timeouts == [(2.0, 2.0), (1.5, 1.5)]  # after the 5 s wait, 1.5 s are left; then no more


def test_a_money_post_is_sent_once_whatever_retry_after_says(provider):
    time = FakeTime()
    reply = client(time, max_retries=5).request("POST", provider.url + "/transfer", json_body={"amount": 1})
    assert provider.requests == 1 and time.slept == [] and reply.status == provider.status


def test_fx_rates_behind_a_throttling_source_are_unavailable_not_an_hour_away(provider):
    time = FakeTime()
    http = client(time, max_retries=2)
    with pytest.raises(ProviderUnavailable) as err:
        HttpRateSource(provider.url + "/rates", http=http).latest()
    assert isinstance(err.value, RateSourceUnavailable) and err.value.detail["status"] == provider.status
    assert provider.requests == 3 and max(time.slept) <= 5.0


def test_fx_rates_use_the_shared_client_with_the_settings_cap(provider, monkeypatch):
    from chalicelib import settings

    monkeypatch.setenv("MIZANI_HTTP_RETRY_AFTER_CAP_SECONDS", "0.01")
    monkeypatch.setenv("MIZANI_HTTP_DEADLINE_SECONDS", "10")
    settings.get.cache_clear()
    try:
        source = HttpRateSource(provider.url + "/rates", retries=2, backoff_factor=0)
        assert isinstance(source.http, HttpClient)
        assert source.http.retry_after_cap_seconds == 0.01 and source.http.deadline_seconds == 10.0
        with pytest.raises(RateSourceUnavailable):
            source.latest()  # really sleeps: 2 x 10 ms, not 2 x an hour
        assert provider.requests == 3
    finally:
        settings.get.cache_clear()


def test_a_token_endpoint_asking_for_an_hour_is_rail_not_sent(provider):
    time = FakeTime()
    token = BearerToken(client(time, max_retries=2), "mtn_momo", "POST", provider.url + "/token",
                        credentials=lambda: ("user", "secret"))
    with pytest.raises(RailNotSent) as err:
        token.get()
    assert isinstance(err.value, ProviderUnavailable)
    assert provider.requests == 3 and time.slept == [5.0, 5.0]


def test_retry_after_in_both_of_its_forms():
    assert retry_after_seconds("3600") == 3600.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412470.0) == 10.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412490.0) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds("²") is None
    assert retry_after_seconds(None) is None


def test_the_default_deadline_is_below_every_lambda_timeout():
    from pathlib import Path

    from chalicelib.settings import Settings

    config = json.loads((Path(__file__).resolve().parents[2] / ".chalice" / "config.json").read_text())
    timeouts = [config.get("lambda_timeout", 60)]
    for stage in config.get("stages", {}).values():
        timeouts.append(stage.get("lambda_timeout", timeouts[0]))
        timeouts += [f.get("lambda_timeout", timeouts[0]) for f in stage.get("lambda_functions", {}).values()]
    defaults = Settings.__dataclass_fields__
    deadline = defaults["http_deadline_seconds"].default
    assert defaults["http_retry_after_cap_seconds"].default < deadline < min(timeouts)
