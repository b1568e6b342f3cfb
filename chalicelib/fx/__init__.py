"""FX: rate sources, quotes (spread, expiry, lock-once) and conversion through liquidity accounts.

- ``rates``: ``Rates`` (1 base = rate units of each currency, ``Decimal`` from strings only),
  the ``RateSource`` port, cross rates through the base (USD) with ``rate()``, and
  ``rates_view()`` for ``GET /v1/fx/rates?base=XXX`` (8 significant digits, HALF_EVEN).
- adapters: ``SnapshotRateSource`` (the dated file in ``fx/data/``, the embedded default),
  ``HttpRateSource`` (urllib3: timeouts, bounded retries, TTL cache, strict validation).
- ``quotes``: ``QuoteService`` prices a quote with a per-pair spread against the client,
  rounds in the house's favour (payouts DOWN, collections UP) and records the remainder;
  ``consume()`` locks a quote at most once with one conditional write (same consumer: an
  idempotent retry; another: ``quote_already_used``; too late: ``quote_expired``).
  Stores: ``MemoryQuoteStore`` (fake) and ``DynamoQuoteStore`` (``fx.dynamo_store``).
- ``conversion``: ``conversion_transfers()``: the two linked ledger transfers through
  ``fx:<CUR>`` accounts (TigerBeetle's currency-exchange recipe).
- wiring from ``Settings`` (the rate source, the quote service) is in the one composition root, ``chalicelib/bootstrap.py``.

No chalice, stripe or boto3 import here: boto3 is reached lazily in ``dynamo_store`` and
urllib3 in ``http_source``.
"""
from chalicelib.fx.conversion import FX_LEG_CODE, conversion_transfers, fx_account_id  # noqa: F401
from chalicelib.fx.errors import (  # noqa: F401
    InvalidRates,
    QuoteAlreadyUsed,
    QuoteExpired,
    QuoteIdConflict,
    QuoteNotFound,
    RateSourceUnavailable,
    RateUnavailable,
)
from chalicelib.fx.quotes import MemoryQuoteStore, Quote, QuoteService, QuoteStore  # noqa: F401
from chalicelib.fx.rates import FixedRateSource, Rates, RateSource, parse_rates, rate, rates_view, rebase  # noqa: F401
from chalicelib.fx.snapshot import SnapshotRateSource  # noqa: F401
