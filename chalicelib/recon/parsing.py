"""Strict, fast parsing shared by the importers.

Two paths, one meaning. The *fast path* checks and converts a whole block of
CSV rows column by column with builtin iterator pipelines (``map``, ``set``,
``str`` methods running in C), which is what lets a million-line statement load
in pure Python. Whenever any check of a block fails, the block goes through the
*slow path*: row by row, with the exact rules (``Money.parse`` for amounts),
collecting every bad line with its number and reason. For well-formed input
both paths give the same values; a property test holds them to it.
"""
from __future__ import annotations

import csv
import gc
import io
import re
from bisect import bisect_right
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from itertools import compress, islice, repeat
from operator import and_, eq, gt, itemgetter, le, ne
from typing import Callable, Sequence

from chalicelib.errors import ValidationError
from chalicelib.money import MAX_MINOR, Money, exponent
from chalicelib.recon.model import StatementError

BLOCK_ROWS = 4096  # rows per block through the csv module
CHUNK_BYTES = 256 * 1024  # bytes per block of a CSV without quotes (small blocks stay in cache)
MAX_ERRORS = 100_000  # stop collecting (but keep counting) past this many bad lines


@contextmanager
def bulk():
    """Pause the cyclic garbage collector while millions of acyclic objects are made.

    Building a million-line statement otherwise triggers dozens of full collections,
    each walking every object built so far; nothing made here can form a cycle.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class BadLine(Exception):
    """One line is malformed; the message says why."""


class Errors:
    """Every bad line of a file: ``(line, reason)``."""

    def __init__(self, source: str):
        self.source = source
        self.items: list[tuple[int, str]] = []
        self.total = 0

    def add(self, line: int, reason: str) -> None:
        self.total += 1
        if len(self.items) < MAX_ERRORS:
            self.items.append((line, reason))

    def raise_if_any(self) -> None:
        if self.total:
            raise StatementError(self.source, self.items, self.total)


def text_of(source: str, content: str | bytes) -> str:
    """The statement as text: bytes are UTF-8 (a BOM is dropped), anything else is an error."""
    if isinstance(content, (bytes, bytearray, memoryview)):
        try:
            content = bytes(content).decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line = bytes(content)[: e.start].count(b"\n") + 1
            raise StatementError(source, [(line, f"not UTF-8 text (byte {e.start})")]) from None
    elif not isinstance(content, str):
        raise StatementError(source, [(0, "the statement must be text")])
    return content[1:] if content.startswith("\ufeff") else content


def bytes_of(source: str, content: str | bytes) -> bytes:
    """The statement as bytes, as given (text is UTF-8 encoded); anything else is an error."""
    if isinstance(content, str):
        return content.encode("utf-8", "surrogatepass")
    if isinstance(content, (bytes, bytearray, memoryview)):
        return bytes(content)
    raise StatementError(source, [(0, "the statement must be text")])


def _line_of_byte(data: bytes, error: UnicodeDecodeError) -> int:
    """The line of the first byte that is not UTF-8 (the decoder only knows its offset in a chunk)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return data[: e.start].count(b"\n") + 1
    return 0


# -- single values (the slow path's exact rules) -----------------------------------------------

_CURRENCY_EXP: dict[str, int] = {}


def currency_exp(code: str) -> int:
    """Exponent of an ISO 4217 code with a minor unit; ``BadLine`` otherwise."""
    exp = _CURRENCY_EXP.get(code)
    if exp is None:
        try:
            exp = exponent(code)
        except ValidationError:
            raise BadLine(f"currency {code!r} is not an ISO 4217 code") from None
        _CURRENCY_EXP[code] = exp
    return exp


def parse_currency(text: str | None, upper: bool = False) -> str:
    if not text:
        raise BadLine("currency is empty")
    code = text.strip().upper() if upper else text.strip()
    currency_exp(code)
    return code


