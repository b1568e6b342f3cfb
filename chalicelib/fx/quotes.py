"""Quotes: a firm price for one conversion, with a spread, an expiry, consumed at most once.

Pricing (``QuoteService.quote``)
    ``mid_rate`` = the source's mid rate for the pair, rounded HALF_EVEN to
    ``RATE_SIGNIFICANT_DIGITS`` (10) significant digits.
    ``rate`` (the client's rate) = ``mid_rate * (1 - spread_bps / 10000)`` rounded DOWN to
    10 significant digits: the spread and its rounding both go against the client.
    The client fixes exactly one side:

    - ``from_amount`` given: ``to = from * rate`` rounded DOWN (what the platform pays out);
    - ``to_amount`` given: ``from = to / rate`` rounded UP (what the platform collects).

    The amounts follow from the displayed ``rate`` alone, so anyone can check a quote from its
    own fields. ``remainder`` = exact - rounded for the computed side, in major units of
    ``remainder_currency``: >= 0 when the platform pays out less than exact, <= 0 when it
    collects more. Rounding always favours the house; the remainder is recorded, never lost.

Same-currency quotes are refused (``ValidationError`` code ``same_currency``): there is
nothing to convert and a 1:1 "quote" with a spread would only take money.

Consumption (``QuoteService.consume``) is one conditional write in the store: it succeeds
only if the quote exists, is not consumed and has not expired. A retry by the same consumer
answers the consumed quote (idempotent); anyone else gets ``quote_already_used``.
"""
from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_EVEN, Decimal, localcontext
from typing import Callable, Mapping, Protocol

from chalicelib.errors import ValidationError
from chalicelib.fx.errors import QuoteAlreadyUsed, QuoteExpired, QuoteIdConflict, QuoteNotFound
from chalicelib.fx.rates import FX_CONTEXT, RateSource, Rates, iso_utc, rate, rates_view, to_significant
from chalicelib.money import MAX_MINOR, Money, Rounding, check_currency

#: Significant digits of a quote's ``mid_rate`` and ``rate``.
RATE_SIGNIFICANT_DIGITS = 10

#: Default lifetime of a quote (``settings.quote_ttl_seconds`` overrides it).
DEFAULT_TTL_SECONDS = 30 * 60

#: An explicit quote id: letters, digits and ``_ - : .``; the store key is ``quote#<id>``.
QUOTE_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Quote:
    """A firm conversion price: ``from_money`` buys ``to_money`` at ``rate``, until ``expires_at``.

    ``fixed`` names the side the client chose (``"from"`` or ``"to"``); the other side was
    computed and rounded in the house's favour, leaving ``remainder`` (exact - rounded, major
    units of ``remainder_currency``). ``rates_as_of``/``rates_source`` record which rates
    priced it. ``consumed_by``/``consumed_at`` are set once, by ``QuoteService.consume``.
    """

    quote_id: str
    from_money: Money
    to_money: Money
    rate: Decimal  # the client's rate, spread applied: 1 from = rate to
    mid_rate: Decimal
    spread_bps: int
    fixed: str  # "from" | "to"
    remainder: Decimal
    remainder_currency: str
    created_at: datetime
    expires_at: datetime
    rates_as_of: datetime
    rates_source: str
    consumed_by: str | None = None
    consumed_at: datetime | None = None

    @property
    def from_currency(self) -> str:
        return self.from_money.currency

    @property
    def to_currency(self) -> str:
        return self.to_money.currency

    @property
    def fixed_amount(self) -> int:
        """The amount, in minor units, that the client asked for."""
        return self.from_money.minor if self.fixed == "from" else self.to_money.minor

    def request_identity(self) -> tuple:
        """What must match for a second request under the same explicit id to be the same quote."""
        return (self.from_currency, self.to_currency, self.fixed, self.fixed_amount)

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def to_json(self) -> dict:
        """The ``POST /v1/fx/quotes`` response body (API.md), plus ``created_at``."""
        return {
            "quote_id": self.quote_id,
            "from": self.from_money.to_json(),
            "to": self.to_money.to_json(),
            "rate": format(self.rate, "f"),
            "mid_rate": format(self.mid_rate, "f"),
            "spread_bps": self.spread_bps,
            "created_at": iso_utc(self.created_at),
            "expires_at": iso_utc(self.expires_at),
        }


