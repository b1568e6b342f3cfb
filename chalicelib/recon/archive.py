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
        """The object's bytes; ``None`` when S3 says there is none to read: ``NoSuchKey``, a bare 404,
        or the 403 ``AccessDenied`` it answers for a missing key when the role lacks ``s3:ListBucket``."""
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if error.get("Code") in _ABSENT_CODES or status in (403, 404):
                if status == 403:  # also what a role without s3:GetObject sees: say so to the operator
                    import logging

                    logging.getLogger("mizani.recon").warning("S3 denied reading %r in %s (absent, or no permission)",
                                                              key, self.bucket)
                return None
            raise


#: What S3's GetObject answers for a key with nothing readable behind it.
_ABSENT_CODES = frozenset({"NoSuchKey", "404", "NotFound", "AccessDenied", "403"})
