"""Trust: sanctions screening time per name against a 20,000-entry list, and the daily seal's time
per 100,000 transfers (in-memory stores: the arithmetic, not DynamoDB's latency).

The list is synthetic, in the shapes of the real ones: 20,000 entries (individuals with two to four
names, a third with an alias; entities of two to four words) whose names are random syllables,
indexed with the matcher the service uses. The names screened are a third listed names (reordered,
one letter changed) and the rest ordinary names of farmers, co-operatives and buyers. The transfers are 100,000
posted transfers of one day, each with its hash computed and stored as the stores do.
"""
from __future__ import annotations

import random
import statistics
import time

from bench.common import row

SYLLABLES = ("ba be bi bo bu da de di do du fa fe fi fo ga go gu ha he hi ho ka ke ki ko ku la le li lo lu ma me mi mo "
             "mu na ne ni no nu ra re ri ro ru sa se si so su ta te ti to tu va vo wa we ya yo za zi kha sha "
             "dra tro bri kla").split()
#: Ordinary names of sellers, members and buyers: not how the synthetic list's names are made.
ORDINARY = ("Mukamana Claudine", "Habimana Jean-Baptiste", "Uwimana Francoise", "Niyonzima Eric", "Wanjiru Kamau",
            "Otieno Odhiambo", "Nakato Sarah", "Kwame Mensah", "Wang Fang", "Li Wei", "Zhang Xiuying",
            "Kivu Hills Coffee Co-operative", "Nyeri Hill Farmers Cooperative Society", "Shanghai Morning Roasters Co Ltd",
            "Bugisu Cooperative Union", "Grace Namukasa", "Samuel Kiprop", "Beatrice Akinyi", "Pascal Nkurunziza")


def _word(rng, low: int = 2, high: int = 4) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(low, high)))


def synthetic_list(n: int, seed: int = 13):
    """``n`` entries shaped like the real lists' (see the module doc), names made of random syllables."""
    from chalicelib.screening.lists import ListEntry

    rng = random.Random(seed)
    entries = []
    for i in range(n):
        if rng.random() < 0.75:
            family, given = _word(rng).upper(), [_word(rng).title() for _ in range(rng.randint(1, 3))]
            aliases = (f"{given[0]} {_word(rng).title()} {family.title()}",) if rng.random() < 0.33 else ()
            entries.append(ListEntry(f"ofac:{i}", "OFAC SDN", f"{family}, {' '.join(given)}", aliases, "individual"))
        else:
            words = " ".join(_word(rng, 2, 3).upper() for _ in range(rng.randint(2, 4)))
            entries.append(ListEntry(f"un:{i}", "UN", f"{words} TRADING LTD", (), "entity"))
    return entries


def queries(entries, n: int, seed: int = 7) -> list[str]:
    """A third listed names (reordered, one letter changed), the rest ordinary names."""
    rng = random.Random(seed)
    names = []
    for _ in range(n):
        if rng.random() < 0.3:
            tokens = rng.choice(entries).name.replace(",", "").split()
            rng.shuffle(tokens)
            t = rng.randrange(len(tokens))
            if len(tokens[t]) > 4:
                tokens[t] = tokens[t][:-1] + ("x" if tokens[t][-1] != "x" else "y")
            names.append(" ".join(tokens))
        else:
            names.append(rng.choice(ORDINARY))
    return names


def bench_screening() -> None:
    from chalicelib.screening.matching import THRESHOLD, Matcher

    entries = synthetic_list(20_000)
    started = time.perf_counter()
    matcher = Matcher(entries)
    built = time.perf_counter() - started
    names = queries(entries, 300)
    timings, hits = [], 0
    for name in names:
        t0 = time.perf_counter()
        hits += bool(matcher.matches(name))
        timings.append(time.perf_counter() - t0)
    timings.sort()
    row(f"list: 20,000 entries, {matcher.size:,} names and aliases indexed", f"{built:.2f} s to index")
    row(f"screening one name (threshold {THRESHOLD}), median", f"{statistics.median(timings) * 1000:.1f} ms")
    row("screening one name, p95", f"{timings[int(len(timings) * 0.95)] * 1000:.1f} ms")
    row("names screened / flagged (about a third are listed names, altered)", f"{len(names)} / {hits}")


def bench_seal() -> None:
    from chalicelib.documents import MemoryDocuments
    from chalicelib.ledger import Transfer, TransferKind
    from chalicelib.ledger.memory import MemoryLedgerStore
    from chalicelib.ledger.model import TransferRecord
    from chalicelib.ledger.seal import HmacSigner, MemoryDaySource, Sealer, transfer_hash
    from chalicelib.recon.archive import MemoryArchive

    day_ns = 1_796_040_000 * 1_000_000_000
    store = MemoryLedgerStore()
    started = time.perf_counter()
    for i in range(100_000):
        t = Transfer(f"t{i:06d}", "psp", f"escrow:o{i}", 100 + i % 997, "RWF", TransferKind.POSTED, code="card_payment",
                     reference=f"pi_{i}", timestamp=day_ns + i * 1_000_000)
        store.transfers[t.transfer_id] = TransferRecord(t, hash=transfer_hash(t))
    hashed = time.perf_counter() - started
    sealer = Sealer(MemoryDaySource(store), MemoryDocuments(), MemoryArchive(), HmacSigner("bench"))
    t0 = time.perf_counter()
    seal = sealer.seal("2026-11-30")
    sealed = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = sealer.verify("2026-11-30")
    verified = time.perf_counter() - t0
    assert result.intact and seal["count"] == 100_000
    row("hashing 100,000 transfers as they are written", f"{hashed:.2f} s ({hashed * 10:.1f} µs each)")
    row("sealing a day of 100,000 transfers (Merkle root, leaves, HMAC)", f"{sealed:.2f} s")
    row("verifying it (every hash again, the root, the signature)", f"{verified:.2f} s")


def main() -> None:
    bench_screening()
    bench_seal()


if __name__ == "__main__":
    main()