def parse_decimal(text: str | None, currency: str, what: str = "amount") -> int:
    """Major-unit decimal string to minor units, exactly (``Money.parse``)."""
    if text is None or text == "":
        raise BadLine(f"{what} is empty")
    try:
        return Money.parse(text, currency).minor
    except ValidationError as e:
        raise BadLine(f"{what} {text!r}: {e.message}") from None


def parse_minor(value, what: str = "amount") -> int:
    """An integer of minor units (JSON number or digits), within the platform's bounds."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadLine(f"{what} {value!r} is not an integer of minor units")
    if isinstance(value, str):
        if not re.fullmatch(r"-?\d{1,20}", value.strip()):
            raise BadLine(f"{what} {value!r} is not an integer of minor units")
        value = int(value)
    if abs(value) > MAX_MINOR:
        raise BadLine(f"{what} {value} is beyond {MAX_MINOR} minor units")
    return value


_DAY_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INSTANT_RE = re.compile(
    r"(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(Z|z|[+-]\d{2}:?\d{2})?)?"
)
_TIME_RE = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d")
_DAYS: dict[str, date] = {}


def parse_day(text: str) -> date:
    """``YYYY-MM-DD`` (strict: no week dates, no compact forms)."""
    day = _DAYS.get(text)
    if day is None:
        if not _DAY_RE.fullmatch(text):
            raise BadLine(f"date {text!r} is not YYYY-MM-DD")
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise BadLine(f"date {text!r} does not exist") from None
        if len(_DAYS) < 100_000:
            _DAYS[text] = day
    return day


def parse_instant_day(text: str | None, what: str = "date") -> date:
    """The UTC day of an ISO 8601 date or date-time (no offset means UTC)."""
    if not text:
        raise BadLine(f"{what} is empty")
    text = text.strip()
    m = _INSTANT_RE.fullmatch(text)
    if not m:
        raise BadLine(f"{what} {text!r} is not an ISO 8601 date or date-time")
    if m.group(2) is None:
        return parse_day(m.group(1))
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise BadLine(f"{what} {text!r} is not a valid date-time") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.date()


def day_of_unix(value, what: str = "created") -> date:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 253402300800:
        raise BadLine(f"{what} {value!r} is not a unix timestamp in seconds")
    return datetime.fromtimestamp(value, tz=timezone.utc).date()


def require(value: str | None, what: str) -> str:
    if value is None or value.strip() == "":
        raise BadLine(f"{what} is empty")
    return value


# -- whole columns (the fast path: C-speed checks; None means "use the slow path") ------------

def fast_currencies(col: Sequence[str], upper: bool = False) -> tuple[list[str], int] | None:
    """Canonical currency codes of a column and their common exponent, or ``None``."""
    canon = {}
    exps = set()
    for code in set(col):
        c = code.upper() if upper else code
        try:
            exps.add(currency_exp(c))
        except BadLine:
            return None
        canon[code] = c
    if len(exps) > 1:
        return None  # mixed exponents (RWF and USD in one block): the slow path converts line by line
    if len(canon) == 1:
        return [canon.popitem()[1]] * len(col), exps.pop()
    return list(map(canon.__getitem__, col)), (exps.pop() if exps else 2)


def fast_amounts(col: Sequence[str], exp: int, *, positive: bool = False, negate: bool = False) -> list[int] | None:
    """Decimal strings to minor units, or ``None``: all with exactly ``exp`` decimals, or all whole units.

    Accepts exactly what ``Money.parse`` accepts in the canonical form providers
    write (``-?digits[.exp digits]``); anything else (spaces, fewer decimals,
    ``1500.00`` for a zero-decimal currency) goes to the slow path, which decides.
    The checks and the edits run on the column joined into one string, and ``int``
    does the rest: once spaces, ``+`` and ``_`` are ruled out it accepts only
    ``-?digits``. ``negate`` (payouts: positive on the statement, negative for us)
    requires positive values.
    """
    if not col:
        return []
    joined = ",".join(col)  # the separator lets ",." spot a value that starts with its point
    if not joined.isascii() or any(ch in joined for ch in _INT_LENIENCY):
        return None
    if not all(col) or "-," in joined + "," or (negate and "-" in joined):
        return None  # an empty value, a lone "-" (the edits below would make them "00"), a sign to flip
    n = len(col)
    dots = joined.count(".")
    try:
        if dots == 0:
            text = (joined + ",").replace(",", "0" * exp + ",")[:-1] if exp else joined  # whole units ("8000" KES)
        elif exp == 0 or dots != n or "-." in joined or ",." in joined or joined.startswith("."):
            return None  # "1500.00" RWF, "-.5", ".50", mixed forms: the slow path decides
        else:
            # each value has a point exp places from its end; as there are n points, exactly one each
            if any(map(ne, map(itemgetter(-exp - 1), col), repeat("."))):
                return None
            text = joined.replace(".", "")
        if negate:
            text = "-" + text.replace(",", ",-")
        values = list(map(int, text.split(",")))
    except (ValueError, IndexError):  # IndexError: a value shorter than its decimals
        return None
    if len(values) != n:
        return None
    low, high = min(values), max(values)
    if high > MAX_MINOR or low < -MAX_MINOR:
        return None
    if positive and (high >= 0 if negate else low <= 0):
        return None
    return values


_INT_LENIENCY = (" ", "\t", "\n", "\r", "\x0b", "\x0c", "_", "+")  # what int() would accept beyond -?digits
_slice_day = itemgetter(slice(0, 10))
_slice_sep = itemgetter(slice(10, 11))
_slice_time = itemgetter(slice(11, 19))
_slice_tail = itemgetter(slice(19, None))
_DIGITS_TO_9 = bytes.maketrans(b"0123456789", b"9999999999")
_SHAPES = {
    b"9999-99-99", b"9999-99-99T99:99:99", b"9999-99-99 99:99:99", b"9999-99-99T99:99:99Z", b"9999-99-99 99:99:99Z",
}


class _DayMap(dict):
    """``"YYYY-MM-DD"`` -> ``date``, parsing each distinct day once (``BadLine`` if invalid)."""

    def __missing__(self, key: str) -> date:
        day = self[key] = parse_day(key)
        return day


def fast_instant_days(col: Sequence[str], date_only: bool = False) -> list[date] | None:
    """UTC days of ``YYYY-MM-DD[(T| )HH:MM:SS[Z]]`` values (``YYYY-MM-DD`` only with ``date_only``),
    or ``None`` (offsets, fractions, anything odd: the slow path)."""
    if not col:
        return []
    width = len(col[0])
    if date_only and width != 10:
        return None
    try:
        data = "".join(col).encode("ascii")
    except UnicodeEncodeError:
        return None
    shape = data.translate(_DIGITS_TO_9)
    n = len(col)
    if len(data) != width * n or shape[:width] not in _SHAPES or shape != shape[:width] * n:
        return None if date_only else fast_instant_days_mixed(col)  # not one uniform shape
    if width > 10:
        # every value is 20 (or 19) bytes wide: the time digits sit at fixed strides
        hours, hours2 = data[11::width], data[12::width]
        if max(hours) > 50 or max(data[14::width]) > 53 or max(data[17::width]) > 53:  # '2', '5', '5'
            return None
        if 50 in hours and any(map(and_, map(eq, hours, repeat(50)), map(gt, hours2, repeat(51)))):  # 24..29
            return None
    days = _DayMap()
    try:
        if all(map(le, col, islice(col, 1, None))):
            # In time order (one shape, so text order is time order), as statements come:
            # each day is a run found by bisection, no slicing of every value.
            out: list[date] = []
            start = 0
            while start < n:
                head = col[start][:10]
                end = bisect_right(col, head + "\x7f", start)
                out += [days[head]] * (end - start)
                start = end
            return out
        return list(map(days.__getitem__, map(_slice_day, col)))
    except BadLine:
        return None


def fast_instant_days_mixed(col: Sequence[str]) -> list[date] | None:
    """As ``fast_instant_days`` for columns mixing those shapes (one C pass per check)."""
    if not col:
        return []
    lengths = set(map(len, col))
    if not lengths <= {10, 19, 20}:
        return None
    if lengths != {10}:
        if not set(map(_slice_sep, col)) <= {"", "T", " "} or not set(map(_slice_tail, col)) <= {"", "Z"}:
            return None
        times = set(map(_slice_time, col))
        times.discard("")
        if not all(map(_TIME_RE.fullmatch, times)):
            return None
    days = _DayMap()
    try:
        return list(map(days.__getitem__, map(_slice_day, col)))
    except BadLine:
        return None


def fast_required(col: Sequence[str]) -> bool:
    """No empty value (whitespace-only counts as empty)."""
    return all(col) and not any(map(str.isspace, col))


# -- CSV ------------------------------------------------------------------------------------

class CsvFormat:
    """A CSV statement format: its columns and how a block and a row become line values.

    ``columns`` maps a canonical name to the header names accepted for it (compared
    case-insensitively, surrounding spaces ignored); names in ``optional`` may be
    absent. ``fast(cols, n)`` gets the raw column tuples of a block (``None`` for an
    absent optional column) and returns the output columns, or ``None`` to send the
    block to the slow path. ``slow(get)`` gets one row as ``{canonical: text}`` and
    returns the output values in ``outputs`` order, raising ``BadLine``.
    """

    def __init__(self, source: str, columns: dict[str, tuple[str, ...]], optional: set[str],
                 outputs: tuple[str, ...], fast: Callable, slow: Callable):
        self.source = source
        self.columns = columns
        self.optional = optional
        self.outputs = outputs
        self.fast = fast
        self.slow = slow

    def read(self, content: str | bytes) -> tuple[Sequence[int], dict[str, list]]:
        """Every line's values as columns, and the line numbers; ``StatementError`` lists all bad lines."""
        with bulk():
            return self._read(content)

    def _read(self, content: str | bytes) -> tuple[Sequence[int], dict[str, list]]:
        data = bytes_of(self.source, content)
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        errors = Errors(self.source)
        if not is_plain_csv(data):
            header, blocks = self._csv_blocks(data, errors)  # quotes or lone CRs: the csv module decides
        else:
            header, body = self.plain_header(data)
            blocks = lambda width: self._plain_blocks(data, errors, body, len(data), 2, width)  # noqa: E731
        if not header or header == [""]:
            raise StatementError(self.source, [(1, "the file is empty: no header line")])
        index = self.header_index(header)
        lines, out = self._convert(blocks(len(header)), index, len(header), errors)
        errors.raise_if_any()
        return lines, out

    # -- byte ranges (several processes parse one file, see ``chalicelib.recon.parallel``) --

    def split(self, data: bytes, parts: int) -> list[tuple[int, int, int]] | None:
        """``parts`` byte ranges ``(start, end, first line number)`` of the records of a plain CSV,
        cut at line boundaries, for ``read_range``; ``None`` when the file is not plain (quotes,
        lone CRs: a record may span lines, only the csv module reading from the top can tell).

        The header is checked here (``StatementError`` as ``read`` would raise it)."""
        if not is_plain_csv(data):
            return None
        header, body = self.plain_header(data)
        if not header or header == [""]:
            raise StatementError(self.source, [(1, "the file is empty: no header line")])
        self.header_index(header)
        size = len(data)
        cuts = [body]
        for k in range(1, parts):
            target = body + (size - body) * k // parts
            end = data.find(b"\n", max(target - 1, cuts[-1]))
            cuts.append(size if end < 0 else end + 1)
        cuts.append(size)
        ranges, line = [], 2
        for start, end in zip(cuts, cuts[1:]):
            ranges.append((start, end, line))
            line += data.count(b"\n", start, end)
        return ranges

    def read_range(self, data: bytes, start: int, end: int, line: int) -> tuple[Sequence[int], dict[str, list], "Errors"]:
        """The records in ``data[start:end]`` (whole lines of a plain CSV, the first one numbered
        ``line``), as ``read`` converts them; bad lines are returned in ``Errors``, not raised."""
        header, _body = self.plain_header(data)
        index = self.header_index(header)
        errors = Errors(self.source)
        with bulk():
            lines, out = self._convert(self._plain_blocks(data, errors, start, end, line, len(header)), index,
                                       len(header), errors)
        return lines, out, errors

    def _convert(self, blocks, index, width, errors: Errors) -> tuple[Sequence[int], dict[str, list]]:
        out = {name: [] for name in self.outputs}
        pieces: list[Sequence[int]] = []
        for cols, rows, numbers in blocks:
            converted = None
            if cols is not None:
                raw = {name: (cols[i] if i is not None else None) for name, i in index.items()}
                converted = self.fast(raw, len(numbers))
                if converted is None:
                    rows = list(zip(*cols))
            elif rows:
                widths = set(map(len, rows))
                if 0 in widths:  # blank lines are not records: drop them, keep the numbering
                    keep = list(map(bool, rows))
                    rows = list(compress(rows, keep))
                    numbers = list(compress(numbers, keep))
                    widths.discard(0)
                if rows and widths == {width}:
                    cols = list(zip(*rows))
                    raw = {name: (cols[i] if i is not None else None) for name, i in index.items()}
                    converted = self.fast(raw, len(rows))
            if not rows and converted is None:
                continue
            if converted is None:
                converted = self._slow_block(rows, numbers, index, width, errors)
                numbers = converted.pop("__lines__")
            for name in self.outputs:
                out[name].extend(converted[name])
            pieces.append(numbers)
        return concat_lines(pieces), out

    def plain_header(self, data: bytes) -> tuple[list[str], int]:
        """The header of a CSV without quotes (a UTF-8 BOM skipped) and where its records start."""
        skip = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        newline = data.find(b"\n", skip)
        head = data[skip:] if newline < 0 else data[skip:newline]
        try:
            header = head.rstrip(b"\r").decode("utf-8").split(",")
        except UnicodeDecodeError:
            raise StatementError(self.source, [(1, "not UTF-8 text")]) from None
        return header, (len(data) if newline < 0 else newline + 1)

    def _plain_blocks(self, data: bytes, errors: Errors, pos: int, size: int, line: int, width: int):
        """A CSV without quotes: records are lines and fields are what lies between commas, so
        blocks of lines are split with ``str.split`` (C speed, no per-row list), each block's
        field counts checked line by line first."""
        while pos < size:
            end = data.find(b"\n", min(pos + CHUNK_BYTES, size) - 1, size)
            end = size if end < 0 else end + 1
            raw, pos = data[pos:end], end
            try:
                chunk = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                errors.add(line + raw[: e.start].count(b"\n"), "not UTF-8 text")
                line += raw.count(b"\n")
                continue
            lines = chunk.split("\n")
            if lines[-1] == "":
                lines.pop()
            if "\r" in chunk:
                lines = list(map(str.removesuffix, lines, repeat("\r")))
            numbers = range(line, line + len(lines))
            line += len(lines)
            if not all(map(eq, map(str.count, lines, repeat(",")), repeat(width - 1))):
                yield None, list(csv.reader(lines)), numbers  # a short or long line: row by row
                continue
            fields = ",".join(lines).split(",")
            yield [fields[k::width] for k in range(width)], None, numbers

    def _csv_blocks(self, data: bytes, errors: Errors):
        """Any CSV, through the csv module (quoted fields may span lines: numbers tracked per record)."""
        stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="")
        reader = csv.reader(stream, strict=True)
        try:
            header = next(reader, None)
        except csv.Error as e:
            raise StatementError(self.source, [(1, f"unreadable CSV header: {e}")]) from None
        except UnicodeDecodeError:
            raise StatementError(self.source, [(1, "not UTF-8 text")]) from None

        def blocks(width: int):
            while True:
                rows, numbers = [], []
                try:
                    for row in islice(reader, BLOCK_ROWS):
                        rows.append(row)
                        numbers.append(reader.line_num)
                except csv.Error as e:
                    errors.add(reader.line_num, f"unreadable CSV: {e}")
                    return
                except UnicodeDecodeError as e:
                    errors.add(_line_of_byte(data, e), "not UTF-8 text")
                    return
                if not rows:
                    return
                yield None, rows, numbers

        return header, blocks

    def header_index(self, header: list[str]) -> dict[str, int | None]:
        """Each canonical column's position in ``header`` (``None``: an absent optional one);
        ``StatementError`` on line 1 when a required column is missing."""
        names = [h.strip().lower() for h in header]
        if names and names[0].startswith("\ufeff"):
            names[0] = names[0][1:]
        index: dict[str, int | None] = {}
        missing = []
        for canonical, accepted in self.columns.items():
            found = next((names.index(a) for a in accepted if a in names), None)
            if found is None and canonical not in self.optional:
                missing.append(accepted[0])
            index[canonical] = found
        if missing:
            raise StatementError(self.source, [(1, f"missing column{'s' if len(missing) > 1 else ''} "
                                                   f"{', '.join(missing)} (header: {', '.join(header)})")])
        return index

    def _slow_block(self, rows, numbers, index, width, errors: Errors) -> dict[str, list]:
        out = {name: [] for name in self.outputs}
        kept = []
        appenders = [out[name].append for name in self.outputs]
        for row, number in zip(rows, numbers):
            if len(row) != width:
                errors.add(number, f"expected {width} fields, found {len(row)}")
                continue
            get = {name: (row[i] if i is not None else None) for name, i in index.items()}
            try:
                values = self.slow(get)
            except BadLine as e:
                errors.add(number, str(e))
                continue
            for append, value in zip(appenders, values):
                append(value)
            kept.append(number)
        out["__lines__"] = kept
        return out


