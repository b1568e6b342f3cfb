"""Who an order's payout goes to, and the hold that keeps it theirs until it is sent.

An order's payout has one *line* per payee: the co-operative's wallet, or each member an
allocation gives a share to (a share below its wallet's smallest payout is not sent; it stays in
the member's balance). Escrow and the payout workflow both read the lines from this one place.

The hold: released money is credited to the payee's account, and an order's payouts are reserved
from it one step later (StartPayout). A withdrawal in between (HTTP or USSD) would take the order's
money first and leave its payout without funds. So the same atomic write that credits a line also
reserves it, as one *pending* transfer ``hold:<order>[:<member>]`` from the payee's account to the
rail's float. The payee sees it as ``payout_pending``, not as available. StartPayout swaps the hold
for the reservations of the line's payouts, in linked chains (``hold_swaps``), so at no moment
between the release and the payout is the money available to anything else.
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.accounts import float_account_id, party_account_id
from chalicelib.ledger import Transfer, TransferKind
from chalicelib.money import Money

HOLD_CODE = "payout_hold"
#: What a transfer of a swap chain costs of a commit's 100 items at worst: a void is four (the transfer,
#: the hold's new status, two history entries) and may bring two accounts (the payee's, the hold's float
#: shard); a reservation or a hold of what is left is three and may bring one (another float shard).
VOID_ITEMS = 6
PENDING_ITEMS = 4
CHAIN_ITEMS = 100
LET_GO = "let-go"  # the id suffix of a hold let go: its money is back in the payee's balance


@dataclass(frozen=True)
class PayoutLine:
    """One payee of an order's payout: the co-operative itself (``member_id`` ``None``) or a member."""

    member_id: str | None
    amount: Money
    route: dict  # {"rail", "msisdn", "currency"}


def order_lines(order: dict) -> list[PayoutLine]:
    """The payees of a released order's payout (its allocation and reserve as the release decided).

    Which shares are too small to send is decided once, at release (``payout_unsent``), so that the
    holds the release made and the payouts StartPayout plans name the same members even if a
    wallet's smallest payout is configured anew in between."""
    allocation = order.get("allocation")
    if allocation:
        unsent = set(order["payout_unsent"]) if order.get("payout_unsent") is not None else set(unsent_shares(order))
        return [PayoutLine(s["member_id"], Money(s["amount"]["amount"], s["amount"]["currency"]), s["route"])
                for s in allocation["shares"] if s["amount"]["amount"] > 0 and s["member_id"] not in unsent]
    # Less what the reserve holds against chargebacks (it stays in ``reserve:<seller>`` for 120 days).
    amount = order["payout"]["amount"] - (order.get("reserve") or {}).get("amount", 0)
    return [PayoutLine(None, Money(amount, order["payout"]["currency"]), order["payout_route"])] if amount else []


def unsent_shares(order: dict) -> list[str]:
    """The members whose share is below their wallet's smallest payout: it stays in their balance."""
    from chalicelib.payouts.limits import limits_for

    return [s["member_id"] for s in (order.get("allocation") or {}).get("shares", [])
            if s["amount"]["amount"] < limits_for(s["route"]["rail"], s["amount"]["currency"]).min_per_tx]


def chain_items(chain: list[Transfer]) -> int:
    """The items a swap chain takes of a commit at worst (``VOID_ITEMS``, ``PENDING_ITEMS``)."""
    return sum(VOID_ITEMS if t.kind is TransferKind.VOID_PENDING else PENDING_ITEMS for t in chain)


def let_go(order_id: str, pending_id: str) -> Transfer:
    """A hold given up: its money is back in the payee's available balance."""
    return Transfer(f"{pending_id}:{LET_GO}", "", "", 0, "", TransferKind.VOID_PENDING, pending_id,
                    code=HOLD_CODE, reference=order_id)


def hold_id(order_id: str, member_id: str | None) -> str:
    return f"hold:{order_id}:{member_id}" if member_id else f"hold:{order_id}"


def hold(order: dict, line: PayoutLine) -> Transfer:
    """The pending transfer that keeps ``line``'s money for the order's payout (no timeout: it ends
    only when StartPayout swaps it for the payouts' own reservations)."""
    order_id = order["order_id"]
    return Transfer(hold_id(order_id, line.member_id), party_account_id(order["seller_id"], line.member_id),
                    float_account_id(line.route["rail"], line.amount.currency), line.amount.minor, line.amount.currency,
                    TransferKind.PENDING, code=HOLD_CODE, reference=order_id)


def hold_swaps(order_id: str, account_of, lines: list[tuple[PayoutLine, list[tuple[str, int]]]]) -> list[list[Transfer]]:
    """The linked chains that turn each line's hold into its payouts' reservations (``lines``: each
    line with its payouts as ``(payout id, amount)``; ``account_of(line)``: the payee's account).

    Each chain voids a hold and reserves what it covered, so the money is held throughout (a line
    with no payouts is let go: its money is back in the payee's balance). A line
    whose payouts do not fit in the chain is held again for what is left (``<hold>#<next payout>``),
    which the next chain voids. Every id derives from the order and the payouts: a retried step
    builds the same chains, and the ledger answers those already committed with their first result."""
    chains: list[list[Transfer]] = []
    chain: list[Transfer] = []

    def void(pending_id: str) -> Transfer:
        return Transfer(f"{pending_id}:void", "", "", 0, "", TransferKind.VOID_PENDING, pending_id,
                        code=HOLD_CODE, reference=order_id)

    def pending(transfer_id: str, line: PayoutLine, amount: int, code: str) -> Transfer:
        return Transfer(transfer_id, account_of(line), float_account_id(line.route["rail"], line.amount.currency),
                        amount, line.amount.currency, TransferKind.PENDING, code=code,
                        reference=order_id if code == HOLD_CODE else transfer_id)

    items = 0
    for line, payouts in lines:
        if items + VOID_ITEMS + PENDING_ITEMS > CHAIN_ITEMS:
            chains.append(chain)
            chain, items = [], 0
        chain.append(void(hold_id(order_id, line.member_id)))
        items += VOID_ITEMS
        left = line.amount.minor
        for payout_id, amount in payouts:
            if items + 2 * PENDING_ITEMS > CHAIN_ITEMS:  # this payout and a hold of what is left
                rest = f"{hold_id(order_id, line.member_id)}#{payout_id}"
                chains.append(chain + [pending(rest, line, left, HOLD_CODE)])
                chain, items = [void(rest)], VOID_ITEMS
            chain.append(pending(payout_id, line, amount, "payout"))
            items += PENDING_ITEMS
            left -= amount
        assert left == 0 or not payouts, "a line's payouts add up to the line (none: its money is let go)"
    if chain:
        chains.append(chain)
    return chains
