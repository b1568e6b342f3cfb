"""Large CSV statements on a columnar engine (Polars), where it is installed.

``engine`` defines reconciliation; this module is its accelerator for big files, with
the same result (``tests/unit/test_recon_columnar.py`` holds the two to it, outcome by
outcome and cent by cent). A million-line statement spends most of its time turning
text into Python objects, one per field; Polars reads the CSV and compares the
columns in native code on every core, and only the lines that need the rules ever
become Python objects:

1. read: a plain CSV only (no quotes, every line with exactly the header's fields), so
   a record is a line and its number is its position.
2. check: every value must have one of the shapes the importer's own fast path takes
   (its ``FORMAT.fast``: ``stripe``, ``momo``, ``airtel``, ``mpesa``, ``ledger_source``); the columns with few
   distinct values (currency, status, day, provider, kind) are checked value by value with
   the importer's own functions. Anything else (a bad line, an odd but valid value)
   returns ``None``: the caller runs the pure-Python path, which decides and lists
   every bad line. This path never reports an error of its own.
3. match: a key (``kind``, ``reference``) with exactly one settled provider line and
   one ledger line of the same amount and currency is ``matched``: decided for all
   keys at once. Every other key, with all its lines on both sides, goes through
   ``engine.reconcile_chunk``, the group rules (splits, duplicates, mismatches,
   missing lines). Keys are joined on a 64-bit hash and decided on the strings: a
   collision can only send two keys to the rules, never match them.
4. add up: the matched keys' counts and settlement sums from the columns, as one chunk
   result, and the rules' chunk result: ``engine.combine``, as for any chunks.

It reads the CSV statements (Stripe's itemized balance report, MTN MoMo, Airtel Money,
M-Pesa B2C results) and the ledger's CSV export (or takes the ledger as a ``LedgerBatch`` or
``LedgerSource``).
Where it runs: the finance CLI, the local service and sandbox, ``make bench``. It is
not deployed: Polars' native library (~180 MB) does not fit beside the dependency
layer under Lambda's 250 MB, so in AWS a large statement runs as the Distributed Map
of pure-Python chunks (``distributed``). ``MIZANI_RECON_ENGINE=python`` turns it off
locally; ``columnar`` uses it whatever the size.
"""
from __future__ import annotations

import os
import time
from datetime import date
from functools import lru_cache
from operator import sub

from chalicelib.money import MAX_MINOR
from chalicelib.recon import importers, ledger_source
from chalicelib.recon.engine import ChunkResult, Reconciliation, bucket_sums, combine, reconcile_chunk
from chalicelib.recon.importers.shared import looks_like_json
from chalicelib.recon.inputs import widen
from chalicelib.recon.model import FEE, MATCHED, SETTLED, SOURCES, LedgerBatch, ProviderBatch, StatementError
from chalicelib.recon.parsing import BadLine, CsvFormat, bulk, bytes_of, currency_exp, is_plain_csv, parse_day

ENGINE_ENV = "MIZANI_RECON_ENGINE"  # auto (default) | python | columnar
MIN_BYTES = 1 << 20  # below ~15,000 lines the pure path is as fast (and needs no import of Polars)

_TOKEN = r"^[!-~]+$"  # ids: printable ASCII, no spaces (anything else: the pure path decides)
_INSTANT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z?)?$"
_DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_MINOR = r"^-?[0-9]{1,16}$"
_DECIMAL = r"^[0-9]{1,16}(\.[0-9]{1,4})?$"
_SIGNED_DECIMAL = r"^-?[0-9]{1,16}(\.[0-9]{1,4})?$"


@lru_cache(maxsize=1)
def _polars():
    try:
        import polars
    except ImportError:
        return None
    return polars


def available() -> bool:
    """Whether Polars is installed here."""
    return _polars() is not None


def wanted(source: str, content: str | bytes, min_bytes: int | None = None) -> bool:
    """Whether ``reconcile_columnar`` should be tried for this statement."""
    mode = os.environ.get(ENGINE_ENV, "auto")
    if mode == "python" or source not in _STATEMENTS or not available():
        return False
    floor = 0 if mode == "columnar" else (MIN_BYTES if min_bytes is None else min_bytes)
    return len(content) >= floor


