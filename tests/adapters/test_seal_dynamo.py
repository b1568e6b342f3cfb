"""Sealed books on moto: the hash is stored with each transfer, the day is read from the sharded
by_seal_day index, the seal and its leaves land in the app table and the statements bucket, and the
verifier (``python -m chalicelib.ledger.seal verify DAY``) names a transfer altered in DynamoDB."""
import pytest

from chalicelib import settings as app_settings
from chalicelib.ledger import Ledger, Transfer
from chalicelib.ledger.dynamo import DynamoLedgerStore
from chalicelib.ledger.seal import build_sealer, main

DAY = "2026-11-30"
NOON_NS = 1_796_040_000 * 1_000_000_000


@pytest.fixture
def ledger(aws_env):
    ledger = Ledger(DynamoLedgerStore(app_settings.get().table_prefix), clock_ns=lambda: NOON_NS)
    for account in ("psp", "escrow", "seller"):
        ledger.create_account(account, "RWF")
    for n in range(40):  # spread over the day's 16 index shards
        ledger.transfer(Transfer(f"pay:o{n}", "psp", "escrow", 100 + n, "RWF", code="card_payment"))
    ledger.transfer(Transfer("release:o7", "escrow", "seller", 107, "RWF", code="escrow_release"))
    return ledger


def test_a_day_sealed_in_dynamodb_verifies_and_an_altered_amount_is_named(ledger, aws_env, capsys):
    assert main(["seal", DAY]) == 0
    assert main(["verify", DAY]) == 0
    assert "41 transfers" in capsys.readouterr().out
    aws_env.client("dynamodb").update_item(
        TableName=aws_env.table("transfers"), Key={"transfer_id": {"S": "release:o7"}},
        UpdateExpression="SET amount = :a", ExpressionAttributeValues={":a": {"N": "1070"}})
    assert main(["verify", DAY]) == 1
    out = capsys.readouterr().out
    assert "altered: release:o7" in out and "NOT intact" in out
    assert build_sealer().verify(DAY).altered == ["release:o7"]


def test_a_day_without_a_seal_exits_2(aws_env):
    assert main(["verify", "2026-01-01"]) == 2
