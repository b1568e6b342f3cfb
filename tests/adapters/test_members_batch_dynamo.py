"""Members registered in bulk on DynamoDB (moto): the batched reads and transactions write the
documents every other reader sees, and a number already another's leaves the batch unwritten."""
import pytest

from chalicelib.documents import DocumentExists, DynamoDocuments
from chalicelib.errors import Conflict
from chalicelib.members.batch import NewDocument, get_many, put_all_new, read_many
from chalicelib.wallets import WalletOwner, WalletRegistry


@pytest.fixture
def docs(aws_env):
    return DynamoDocuments(aws_env.table("app"), client=aws_env.client("dynamodb"))


def test_documents_created_in_one_transaction_read_as_put_new_wrote_them(docs, aws_env):
    docs.put_new("member#one", {"n": 1}, index=("members#seller#s", "2026-12-01T08:00:00Z#one"))
    new = [NewDocument(f"member#m{i}", {"n": i}, index=("members#seller#s", f"2026-12-01T08:00:0{i}Z#m{i}")) for i in range(1, 4)]
    assert put_all_new(docs, new) == [True, True, True]
    client, table = aws_env.client("dynamodb"), aws_env.table("app")
    stored = {k: client.get_item(TableName=table, Key={"pk": {"S": k}, "sk": {"S": "doc"}})["Item"] for k in ("member#one", "member#m1")}
    assert set(stored["member#m1"]) == set(stored["member#one"])  # the same attributes as a put_new
    assert stored["member#m1"]["version"] == stored["member#one"]["version"]
    assert docs.get("member#m2") == {"n": 2}
    assert [d["n"] for d in docs.query_index("members#seller#s", newest_first=False)] == [1, 1, 2, 3]
    with pytest.raises(DocumentExists):
        docs.put_new("member#m3", {"n": 3})
    docs.update("member#m3", lambda d: {**d, "n": 30})  # versioned like any other document
    assert docs.get("member#m3") == {"n": 30}


def test_a_taken_key_is_reported_and_the_others_still_written(docs):
    docs.put_new("member#m2", {"n": "theirs"})
    new = [NewDocument(f"member#m{i}", {"n": i}) for i in range(1, 4)]
    assert put_all_new(docs, new) == [True, False, True]
    assert docs.get("member#m2") == {"n": "theirs"}
    assert put_all_new(docs, new[:1]) == [True]  # exactly this write, already in the table: ours, as put_new answers it


def test_many_documents_are_read_in_batches_of_a_hundred(docs, aws_env):
    put_all_new(docs, [NewDocument(f"member#m{i}", {"n": i}) for i in range(250)])
    calls = []
    client = aws_env.client("dynamodb")
    client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    found = get_many(docs, [(f"member#m{i}", "doc") for i in range(0, 260)])
    assert {k[0]: v["n"] for k, v in found.items()} == {f"member#m{i}": i for i in range(250)}
    assert calls == ["BatchGetItem"] * 3


def test_documents_read_in_batches_carry_the_version_an_update_is_conditioned_on(docs, aws_env):
    put_all_new(docs, [NewDocument(f"payout#p{i}", {"n": i}) for i in range(120)])
    docs.update("payout#p7", lambda d: {**d, "n": 70})
    calls = []
    aws_env.client("dynamodb").meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    found = read_many(docs, [(f"payout#p{i}", "doc") for i in range(125)])
    assert calls == ["BatchGetItem"] * 2 and len(found) == 120
    assert all((found[(f"payout#p{i}", "doc")].doc, found[(f"payout#p{i}", "doc")].version) == (docs.read(f"payout#p{i}").doc,
               docs.read(f"payout#p{i}").version) for i in (0, 7, 119))
    assert found[("payout#p7", "doc")].version == 2
    # the version read in the batch is the one the next write is conditioned on: a stale one is refused and read again
    docs.update("payout#p7", lambda d: {**d, "n": 700}, current=found[("payout#p7", "doc")])
    docs.update("payout#p7", lambda d: {**d, "n": d["n"] + 1}, current=found[("payout#p7", "doc")])  # stale: re-read
    assert docs.get("payout#p7") == {"n": 701}


def test_wallet_numbers_claimed_together_are_all_claimed_or_none(docs):
    wallets = WalletRegistry(docs)
    wallets.claim("250788000002", "other-coop")
    batch = [(WalletOwner(f"25078800000{i}", "coop", f"mem_{i}"), False) for i in range(1, 4)]
    with pytest.raises(Conflict) as taken:
        wallets.claim_many(batch)
    assert (taken.value.code, taken.value.detail["msisdn"]) == ("msisdn_taken", "250788000002")
    assert wallets.owner("250788000001") is None and wallets.owner("250788000003") is None  # none of them
    assert wallets.owner("250788000002").seller_id == "other-coop"
    mine = [item for item in batch if item[0].msisdn != "250788000002"]
    wallets.claim_many(mine)
    wallets.claim_many(mine)  # again: already theirs, no refusal
    assert wallets.owners(["250788000001", "250788000003", "250788000009"]) == {o.msisdn: o for o, _ in mine}
    wallets.claim_many([(WalletOwner("250788000002", "coop", "mem_2"), True)])  # a shareable sandbox number
    assert wallets.owner("250788000002").seller_id == "other-coop"  # answers for its first party


def test_a_transaction_held_by_another_is_a_retryable_409_and_writes_nothing():
    """DynamoDB cancels a transaction that meets another on the same item (TransactionConflict):
    nothing is written, and the request is refused as one to retry, never a 500."""
    from botocore.exceptions import ClientError

    class Cancelled(ClientError):
        pass

    class Client:
        class exceptions:
            TransactionCanceledException = Cancelled

        def transact_write_items(self, **_):
            raise Cancelled({"Error": {"Code": "TransactionCanceledException"},
                             "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}]},
                            "TransactWriteItems")

    with pytest.raises(Conflict) as busy:
        put_all_new(DynamoDocuments("app", client=Client()), [NewDocument("member#a", {}), NewDocument("member#b", {})])
    assert (busy.value.code, busy.value.retryable) == ("request_in_progress", True)