def reconcile_columnar(source: str, content: str | bytes, ledger, *, reconciliation_id: str,
                       slack_days: int | None = None, stats: dict | None = None) -> Reconciliation | None:
    """``source`` statement ``content`` reconciled against ``ledger``; ``None`` when this path
    does not take the input (not Polars-ready, not a plain CSV, a value outside the fast shapes).

    ``ledger``: the ledger CSV export (bytes/str), a ``LedgerBatch`` or a ``LedgerSource``; only
    the provider's lines take part, and with ``slack_days`` only those of the statement's period
    widened by that many days (as ``parallel.reconcile_parallel``). ``stats``, if given, receives
    ``parse_s`` (reading and checking both sides) and ``match_s``."""
    t0 = time.perf_counter()
    pl = _polars()
    read = _STATEMENTS.get(source)
    if pl is None or read is None or looks_like_json(content):
        return None  # a JSON statement (or what the importer would read as one) is the pure path's
    export = None
    if isinstance(ledger, (bytes, bytearray, memoryview, str)):
        # the two files are read side by side (Polars releases the GIL); the period filters later
        from concurrent.futures import ThreadPoolExecutor  # a thread, not a process: only here

        with ThreadPoolExecutor(max_workers=1) as pool:
            export = pool.submit(_ledger_csv, pl, bytes_of(ledger_source.SOURCE, ledger))
            statement = read(pl, bytes_of(source, content))
            export = export.result()
        if export is None:
            return None
    else:
        statement = read(pl, bytes_of(source, content))
    if statement is None:
        return None
    P, kinds = statement
    provider = SOURCES[source]
    period = _period(P)
    window = None
    if slack_days is not None:
        if period is None:
            return None  # an empty statement: nothing for a columnar engine to do
        window = tuple(d.isoformat() for d in widen(period, slack_days))
    L = _ledger_frame(pl, ledger if export is None else export, provider, window)
    if L is None:
        return None
    t1 = time.perf_counter()
    if not _sums_fit(pl, P, [c for c in ("amt", "fee") if c in P.columns]):
        return None  # Polars adds Int64 modulo 2**64; Python's sums of such a statement do not wrap
    with bulk():
        rec = combine(_match(pl, P, kinds, L, source, provider, period), source=source,
                      reconciliation_id=reconciliation_id)
    if stats is not None:
        stats.update(engine="columnar", workers=1, parse_s=t1 - t0, match_s=time.perf_counter() - t1,
                     worker_peak_rss_mb=[])
    return rec


# -- reading and checking ------------------------------------------------------------------------

def _read(pl, fmt: CsvFormat, data: bytes, nonempty: set[str]):
    """``(frame of strings c0.., header index)`` of a plain CSV, or ``None``.

    Polars gives one row per line (a blank line is a row of empty values), so a row's line
    number is its position. A line with too many fields fails the read; one with too few
    gets empty values, which the caller's checks refuse in the ``nonempty`` columns: only
    when another column holds an empty value are the fields of every line counted.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not is_plain_csv(data):
        return None  # quotes or lone CRs: a record may span lines
    try:
        header, body = fmt.plain_header(data)
        index = fmt.header_index(header)
    except StatementError:
        return None
    width = len(header)
    columns = [f"c{i}" for i in range(width)]
    try:
        df = pl.read_csv(data, has_header=True, new_columns=columns, infer_schema=False, quote_char=None,
                         empty_string_is_null=False, raise_if_empty=False)
    except Exception:  # noqa: BLE001 - ragged lines, bad UTF-8: the pure path names the line
        return None
    if not df.height or df.width != width:
        return None
    end = len(data) - 1 if data.endswith(b"\n") else len(data)
    if data.count(b",", max(body, data.rfind(b"\n", body, end) + 1), end) != width - 1:
        return None  # Polars drops a trailing empty field on the last line: count that line's fields
    checked = {f"c{index[name]}" for name in nonempty}
    others = [c for c in columns if c not in checked]
    if others and df.select(pl.any_horizontal([pl.col(c) == "" for c in others]).any()).item():
        rows = data.count(b"\n", body) + (0 if data.endswith(b"\n") else 1)
        if rows != df.height or data.count(b",", body) != rows * (width - 1):
            return None  # a line with fewer fields than the header
    return df, index


def _distinct(df, *exprs) -> tuple[list, ...]:
    return df.select(*(e.unique().implode().alias(f"d{i}") for i, e in enumerate(exprs))).row(0)


def _scales(currencies) -> dict[str, tuple[int, int]] | None:
    """``{code: (exponent, 10 ** exponent)}``, or ``None`` if a code is not ISO 4217 with a minor unit."""
    try:
        return {code: (currency_exp(code), 10 ** currency_exp(code)) for code in currencies}
    except BadLine:
        return None


def _days_ok(days) -> bool:
    try:
        for day in days:
            parse_day(day)
    except BadLine:
        return False
    return True


def _scale_exprs(pl, cur, scale: dict):
    """The exponent and ``10 ** exponent`` of each line's currency (codes as in ``cur``)."""
    return (cur.replace_strict({c: e for c, (e, _) in scale.items()}, return_dtype=pl.Int64),
            cur.replace_strict({c: f for c, (_, f) in scale.items()}, return_dtype=pl.Int64))


