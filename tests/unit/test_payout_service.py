"""Payouts against fakes: split, finality, unknown outcomes, limits, withdrawals."""
import threading
from datetime import datetime, timezone

import pytest

from chalicelib.errors import BusinessRuleViolation
from chalicelib.money import Money
from payout_world import SELLER, WALLET, World

@pytest.fixture
def world():
    return World()


def test_a_payout_above_the_transaction_limit_is_split_and_settles_once_every_part_is_paid(world):
    order = world.released_order()
    oid, payout = order["order_id"], order["payout"]["amount"]
    assert payout > 1_000_000  # the sandbox's MTN RWF per-transaction maximum
    assert world.order_payouts.start_for_order(oid) == "succeeded"
    parts = [p["amount"]["amount"] for p in world.payouts.list_for_seller("coop-1")]
    assert len(parts) == 2 and sum(parts) == payout and max(parts) <= 1_000_000
    world.order_payouts.finish_for_order(oid, "succeeded")
    assert world.escrow.order(oid)["status"] == "settled"
    assert sum(m.minor for m in world.rail.credited(WALLET)) == payout
    assert world.seller_account().balance == 0
    assert world.ledger.get_account("float:mtn_momo:RWF").credits_posted == payout
    assert world.ledger.trial_balance().balanced
    texts = [m for _, m in world.phone.messages]
    assert any("held in escrow" in t for t in texts) and any("sent to your MTN MoMo wallet" in t for t in texts)
    assert all(len(t) <= 160 for t in texts)


def test_an_unknown_outcome_is_polled_until_final_and_pays_once(world):
    world.rail.script(WALLET, send="unknown", statuses=["pending", "succeeded"])
    oid = world.released_order()["order_id"]
    assert world.order_payouts.start_for_order(oid) == "pending"
    assert world.seller_account().debits_pending == world.escrow.order(oid)["payout"]["amount"]
    assert world.order_payouts.check_for_order(oid) == "pending"
    assert world.order_payouts.check_for_order(oid) == "succeeded"
    assert world.order_payouts.check_for_order(oid) == "succeeded"  # a retried check changes nothing
    assert sum(m.minor for m in world.rail.credited(WALLET)) == world.escrow.order(oid)["payout"]["amount"]
    assert world.seller_account().debits_posted == world.escrow.order(oid)["payout"]["amount"]


def test_a_failed_payout_gives_the_money_back_to_the_sellers_balance(world):
    world.rail.script(WALLET, send="failed", reason="PAYEE_NOT_FOUND")
    order = world.released_order()
    oid = order["order_id"]
    assert world.order_payouts.start_for_order(oid) == "failed"
    world.order_payouts.finish_for_order(oid, "failed")
    assert world.escrow.order(oid)["status"] == "payout_failed"
    assert world.seller_account().available == order["payout"]["amount"]
    assert world.rail.credited(WALLET) == []
    assert any("safe in your Mizani balance" in m for _, m in world.phone.messages)


def test_a_lost_request_is_sent_again_under_the_same_reference(world):
    world.rail.script(WALLET, send="unknown", recorded=False)
    oid = world.released_order()["order_id"]
    assert world.order_payouts.start_for_order(oid) == "pending"
    world.rail.script(WALLET, send="succeeded")
    assert world.order_payouts.check_for_order(oid) == "succeeded"
    assert sum(m.minor for m in world.rail.credited(WALLET)) == world.escrow.order(oid)["payout"]["amount"]


def test_withdrawals_cannot_exceed_the_available_balance(world):
    world.rail.script(WALLET, send="failed")
    oid = world.released_order()["order_id"]
    world.order_payouts.start_for_order(oid)  # fails: the money stays in the balance
    available = world.seller_account().available
    world.rail.script(WALLET, send="succeeded")
    with pytest.raises(BusinessRuleViolation) as e:
        world.payouts.withdraw(world.seller, Money(available + 1, "RWF"), "w1")
    assert e.value.code == "insufficient_funds"
    done = world.payouts.withdraw(world.seller, Money(500_000, "RWF"), "w2")
    assert done["status"] == "succeeded"
    assert world.payouts.withdraw(world.seller, Money(500_000, "RWF"), "w2")["payout_id"] == done["payout_id"]
    assert world.seller_account().available == available - 500_000


