"""Where statements and reconciliations are kept: S3 (moto locally), or memory in tests.

Keys: ``statements/<source>/<sha256>.txt`` (the file exactly as uploaded) and
``reconciliations/<id>.json`` (``Reconciliation.to_dict``). A statement's key is its
content hash, so uploading the same file twice stores it once.
"""
from __future__ import annotations

import hashlib
import json

from chalicelib.errors import NotFound
from chalicelib.recon.engine import Reconciliation


def statement_key(source: str, content: str) -> str:
    return f"statements/{source}/{hashlib.sha256(content.encode()).hexdigest()}.txt"


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

    def __init__(self, archive, ledger_source, page_size: int = 100):
        self.archive = archive
        self.ledger_source = ledger_source
        self.page_size = page_size

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
            self.archive.put(statement_key(source, content), content.encode(), "text/plain")
        rec = reconcile_statement(source, content, self.ledger_source)
        self.archive.put(f"reconciliations/{rec.reconciliation_id}.json", json.dumps(rec.to_dict()).encode(),
                         "application/json")
        return rec.to_json(1, self.page_size)

    def load(self, reconciliation_id: str) -> Reconciliation:
        data = self.archive.get(f"reconciliations/{reconciliation_id}.json") if reconciliation_id.startswith("rec_") else None
        if data is None:
            raise NotFound("not_found", "no such reconciliation")
        return Reconciliation.from_dict(json.loads(data))

    def page(self, reconciliation_id: str, page: int) -> dict:
        return self.load(reconciliation_id).to_json(page, self.page_size)

    def breaks_csv(self, reconciliation_id: str) -> str:
        return self.load(reconciliation_id).breaks_csv()