def _decimal(pl, text, exp, factor, signed: bool = False):
    """``(bad, minor)`` expressions for major-unit decimal strings: exactly the currency's
    decimals, or whole units (``"1500"`` is 1500.00 GHS), at most 16 digits of minor units
    (so the arithmetic cannot overflow); ``minor`` is only valid where no line is ``bad``."""
    body = text.str.strip_prefix("-") if signed else text
    point = body.str.find(".", literal=True)
    length = body.str.len_bytes().cast(pl.Int64)
    has_point = point.is_not_null()
    bad = (~text.str.contains(_SIGNED_DECIMAL if signed else _DECIMAL)) | pl.when(has_point).then(
        (exp == 0) | (length - point - 1 != exp) | (length > 17)).otherwise(length + exp > 16)
    minor = body.str.replace(".", "", literal=True).cast(pl.Int64) * pl.when(has_point).then(1).otherwise(factor)
    if signed:
        minor = pl.when(text.str.starts_with("-")).then(-minor).otherwise(minor)
    return bad, minor


class _PayoutCsv:
    """A mobile-money payout statement: one payout a line, positive major units, a status.

    ``source``: whose importer (``importers.importer``) reads the format; its ``status_of``
    turns a status text into ``SETTLED``/... (``BadLine``: not a status, the pure path decides);
    ``status``, ``date``: the importer's canonical names of those columns; a currency column
    may be absent where the importer has a ``DEFAULT_CURRENCY``; ``ids_always``: the provider's
    transaction id is required on every line, not only on settled ones (the pure importer's
    fast path asks no less)."""

    def __init__(self, source: str, status: str, date: str, ids_always: bool = False):
        self.source, self.status, self.date = source, status, date
        self.ids_always = ids_always

    def __call__(self, pl, data: bytes):
        """``(frame, its kinds)``, or ``None``."""
        importer = importers.importer(self.source)
        default_currency = getattr(importer, "DEFAULT_CURRENCY", None)
        read = _read(pl, importer.FORMAT, data, {"reference", "amount", self.status, self.date}
                     | ({"raw_id"} if self.ids_always else set()) | ({"currency"} if not default_currency else set()))
        if read is None:
            return None
        df, index = read
        col = {name: pl.col(f"c{i}") for name, i in index.items() if i is not None}
        ref, amount, status, when, raw = (col[n] for n in ("reference", "amount", self.status, self.date, "raw_id"))
        cur = col.get("currency", pl.lit(default_currency, pl.String))
        currencies, statuses, days = _distinct(df, cur, status, when.str.slice(0, 10))
        scale = _scales(currencies)
        try:
            mapping = {text: importer.status_of(text) for text in statuses}
        except BadLine:
            return None
        if scale is None or not _days_ok(days):
            return None
        exp, factor = _scale_exprs(pl, cur, scale)
        bad_amount, minor = _decimal(pl, amount, exp, factor)
        needs_id = pl.lit(True) if self.ids_always else status.is_in([t for t, s in mapping.items() if s == SETTLED])
        bad = df.select(
            (~ref.str.contains(_TOKEN)).sum().alias("ref"),
            bad_amount.sum().alias("amount"),
            (~when.str.contains(_INSTANT)).sum().alias("date"),
            (needs_id & ~raw.str.contains(_TOKEN)).sum().alias("raw_id"),  # the provider's id, once paid
        ).row(0)
        if any(bad):
            return None
        P = df.select(
            pl.int_range(2, pl.len() + 2, dtype=pl.Int64).alias("line"), ref.alias("ref"), (-minor).alias("amt"),
            cur.alias("cur"), when.str.slice(0, 10).alias("day"), raw.alias("raw_id"),
            status.replace_strict(mapping, return_dtype=pl.String).alias("status"), pl.lit("payout").alias("kind"),
        )
        low, high = P.select(pl.col("amt").min().alias("low"), pl.col("amt").max().alias("high")).row(0)
        if high >= 0 or low < -MAX_MINOR:
            return None  # a zero amount, or beyond the platform's bounds: the pure path says which line
        return P, {"payout"}