class QuoteStore(Protocol):
    """Port: where quotes live. Each method is one atomic operation."""

    def add(self, quote: Quote) -> bool:
        """Store a new quote; ``False`` (and no write) if a quote with its id exists."""
        ...

    def get(self, quote_id: str) -> Quote | None:
        ...

    def mark_consumed(self, quote_id: str, consumer_id: str, now: datetime) -> tuple[bool, Quote | None]:
        """Atomically set ``consumed_by``/``consumed_at`` iff the quote exists, is unconsumed
        and ``expires_at > now``. Returns ``(True, consumed quote)``, or ``(False, the quote as
        it stands, or None if unknown)`` when the condition failed."""
        ...


class MemoryQuoteStore:
    """In-process ``QuoteStore`` (the fake twin of ``DynamoQuoteStore``), thread-safe."""

    def __init__(self) -> None:
        self._quotes: dict[str, Quote] = {}
        self._lock = threading.Lock()

    def add(self, quote: Quote) -> bool:
        with self._lock:
            if quote.quote_id in self._quotes:
                return False
            self._quotes[quote.quote_id] = quote
            return True

    def get(self, quote_id: str) -> Quote | None:
        return self._quotes.get(quote_id)

    def mark_consumed(self, quote_id: str, consumer_id: str, now: datetime) -> tuple[bool, Quote | None]:
        with self._lock:  # the same condition the DynamoDB adapter writes, under one lock
            found = self._quotes.get(quote_id)
            if found is None or found.consumed_by is not None or found.is_expired(now):
                return False, found
            consumed = replace(found, consumed_by=consumer_id, consumed_at=now.replace(microsecond=0))
            self._quotes[quote_id] = consumed
            return True, consumed


def _plausible_id(quote_id: object) -> bool:
    return isinstance(quote_id, str) and QUOTE_ID_RE.fullmatch(quote_id) is not None


