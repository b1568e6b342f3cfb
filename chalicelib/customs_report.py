"""Customs against eWTP's 24-hour promise: clearance times per office, and the orders still waiting.

``report()`` is ``GET /v1/customs/clearance``: per customs office, the decisions of the last
``days`` days (how many, the median and the 90th percentile of the hours from ``shipped`` to the
decision) and how many orders wait past the promise now; then those orders, the longest first.
``remind()`` is the scheduled function: each order past the promise is texted to its seller once
(the outbox's message id ``customs_waiting:<order_id>`` is the once), in the seller's language.

Reads only (``order_index``), except the SMS it queues.
"""
from __future__ import annotations

import math
import statistics
from datetime import datetime, timedelta, timezone
from typing import Callable

from chalicelib.i18n import N_, fit, translator
from chalicelib.notify.messages import SMS_MAX_CHARS, order_ref
from chalicelib.order_index import OrderIndex, hours_between

PROMISE_SECONDS = 24 * 3600
UNKNOWN_OFFICE = "unknown"
#: The seller's SMS when an order passes the promise at customs (one GSM-7 part in every language).
WAITING_TEXT = N_("Mizani: order {ref} is still at customs in {office} after {hours} h. Your payment is safe in"
                  " escrow; we will text you when customs decides.")
WAITING_TEXT_NO_OFFICE = N_("Mizani: order {ref} is still at customs after {hours} h. Your payment is safe in"
                            " escrow; we will text you when customs decides.")


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (the smallest value with at least ``share`` of the values at or below it)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def waiting_text(order_id: str, office: str | None, hours: int, language: str = "en") -> str:
    """The seller's SMS in ``language``, one SMS part (a long office name is shortened, never the hours)."""
    _ = translator(language).gettext
    fields = {"ref": order_ref(order_id), "hours": hours, "office": office or ""}
    if not office or office == UNKNOWN_OFFICE:
        return fit(_(WAITING_TEXT_NO_OFFICE), SMS_MAX_CHARS, fields)
    return fit(_(WAITING_TEXT), SMS_MAX_CHARS, fields, shrinkable=("office",))


class CustomsClearance:
    """The clearance report and the once-only reminders (see the module docstring)."""

    def __init__(self, index: OrderIndex, escrow=None, outbox=None, languages=None,
                 promise_seconds: int = PROMISE_SECONDS, clock: Callable[[], datetime] = _utc_now):
        self.index = index
        self.escrow = escrow  # the order's seller route (its wallet number) for the SMS
        self.outbox = outbox
        self.languages = languages
        self.promise_seconds = promise_seconds
        self.clock = clock

    def _waiting(self, now: datetime) -> list[dict]:
        """Shipped orders customs has not decided, with their hours so far (the longest first)."""
        stamp = _iso(now)
        rows = []
        for row in self.index.shipped():
            if row.get("outcome") or not row.get("shipped_at"):
                continue  # decided (a rejection waits for its refund in ``shipped``), or never shipped
            rows.append({"order_id": row["order_id"], "office": row.get("office") or UNKNOWN_OFFICE,
                         "hours": hours_between(row["shipped_at"], stamp), "seller_id": row.get("seller_id"),
                         "shipped_at": row["shipped_at"]})
        return sorted(rows, key=lambda r: (r["shipped_at"], r["order_id"]))  # the longest waiting first

    def report(self, days: int = 30, limit: int | None = None, cursor: str | None = None) -> dict:
        """The report; its ``waiting`` orders one page at a time (``limit``, default 20; ``cursor``: the
        ``next_cursor`` of the page before). A page goes on after the last order it showed (by shipping
        time, then id), so an order decided meanwhile makes no other order skipped or shown twice."""
        now = self.clock()
        promise_hours = self.promise_seconds / 3600
        by_office: dict[str, list[float]] = {}
        for decision in self.index.decided(since=_iso(now - timedelta(days=days))):
            by_office.setdefault(decision.get("office") or UNKNOWN_OFFICE, []).append(float(decision["hours"]))
        late = [w for w in self._waiting(now) if w["hours"] >= promise_hours]
        late_per_office: dict[str, int] = {}
        for w in late:
            late_per_office[w["office"]] = late_per_office.get(w["office"], 0) + 1
        offices = []
        for office in sorted(set(by_office) | set(late_per_office)):
            hours = by_office.get(office, [])
            offices.append({
                "office": office,
                "decided": len(hours),
                "median_hours": round(statistics.median(hours), 2) if hours else None,
                "p90_hours": round(percentile(hours, 0.9), 2) if hours else None,
                "within_promise": sum(1 for h in hours if h < promise_hours),
                "waiting_over_24h": late_per_office.get(office, 0),
            })
        size = limit or 20
        if cursor is not None:
            after = _after(cursor)
            late = [w for w in late if (w["shipped_at"], w["order_id"]) > after]
        page, more = late[:size], len(late) > size
        return {
            "as_of": _iso(now), "days": days, "promise_hours": promise_hours, "offices": offices,
            "waiting": [{"order_id": w["order_id"], "office": w["office"], "hours": w["hours"]} for w in page],
            "has_more": more,
            "next_cursor": _cursor_after(page[-1]) if more else None,
        }

    def remind(self) -> int:
        """Queue the SMS of every order past the promise that has not had it; how many were queued."""
        if self.outbox is None or self.escrow is None:
            return 0
        queued = 0
        for w in self._waiting(self.clock()):
            if w["hours"] < self.promise_seconds / 3600:
                break  # the longest first: none after this one is late either
            message_id = f"customs_waiting:{w['order_id']}"
            if self.outbox.message(message_id) is not None:
                continue  # texted already: once per order
            order = self.escrow.order(w["order_id"])
            msisdn = (order.get("payout_route") or {}).get("msisdn")
            if not msisdn:
                continue
            language = self.languages.get(msisdn) if self.languages is not None else "en"
            self.outbox.enqueue(message_id, msisdn, waiting_text(w["order_id"], w["office"], int(w["hours"]), language))
            queued += 1
        return queued


def _cursor_after(row: dict) -> str:
    import base64
    import json

    position = json.dumps({"shipped_at": row["shipped_at"], "order_id": row["order_id"]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")


def _after(cursor: str) -> tuple[str, str]:
    """The (shipped_at, order_id) a waiting-list cursor names; anything else is a 400 ``invalid_cursor``."""
    import base64
    import json

    from chalicelib.errors import ValidationError

    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after = (position["shipped_at"], position["order_id"])
        if set(position) != {"shipped_at", "order_id"} or not all(isinstance(v, str) for v in after):
            raise ValueError(cursor)
        return after
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        raise ValidationError("invalid_cursor", "the cursor is not one this list gave", path="query.cursor") from None
