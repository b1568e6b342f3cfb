"""Ledger invariants under random operations, on the in-memory store."""
from hypothesis import settings

from chalicelib.ledger.memory import MemoryLedgerStore
from ledger_machine import make_machine

LedgerOnMemory = make_machine(MemoryLedgerStore)
LedgerOnMemory.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestLedgerOnMemory = LedgerOnMemory.TestCase
