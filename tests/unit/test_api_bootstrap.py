"""Per-container services and the platform's own ledger accounts."""
import pytest

from chalicelib import bootstrap
from chalicelib.ledger import Ledger
from chalicelib.ledger.memory import MemoryLedgerStore
from chalicelib.money import SUPPORTED_CURRENCIES
from chalicelib.rails import RAILS


@pytest.fixture(autouse=True)
def clean():
    bootstrap.reset()
    yield
    bootstrap.reset()


def test_platform_accounts_exist_for_every_supported_currency_with_their_kinds():
    ledger = Ledger(MemoryLedgerStore())
    bootstrap.ensure_platform_accounts(ledger)
    for cur in SUPPORTED_CURRENCIES:
        kinds = {
            name: ledger.get_account(name).kind
            for name in (f"psp:stripe:{cur}", f"fx:{cur}", f"revenue:fees:{cur}", f"float:mtn_momo:{cur}", f"float:mpesa:{cur}",
                         f"float:airtel_money:{cur}")
        }
        assert kinds == {
            f"psp:stripe:{cur}": "asset",
            f"fx:{cur}": "asset",
            f"revenue:fees:{cur}": "revenue",
            f"float:mtn_momo:{cur}": "asset",
            f"float:mpesa:{cur}": "asset",
            f"float:airtel_money:{cur}": "asset",
        }
        assert ledger.get_account(f"fx:{cur}").currency == cur


def test_creating_the_platform_accounts_again_changes_nothing():
    ledger = Ledger(MemoryLedgerStore())
    first = bootstrap.ensure_platform_accounts(ledger)
    again = bootstrap.ensure_platform_accounts(ledger)
    # psp, fx, fees and a float per rail in every currency; a psp account per other provider that takes the
    # currency (the bank in every currency, each collecting rail in its own) and the bank refunds owed.
    collecting = sum(len(rail.collection.currencies) for rail in RAILS.values() if rail.collection)
    expected = (3 + len(RAILS) + 2) * len(SUPPORTED_CURRENCIES) + collecting
    assert len(first) == len(again) == expected
    assert [a.created_at for a in again] == [a.created_at for a in first]


def test_a_service_is_built_once_per_container_until_reset():
    fake = Ledger(MemoryLedgerStore())
    bootstrap.override(ledger=fake)
    assert bootstrap.ledger() is fake
    assert bootstrap.ensure_platform_accounts()  # uses the container's ledger
    bootstrap.reset()
    assert bootstrap.ledger() is not fake
    assert bootstrap.ledger() is bootstrap.ledger()


def test_the_quote_service_prices_with_the_containers_rate_source():
    assert bootstrap.quotes().rate_source is bootstrap.rate_source()


def test_overriding_an_unknown_service_is_a_mistake():
    with pytest.raises(ValueError):
        bootstrap.override(ledgr=object())
