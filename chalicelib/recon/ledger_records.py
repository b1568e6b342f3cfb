"""``LedgerSource`` over the ledger itself: the day's money movements by transfer code.

Reads the ledger store's ``query_code_day`` (DynamoDB: the sparse ``by_code_day``
index of the transfers table), so a reconciliation touches only the days and kinds
the statement covers. Signs and references follow ``ledger_source``'s table:
card payments and refunds are Stripe's (whatever the method: card, Alipay, WeChat Pay),
payouts belong to the rail of the float account they were paid from, collections and their
refunds to ``<rail>_collection`` (the rail's collection account), float top-ups and buyers'
bank transfers to the bank.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Iterable

from chalicelib.rails import RAILS
from chalicelib.recon.ledger_source import DayRange
from chalicelib.recon.model import LEDGER_CODE_SIGNS, LedgerLine, collection_provider

#: Transfer codes each provider reports on.
PROVIDER_CODES = {
    # card, Alipay and WeChat Pay through Stripe, and card disputes (withdrawn, reinstated)
    "stripe": ("card_payment", "card_refund", "card_dispute", "card_dispute_reversal"),
    # float top-ups, and buyers' bank transfers (and their refunds, once finance has sent them)
    "bank": ("float_topup", "float_withdrawal", "bank_transfer", "bank_refund"),
    **{name: ("payout",) for name in RAILS},  # every rail of the registry: its payouts from its float
    # every collecting rail: what buyers paid into its collection account, and what went back
    **{collection_provider(r.name): ("collection", "collection_refund") for r in RAILS.values() if r.collection},
}


def _provider_of(code: str, debit: str, credit: str) -> str:
    if code.startswith("card_"):
        return "stripe"
    if code == "payout":
        return credit.split(":")[1] if credit.startswith("float:") else ""
    if code in ("collection", "collection_refund"):  # psp:<rail>:<CUR> on the provider's side
        psp = debit if code == "collection" else credit
        return collection_provider(psp.split(":")[1]) if psp.startswith("psp:") else ""
    return "bank"


class StoreLedgerSource:
    """The ledger's own records, by provider and day (inclusive range; today if none)."""

    def __init__(self, store, today: date | None = None):
        self.store = store
        self.today = today

    def lines_for(self, provider: str, day_range: DayRange | None = None) -> Iterable[LedgerLine]:
        first, last = day_range or ((self.today or date.today()),) * 2
        day = first
        while day <= last:
            for code in PROVIDER_CODES.get(provider, ()):
                for record in self.store.query_code_day(code, day.isoformat()):
                    t = record.transfer
                    if _provider_of(code, t.debit_account_id, t.credit_account_id) != provider:
                        continue
                    yield LedgerLine(t.reference or t.transfer_id, provider, LEDGER_CODE_SIGNS[code] * t.amount,
                                     t.currency, day, code, t.transfer_id)
            day += timedelta(days=1)
