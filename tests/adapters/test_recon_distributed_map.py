"""infra/reconcile.asl.json on moto: the Distributed Map reads the manifest from S3 and runs the
chunk Lambdas (dispatched in-process to app.py), Finish stores the reconciliation."""
import json
import logging
from datetime import datetime, timezone

from chalicelib import bootstrap
from chalicelib.ledger import Transfer, TransferKind
from chalicelib.recon import reconcile_statement, reconciliation_id
from chalicelib.recon.archive import S3Archive
from chalicelib.recon.distributed import LargeStatements
from chalicelib.recon.ledger_records import StoreLedgerSource
from chalicelib.recon.reconciliations import Reconciliations
from chalicelib.workflow.engine import StepFunctionsWorkflow
from sandbox import aws_local


def _book_payouts(payouts: dict[str, int]) -> StoreLedgerSource:
    """Posted payouts in the DynamoDB ledger: what the Plan Lambda reads (by code and day)."""
    ledger = bootstrap.ledger()
    for account in ("seller:s1", "float:mtn_momo:RWF", "fx:RWF"):
        ledger.create_account(account, "RWF")
    ledger.transfer(Transfer("fund", "fx:RWF", "seller:s1", 10_000_000, "RWF"))
    for ref, amount in payouts.items():
        ledger.transfer(Transfer(ref, "seller:s1", "float:mtn_momo:RWF", amount, "RWF", TransferKind.PENDING,
                                 code="payout", reference=ref))
        ledger.post(f"{ref}:post", ref, code="payout", reference=ref)
    return StoreLedgerSource(ledger.store)


def test_a_large_statement_runs_as_a_distributed_map_and_get_then_reads_the_in_process_answer(aws_env):
    arns = aws_env.install_workflow()
    refs = [f"po_{i}" for i in range(12)]
    ledger = _book_payouts({**{r: 1000 + i for i, r in enumerate(refs)}, "po_split": 900, "po_gone": 5})
    day = datetime.now(timezone.utc).date().isoformat()  # the ledger books payouts today
    rows = [f"{i},{r},{1000 + i + (i == 3)},RWF,SUCCESSFUL,{day}T10:00:00Z" for i, r in enumerate(refs)]
    rows += [f"s1,po_split,400,RWF,SUCCESSFUL,{day}T11:00:00Z", f"s2,po_split,500,RWF,SUCCESSFUL,{day}T11:00:00Z"]
    content = "financialTransactionId,externalId,amount,currency,status,date\n" + "\n".join(rows) + "\n"
    archive = S3Archive(f"{aws_env.prefix}-statements")  # the bucket the app's Lambdas use
    service = Reconciliations(archive, ledger, large=LargeStatements(
        archive, ledger, StepFunctionsWorkflow(arns["reconcile"]), min_lines=10, chunk_lines=5))
    rid = reconciliation_id("mtn_momo", content)

    assert service.submit("mtn_momo", content)["status"] == "running"

    execution_arn = arns["reconcile"].replace(":stateMachine:", ":execution:") + ":" + rid
    described = aws_env.wait_for_execution(execution_arn, timeout=60)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    history = aws_env.client("stepfunctions").get_execution_history(executionArn=execution_arn)["events"]
    assert "MapRunStarted" in [e["type"] for e in history]
    exited = next(e for e in history if e["type"] == "MapStateExited")["stateExitedEventDetails"]
    assert len(json.loads(exited["output"])["chunk_results"]) == 3  # 14 lines, 5 a chunk
    expected = reconcile_statement("mtn_momo", content, ledger)
    assert service.page(rid, 1) == expected.to_json(1, 100)
    assert sorted((b["reference"], b["outcome"]) for b in service.page(rid, 1)["breaks"]) == [
        ("po_3", "amount_mismatch"), ("po_gone", "missing_at_provider")]
    assert service.breaks_csv(rid) == expected.breaks_csv()


def test_the_sandbox_skips_a_definition_motos_parser_refuses_and_says_so(aws_env, tmp_path, caplog):
    # moto 5.2.5 reads ToleratedFailurePercentage only as a decimal (0.0), AWS takes 0 as well
    refused = {"StartAt": "M", "States": {"M": {
        "Type": "Map", "ToleratedFailurePercentage": 0, "End": True,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "P",
                          "States": {"P": {"Type": "Pass", "End": True}}}}}}
    fine = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    (tmp_path / "refused.asl.json").write_text(json.dumps(refused))
    (tmp_path / "fine.asl.json").write_text(json.dumps(fine))
    with caplog.at_level(logging.WARNING, logger="sandbox.aws"):
        arns = aws_local.create_state_machines(aws_env.prefix, {}, aws_env.endpoint_url, infra_dir=tmp_path)
    assert list(arns) == ["fine"]
    assert "infra/refused.asl.json: moto cannot parse this definition" in caplog.text