def _check_amount(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("invalid_amount", f"{path} must be an integer of minor units", path=path)
    if value <= 0:
        raise ValidationError("invalid_amount", f"{path} must be a positive number of minor units", path=path)
    if value > MAX_MINOR:
        raise ValidationError("amount_too_large", f"{path} is at most {MAX_MINOR} minor units", path=path)
    return value


def _check_currency(value: object, path: str) -> str:
    try:
        return check_currency(value)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ValidationError(exc.code, exc.message, path=path) from None


def _check_spread(bps: object, what: str) -> int:
    if isinstance(bps, bool) or not isinstance(bps, int) or not 0 <= bps < 10_000:
        raise ValueError(f"{what} must be an integer number of basis points in [0, 10000), got {bps!r}")
    return bps


class QuoteService:
    """Prices, stores, reads and consumes FX quotes.

    ``spreads`` maps ``"FROM/TO"`` to basis points (``{"USD/RWF": 120}``); a pair configured
    only one way applies both ways; anything else uses ``default_spread_bps``. ``clock``
    returns a timezone-aware ``datetime`` (inject one in tests).
    """

    def __init__(
        self,
        rate_source: RateSource,
        store: QuoteStore,
        clock: Clock = utc_now,
        spreads: Mapping[str, int] | None = None,
        default_spread_bps: int = 50,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
    ):
        self.rate_source = rate_source
        self.store = store
        self.clock = clock
        self.default_spread_bps = _check_spread(default_spread_bps, "default_spread_bps")
        self.spreads: dict[str, int] = {}
        for pair, bps in (spreads or {}).items():
            if not isinstance(pair, str) or not re.fullmatch(r"[A-Z]{3}/[A-Z]{3}", pair):
                raise ValueError(f"a spread is keyed by 'FROM/TO', got {pair!r}")
            self.spreads[pair] = _check_spread(bps, f"the spread for {pair}")
        if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be a positive integer, got {ttl_seconds!r}")
        self.ttl_seconds = ttl_seconds

    # -- reads ------------------------------------------------------------
    def spread_bps(self, from_currency: str, to_currency: str) -> int:
        """The spread for a pair: ``FROM/TO``, else ``TO/FROM``, else the default."""
        for key in (f"{from_currency}/{to_currency}", f"{to_currency}/{from_currency}"):
            if key in self.spreads:
                return self.spreads[key]
        return self.default_spread_bps

    def rates_view(self, base: str | None = None) -> dict:
        """The body of ``GET /v1/fx/rates?base=XXX`` from the current rates (see ``rates.rates_view``)."""
        return rates_view(self.rate_source.latest(), base)

    def get(self, quote_id: str) -> Quote:
        """The quote, or ``QuoteNotFound``."""
        # An id that could never have been issued is simply unknown (and never reaches the store).
        found = self.store.get(quote_id) if _plausible_id(quote_id) else None
        if found is None:
            raise QuoteNotFound(message=f"no quote {quote_id!r}", quote_id=quote_id)
        return found

    # -- commands -----------------------------------------------------------
    def quote(
        self,
        from_currency: str,
        to_currency: str,
        from_amount: int | None = None,
        to_amount: int | None = None,
        quote_id: str | None = None,
        consumer_id: str | None = None,
    ) -> Quote:
        """Price and store a quote for exactly one of ``from_amount``/``to_amount`` (minor units).

        ``consumer_id`` (with a ``quote_id``): the quote is born locked for that consumer, in the
        same single conditional write that stores it (``consume`` in one request instead of three:
        nothing can take or expire it in between). A repeat finds the stored quote and consumes it
        as ``consume`` would (``QuoteAlreadyUsed`` for another consumer, ``QuoteExpired``).

        ``quote_id`` lets a caller derive a deterministic id (``"q_<order_id>_pay"``): asking
        again with the same id, currencies and amount returns the stored quote unchanged (its
        original rate and expiry); different currencies or amount raise ``QuoteIdConflict``.

        Raises ``ValidationError`` (``exactly_one_amount``, ``invalid_amount``,
        ``amount_too_large``, ``amount_too_small`` when the computed side rounds to zero,
        ``same_currency``, ``unknown_currency``/``unsupported_currency``, ``invalid_quote_id``)
        and ``ProviderUnavailable`` subclasses when there are no usable rates.
        """
        from_currency = _check_currency(from_currency, "from_currency")
        to_currency = _check_currency(to_currency, "to_currency")
        if from_currency == to_currency:
            raise ValidationError("same_currency", "from_currency and to_currency must differ", path="to_currency")
        if (from_amount is None) == (to_amount is None):
            raise ValidationError(
                "exactly_one_amount", "give exactly one of from_amount and to_amount", path="from_amount"
            )
        if quote_id is not None and not _plausible_id(quote_id):
            raise ValidationError(
                "invalid_quote_id", "a quote id is 1-200 characters of letters, digits and _ - : .", path="quote_id"
            )
        fixed = "from" if from_amount is not None else "to"
        fixed_amount = _check_amount(from_amount if fixed == "from" else to_amount, f"{fixed}_amount")

        if consumer_id is not None and quote_id is None:
            raise ValidationError("invalid_quote_id", "a quote born consumed needs its own id", path="quote_id")
        if quote_id is not None and consumer_id is None:
            existing = self.store.get(quote_id)
            if existing is not None:
                return self._same_request_or_conflict(existing, (from_currency, to_currency, fixed, fixed_amount))

        rates = self.rate_source.latest()
        quote = self._price(
            quote_id or f"q_{uuid.uuid4().hex}", rates, from_currency, to_currency, fixed, fixed_amount
        )
        if consumer_id is not None:
            quote = replace(quote, consumed_by=consumer_id, consumed_at=quote.created_at)
        if self.store.add(quote):
            return quote
        if consumer_id is not None:  # stored before (a retried checkout): the same request, consumed as consume() does
            existing = self.store.get(quote.quote_id)
            if existing is not None:
                self._same_request_or_conflict(existing, quote.request_identity())
                return self.consume(quote.quote_id, consumer_id)
        # Lost a race with a concurrent request under the same explicit id: the first write stands.
        existing = self.store.get(quote.quote_id)
        if existing is None:  # pragma: no cover - quotes are never deleted
            raise QuoteIdConflict(message=f"quote {quote.quote_id} could not be stored", quote_id=quote.quote_id)
        return self._same_request_or_conflict(existing, quote.request_identity())

    def consume(self, quote_id: str, consumer_id: str) -> Quote:
        """Lock the quote for ``consumer_id`` (an order id, a release step...), at most once.

        Returns the consumed quote. Consuming again with the same ``consumer_id`` returns it
        again, even after expiry (the lock was taken in time). Raises ``QuoteNotFound``,
        ``QuoteAlreadyUsed`` (another consumer holds it) or ``QuoteExpired``.
        """
        if not isinstance(consumer_id, str) or not consumer_id:
            raise ValidationError("invalid_consumer", "consumer_id must be a non-empty string", path="consumer_id")
        if not _plausible_id(quote_id):
            raise QuoteNotFound(message=f"no quote {quote_id!r}", quote_id=quote_id)
        now = self._now()
        done, current = self.store.mark_consumed(quote_id, consumer_id, now)
        if done:
            assert current is not None
            return current
        # The conditional write failed: work out which part of the condition did.
        if current is None:
            raise QuoteNotFound(message=f"no quote {quote_id!r}", quote_id=quote_id)
        if current.consumed_by == consumer_id:
            return current  # an idempotent retry of a consumption that already happened
        if current.consumed_by is not None:
            raise QuoteAlreadyUsed(message=f"quote {quote_id} is already used", quote_id=quote_id)
        raise QuoteExpired(
            message=f"quote {quote_id} expired at {iso_utc(current.expires_at)}",
            quote_id=quote_id,
            expires_at=iso_utc(current.expires_at),
        )

    # -- internals ---------------------------------------------------------------
    def _now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the quote clock must return timezone-aware datetimes")
        return now.astimezone(timezone.utc)

    def _same_request_or_conflict(self, existing: Quote, identity: tuple) -> Quote:
        if existing.request_identity() == identity:
            return existing
        raise QuoteIdConflict(
            message=f"quote {existing.quote_id} exists for a different conversion",
            quote_id=existing.quote_id,
        )

    def _price(
        self, quote_id: str, rates: Rates, from_currency: str, to_currency: str, fixed: str, fixed_amount: int
    ) -> Quote:
        spread = self.spread_bps(from_currency, to_currency)
        with localcontext(FX_CONTEXT) as ctx:
            mid = to_significant(rate(rates, from_currency, to_currency), RATE_SIGNIFICANT_DIGITS, ROUND_HALF_EVEN)
            # Against the client: fewer `to` units per `from` unit, and the rounding goes down too.
            client_rate = to_significant(
                mid * (1 - Decimal(spread) / 10_000), RATE_SIGNIFICANT_DIGITS, ROUND_DOWN
            )
            path = "from_amount" if fixed == "from" else "to_amount"
            if fixed == "from":
                from_money = Money(fixed_amount, from_currency)
                exact = from_money.to_decimal() * client_rate  # exact: the product fits in 50 digits
                rounding, remainder_currency = Rounding.DOWN, to_currency  # the platform pays out
            else:
                to_money = Money(fixed_amount, to_currency)
                # A quotient may be inexact at 50 digits: round it toward +infinity so that the
                # UP rounding below can never fall short of the true amount.
                ctx.rounding = ROUND_CEILING
                exact = to_money.to_decimal() / client_rate
                ctx.rounding = ROUND_HALF_EVEN
                rounding, remainder_currency = Rounding.UP, from_currency  # the platform collects
            try:
                computed = Money.from_decimal(exact, remainder_currency, rounding)
            except ValidationError as exc:  # amount_too_large
                raise ValidationError(exc.code, f"the converted amount: {exc.message}", path=path) from None
            if fixed == "from":
                to_money = computed
            else:
                from_money = computed
            if computed.minor <= 0:
                raise ValidationError(
                    "amount_too_small",
                    f"{Money(fixed_amount, from_currency if fixed == 'from' else to_currency)} converts to less "
                    f"than one minor unit of {remainder_currency}",
                    path=path,
                )
            remainder = exact - computed.to_decimal()
        created_at = self._now().replace(microsecond=0)
        return Quote(
            quote_id=quote_id,
            from_money=from_money,
            to_money=to_money,
            rate=client_rate,
            mid_rate=mid,
            spread_bps=spread,
            fixed=fixed,
            remainder=remainder,
            remainder_currency=remainder_currency,
            created_at=created_at,
            expires_at=created_at + timedelta(seconds=self.ttl_seconds),
            rates_as_of=rates.as_of,
            rates_source=rates.source,
        )
