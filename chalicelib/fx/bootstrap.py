"""Wiring: build the FX rate source and quote service from ``Settings``.

``fx_source`` picks the rates adapter (``snapshot``: the file shipped in the package;
``http``: ``HttpRateSource(fx_url)``); ``fx_spreads``/``fx_default_spread_bps`` price the
spread and ``quote_ttl_seconds`` the expiry. Quotes live in the app table by default.
"""
from __future__ import annotations

from chalicelib.fx.quotes import QuoteService, QuoteStore
from chalicelib.fx.rates import RateSource


def build_rate_source(settings) -> RateSource:
    """The configured ``RateSource``; ``ValueError`` on a misconfiguration (a deploy bug)."""
    if settings.fx_source == "snapshot":
        from chalicelib.fx.snapshot import SnapshotRateSource

        return SnapshotRateSource()
    if settings.fx_source == "http":
        if not settings.fx_url:
            raise ValueError("MIZANI_FX_SOURCE=http needs MIZANI_FX_URL")
        from chalicelib.fx.http_source import HttpRateSource

        return HttpRateSource(settings.fx_url, timeout_seconds=settings.http_timeout_seconds)
    raise ValueError(f"MIZANI_FX_SOURCE must be 'snapshot' or 'http', not {settings.fx_source!r}")


def build_quote_service(
    settings,
    *,
    store: QuoteStore | None = None,
    rate_source: RateSource | None = None,
    clock=None,
) -> QuoteService:
    """The ``QuoteService`` for these settings; ``store``/``rate_source``/``clock`` override the
    defaults (``DynamoQuoteStore`` on ``settings.table("app")``, ``build_rate_source``, UTC now)."""
    if store is None:
        from chalicelib.fx.dynamo_store import DynamoQuoteStore

        store = DynamoQuoteStore(settings.table("app"))
    extra = {"clock": clock} if clock is not None else {}
    return QuoteService(
        rate_source if rate_source is not None else build_rate_source(settings),
        store,
        spreads=settings.fx_spreads,
        default_spread_bps=settings.fx_default_spread_bps,
        ttl_seconds=settings.quote_ttl_seconds,
        **extra,
    )
