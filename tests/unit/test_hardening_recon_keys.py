"""``POST /v1/reconciliations`` by ``s3_key``: a key S3 cannot hold, a key S3 answers 404 or 403 for,
or an object that is not text, is a 4xx with a stable code, never a 500 (and nothing is reconciled)."""
from __future__ import annotations

import pytest
from botocore.stub import Stubber

from chalicelib import bootstrap
from chalicelib.recon.archive import S3Archive
from helpers import body, post_headers


def submit(client, s3_key: str, source: str = "camt053"):
    return client.http.post("/v1/reconciliations", body=body({"source": source, "s3_key": s3_key}),
                            headers=post_headers("finance"))


@pytest.mark.parametrize("key", ["a\nb", "a\x00b", "a\x1fb", "a\x0bb", "statements/\x7f.csv", "a\rb"],
                         ids=["newline", "nul", "unit-separator", "vertical-tab", "delete", "carriage-return"])
def test_a_key_with_a_control_character_is_a_validation_error(client, key):
    reply = submit(client, key)
    assert reply.status_code == 400
    assert reply.json_body["error"]["code"] == "validation_error"
    assert [f["path"] for f in reply.json_body["error"]["fields"]] == ["s3_key"]


def test_a_key_with_no_object_is_not_found(client):
    reply = submit(client, "uploads/finance/never-uploaded.xml")
    assert reply.status_code == 404 and reply.json_body["error"]["code"] == "not_found"


def test_a_key_s3_refuses_to_read_as_access_denied_is_not_found(client, aws_env):
    """In AWS, reading a missing key without s3:ListBucket answers 403 AccessDenied, not NoSuchKey."""
    s3 = aws_env.client("s3")
    stubber = Stubber(s3)
    stubber.add_client_error("get_object", service_error_code="AccessDenied", http_status_code=403)
    stubber.add_client_error("get_object", service_error_code="404", http_status_code=404)  # a bare HEAD-like 404
    bootstrap.override(recon_archive=S3Archive(aws_env.buckets[0], client=s3))
    with stubber:
        for _ in range(2):
            reply = submit(client, "uploads/finance/hidden.xml")
            assert reply.status_code == 404 and reply.json_body["error"]["code"] == "not_found"


def test_a_statement_that_is_not_utf8_text_is_a_validation_error(client, aws_env):
    aws_env.client("s3").put_object(Bucket=aws_env.buckets[0], Key="uploads/binary.xml", Body=b"\xff\xfe\x00<Document")
    reply = submit(client, "uploads/binary.xml")
    assert reply.status_code == 400 and reply.json_body["error"]["code"] == "validation_error"
