"""USSD sessions and the PIN lockout on the app table, against moto's server: the conditions do the work."""
import threading
from dataclasses import replace

import pytest

from chalicelib import settings as app_settings
from chalicelib.ussd.dynamo_store import TTL_ATTRIBUTE, DynamoUssdStore
from chalicelib.ussd.store import LOCK_SECONDS, MAX_FAILURES, SessionRecord
from infra import tables

NUMBER = "250788123456"
NOW = 1_800_000_000


@pytest.fixture
def store(aws_env):
    return DynamoUssdStore(app_settings.get().table("app"), client=aws_env.client("dynamodb"))


@pytest.fixture
def with_pin(store):
    assert store.create_pin(NUMBER, "scrypt-hmac-sha256$16$8$1$c2FsdA==$aGFzaA==", NOW)
    return store


def item(aws_env, pk, sk):
    return aws_env.client("dynamodb").get_item(TableName=aws_env.table("app"), Key={"pk": {"S": pk}, "sk": {"S": sk}},
                                              ConsistentRead=True).get("Item")


def test_the_first_pin_is_stored_once(with_pin):
    assert not with_pin.create_pin(NUMBER, "another", NOW)
    assert with_pin.get_pin(NUMBER).pin_hash.startswith("scrypt-hmac-sha256$")
    assert with_pin.get_pin("250788000000") is None


def test_three_wrong_pins_in_a_row_lock_the_number_for_thirty_minutes(with_pin):
    first = with_pin.wrong_pin(NUMBER, "s1:2", NOW)
    second = with_pin.wrong_pin(NUMBER, "s1:3", NOW)
    third = with_pin.wrong_pin(NUMBER, "s2:2", NOW + 60)
    assert (first.attempts_left, second.attempts_left, third.locked) == (2, 1, True)
    assert third.locked_until == NOW + 60 + LOCK_SECONDS
    record = with_pin.get_pin(NUMBER)
    assert record.locked(NOW + 60 + LOCK_SECONDS - 1) and not record.locked(NOW + 60 + LOCK_SECONDS)


def test_a_locked_number_counts_nothing_and_stays_locked(with_pin):
    for n in range(MAX_FAILURES):
        with_pin.wrong_pin(NUMBER, f"s1:{n}", NOW)
    locked_until = with_pin.get_pin(NUMBER).locked_until
    again = with_pin.wrong_pin(NUMBER, "s9:1", NOW + 10)
    assert again.locked and again.locked_until == locked_until  # not extended, not counted
    assert not with_pin.right_pin(NUMBER, NOW + 10)
    assert not with_pin.replace_pin(NUMBER, "new", NOW + 10)


def test_after_the_lock_a_new_row_starts(with_pin):
    for n in range(MAX_FAILURES):
        with_pin.wrong_pin(NUMBER, f"s1:{n}", NOW)
    later = NOW + LOCK_SECONDS + 1
    assert with_pin.wrong_pin(NUMBER, "s5:1", later).attempts_left == 2


def test_the_same_attempt_is_counted_once(with_pin):
    assert with_pin.wrong_pin(NUMBER, "s1:2", NOW).attempts_left == 2
    assert with_pin.wrong_pin(NUMBER, "s1:2", NOW).attempts_left == 2  # a gateway retry
    assert with_pin.get_pin(NUMBER).fails == 1


def test_the_same_attempt_that_locked_reports_the_lock(with_pin):
    with_pin.wrong_pin(NUMBER, "a", NOW)
    with_pin.wrong_pin(NUMBER, "b", NOW)
    assert with_pin.wrong_pin(NUMBER, "c", NOW).locked
    assert with_pin.wrong_pin(NUMBER, "c", NOW).locked


def test_a_right_pin_ends_the_row(with_pin):
    with_pin.wrong_pin(NUMBER, "a", NOW)
    with_pin.wrong_pin(NUMBER, "b", NOW)
    assert with_pin.right_pin(NUMBER, NOW)
    assert with_pin.get_pin(NUMBER).fails == 0
    assert with_pin.wrong_pin(NUMBER, "c", NOW).attempts_left == 2


def test_a_new_pin_replaces_the_old_and_ends_the_row(with_pin):
    with_pin.wrong_pin(NUMBER, "a", NOW)
    assert with_pin.replace_pin(NUMBER, "replaced", NOW)
    assert (with_pin.get_pin(NUMBER).pin_hash, with_pin.get_pin(NUMBER).fails) == ("replaced", 0)
    assert not with_pin.replace_pin("250788000000", "x", NOW)  # no PIN to replace


def test_concurrent_wrong_pins_lock_exactly_once_and_never_count_past_the_lock(with_pin):
    results = []
    lock = threading.Lock()

    def attempt(n):
        failure = with_pin.wrong_pin(NUMBER, f"s{n}:1", NOW)
        with lock:
            results.append(failure)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counted = sorted(f.attempts_left for f in results if not f.locked)
    assert counted == [1, 2]  # exactly two failures counted before the one that locked
    assert sum(f.locked for f in results) == 6
    assert len({f.locked_until for f in results if f.locked}) == 1
    assert with_pin.get_pin(NUMBER).locked(NOW + 1)


def test_the_pin_item_holds_the_hash_and_the_counter_only(aws_env, with_pin):
    with_pin.wrong_pin(NUMBER, "s1:2", NOW)
    stored = item(aws_env, f"ussd#pin#{NUMBER}", "pin")
    assert set(stored) == {"pk", "sk", "pin_hash", "fails", "fail_ids", "updated_at"}
    assert TTL_ATTRIBUTE not in stored  # a PIN record is never expired by DynamoDB


# -- sessions --------------------------------------------------------------------------------------


def session(**kw):
    base = dict(session_id="ATUid_1", state={"at": "withdraw_pin", "amount": 50_000}, consumed=2,
                screen="CON Withdraw 50,000 RWF to your wallet.\nEnter your PIN:", expires_at=NOW + 300,
                caller={"kind": "member", "seller_id": "s1", "member_id": "m1", "name": "Uwimana", "msisdn": NUMBER,
                        "currency": "RWF"}, lang="rw")
    return SessionRecord(**{**base, **kw})


def test_a_session_is_stored_read_back_and_carries_its_ttl(aws_env, store):
    assert store.get_session(NUMBER) is None
    assert store.put_session(NUMBER, session())
    read = store.get_session(NUMBER)
    assert read == replace(session(), version=1)
    stored = item(aws_env, f"ussd#session#{NUMBER}", "session")
    assert stored[TTL_ATTRIBUTE] == {"N": str(NOW + 300)}


def test_only_one_of_two_writers_of_the_same_version_wins(store):
    assert store.put_session(NUMBER, session())
    seen = store.get_session(NUMBER)
    assert store.put_session(NUMBER, replace(seen, consumed=3, state={"at": "ended"}))
    assert not store.put_session(NUMBER, replace(seen, consumed=3, state={"at": "main"}))  # lost the race
    assert not store.put_session(NUMBER, session())  # "new" again: refused, one exists
    assert store.get_session(NUMBER).state == {"at": "ended"}


def test_the_app_table_expires_items_by_that_attribute(aws_env):
    assert tables.table_defs()["app"].properties["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE,
                                                                               "Enabled": True}
    described = aws_env.client("dynamodb").describe_time_to_live(TableName=aws_env.table("app"))
    assert described["TimeToLiveDescription"]["AttributeName"] == TTL_ATTRIBUTE
