"""Every log line of a request, a workflow task or a scheduled function: one JSON object
carrying that invocation's keys (``request_id``, ``order_id``, ``payout_id``, ...).

The keys live in a ``ContextVar`` (``scope`` opens a fresh set, ``bind`` adds to it), so the
sandbox's threads, each serving one request, never mix them. ``install`` (idempotent, first
request or task) puts one handler on the ``mizani`` logger, the parent of every ``mizani.*``
logger: Powertools' ``LambdaPowertoolsFormatter`` writes each record as JSON (level, location,
message, timestamp, service, the record's extra fields and the context's keys). Chalice's own
text handler on that logger (``mizani.api - INFO - ...``) is removed.

Nothing secret is meant to reach a log (USSD input is masked at the source, ``ussd.service
.mask_text``; headers are never logged); ``Redact`` is the net under that: a bearer or Basic
credential or a JWT in a message or a string field is replaced by ``[redacted]``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
from contextvars import ContextVar
from typing import Any, Iterator

SERVICE = "mizani"  # Chalice's app logger and the parent of every module's "mizani.<area>" logger
#: The keys an invocation may carry, in the order they are worth reading.
KEYS = ("request_id", "function", "order_id", "payout_id", "seller_id", "member_id", "dispute_id",
        "reconciliation_id", "case_id")

_context: ContextVar[dict[str, Any]] = ContextVar("mizani_log_context", default={})
_install_lock = threading.Lock()
_installed: logging.Handler | None = None


@contextlib.contextmanager
def scope(**keys: Any) -> Iterator[dict[str, Any]]:
    """A fresh set of keys for one invocation (``None`` values are left out); the previous set is
    back when the block ends."""
    token = _context.set({k: v for k, v in keys.items() if v is not None})
    try:
        yield _context.get()
    finally:
        _context.reset(token)


def bind(**keys: Any) -> None:
    """Add keys to the current invocation's set (an order id learnt from a body, a payout id)."""
    known = {k: v for k, v in keys.items() if v is not None}
    if known:
        _context.set({**_context.get(), **known})


def current() -> dict[str, Any]:
    """The current invocation's keys (a copy)."""
    return dict(_context.get())


class ContextKeys(logging.Filter):
    """Adds the current invocation's keys to every record (a key the call itself gave wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


_SECRET = (
    r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"  # an Authorization header's credential
    r"|\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"  # a JWT, wherever it appears
)


def redact(text: str) -> str:
    """``text`` with every bearer / Basic credential and JWT replaced by ``[redacted]``."""
    return re.sub(_SECRET, lambda m: f"{m.group(1)} [redacted]" if m.group(1) else "[redacted]", text)


class Redact(logging.Filter):
    """The net under the rule that no secret is logged: masks credentials in the message and in
    string fields of the record (the formatter then sees only the masked text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is the formatter's to report
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        for key, value in list(vars(record).items()):
            if isinstance(value, str) and key not in ("msg", "name", "levelname", "pathname", "filename",
                                                       "module", "funcName", "processName", "threadName"):
                masked = redact(value)
                if masked != value:
                    setattr(record, key, masked)
        return True


_routed: list = []  # a stream ``route`` sends the lines to instead of stdout (the test suite's sandbox log)


class _Stdout:
    """Whatever ``sys.stdout`` is at the time of writing (Lambda's, or a test's capture), unless
    ``route`` named another stream."""

    def write(self, text: str) -> int:
        return (_routed[-1] if _routed else sys.stdout).write(text)

    def flush(self) -> None:
        (_routed[-1] if _routed else sys.stdout).flush()


@contextlib.contextmanager
def route(stream) -> Iterator[None]:
    """Write every line to ``stream`` while the block runs (an embedded sandbox serving a test suite
    from its own threads, whose lines would otherwise land between pytest's progress dots)."""
    _routed.append(stream)
    try:
        yield
    finally:
        _routed.remove(stream)


def install(level: str | None = None) -> logging.Handler:
    """JSON on the ``mizani`` logger, once per process (first request or task); returns the handler."""
    global _installed
    if _installed is not None:
        return _installed
    with _install_lock:
        if _installed is not None:
            return _installed
        from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter  # lazily: cold start

        log = logging.getLogger(SERVICE)
        for handler in list(log.handlers):  # Chalice's "%(name)s - %(levelname)s - %(message)s" handler
            log.removeHandler(handler)
        handler = logging.StreamHandler(_Stdout())
        handler.setFormatter(LambdaPowertoolsFormatter(service=SERVICE, utc=True, name="%(name)s",
                                                       log_record_order=["level", "message", *KEYS]))
        handler.addFilter(ContextKeys())
        handler.addFilter(Redact())
        handler.mizani_json = True  # type: ignore[attr-defined]
        log.addHandler(handler)
        log.propagate = False  # as Chalice had it: a line is written once, by this handler
        log.setLevel(level or os.environ.get("MIZANI_LOG_LEVEL", "INFO"))
        _installed = handler
        return handler