def test_two_concurrent_withdrawals_never_overdraw(world):
    world.rail.script(WALLET, send="failed")
    oid = world.released_order()["order_id"]
    world.order_payouts.start_for_order(oid)
    available = world.seller_account().available
    world.rail.script(WALLET, send="succeeded")
    amount = available // 2 + 1  # each alone fits; both together do not
    outcomes = []

    def withdraw(key):
        try:
            outcomes.append(world.payouts.withdraw(world.seller, Money(amount, "RWF"), key)["status"])
        except BusinessRuleViolation as refused:
            outcomes.append(refused.code)

    threads = [threading.Thread(target=withdraw, args=(k,)) for k in ("a", "b")]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(outcomes) == ["insufficient_funds", "succeeded"]
    assert world.seller_account().available == available - amount >= 0


def test_the_daily_wallet_limit_refuses_a_withdrawal_and_schedules_an_order_payout(world):
    world.rail.script(WALLET, send="failed")
    for key in ("k1", "k2", "k3", "k4"):
        world.order_payouts.start_for_order(world.released_order(key)["order_id"])
    world.rail.script(WALLET, send="succeeded")
    for key in ("w1", "w2", "w3", "w4", "w5"):
        world.payouts.withdraw(world.seller, Money(1_000_000, "RWF"), key)  # 5,000,000 RWF: the day's maximum
    with pytest.raises(BusinessRuleViolation) as e:
        world.payouts.withdraw(world.seller, Money(100, "RWF"), "w6")
    assert e.value.code == "limit_exceeded"
    oid = world.released_order("k5")["order_id"]
    assert world.order_payouts.start_for_order(oid) == "pending"
    scheduled = [p for p in world.payouts.list_for_seller("coop-1") if p["order_id"] == oid]
    assert all(p["status"] == "pending" and p["scheduled_for"].startswith("2026-11-29") for p in scheduled)
    world.now = datetime(2026, 11, 29, 0, 5, tzinfo=timezone.utc)
    assert world.order_payouts.check_for_order(oid) == "succeeded"


def funded(world, orders=("k1",)) -> int:
    """Orders whose payouts MTN refused: their money is in the seller's available balance."""
    world.rail.script(WALLET, send="failed")
    for key in orders:
        world.order_payouts.start_for_order(world.released_order(key)["order_id"])
    world.rail.script(WALLET, send="succeeded")
    return world.seller_account().available


def test_a_split_withdrawal_that_would_cross_the_daily_limit_sends_no_part_at_all(world):
    available = funded(world, ("k1", "k2", "k3", "k4"))
    for key in ("w1", "w2", "w3", "w4"):
        world.payouts.withdraw(world.seller, Money(1_000_000, "RWF"), key)  # 4,000,000 of the day's 5,000,000
    sends_before = len(world.rail.send_calls)
    payouts_before = world.payouts.list_for_seller("coop-1")
    with pytest.raises(BusinessRuleViolation) as refused:
        world.payouts.withdraw(world.seller, Money(1_500_000, "RWF"), "w5")  # two parts; the second does not fit
    assert refused.value.code == "limit_exceeded"
    assert len(world.rail.send_calls) == sends_before
    assert world.seller_account().available == available - 4_000_000
    assert world.seller_account().debits_pending == 0
    assert world.payouts.list_for_seller("coop-1") == payouts_before  # no payout of w5, not even a failed one
    assert world.payouts.withdraw(world.seller, Money(1_000_000, "RWF"), "w6")["status"] == "succeeded"  # room left


