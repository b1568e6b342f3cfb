"""Precision and recall of the name matching on the labelled sample (``data/labelled_sample.csv``).

    python -m chalicelib.screening.evaluate      # a table: threshold, precision, recall, misses

A query is *flagged* when the matcher returns any listed entry for it; a flag is right when the
entry the sample expects is among them. Precision = right flags / flags; recall = right flags /
queries that name a listed entry. The sample list is ``lists.sample_list()``.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass

from chalicelib.screening.lists import DATA_DIR, sample_list
from chalicelib.screening.matching import Matcher


@dataclass(frozen=True)
class Measured:
    threshold: float
    precision: float
    recall: float
    missed: tuple[str, ...]  # listed names not flagged
    wrong: tuple[str, ...]  # names flagged that should not be (or flagged as someone else)


def labelled_sample() -> list[tuple[str, str]]:
    with open(DATA_DIR / "labelled_sample.csv", newline="", encoding="utf-8") as f:
        return [(row["query"], row["expected"]) for row in csv.DictReader(f)]


def measure(threshold: float, matcher: Matcher | None = None, sample=None) -> Measured:
    matcher = matcher or Matcher(sample_list().entries)
    sample = sample or labelled_sample()
    flagged = right = positives = 0
    missed, wrong = [], []
    for query, expected in sample:
        found = {m.entry_id for m in matcher.matches(query, threshold)}
        positives += bool(expected)
        if found:
            flagged += 1
            if expected and expected in found:
                right += 1
            else:
                wrong.append(query)
        if expected and expected not in found:
            missed.append(query)
    return Measured(threshold, right / flagged if flagged else 1.0, right / positives if positives else 1.0,
                    tuple(missed), tuple(wrong))


def main() -> int:
    matcher = Matcher(sample_list().entries)
    print(f"{'threshold':>9}  {'precision':>9}  {'recall':>6}  missed / wrongly flagged")
    for threshold in (0.80, 0.82, 0.84, 0.86, 0.88, 0.90, 0.92, 0.94, 0.96):
        m = measure(threshold, matcher)
        print(f"{threshold:>9.2f}  {m.precision:>9.3f}  {m.recall:>6.3f}  {len(m.missed)} / {len(m.wrong)}"
              f"  {', '.join(m.missed[:3])} | {', '.join(m.wrong[:3])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
