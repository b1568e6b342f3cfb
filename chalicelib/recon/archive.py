"""Where statements and reconciliations are kept: S3 (moto locally), or memory in tests.

Keys: ``statements/<source>/<sha256>.txt`` (the file exactly as uploaded) and
``reconciliations/<id>.json`` (``Reconciliation.to_dict``). A statement's key is its
content hash, so uploading the same file twice stores it once. Large statements
(``distributed.LargeStatements``) also keep their chunks and a status under
``reconciliations/<id>/``.
"""
from __future__ import annotations

import hashlib
import json

from chalicelib.errors import NotFound
from chalicelib.recon.engine import Reconciliation


def statement_key(source: str, content: str) -> str:
    return f"statements/{source}/{hashlib.sha256(content.encode()).hexdigest()}.txt"


def reconciliation_key(reconciliation_id: str) -> str:
    return f"reconciliations/{reconciliation_id}.json"


def save_reconciliation(archive, rec: Reconciliation) -> None:
    """Store a finished reconciliation where ``Reconciliations.load`` reads it."""
    archive.put(reconciliation_key(rec.reconciliation_id), json.dumps(rec.to_dict()).encode(), "application/json")


class MemoryArchive:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.objects[key] = data

    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)


class S3Archive:
    def __init__(self, bucket: str, client=None):
        self.bucket = bucket
        self._client = client

    @property
    def client(self):
        if self._client is None:
            from chalicelib import aws

            self._client = aws.s3()
        return self._client

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
                               ServerSideEncryption="AES256")

    def get(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None


class Reconciliations:
    """Submit a statement, read a reconciliation back (paged), export its breaks."""

    def __init__(self, archive, ledger_source, page_size: int = 100, large=None):
        self.archive = archive
        self.ledger_source = ledger_source
        self.page_size = page_size
        self.large = large  # distributed.LargeStatements: statements too large for one process

    def submit(self, source: str, content: str | None = None, s3_key: str | None = None) -> dict:
        """Reconcile a statement given inline or by S3 key. The same statement again gets the
        same id and overwrites its earlier result with the current ledger's answer."""
        from chalicelib.errors import ValidationError
        from chalicelib.recon.service import reconcile_statement

        if (content is None) == (s3_key is None):
            raise ValidationError("validation_error", "give exactly one of content and s3_key", path="content")
        if s3_key is not None:
            data = self.archive.get(s3_key)
            if data is None:
                raise NotFound("not_found", f"no statement at {s3_key}")
            content = data.decode("utf-8", errors="strict")
        else:
            s3_key = statement_key(source, content)
            self.archive.put(s3_key, content.encode(), "text/plain")
        if self.large is not None:
            reply = self.large.submit(source, content, self.page_size, key=s3_key)  # None: small enough here
            if reply is not None:
                return reply
        rec = reconcile_statement(source, content, self.ledger_source)
        save_reconciliation(self.archive, rec)
        return rec.to_json(1, self.page_size)

    def load(self, reconciliation_id: str) -> Reconciliation:
        data = self.archive.get(reconciliation_key(reconciliation_id)) if reconciliation_id.startswith("rec_") else None
        if data is None:
            raise NotFound("not_found", "no such reconciliation")
        return Reconciliation.from_dict(json.loads(data))

    def page(self, reconciliation_id: str, page: int) -> dict:
        """One page of the reconciliation; ``{"status": "running" | "failed", ...}`` while a large
        statement is (or was, unsuccessfully) in the state machine."""
        from chalicelib.recon import distributed

        unfinished = distributed.unfinished(self.archive, reconciliation_id)
        if unfinished is not None:
            return unfinished
        return self.load(reconciliation_id).to_json(page, self.page_size)

    def breaks_csv(self, reconciliation_id: str) -> str:
        from chalicelib.recon import distributed

        distributed.require_finished(self.archive, reconciliation_id)  # 409 while running
        return self.load(reconciliation_id).breaks_csv()