def _stripe(pl, data: bytes):
    """Stripe's itemized balance change report (``importers.stripe``, CSV) as ``(frame, its kinds)``,
    or ``None``.

    Signed gross/fee/net with ``net = gross - fee``; the reference is the payment intent, else
    the source id, else the balance transaction id. A conversion (``customer_facing_*``) goes
    to the pure path, as in the importer's fast path."""
    from chalicelib.recon.importers import stripe

    read = _read(pl, stripe.FORMAT, data, {"raw_id", "created", "category", "currency", "gross", "fee", "net"})
    if read is None:
        return None
    df, index = read
    col = {name: pl.col(f"c{i}") for name, i in index.items() if i is not None}
    raw, created, category, cur_text = col["raw_id"], col["created"], col["category"], col["currency"]
    optional = [col[n] for n in ("payment_intent", "source_id") if n in col]
    converted = col.get("cf_currency")
    currencies, categories, days, conversions = _distinct(
        df, cur_text, category, created.str.slice(0, 10), converted if converted is not None else pl.lit(""))
    if any(conversions):
        return None
    try:
        kinds = {c: stripe.kind_of(c) for c in categories}
    except BadLine:
        return None
    upper = {c: c.upper() for c in currencies}
    scale = _scales(upper.values())
    if scale is None or not _days_ok(days):
        return None
    exp, factor = _scale_exprs(pl, cur_text, {c: scale[u] for c, u in upper.items()})
    (bad_gross, gross), (bad_fee, fee), (bad_net, net) = (
        _decimal(pl, col[n], exp, factor, signed=True) for n in ("gross", "fee", "net"))
    bad = df.select(
        (~raw.str.contains(_TOKEN)).sum().alias("raw_id"),
        *((~((c == "") | c.str.contains(_TOKEN))).sum().alias(f"ref{i}") for i, c in enumerate(optional)),
        (bad_gross | bad_fee | bad_net).sum().alias("amounts"),
        (~created.str.contains(_INSTANT)).sum().alias("created"),
    ).row(0)
    if any(bad):
        return None
    ref = raw
    for c in reversed(optional):  # the payment intent first, then the source id
        ref = pl.when(c != "").then(c).otherwise(ref)
    P = df.select(
        pl.int_range(2, pl.len() + 2, dtype=pl.Int64).alias("line"), ref.alias("ref"), gross.alias("amt"),
        cur_text.replace_strict(upper, return_dtype=pl.String).alias("cur"), created.str.slice(0, 10).alias("day"),
        raw.alias("raw_id"), pl.lit(SETTLED).alias("status"),
        category.replace_strict(kinds, return_dtype=pl.String).alias("kind"), fee.alias("fee"), net.alias("net"),
    )
    low, high, mismatched = P.select(
        pl.min_horizontal(pl.col("amt").min(), pl.col("fee").min(), pl.col("net").min()).alias("low"),
        pl.max_horizontal(pl.col("amt").max(), pl.col("fee").max(), pl.col("net").max()).alias("high"),
        (pl.col("net") != pl.col("amt") - pl.col("fee")).sum().alias("mismatched"),
    ).row(0)
    if mismatched or low < -MAX_MINOR or high > MAX_MINOR:
        return None
    return P.drop("net"), set(kinds.values())


