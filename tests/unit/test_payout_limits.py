"""Splitting a payout to fit a rail's limits."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.errors import BusinessRuleViolation
from chalicelib.payouts.limits import Limits, split

MTN_RWF = Limits(100, 1_000_000, 5_000_000)
MPESA_KES = Limits(1_000, 25_000_000, 50_000_000)


@given(st.integers(100, 10**10))
def test_parts_add_up_fit_the_maximum_and_are_near_equal(amount):
    parts = split(amount, MTN_RWF)
    assert sum(parts) == amount
    assert all(p <= MTN_RWF.max_per_tx for p in parts)
    assert max(parts) - min(parts) <= 1
    assert len(parts) == -(-amount // MTN_RWF.max_per_tx)


@given(st.integers(10, 10**8).map(lambda kes: kes * 100))
def test_a_whole_unit_rail_gets_whole_unit_parts(amount):
    parts = split(amount, MPESA_KES, step=100)
    assert sum(parts) == amount and all(p % 100 == 0 and p <= MPESA_KES.max_per_tx for p in parts)


def test_below_the_minimum_or_with_cents_on_a_whole_unit_rail_is_refused():
    with pytest.raises(BusinessRuleViolation) as e:
        split(99, MTN_RWF)
    assert e.value.code == "limit_exceeded"
    with pytest.raises(BusinessRuleViolation) as e:
        split(1_050, MPESA_KES, step=100)
    assert e.value.code == "amount_not_whole_units"
