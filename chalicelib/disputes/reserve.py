"""The chargeback reserve: part of a seller's payout held for the months a card payment can still be
clawed back, then given back by a schedule.

At release (``EscrowService.release_escrow``) ``reserve_bps`` of the guaranteed payout (the seller's
field, set by an admin; rounded UP to the rail's step, so what is paid out stays whole) moves
``seller:<id>`` -> ``reserve:<id>`` in the release's own linked chain (``release:<order>:reserve``),
and a tranche is written: ``reservehold#<order>``, due ``MIZANI_RESERVE_DAYS`` (120) days after
the card payment, indexed by its due time (gsi1 ``reserves#due``). For a co-operative's allocated
order the reserve is held from what it retains (at most all of it), never from its members' shares.

``ReserveService.release_due`` (the scheduled ``release_reserves``) gives each due tranche back:
``reserve:<id>`` -> ``seller:<id>`` (``reserve:<tranche>:release``) for the tranche's amount, or what
the reserve still holds if a chargeback took part of it (read, then one conditional write: the
ledger refuses a release the reserve cannot cover, and the amount is decided again). A retry finds
the transfer and only removes the tranche. A dispute won after it took from the reserve puts that
part back with a tranche of its own (``hold_again``), due with the disputed order's reserve.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from chalicelib.accounts import reserve_account_id, seller_account_id
from chalicelib.documents import DocumentExists
from chalicelib.ledger import AccountFlag, LedgerRejected, Result, Transfer
from chalicelib.money import Money

log = logging.getLogger("mizani.reserve")
DUE_INDEX = "reserves#due"
HOLD_CODE, RELEASE_CODE = "reserve_hold", "reserve_release"


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def reserve_amount(payout_minor: int, reserve_bps: int, step: int = 1) -> int:
    """``reserve_bps`` of the payout, rounded UP to ``step`` (the platform holds), at most the payout."""
    if reserve_bps <= 0:
        return 0
    raw = -(-payout_minor * reserve_bps // 10_000)
    return min(payout_minor, -(-raw // step) * step)


def paid_at(order: dict) -> datetime:
    """When the card payment arrived (the order's ``paid`` timeline entry)."""
    at = next((e["at"] for e in order["timeline"] if e["status"] == "paid"), order["created_at"])
    return _parse(at)


def release_at(order: dict, days: int) -> datetime:
    return paid_at(order) + timedelta(days=days)


def ensure_reserve_account(ledger, seller_id: str, currency: str) -> str:
    account_id = reserve_account_id(seller_id)
    ledger.create_account(account_id, currency, "liability", [AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS])
    return account_id


def hold_leg(order: dict, source_account_id: str) -> Transfer | None:
    """The release chain's transfer into the seller's reserve (``None`` when there is none)."""
    reserve = order.get("reserve")
    if not reserve or not reserve["amount"]:
        return None
    return Transfer(f"release:{order['order_id']}:reserve", source_account_id, reserve_account_id(order["seller_id"]),
                    reserve["amount"], reserve["currency"], code=HOLD_CODE, reference=order["order_id"])


def write_tranche(docs, key: str, order: dict, amount: Money, due: datetime) -> None:
    """The tranche the schedule releases (idempotent: a retried release writes nothing new)."""
    doc = {"key": key, "order_id": order["order_id"], "seller_id": order["seller_id"], "amount": amount.to_json(),
           "release_at": _iso(due)}
    try:
        docs.put_new(f"reservehold#{key}", doc, index=(DUE_INDEX, f"{doc['release_at']}#{key}"))
    except DocumentExists:
        pass


class ReserveService:
    """The scheduled release of due reserve tranches, and tranches put back by a won dispute."""

    def __init__(self, docs, ledger, days: int = 120, clock=lambda: datetime.now(timezone.utc)):
        self.docs = docs
        self.ledger = ledger
        self.days = days
        self.clock = clock

    def hold_again(self, order: dict, key: str, amount: Money) -> None:
        due = max(self.clock(), release_at(order, self.days))
        write_tranche(self.docs, f"{order['order_id']}:{key}", order, amount, due)

    def release_due(self, limit: int = 100) -> int:
        """Release every tranche due by now (oldest first); how many were released."""
        now = _iso(self.clock())
        released = 0
        for tranche in self.docs.query_index(DUE_INDEX, limit=limit, newest_first=False):
            if tranche["release_at"] > now:
                break
            self._release(tranche)
            released += 1
        return released

    def _release(self, tranche: dict) -> None:
        transfer_id = f"reserve:{tranche['key']}:release"
        reserve, seller = reserve_account_id(tranche["seller_id"]), seller_account_id(tranche["seller_id"])
        currency = tranche["amount"]["currency"]
        if self.ledger.get_transfer(transfer_id) is None:
            for _ in range(6):
                account = self.ledger.get_account(reserve)
                amount = min(tranche["amount"]["amount"], account.available if account else 0)
                if amount <= 0:
                    log.info("reserve tranche %s: nothing left to release (chargebacks took it)", tranche["key"])
                    break
                try:
                    self.ledger.transfer(Transfer(transfer_id, reserve, seller, amount, currency, code=RELEASE_CODE,
                                                  reference=tranche["order_id"]))
                    break
                except LedgerRejected as refused:
                    if refused.result is Result.EXCEEDS_CREDITS:
                        continue  # a chargeback took from the reserve since we read it: read again
                    if refused.result is Result.EXISTS_WITH_DIFFERENT_FIELDS:
                        break  # a concurrent run released it
                    raise
        self.docs.delete(f"reservehold#{tranche['key']}")

    def reserved(self, seller_id: str) -> int:
        account = self.ledger.get_account(reserve_account_id(seller_id))
        return account.balance if account else 0