_STATEMENTS = {
    "stripe_balance": _stripe,
    "mtn_momo": _PayoutCsv("mtn_momo", "status", "date"),
    "mpesa_b2c": _PayoutCsv("mpesa_b2c", "result_code", "completed", ids_always=True),
    "airtel_money": _PayoutCsv("airtel_money", "status", "date"),
}


def _ledger_csv(pl, data: bytes):
    """The ledger CSV export (``ledger_source``) as a frame, or ``None``."""
    read = _read(pl, ledger_source.FORMAT, data, set(ledger_source.COLUMNS))
    if read is None:
        return None
    df, index = read
    col = {name: pl.col(f"c{i}") for name, i in index.items()}
    providers, kinds, currencies, days = _distinct(df, col["provider"], col["kind"], col["currency"], col["day"])
    if not all(v and not v.isspace() for v in (*providers, *kinds)):
        return None
    try:
        for code in currencies:
            currency_exp(code)
    except BadLine:
        return None
    if not _days_ok(days):
        return None
    bad = df.select(
        (~col["reference"].str.contains(_TOKEN)).sum(),
        (~col["transfer_id"].str.contains(_TOKEN)).sum(),
        (~col["amount_minor"].str.contains(_MINOR)).sum(),
        (~col["day"].str.contains(_DAY)).sum(),
    ).row(0)
    if any(bad):
        return None
    L = df.select(col["reference"].alias("ref"), col["provider"].alias("provider"),
                  col["amount_minor"].cast(pl.Int64).alias("amt"), col["currency"].alias("cur"),
                  col["day"].alias("day"), col["kind"].alias("kind"), col["transfer_id"].alias("tid"))
    low, high = L.select(pl.col("amt").min().alias("low"), pl.col("amt").max().alias("high")).row(0)
    if high > MAX_MINOR or low < -MAX_MINOR:
        return None
    return L


def _ledger_frame(pl, ledger, provider: str, window):
    """The provider's ledger lines (within ``window``, ISO strings) as a frame, or ``None``.
    ``ledger``: the export already read (``_ledger_csv``), a ``LedgerBatch`` or a ``LedgerSource``."""
    if isinstance(ledger, pl.DataFrame):
        L = ledger.filter(pl.col("provider") == provider)
        if window is not None:
            L = L.filter(pl.col("day").is_between(pl.lit(window[0]), pl.lit(window[1])))
        return L.drop("provider")
    days = None if window is None else tuple(map(date.fromisoformat, window))
    if isinstance(ledger, LedgerBatch):
        batch = ledger.select(provider, days)
    else:  # a LedgerSource answers for the provider and the days it is asked (as the pure path trusts)
        batch = ledger_source.ledger_batch(ledger, provider, days)
    iso = {d: d.isoformat() for d in set(batch.day)}
    return pl.DataFrame({
        "ref": batch.reference, "amt": batch.amount_minor, "cur": batch.currency,
        "day": list(map(iso.__getitem__, batch.day)), "kind": batch.kind, "tid": batch.transfer_id,
    }, schema={"ref": pl.String, "amt": pl.Int64, "cur": pl.String, "day": pl.String, "kind": pl.String,
               "tid": pl.String})


def _sums_fit(pl, frame, columns: list[str]) -> bool:
    """Whether every sum of these columns over any subset of rows fits in 63 bits."""
    if not columns:
        return True
    bounds = frame.select(*(pl.col(c).abs().max().alias(c) for c in columns)).row(0)
    return all((bound or 0) * frame.height < 2 ** 63 for bound in bounds)


def _period(P) -> tuple[date, date] | None:
    if not P.height:
        return None
    first, last = P["day"].min(), P["day"].max()
    return date.fromisoformat(first), date.fromisoformat(last)


# -- matching ------------------------------------------------------------------------------------

def _hash(pl, key):
    """64-bit hash of the key strings (to find candidates; the strings decide)."""
    return key.hash(seed=1)


def _duplicated(hashes):
    """The hash values that occur more than once (sorted neighbours)."""
    s = hashes.sort()
    return s.filter(s == s.shift(1)).unique()