def is_plain_csv(data: bytes) -> bool:
    """No quotes and no lone CRs: every record is one line, every field lies between commas."""
    return b'"' not in data and (b"\r" not in data or data.count(b"\r") == data.count(b"\r\n"))


def concat_lines(pieces: list[Sequence[int]]) -> Sequence[int]:
    """Line numbers of consecutive blocks: one ``range`` when they are contiguous, else a list."""
    if all(isinstance(p, range) for p in pieces):
        pieces = [p for p in pieces if len(p)]
        if not pieces:
            return range(0)
        if all(a.stop == b.start for a, b in zip(pieces, pieces[1:])):
            return range(pieces[0].start, pieces[-1].stop)
    out: list[int] = []
    for p in pieces:
        out.extend(p)
    return out


def collect(errors: list[str], fn: Callable, *args):
    """Run one field's conversion; on ``BadLine`` note the reason and return ``None``."""
    try:
        return fn(*args)
    except BadLine as e:
        errors.append(str(e))
        return None


def eat_day_of(text: str | None, what: str) -> date:
    """M-Pesa's ``dd.mm.yyyy HH:MM:SS`` (Nairobi time, UTC+3) or ISO 8601, as a UTC day."""
    if text and re.fullmatch(r"\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}:\d{2}", text.strip()):
        try:
            local = datetime.strptime(text.strip(), "%d.%m.%Y %H:%M:%S")
        except ValueError:
            raise BadLine(f"{what} {text!r} is not a valid date-time") from None
        return (local - timedelta(hours=3)).date()
    return parse_instant_day(text, what)
