"""Virtual time: one integer of nanoseconds that only the event loop moves forward."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

#: Where every simulation starts (a Monday, so day boundaries fall at a known place).
EPOCH = datetime(2026, 12, 7, 6, 0, tzinfo=timezone.utc)
EPOCH_NS = int(EPOCH.timestamp()) * 1_000_000_000
SECOND = 1_000_000_000


class VirtualClock:
    """The services' ``clock=`` (``now``) and the ledger's ``clock_ns`` (``ns``), on simulated time."""

    def __init__(self, start_ns: int = EPOCH_NS):
        self.now_ns = start_ns
        self._cached_ns = -1
        self._cached_dt = EPOCH

    def ns(self) -> int:
        return self.now_ns

    def now(self) -> datetime:
        if self._cached_ns != self.now_ns:  # datetime arithmetic is the hot part of a clock read
            self._cached_dt = EPOCH + timedelta(microseconds=(self.now_ns - EPOCH_NS) // 1000)
            self._cached_ns = self.now_ns
        return self._cached_dt

    def seconds(self) -> float:
        """Seconds since the simulation's epoch (for the trace)."""
        return (self.now_ns - EPOCH_NS) / SECOND

    def advance_to(self, at_ns: int) -> None:
        if at_ns < self.now_ns:
            raise ValueError(f"time runs forward: {at_ns} < {self.now_ns}")
        self.now_ns = at_ns
