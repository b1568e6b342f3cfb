"""Sealed books: every transfer carries its own hash; a day is sealed by a signed Merkle root; the
verifier names any transfer altered, added or removed since."""
import hashlib
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.documents import MemoryDocuments
from chalicelib.ledger import Ledger, Transfer, TransferKind
from chalicelib.ledger.memory import MemoryLedgerStore
from chalicelib.ledger.seal import HmacSigner, MemoryDaySource, Sealer, leaf, merkle_root, transfer_hash
from chalicelib.recon.archive import MemoryArchive

DAY = "2026-11-30"
NOON_NS = 1_796_040_000 * 1_000_000_000  # 2026-11-30T12:00:00Z


@pytest.fixture
def books():
    store = MemoryLedgerStore()
    ledger = Ledger(store, clock_ns=lambda: NOON_NS)
    for account in ("psp", "escrow", "seller", "float"):
        ledger.create_account(account, "RWF")
    ledger.transfer(Transfer("pay:o1", "psp", "escrow", 1000, "RWF", code="card_payment"))
    ledger.transfer(Transfer("release:o1", "escrow", "seller", 1000, "RWF", code="escrow_release"))
    ledger.transfer(Transfer("po_o1_1", "seller", "float", 600, "RWF", TransferKind.PENDING, code="payout"))
    ledger.post("po_o1_1:post", "po_o1_1", code="payout")
    sealer = Sealer(MemoryDaySource(store), MemoryDocuments(), MemoryArchive(), HmacSigner("a secret"))
    return store, ledger, sealer


def test_every_stored_transfer_carries_the_hash_of_its_own_fields(books):
    store, ledger, _ = books
    record = ledger.get_transfer("pay:o1")
    assert record.hash == transfer_hash(record.transfer) and len(record.hash) == 64
    assert transfer_hash(replace(record.transfer, amount=1001)) != record.hash


def test_a_sealed_day_verifies_intact_and_sealing_again_changes_nothing(books):
    _, _, sealer = books
    seal = sealer.seal(DAY)
    assert seal["count"] == 4 and seal["signer"] == "hmac-sha256:local"
    assert sealer.seal(DAY) == seal
    result = sealer.verify(DAY)
    assert result.intact and result.transfers == 4


def test_an_altered_transfer_is_named_whether_or_not_its_stored_hash_was_changed_too(books):
    store, _, sealer = books
    sealer.seal(DAY)
    record = store.transfers["release:o1"]
    store.transfers["release:o1"] = replace(record, transfer=replace(record.transfer, amount=999))
    assert sealer.verify(DAY).altered == ["release:o1"]
    tampered = replace(record.transfer, credit_account_id="float")
    store.transfers["release:o1"] = replace(record, transfer=tampered, hash=transfer_hash(tampered))
    result = sealer.verify(DAY)
    assert result.altered == ["release:o1"] and not result.intact


def test_transfers_added_or_removed_after_the_seal_are_named(books):
    store, ledger, sealer = books
    sealer.seal(DAY)
    ledger.transfer(Transfer("late", "psp", "escrow", 5, "RWF"))
    del store.transfers["pay:o1"]
    result = sealer.verify(DAY)
    assert (result.added, result.removed) == (["late"], ["pay:o1"])


def test_a_seal_signed_with_another_key_or_doctored_leaves_does_not_verify(books):
    store, _, sealer = books
    sealer.seal(DAY)
    assert not Sealer(sealer.source, sealer.docs, sealer.archive, HmacSigner("another")).verify(DAY).signature_ok
    sealer.archive.put(f"seals/{DAY}.txt", b"pay:o1 " + b"0" * 64 + b"\n", "text/plain")
    assert not sealer.verify(DAY).root_ok


def test_a_day_not_sealed_says_so():
    sealer = Sealer(MemoryDaySource(MemoryLedgerStore()), MemoryDocuments(), MemoryArchive(), HmacSigner("s"))
    assert not sealer.verify(DAY).sealed
    assert sealer.seal(DAY)["root"] == hashlib.sha256(b"").hexdigest()


@given(st.lists(st.text(alphabet="abcdef0123456789", min_size=1, max_size=8), min_size=1, max_size=40, unique=True))
def test_the_merkle_root_changes_with_any_one_leaf(ids):
    leaves = [leaf(i, hashlib.sha256(i.encode()).hexdigest()) for i in ids]
    root = merkle_root(leaves)
    for n in range(len(leaves)):
        changed = leaves[:n] + [leaf(ids[n], "f" * 64)] + leaves[n + 1:]
        assert merkle_root(changed) != root
