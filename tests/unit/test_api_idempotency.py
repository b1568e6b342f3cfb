"""The Idempotency-Key protocol over the in-memory store: claim, replay, reuse, in flight, release."""
import pytest

from chalicelib.api.idempotency import (
    COMPLETED_SECONDS,
    IN_PROGRESS_SECONDS,
    FakeIdempotencyStore,
    Idempotency,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    IdempotencyRecord,
    RequestInProgress,
    Status,
    StoredResponse,
    payload_hash,
    record_key,
    require_key,
)
from chalicelib.errors import ProviderUnavailable, ValidationError

KEY = record_key("buyer-1", "POST", "/v1/fx/quotes", "k-1")


class Clock:
    def __init__(self, now: float = 1_800_000_000):
        self.now = now

    def __call__(self) -> float:
        return self.now


class Handler:
    """Counts calls; answers 201 with a body numbered by the call."""

    def __init__(self, status: int = 201):
        self.calls = 0
        self.status = status

    def __call__(self) -> StoredResponse:
        self.calls += 1
        return StoredResponse(self.status, f'{{"quote_id":"q{self.calls}"}}')


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store():
    return FakeIdempotencyStore()


@pytest.fixture
def idem(store, clock):
    return Idempotency(store, clock=clock)


def test_the_first_request_runs_and_its_response_is_stored(idem, store):
    handler = Handler()
    response = idem.run(KEY, {"a": 1}, handler)
    assert (response.status, response.body, response.replayed) == (201, '{"quote_id":"q1"}', False)
    record = store.get(KEY)
    assert record.status is Status.COMPLETED and record.response_status == 201


def test_the_same_key_and_body_replays_the_first_response_without_running_again(idem):
    handler = Handler()
    first = idem.run(KEY, {"a": 1, "b": [1, 2]}, handler)
    again = idem.run(KEY, {"b": [1, 2], "a": 1}, handler)  # key order does not matter
    assert handler.calls == 1
    assert (again.status, again.body) == (first.status, first.body)
    assert again.replayed is True


def test_a_stored_domain_error_is_replayed_with_its_status(idem):
    handler = Handler(status=422)
    idem.run(KEY, {"a": 1}, handler)
    again = idem.run(KEY, {"a": 1}, handler)
    assert (again.status, handler.calls) == (422, 1)


def test_the_same_key_with_another_body_is_refused_as_reused(idem):
    idem.run(KEY, {"from_amount": 100}, Handler())
    with pytest.raises(IdempotencyKeyReused) as caught:
        idem.run(KEY, {"from_amount": 101}, Handler())
    assert caught.value.code == "idempotency_key_reused"


def test_a_key_still_in_flight_answers_request_in_progress(idem):
    def handler() -> StoredResponse:
        with pytest.raises(RequestInProgress) as caught:
            idem.run(KEY, {"a": 1}, Handler())  # a concurrent retry while the first still runs
        assert caught.value.code == "request_in_progress"
        return StoredResponse(201, "{}")

    assert idem.run(KEY, {"a": 1}, handler).status == 201


def test_another_body_while_in_flight_is_still_a_reused_key(idem):
    def handler() -> StoredResponse:
        with pytest.raises(IdempotencyKeyReused):
            idem.run(KEY, {"a": 2}, Handler())
        return StoredResponse(201, "{}")

    idem.run(KEY, {"a": 1}, handler)


@pytest.mark.parametrize("failure", [RuntimeError("boom"), ProviderUnavailable(message="MoMo is down")])
def test_a_failed_request_releases_the_key_so_a_retry_runs(idem, store, failure):
    def failing() -> StoredResponse:
        raise failure

    with pytest.raises(type(failure)):
        idem.run(KEY, {"a": 1}, failing)
    assert store.get(KEY) is None
    handler = Handler()
    assert idem.run(KEY, {"a": 1}, handler).replayed is False
    assert handler.calls == 1


def test_a_completed_response_is_replayed_for_24_hours_then_forgotten(idem, clock):
    handler = Handler()
    idem.run(KEY, {"a": 1}, handler)
    clock.now += COMPLETED_SECONDS - 1
    assert idem.run(KEY, {"a": 1}, handler).replayed is True
    clock.now += 2
    assert idem.run(KEY, {"a": 2}, handler).replayed is False  # a new request under the old key
    assert handler.calls == 2


def test_a_claim_abandoned_by_a_crash_frees_itself(idem, store, clock):
    store.claim(IdempotencyRecord(KEY, Status.INPROGRESS, payload_hash({"a": 1}), int(clock.now) + IN_PROGRESS_SECONDS), int(clock.now))
    with pytest.raises(RequestInProgress):
        idem.run(KEY, {"a": 1}, Handler())
    clock.now += IN_PROGRESS_SECONDS + 1
    assert idem.run(KEY, {"a": 1}, Handler()).status == 201


def test_a_response_that_cannot_be_stored_is_still_answered(clock):
    class FlakyStore(FakeIdempotencyStore):
        def complete(self, record):
            raise RuntimeError("dynamodb hiccup")

    store = FlakyStore()
    response = Idempotency(store, clock=clock).run(KEY, {"a": 1}, Handler())
    assert response.status == 201
    assert store.get(KEY).status is Status.INPROGRESS  # expires on its own


def test_keys_are_scoped_per_caller_and_per_route():
    assert record_key("buyer-1", "post", "/v1/fx/quotes", "k") == "idem#buyer-1#POST /v1/fx/quotes#k"
    assert record_key("buyer-2", "POST", "/v1/fx/quotes", "k") != record_key("buyer-1", "POST", "/v1/fx/quotes", "k")
    assert record_key("s", "POST", "/v1/sellers/a/payouts", "k") != record_key("s", "POST", "/v1/sellers/b/payouts", "k")


def test_the_payload_hash_ignores_formatting_but_not_values():
    assert payload_hash({"a": 1, "b": "x"}) == payload_hash({"b": "x", "a": 1})
    assert payload_hash({"a": 1}) != payload_hash({"a": 2})


def test_a_key_is_required_and_at_most_255_characters():
    with pytest.raises(IdempotencyKeyRequired) as missing:
        require_key(None)
    assert missing.value.code == "idempotency_key_required"
    with pytest.raises(IdempotencyKeyRequired):
        require_key("")
    assert require_key("k" * 255) == "k" * 255
    with pytest.raises(ValidationError) as too_long:
        require_key("k" * 256)
    assert too_long.value.code == "validation_error"
