"""Name matching: normalised tokens compared with Jaro-Winkler (RapidFuzz), token by token.

``normalise("Abū Bakr al-Baghdādī")`` -> ``("abu", "bakr", "al", "baghdadi")``: Unicode folded to
ASCII (NFKD, marks dropped), lower case, anything that is not a letter or digit a separator, and
the legal-form words of company names (``ltd``, ``llc``, ``co``, ...) and the Arabic articles
written apart (``al``, ``el``) left out.

``token_score(a, b)``: each token of one name is paired with the most similar token of the other
(``JaroWinkler.normalized_similarity``), both ways, and the similarities are averaged, weighted by
each side's number of tokens. Word order does not matter, a missing or extra given name lowers
the score without sinking it, a one-letter typo in a long name barely moves it.

``Matcher(entries)`` indexes every name and alias of a list by token. ``matches(name)`` finds the
list tokens within ``CANDIDATE_TOKEN_SIMILARITY`` of any of the name's tokens (RapidFuzz's
``process.extract`` over the list's distinct tokens, in C++; the ``CANDIDATE_TOKENS`` most similar
of each; tokens common to more than ``COMMON_TOKEN_POSTINGS`` names only when the name has no rarer
one), scores only the names that contain one of them, and returns those at or above ``THRESHOLD``,
best first.

The threshold, 0.88, was chosen on the labelled sample ``data/labelled_sample.csv`` (75 variants
of the sample list's names: transliterations, reordering, missing or extra names, typos, accents,
legal forms, aliases; and 78 names that are not listed, many of them sharing a given name or a
word with a listed one): at 0.88 precision is 0.987 (one of 75 flags wrong: "Dragan Petrovic"
against "Dragan Treskovic") and recall 1.000. At 0.90 a split given name ("Zhao Wen Liang") is
missed; at 0.86 four ordinary names are flagged. ``python -m chalicelib.screening.evaluate``
prints the table and a unit test holds these figures. The sample is ours and small: the figures
say the matcher does what it is meant to on the cases we thought of, not what it does on a real list.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

#: A name scoring at least this against a listed name (or alias) is a possible match: reviewed by a person.
THRESHOLD = 0.88
#: A list token this similar to one of the name's tokens makes its names candidates to score.
CANDIDATE_TOKEN_SIMILARITY = 0.82
#: At most this many of the list's tokens per token of the name (the most similar): bounds the work on a big list.
CANDIDATE_TOKENS = 40
#: A list token in more names than this ("trading", "mohammed") does not make candidates on its own (it is
#: still compared): a name's rarer tokens find its candidates, plus the names holding two of its common ones;
#: a name with no rarer token uses its common ones.
COMMON_TOKEN_POSTINGS = 200
#: Words of company names that say nothing about which company it is.
LEGAL_FORMS = frozenset("ltd limited llc inc incorporated co company corp corporation sa sarl plc gmbh ag bv".split())
#: Arabic articles written apart ("al-Harbi", "el Sayed"): the name is the same with or without them.
ARTICLES = frozenset({"al", "el"})
_SEPARATORS = re.compile(r"[^a-z0-9]+")


def normalise(name: str) -> tuple[str, ...]:
    """The name's comparable tokens (see the module doc)."""
    folded = unicodedata.normalize("NFKD", name)
    ascii_name = "".join(c for c in folded if not unicodedata.combining(c)).encode("ascii", "ignore").decode()
    tokens = [t for t in _SEPARATORS.split(ascii_name.lower()) if t]
    kept = tuple(t for t in tokens if t not in LEGAL_FORMS and t not in ARTICLES)
    return kept or tuple(tokens)


def _similarity():
    from rapidfuzz.distance import JaroWinkler  # lazy: not on the cold-start path

    return JaroWinkler.normalized_similarity


def token_score(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    """0..1: how alike two tokenised names are (see the module doc)."""
    if not a or not b:
        return 0.0
    sim = _similarity()
    forward = sum(max(sim(x, y) for y in b) for x in a)
    backward = sum(max(sim(y, x) for x in a) for y in b)
    return (forward + backward) / (len(a) + len(b))


@dataclass(frozen=True)
class Match:
    entry_id: str
    source: str
    name: str  # the listed name (or alias) that matched
    score: float
    programs: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"entry_id": self.entry_id, "list": self.source, "name": self.name, "score": round(self.score, 4),
                "programs": list(self.programs)}


class Matcher:
    """An index over a list's names and aliases (see the module doc). ``entries``: ``ListEntry``."""

    def __init__(self, entries, threshold: float = THRESHOLD):
        self.threshold = threshold
        self._variants: list[tuple[tuple[str, ...], str, object]] = []  # (tokens, the name as listed, entry)
        self._by_token: dict[str, list[int]] = {}
        for entry in entries:
            for listed in (entry.name, *entry.aliases):
                tokens = normalise(listed)
                if not tokens:
                    continue
                index = len(self._variants)
                self._variants.append((tokens, listed, entry))
                for token in set(tokens):
                    self._by_token.setdefault(token, []).append(index)
        self._tokens = list(self._by_token)

    @property
    def size(self) -> int:
        return len(self._variants)

    def matches(self, name: str, threshold: float | None = None) -> list[Match]:
        """Listed names scoring at least ``threshold`` (default ``THRESHOLD``) against ``name``, best first,
        one per list entry."""
        from rapidfuzz import process

        threshold = self.threshold if threshold is None else threshold
        query = normalise(name)
        if not query:
            return []
        scorer = _similarity()
        similar = {found for token in set(query)
                   for found, _, _ in process.extract(token, self._tokens, scorer=scorer, limit=CANDIDATE_TOKENS,
                                                      score_cutoff=CANDIDATE_TOKEN_SIMILARITY)}
        rare = {t for t in similar if len(self._by_token[t]) <= COMMON_TOKEN_POSTINGS}
        candidates: set[int] = set()
        for found in rare:
            candidates.update(self._by_token[found])
        common = similar - rare
        if common and not rare:
            for found in common:
                candidates.update(self._by_token[found])
        elif common:
            # Names made of the common tokens alone ("Mohammed Ali" in "Mohammed Xyz Ali"): those with two of them.
            seen: dict[int, int] = {}
            for found in common:
                for index in self._by_token[found]:
                    seen[index] = seen.get(index, 0) + 1
            candidates.update(index for index, times in seen.items() if times >= 2)
        best: dict[str, Match] = {}
        for index in candidates:
            tokens, listed, entry = self._variants[index]
            score = token_score(query, tokens)
            if score >= threshold and (entry.entry_id not in best or score > best[entry.entry_id].score):
                best[entry.entry_id] = Match(entry.entry_id, entry.source, listed, score, tuple(entry.programs))
        return sorted(best.values(), key=lambda m: (-m.score, m.entry_id))
