"""Stripe's ``charge.dispute.*`` events -> ``DisputeEvent`` (pure; the event was verified first).

The Dispute object (docs.stripe.com/api/disputes/object) as each event carries it:

- ``id`` (``du_...``, older ``dp_...``), ``amount`` and ``currency`` (the disputed part of the
  charge, in Stripe's units), ``charge``, ``payment_intent``, ``reason``, ``created``;
- ``status``: ``warning_needs_response``, ``warning_under_review``, ``warning_closed`` (an inquiry,
  no money moved), ``needs_response``, ``under_review``, ``won``, ``lost``, ``prevented``;
- ``evidence_details``: ``due_by`` (unix seconds), ``has_evidence``, ``submission_count``;
- ``balance_transactions``: what the dispute did to the balance: the withdrawal (``amount`` < 0,
  ``reporting_category`` ``dispute``, the dispute fee in ``fee``) and, if won, the reinstatement
  (``amount`` > 0, ``dispute_reversal``; a returned fee is a negative ``fee``).

The events Mizani acts on: ``charge.dispute.created``, ``.updated``, ``.funds_withdrawn``,
``.funds_reinstated`` and ``.closed``. An event is a snapshot at its own time: the service merges
them so that an old snapshot never undoes a newer one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from chalicelib.errors import ValidationError
from chalicelib.money import Money
from chalicelib.payments.amounts import from_stripe_amount
from chalicelib.payments.errors import MalformedEvent

PREFIX = "charge.dispute."
CREATED, UPDATED, CLOSED = "charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed"
FUNDS_WITHDRAWN, FUNDS_REINSTATED = "charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated"
EVENT_TYPES = frozenset({CREATED, UPDATED, CLOSED, FUNDS_WITHDRAWN, FUNDS_REINSTATED})

STATUSES = ("warning_needs_response", "warning_under_review", "warning_closed", "needs_response", "under_review",
            "won", "lost", "prevented")
#: Statuses after which nothing changes any more.
FINAL = frozenset({"warning_closed", "won", "lost", "prevented"})
#: Final statuses in which the merchant keeps the money.
KEPT = frozenset({"warning_closed", "won", "prevented"})
#: Statuses in which evidence can (still) be submitted.
AWAITING_EVIDENCE = frozenset({"warning_needs_response", "needs_response"})
#: How far along Stripe's lifecycle a status is: waiting for evidence, then under review, then closed.
STAGE = {"warning_needs_response": 0, "needs_response": 0, "warning_under_review": 1, "under_review": 1,
         **{status: 2 for status in FINAL}}


def supersedes(status: str, created: int, current: str, current_at: int) -> bool:
    """Whether an event's snapshot (``status`` at ``created``) replaces the one recorded.

    A final status is never replaced. Otherwise the later snapshot wins; Stripe's ``created`` is
    in whole seconds, so events of one second (``funds_withdrawn`` is snapshotted before the
    evidence that makes the dispute ``under_review``, yet may arrive after it) are ordered by the
    lifecycle instead, which never goes back within a second.
    """
    if current in FINAL:
        return False
    if status in FINAL or created > current_at:
        return True
    return created == current_at and STAGE.get(status, 0) >= STAGE.get(current, 0)


@dataclass(frozen=True)
class BalanceMove:
    """One balance transaction of a dispute: ``amount`` moved (positive: reinstated, negative:
    withdrawn) and the ``fee`` Stripe charged with it (negative: a fee given back)."""

    transaction_id: str
    amount: Money
    fee: Money


@dataclass(frozen=True)
class DisputeEvent:
    """What one ``charge.dispute.*`` event says about its dispute."""

    event_id: str
    event_type: str
    created: int
    dispute_id: str
    payment_intent_id: str | None
    charge_id: str | None
    amount: Money
    reason: str
    status: str
    due_by: int | None
    evidence_submitted: bool
    moves: tuple[BalanceMove, ...]

    @property
    def withdrawn(self) -> bool:
        """Stripe has taken the disputed amount from the balance (by this event's time)."""
        return self.event_type == FUNDS_WITHDRAWN or any(m.amount.minor < 0 for m in self.moves)

    @property
    def reinstated(self) -> bool:
        """Stripe has given the disputed amount back (a won dispute)."""
        return self.event_type == FUNDS_REINSTATED or any(m.amount.minor > 0 for m in self.moves)


def is_dispute_event(event: Mapping[str, Any]) -> bool:
    return isinstance(event, Mapping) and isinstance(event.get("type"), str) and event["type"] in EVENT_TYPES


def parse_dispute_event(event: Mapping[str, Any]) -> DisputeEvent:
    """The ``DisputeEvent`` of a verified Stripe event (``MalformedEvent``, a 400, if a field it needs is wrong)."""
    event_id, event_type = _str(event, "id", "event"), _str(event, "type", "event")
    if event_type not in EVENT_TYPES:
        raise MalformedEvent(message=f"event {event_id} ({event_type}) is not a dispute event")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(obj, Mapping) or obj.get("object") != "dispute":
        raise MalformedEvent(message=f"event {event_id} ({event_type}) does not carry a dispute", path="data.object")
    created = event.get("created")
    if isinstance(created, bool) or not isinstance(created, int):
        raise MalformedEvent(message=f"event {event_id} has no integer created time", path="created")
    status = _str(obj, "status", "data.object")
    if status not in STATUSES:
        raise MalformedEvent(message=f"dispute status {status[:40]!r} is not one of Stripe's", path="data.object.status")
    details = obj.get("evidence_details") if isinstance(obj.get("evidence_details"), Mapping) else {}
    due_by = details.get("due_by")
    submitted = details.get("submission_count")
    return DisputeEvent(
        event_id=event_id,
        event_type=event_type,
        created=created,
        dispute_id=_str(obj, "id", "data.object"),
        payment_intent_id=_optional_id(obj.get("payment_intent")),
        charge_id=_optional_id(obj.get("charge")),
        amount=_money(obj.get("amount"), obj.get("currency"), "data.object.amount"),
        reason=str(obj.get("reason") or "general")[:60],
        status=status,
        due_by=due_by if isinstance(due_by, int) and not isinstance(due_by, bool) else None,
        evidence_submitted=isinstance(submitted, int) and not isinstance(submitted, bool) and submitted > 0,
        moves=tuple(_moves(obj.get("balance_transactions"))),
    )


def _moves(raw: Any) -> list[BalanceMove]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise MalformedEvent(message="balance_transactions is a list", path="data.object.balance_transactions")
    moves = []
    for i, txn in enumerate(raw):
        if isinstance(txn, str):  # not expanded: an id only, nothing to book from it
            continue
        if not isinstance(txn, Mapping):
            raise MalformedEvent(message="a balance transaction is an object", path=f"data.object.balance_transactions[{i}]")
        where = f"data.object.balance_transactions[{i}]"
        amount, fee, currency = txn.get("amount"), txn.get("fee", 0), txn.get("currency")
        for name, value in (("amount", amount), ("fee", fee)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise MalformedEvent(message=f"{where}.{name} is an integer", path=f"{where}.{name}")
        if amount == 0:
            continue
        moves.append(BalanceMove(
            transaction_id=_str(txn, "id", where),
            amount=_signed_money(amount, currency, f"{where}.amount"),
            fee=_signed_money(fee, currency, f"{where}.fee"),
        ))
    return moves


def _str(obj: Mapping, key: str, where: str) -> str:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    if not isinstance(value, str) or not value or len(value) > 255:
        raise MalformedEvent(message=f"{where}.{key} is missing", path=f"{where}.{key}")
    return value


def _optional_id(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value and len(value) <= 255 else None


def _money(amount: Any, currency: Any, path: str) -> Money:
    if not isinstance(currency, str):
        raise MalformedEvent(message="the dispute has no currency", path=path)
    try:
        money = from_stripe_amount(amount, currency)
    except ValidationError as e:
        raise MalformedEvent(message=e.message, path=path) from None
    if money.minor <= 0:
        raise MalformedEvent(message="a disputed amount is positive", path=path)
    return money


def _signed_money(amount: int, currency: Any, path: str) -> Money:
    if not isinstance(currency, str):
        raise MalformedEvent(message="a balance transaction has no currency", path=path)
    try:
        magnitude = from_stripe_amount(abs(amount), currency)
    except ValidationError as e:
        raise MalformedEvent(message=e.message, path=path) from None
    return Money(magnitude.minor if amount >= 0 else -magnitude.minor, magnitude.currency)