def _match(pl, P, kinds: set, L, source: str, provider: str, period) -> list[ChunkResult]:
    """``engine.reconcile_chunk(P, L, period=period)`` as two chunks to ``combine``: the common case
    decided in columns, and every other key through the rules (module docstring).

    ``P``: line, ref, amt, cur, day, raw_id, status, kind and, where the provider keeps fees,
    fee (``kinds``: the distinct kinds of ``P``); ``L``: ref, amt, cur, day, kind, tid (the
    provider's lines only)."""
    n_all = P.height
    settled = pl.col("status") == SETTLED
    S = P if P.select(settled.all()).item() else P.filter(settled)  # no copy when all moved money
    has_fee = "fee" in S.columns
    # the key: the reference when every line on both sides is of one kind, as engine._keys
    if len(set(L["kind"].unique().to_list()) | kinds) <= 1:
        key = pl.col("ref")
    else:
        key = pl.concat_str(pl.col("kind"), pl.lit("\x1f"), pl.col("ref"))
    S = S.with_columns(key.alias("key"), _hash(pl, key).alias("h"))
    L = L.with_columns(key.alias("key"), _hash(pl, key).alias("h"))
    joined = S.select("h", "key", "amt", "cur").join(
        L.select("h", pl.col("key").alias("l_key"), pl.col("amt").alias("l_amt"), pl.col("cur").alias("l_cur")),
        on="h", how="left")
    one_to_one = ((pl.col("key") == pl.col("l_key")) & (pl.col("amt") == pl.col("l_amt"))
                  & (pl.col("cur") == pl.col("l_cur"))).fill_null(False)
    slow = pl.concat([
        _duplicated(S["h"]), _duplicated(L["h"]),  # several lines of a key on one side
        joined.filter(~one_to_one)["h"],  # no ledger line, another amount or currency (or a collision)
        L.join(S.select("h"), on="h", how="anti")["h"],  # ledger lines no provider line claims
    ]).unique()
    Ps = S.filter(pl.col("h").is_in(slow.implode()))
    Ls = L.filter(pl.col("h").is_in(slow.implode()))
    fast = S.height - Ps.height
    if L.height - Ls.height != fast:  # pragma: no cover - one-to-one by construction
        raise AssertionError("columnar matching: fast keys are not one to one")

    days = {d: date.fromisoformat(d) for d in set(S["day"].unique().to_list()) | set(Ls["day"].unique().to_list())}
    P_slow = ProviderBatch(
        source, provider, line=Ps["line"].to_list(), reference=Ps["ref"].to_list(), amount_minor=Ps["amt"].to_list(),
        currency=Ps["cur"].to_list(), day=list(map(days.__getitem__, Ps["day"].to_list())),
        kind=Ps["kind"].to_list(), raw_id=Ps["raw_id"].to_list(), fee_minor=Ps["fee"].to_list() if has_fee else None)
    L_slow = LedgerBatch(
        reference=Ls["ref"].to_list(), provider=[provider] * Ls.height, amount_minor=Ls["amt"].to_list(),
        currency=Ls["cur"].to_list(), day=list(map(days.__getitem__, Ls["day"].to_list())),
        kind=Ls["kind"].to_list(), transfer_id=Ls["tid"].to_list())

    # the matched keys' share, a chunk of its own for engine.combine: every settled line's
    # sums less what the rules' lines started from (engine.bucket_sums), their count, their fees
    matched = ChunkResult(provider)
    matched.counts.update({MATCHED: fast, "lines": fast, "ledger_lines": fast, "not_settled": n_all - S.height})
    sums = S.group_by("cur", "day").agg(pl.col("amt").sum().alias("amt"), pl.len().alias("n"),
                                        *([pl.col("fee").sum().alias("fees")] if has_fee else []))
    for cur, day, total, count, *fee_total in sums.iter_rows():
        matched.settlement[(provider, cur, days[day])] = [total, total, fee_total[0] if fee_total else 0, count]
    for key, values in bucket_sums(provider, P_slow).items():
        matched.settlement[key] = list(map(sub, matched.settlement[key], values))
    matched.settlement = {k: v for k, v in matched.settlement.items() if any(v)}  # as engine keeps them
    if has_fee:  # matched on the gross while the provider kept a fee: classified, as engine does
        matched.classified[FEE] = int((S["fee"] != 0).sum()) - sum(map(bool, P_slow.fee_minor))
    return [matched, reconcile_chunk(P_slow, L_slow, period=period)]
