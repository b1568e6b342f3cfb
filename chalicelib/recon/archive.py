"""The archive port's adapters: the statements bucket in S3 (moto locally), or memory in tests.

An archive stores bytes under a key (``put(key, data, content_type)``, ``get(key)``, ``None``
when absent). What is kept under which key is not decided here: ``stored`` lays out the
statements and reconciliations, ``distributed`` the chunks of a large statement.
"""
from __future__ import annotations


class MemoryArchive:
    """In-memory archive (tests, the local run of a large statement)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.objects[key] = data

    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)


class S3Archive:
    """The statements bucket (objects encrypted at rest with SSE-S3); the client is built on first use."""

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
