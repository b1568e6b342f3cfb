"""Putting values into a translated text: money for people, and fitting a text to a limit.

``fit`` shortens only the fields it is told may shrink (names), never the others (amounts,
references), and measures in GSM 03.38 septets after ``gsm7``.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from chalicelib.i18n.gsm import gsm7, septets
from chalicelib.money import Money

#: A shortened name keeps at least this many characters (its last one a ".").
MIN_NAME_CHARS = 4


def format_money(money: Money | Mapping) -> str:
    """``1,707,447 RWF``, ``1,200.50 KES``: major units with the currency's ISO 4217 exponent,
    thousands separated by commas, the code after. Takes a ``Money`` or its JSON form."""
    if not isinstance(money, Money):
        money = Money(int(money["amount"]), str(money["currency"]))
    return money.format()


def shorten(name: str, chars: int) -> str:
    """``name`` in at most ``chars`` characters, ending in "." when cut."""
    if len(name) <= chars:
        return name
    return name[: max(chars - 1, 1)].rstrip() + "."


def fit(template: str, limit: int, fields: Mapping[str, object] | None = None, shrinkable: Iterable[str] = (),
        min_chars: int = MIN_NAME_CHARS) -> str:
    """``template.format(**fields)`` in the GSM 03.38 alphabet, at most ``limit`` septets if the
    ``shrinkable`` fields can be shortened that far (the longest first, each to ``min_chars`` at
    least); the other fields are never cut. The callers' tests prove the limit holds for their texts."""
    values = {name: gsm7(str(value)) for name, value in (fields or {}).items()}
    originals = dict(values)
    lengths = {name: len(values[name]) for name in shrinkable if name in values}
    text = gsm7(template.format(**values))
    while septets(text) > limit:
        candidates = [name for name, length in lengths.items() if length > min_chars]
        if not candidates:
            break
        # Even out: take from the longest, so that every name keeps as much as it can.
        longest = max(candidates, key=lambda name: lengths[name])
        second = max([lengths[name] for name in candidates if name != longest] + [min_chars])
        over = septets(text) - limit
        lengths[longest] -= max(1, min(over, lengths[longest] - second))
        values[longest] = shorten(originals[longest], lengths[longest])
        text = gsm7(template.format(**values))
    return text
