"""The reconciliation service the API calls: submit a statement, read the result back, export breaks.

A statement comes inline or as an S3 key; it is kept in the archive (``stored``), reconciled
in this process (``service.reconcile_statement``) or, when large, handed to
``distributed.LargeStatements`` (the Distributed Map in AWS), and the result is stored where
``page`` and ``breaks_csv`` read it.
"""
from __future__ import annotations

from chalicelib.errors import NotFound
from chalicelib.recon.engine import Reconciliation, breaks_offset
from chalicelib.recon.stored import count_breaks, load_reconciliation, save_reconciliation, statement_key


class Reconciliations:
    """Submit a statement, read a reconciliation back (paged), export its breaks."""

    def __init__(self, archive, ledger_source, page_size: int = 100, large=None, runs=None):
        self.runs = runs  # runs.ReconciliationRuns: the list of runs (GET /v1/reconciliations), or None
        self.archive = archive
        self.ledger_source = ledger_source
        self.page_size = page_size
        self.large = large  # distributed.LargeStatements: statements too large for one process

    def submit(self, source: str, content: str | None = None, s3_key: str | None = None,
               period: tuple | None = None) -> dict:
        """Reconcile a statement given inline or by S3 key. The same statement again gets the
        same id and overwrites its earlier result with the current ledger's answer.

        ``period``: ``(first, last)`` days the statement covers, when the caller says so (an
        empty statement then reconciles against the ledger of those days); part of the id."""
        from chalicelib.errors import ValidationError
        from chalicelib.recon.service import reconcile_statement

        if (content is None) == (s3_key is None):
            raise ValidationError("validation_error", "give exactly one of content and s3_key", path="content")
        if s3_key is not None:
            data = self.archive.get(s3_key)
            if data is None:
                raise NotFound("not_found", f"no statement at {s3_key}")
            try:
                content = data.decode("utf-8", errors="strict")
            except UnicodeDecodeError:
                raise ValidationError("validation_error", f"the statement at {s3_key} is not UTF-8 text",
                                      path="s3_key") from None
        else:
            s3_key = statement_key(source, content)
            self.archive.put(s3_key, content.encode(), "text/plain")
        if self.large is not None:
            reply = self.large.submit(source, content, self.page_size, key=s3_key, period=period)  # None: small
            if reply is not None:
                if self.runs is not None:
                    self.runs.record(reply)
                return reply
        rec = reconcile_statement(source, content, self.ledger_source, period=period)
        save_reconciliation(self.archive, rec)
        count_breaks(rec)
        if self.runs is not None:
            self.runs.record({}, rec)
        return rec.to_json(1, self.page_size)

    def load(self, reconciliation_id: str) -> Reconciliation:
        rec = load_reconciliation(self.archive, reconciliation_id)
        if rec is None:
            raise NotFound("not_found", "no such reconciliation")
        return rec

    def page(self, reconciliation_id: str, page: int = 1, limit: int | None = None, cursor: str | None = None) -> dict:
        """One page of the reconciliation's breaks: by ``page`` number (of ``limit``, default
        ``page_size``), or from a ``cursor`` (the ``next_cursor`` of the page before); either way the
        reply says ``has_more`` and ``next_cursor``. ``{"status": "running" | "failed", ...}`` while a
        large statement is (or was, unsuccessfully) in the state machine."""
        from chalicelib.recon import distributed

        unfinished = distributed.unfinished(self.archive, reconciliation_id)
        if unfinished is not None:
            return unfinished
        rec = self.load(reconciliation_id)
        size = limit or self.page_size
        if cursor is not None:
            return rec.to_json(1, size, start=breaks_offset(cursor, reconciliation_id))
        return rec.to_json(page, size)

    def breaks_csv(self, reconciliation_id: str) -> str:
        from chalicelib.recon import distributed

        distributed.require_finished(self.archive, reconciliation_id)  # 409 while running
        return self.load(reconciliation_id).breaks_csv()