def test_a_withdrawal_refused_for_its_balance_leaves_the_days_limit_untouched(world):
    available = funded(world)
    with pytest.raises(BusinessRuleViolation) as refused:
        world.payouts.withdraw(world.seller, Money(available + 100, "RWF"), "w1")
    assert refused.value.code == "insufficient_funds"
    assert world.rail.send_calls == [c for c in world.rail.send_calls if not c[0].startswith("po_w_")]
    for key in ("w2", "w3", "w4", "w5"):
        world.payouts.withdraw(world.seller, Money(min(1_000_000, available // 4), "RWF"), key)
    assert world.seller_account().debits_pending == 0


@pytest.mark.parametrize("amount", [10**10, 10**11, 10**15])
def test_an_enormous_withdrawal_is_refused_at_once_and_builds_nothing(world, amount):
    with pytest.raises(BusinessRuleViolation) as refused:
        world.payouts.withdraw(world.seller, Money(amount, "RWF"), "huge")
    assert refused.value.code in ("insufficient_funds", "limit_exceeded")
    assert world.rail.send_calls == [] and world.payouts.list_for_seller("coop-1") == []
    assert world.seller_account().debits_pending == 0


def test_splitting_is_bounded_even_under_generous_configured_limits(world, monkeypatch):
    funded(world)
    from chalicelib import settings

    monkeypatch.setenv("MIZANI_PAYOUT_LIMITS", '{"mtn_momo:RWF": {"min": 1, "max_per_tx": 10, "max_per_day": 1000000000}}')
    monkeypatch.setattr(settings, "get", settings.load)  # read the environment now; undone after the test
    with pytest.raises(BusinessRuleViolation) as refused:
        world.payouts.withdraw(world.seller, Money(1_000_000, "RWF"), "many")
    assert refused.value.code == "limit_exceeded"
    assert world.rail.send_calls == [c for c in world.rail.send_calls if not c[0].startswith("po_w_")]


def test_a_partly_failed_payout_texts_what_was_paid_and_what_is_in_the_balance(world):
    order = world.released_order()
    oid, payout = order["order_id"], order["payout"]["amount"]
    outcomes = iter(["succeeded", "failed"])
    real_send = world.rail.send

    def send(reference, amount, msisdn, note):
        world.rail.script(WALLET, send=next(outcomes), reason="PAYEE_NOT_FOUND")
        return real_send(reference, amount, msisdn, note)

    world.rail.send = send
    assert world.order_payouts.start_for_order(oid) == "failed"
    world.order_payouts.finish_for_order(oid, "failed")
    parts = {p["status"]: p["amount"]["amount"] for p in world.payouts.list_for_seller("coop-1")}
    assert parts["succeeded"] + parts["failed"] == payout
    text = world.phone.messages[-1][1]
    assert f"{parts['succeeded']:,} RWF sent" in text and f"{parts['failed']:,} RWF could not be sent" in text
    assert "retry" not in text and len(text) <= 160
    assert world.seller_account().available == parts["failed"]


def test_a_withdrawal_retried_with_its_key_and_another_amount_is_refused_and_changes_nothing(world):
    funded(world)
    first = world.payouts.withdraw(world.seller, Money(10_000, "RWF"), "same-key")
    counter = world.docs.get(f"walletday#mtn_momo#{WALLET}#2026-11-28", "counter")
    with pytest.raises(BusinessRuleViolation) as refused:
        world.payouts.withdraw(world.seller, Money(50_000, "RWF"), "same-key")
    assert refused.value.code == "idempotency_key_reused"
    assert world.docs.get(f"walletday#mtn_momo#{WALLET}#2026-11-28", "counter") == counter  # the day's count untouched
    assert world.payouts.withdraw(world.seller, Money(10_000, "RWF"), "same-key")["payout_id"] == first["payout_id"]
    assert sum(1 for c in world.rail.send_calls if c[0] == first["payout_id"]) == 1


def test_a_provider_down_after_admission_answers_pending_and_the_sweeper_sends_it_once(world):
    from chalicelib.http import RailNotSent

    funded(world)
    world.rail.fail_next_send(RailNotSent("provider_unavailable", "token endpoint down"))
    pending = world.payouts.withdraw(world.seller, Money(10_000, "RWF"), "w-down")
    assert pending["status"] == "pending"  # admitted and reserved, not a 503 the seller would retry
    world.payouts.poll_open()
    assert world.payouts.list_for_seller("coop-1")[0]["status"] == "succeeded"
    assert [c[0] for c in world.rail.send_calls].count(pending["payout_id"]) == 2  # once refused, once sent


def test_two_invocations_advancing_one_payout_at_once_send_it_once_on_a_rail_that_does_not_dedupe(world):
    funded(world)
    world.rail.resend_is_idempotent = False  # as M-Pesa: a repeated reference might be paid again
    gate, entered = threading.Event(), threading.Event()
    real_send = world.rail.send

    def slow_send(reference, amount, msisdn, note):
        entered.set()
        gate.wait(5)
        return real_send(reference, amount, msisdn, note)

    world.rail.send = slow_send
    withdrawal = threading.Thread(target=lambda: world.payouts.withdraw(world.seller, Money(10_000, "RWF"), "race"))
    withdrawal.start()
    assert entered.wait(5)
    world.payouts.poll_open()  # the sweeper finds the payout mid-send
    gate.set()
    withdrawal.join(5)
    ours = [c for c in world.rail.send_calls if c[0].startswith("po_w_")]
    assert len(ours) == 1


def test_a_withdrawal_not_sent_on_its_day_counts_on_the_day_it_is_sent(world):
    from chalicelib.http import RailNotSent

    funded(world, ("k1", "k2", "k3", "k4", "k5", "k6"))
    world.now = datetime(2026, 11, 28, 23, 50, tzinfo=timezone.utc)
    for key in ("a1", "a2", "a3", "a4", "a5"):  # the whole day's 5,000,000, admitted while MTN is down
        world.rail.fail_next_send(RailNotSent("provider_unavailable", "MTN down"))
        assert world.payouts.withdraw(world.seller, Money(1_000_000, "RWF"), key)["status"] == "pending"
    world.now = datetime(2026, 11, 29, 0, 10, tzinfo=timezone.utc)
    for key in ("b1", "b2", "b3", "b4", "b5"):  # the next day's own 5,000,000
        world.payouts.withdraw(world.seller, Money(1_000_000, "RWF"), key)
    world.payouts.poll_open()
    withdrawn = [p for p in world.payouts.list_for_seller("coop-1") if p["order_id"] is None]
    paid = sum(p["amount"]["amount"] for p in withdrawn if p["status"] == "succeeded")
    assert paid == 5_000_000  # one day's limit, although ten withdrawals were admitted
    assert sum(1 for p in withdrawn if p["status"] == "failed" and p["reason"] == "daily_limit") == 5


def test_a_send_claim_is_given_back_only_if_it_is_still_this_invocations(world):
    funded(world)
    world.rail.script(WALLET, send="unknown", statuses=["pending"])
    payout = world.payouts.withdraw(world.seller, Money(10_000, "RWF"), "w1")
    lease = world.docs.get(f"payout#{payout['payout_id']}").get("sending_until")
    world.payouts._release_claim(payout["payout_id"], lease)  # a late "not sent" from an older attempt
    assert world.docs.get(f"payout#{payout['payout_id']}")["status"] == "pending"  # not put back to new


def test_a_withdrawal_whose_invocation_died_after_reserving_is_finished_by_the_sweeper(world, monkeypatch):
    from datetime import timedelta

    funded(world)
    real = world.payouts._admitted
    monkeypatch.setattr(world.payouts, "_admitted", lambda intent: (_ for _ in ()).throw(RuntimeError("Lambda died")))
    with pytest.raises(RuntimeError):
        world.payouts.withdraw(world.seller, Money(30_000, "RWF"), "w-crash")
    monkeypatch.setattr(world.payouts, "_admitted", real)
    assert world.seller_account().debits_pending == 30_000 and world.payouts.list_for_seller("coop-1")[0]["order_id"]
    world.payouts.poll_open()  # too early: the request might still be running
    assert all(p["order_id"] for p in world.payouts.list_for_seller("coop-1"))
    world.now += timedelta(seconds=301)
    world.payouts.poll_open()
    [withdrawal] = [p for p in world.payouts.list_for_seller("coop-1") if p["order_id"] is None]
    assert withdrawal["status"] == "succeeded" and world.seller_account().debits_pending == 0


def test_a_payout_the_provider_never_saw_on_a_rail_without_dedup_goes_to_review_not_sent_again(world):
    from datetime import timedelta

    funded(world)
    world.rail.resend_is_idempotent = False  # as M-Pesa
    world.rail.script(WALLET, send="unknown", recorded=False)  # the request never arrived
    payout = world.payouts.withdraw(world.seller, Money(10_000, "RWF"), "w-lost")
    for hours in (1, 25):
        world.now += timedelta(hours=hours)
        world.payouts.poll_open()
    doc = world.docs.get(f"payout#{payout['payout_id']}")
    assert doc["needs_review"] is True and doc["reason"] == "provider_has_no_record"
    assert [c[0] for c in world.rail.send_calls].count(payout["payout_id"]) == 1  # never sent twice
    assert world.seller_account().debits_pending == 10_000  # its money stays reserved for the operator


def test_replaying_a_withdrawal_after_one_part_failed_changes_nothing(world):
    funded(world, ("k1", "k2"))
    outcomes = iter(["succeeded", "failed"])
    real_send = world.rail.send

    def send(reference, amount, msisdn, note):
        world.rail.script(WALLET, send=next(outcomes, "succeeded"), reason="PAYEE_NOT_FOUND")
        return real_send(reference, amount, msisdn, note)

    world.rail.send = send
    first = world.payouts.withdraw(world.seller, Money(1_500_000, "RWF"), "split")
    assert sorted(p["status"] for p in first["batch"]) == ["failed", "succeeded"]
    counter = world.docs.get(f"walletday#mtn_momo#{WALLET}#2026-11-28", "counter")
    again = world.payouts.withdraw(world.seller, Money(1_500_000, "RWF"), "split")
    assert [p["payout_id"] for p in again["batch"]] == [p["payout_id"] for p in first["batch"]]
    assert world.docs.get(f"walletday#mtn_momo#{WALLET}#2026-11-28", "counter") == counter
    with pytest.raises(BusinessRuleViolation) as refused:
        world.payouts.withdraw(world.seller, Money(200_000, "RWF"), "split")
    assert refused.value.code == "idempotency_key_reused"


def test_the_sweeper_reports_payouts_unknown_for_over_an_hour_and_each_outcome_is_counted(world):
    from datetime import timedelta

    from chalicelib.observability import metrics

    funded(world)
    world.rail.script(WALLET, send="unknown", statuses=["pending"] * 10 + ["succeeded"])

    def gauge():  # the last value the sweeper reported
        reports = [d for d in emitted if metrics.PAYOUTS_UNKNOWN in d]
        assert reports, "the sweeper reported no gauge"
        return metrics.counted(reports[-1:], metrics.PAYOUTS_UNKNOWN)

    with metrics.capture() as emitted:
        pending = world.payouts.withdraw(world.seller, Money(10_000, "RWF"), "w-slow")
        assert pending["status"] == "pending"
        world.payouts.poll_open()
        assert gauge() == 0  # sent, but not an hour ago: reported as 0, not left out
        world.now += timedelta(minutes=61)
        world.payouts.poll_open()
        assert gauge() == 1
        while world.payouts.list_for_seller("coop-1")[0]["status"] != "succeeded":
            world.payouts.poll_open()
        world.payouts.poll_open()
        assert gauge() == 0
    assert metrics.counted(emitted, metrics.PAYOUTS, outcome="succeeded", rail="mtn_momo") == 1
    assert metrics.counted(emitted, metrics.PAYOUTS, outcome="failed") == 0


def test_a_withdrawal_between_an_orders_release_and_its_payout_cannot_take_the_orders_money(world):
    """Found by the 1,000,000-order simulation: ReleaseEscrow and StartPayout are two steps, and a
    withdrawal in between took the released money, so the order's payout failed for want of it. The
    release holds the payout in the same write: the seller sees it as on its way, not as available."""
    order = world.released_order()
    oid, payout = order["order_id"], order["payout"]["amount"]
    balance = world.escrow.seller_balance(SELLER, "coop-1")
    assert balance["available"]["amount"] == 0
    assert balance["payout_pending"]["amount"] == payout
    world.rail.script(WALLET, send="succeeded")
    with pytest.raises(BusinessRuleViolation) as refused:
        world.payouts.withdraw(world.seller, Money(500_000, "RWF"), "between")
    assert refused.value.code == "insufficient_funds"
    state = world.order_payouts.start_for_order(oid)
    assert world.order_payouts.finish_for_order(oid, state)["status"] == "settled"
    assert sum(m.minor for m in world.rail.credited(WALLET)) == payout  # the order's money, once
    assert world.seller_account().available == 0 and world.seller_account().debits_pending == 0


def test_an_orders_payout_that_fails_after_the_hold_puts_the_money_in_the_balance(world):
    world.rail.script(WALLET, send="failed")
    order = world.released_order()
    oid = order["order_id"]
    state = world.order_payouts.start_for_order(oid)
    assert world.order_payouts.start_for_order(oid) == state == "failed"  # a retried step changes nothing
    assert world.order_payouts.finish_for_order(oid, state)["status"] == "payout_failed"
    assert world.seller_account().available == order["payout"]["amount"]
    assert world.seller_account().debits_pending == 0
    assert world.ledger.trial_balance().balanced


def test_a_payout_of_many_parts_takes_its_hold_over_several_chains_and_a_crash_between_them_pays_once(world, monkeypatch):
    """A payout split into more parts than one commit holds: the hold is swapped for the parts'
    reservations chain by chain, what is left held again in each; the Lambda dies after the first."""
    import json

    from chalicelib import settings
    monkeypatch.setenv("MIZANI_PAYOUT_LIMITS", json.dumps(
        {"mtn_momo:RWF": {"min": 100, "max_per_tx": 30_000, "max_per_day": 10**12}}))
    settings.get.cache_clear()
    try:
        order = world.released_order()
        oid, payout = order["order_id"], order["payout"]["amount"]
        parts = -(-payout // 30_000)
        real_transfer, swaps = world.ledger.transfer, []

        def crash_after_the_first_swap(*chain, **kw):
            result = real_transfer(*chain, **kw)
            if chain[0].transfer_id.startswith("hold:"):
                swaps.append(chain)
                if len(swaps) == 1:
                    raise RuntimeError("the Lambda died after its first chain")
            return result

        world.ledger.transfer = crash_after_the_first_swap
        world.rail.script(WALLET, send="succeeded")
        with pytest.raises(RuntimeError):
            world.order_payouts.start_for_order(oid)
        assert swaps[0][-1].transfer_id.startswith(f"hold:{oid}#")  # what is left, held again
        assert world.seller_account().available == 0  # held or reserved: never free in between
        world.ledger.transfer = real_transfer
        state = world.order_payouts.start_for_order(oid)  # the task's retry
        while state == "pending":
            state = world.order_payouts.check_for_order(oid)
        assert world.order_payouts.finish_for_order(oid, state)["status"] == "settled"
        rests = [t for t in world.ledger.store.transfers if t.startswith(f"hold:{oid}#") and ":" not in t[len("hold:"):]]
        assert len(rests) >= 2  # three chains at least, each but the last holding what is left
        assert len(world.rail.credited(WALLET)) == parts
        assert sum(m.minor for m in world.rail.credited(WALLET)) == payout
        assert world.seller_account().available == 0 and world.seller_account().debits_pending == 0
        assert world.ledger.trial_balance().balanced
    finally:
        settings.get.cache_clear()


def _limits(monkeypatch, **by_key):
    import json

    from chalicelib import settings

    monkeypatch.setenv("MIZANI_PAYOUT_LIMITS", json.dumps(by_key))
    settings.get.cache_clear()


@pytest.fixture
def fresh_settings():
    from chalicelib import settings

    settings.get.cache_clear()
    yield
    settings.get.cache_clear()


def test_a_retried_start_keeps_its_plan_when_the_limits_change_in_between(world, monkeypatch, fresh_settings):
    """StartPayout swapped the hold and created its payouts, then the provider was down; a deploy
    changes the per-payment limit before the retry. The plan written with the swap is the plan."""
    from chalicelib.http import RailNotSent

    order = world.released_order()
    oid, payout = order["order_id"], order["payout"]["amount"]
    world.rail.script(WALLET, send="succeeded")
    world.rail.fail_next_send(RailNotSent("provider_unavailable", "token endpoint down"))
    with pytest.raises(RailNotSent):
        world.order_payouts.start_for_order(oid)
    _limits(monkeypatch, **{"mtn_momo:RWF": {"min": 100, "max_per_tx": 2_000_000, "max_per_day": 5_000_000}})
    state = world.order_payouts.start_for_order(oid)  # the task's retry
    assert world.order_payouts.finish_for_order(oid, state)["status"] == "settled"
    assert len(world.rail.credited(WALLET)) == 2  # the two parts planned first
    assert sum(m.minor for m in world.rail.credited(WALLET)) == payout


def test_a_large_start_that_died_before_its_payouts_existed_is_finished_by_checkpayout(world, monkeypatch, fresh_settings):
    """More parts than one commit holds: the plan, then the swap chains, then the payouts. The Lambda
    dies before the payouts are written and the limits change; CheckPayout finishes the start from
    the plan, and the wallet is paid once."""
    import chalicelib.payouts.service as service

    _limits(monkeypatch, **{"mtn_momo:RWF": {"min": 100, "max_per_tx": 40_000, "max_per_day": 10**12}})
    order = world.released_order()
    oid, payout = order["order_id"], order["payout"]["amount"]
    world.rail.script(WALLET, send="succeeded")
    real = service.put_all_new

    def dies(*args, **kwargs):
        raise RuntimeError("the Lambda timed out before the payout documents")

    monkeypatch.setattr(service, "put_all_new", dies)
    with pytest.raises(RuntimeError):
        world.order_payouts.start_for_order(oid)
    monkeypatch.setattr(service, "put_all_new", real)
    _limits(monkeypatch, **{"mtn_momo:RWF": {"min": 100, "max_per_tx": 50_000, "max_per_day": 10**12}})
    state = world.order_payouts.check_for_order(oid)
    while state == "pending":
        state = world.order_payouts.check_for_order(oid)
    assert world.order_payouts.finish_for_order(oid, state)["status"] == "settled"
    assert len(world.rail.credited(WALLET)) == -(-payout // 40_000)
    assert sum(m.minor for m in world.rail.credited(WALLET)) == payout
    assert world.seller_account().debits_pending == 0


def test_an_order_sent_to_review_before_its_payout_started_gives_its_hold_back_to_the_balance(world, monkeypatch,
                                                                                             fresh_settings):
    """StartPayout cannot plan the payout (the smallest payout was raised above it): the order goes
    to ManualReview, which lets the hold go, so the seller can withdraw the money, as before holds."""
    order = world.released_order()
    oid, payout = order["order_id"], order["payout"]["amount"]
    _limits(monkeypatch, **{"mtn_momo:RWF": {"min": 2_000_000, "max_per_tx": 5_000_000, "max_per_day": 10**12}})
    with pytest.raises(BusinessRuleViolation):
        world.order_payouts.start_for_order(oid)
    assert world.order_payouts.review(oid, "limit_exceeded")["status"] == "manual_review"
    assert world.seller_account().available == payout and world.seller_account().debits_pending == 0
    assert world.ledger.get_transfer(f"hold:{oid}").status.value == "voided"
    world.order_payouts.review(oid, "again")  # a repeated review changes nothing
    assert world.seller_account().available == payout
