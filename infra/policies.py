"""Least-privilege IAM policies, one per Lambda function and stage, generated from ``ACCESS``.

    python -m infra.policies          # rewrite policies/<stage>/<function>.json and the
                                      # iam_policy_file entries of .chalice/config.json
    python -m infra.policies --check  # exit 1 if anything is missing or stale (CI, tests/static)

Why generated: a policy must name the stage's own resources (``mizani-dev-app`` is not
``mizani-prod-app``) and ``chalice deploy`` sends policy files to IAM verbatim (no
CloudFormation ``Fn::Sub``), so each stage needs its own literal file. Editing this
table (add a function, rename one, give one more action) and re-running the command
keeps them consistent; ``.chalice/config.json`` points every function of the ``dev``
and ``prod`` stages at ``../policies/<stage>/<function>.json``.

Resource names: tables ``mizani-<stage>-<table>`` (and their indexes / stream), buckets
``mizani-<stage>-<bucket>``, the state machines ``mizani-<stage>-<name>``, the dead-letter queue
``mizani-<stage>-dlq``, provider credentials in SSM ``/mizani/<stage>/*``
or Secrets Manager ``mizani/<stage>/*``, log groups ``/aws/lambda/mizani-<stage>-*``
(``chalice deploy`` names functions ``mizani-<stage>-<fn>``; for ``chalice package``
deploy the stack as ``mizani-<stage>`` so CloudFormation's generated function names
start with the same prefix).

``"Resource": "*"`` appears only where AWS offers no resource-level permission
(``WILDCARD_ONLY_ACTIONS``); the static test enforces that.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from infra.alarms import dlq_arn_pattern

ROOT = Path(__file__).resolve().parent.parent
POLICY_DIR = ROOT / "policies"
CHALICE_CONFIG = ROOT / ".chalice" / "config.json"
STAGES = ("dev", "prod")
APP_NAME = "mizani"

#: Actions AWS cannot scope to a resource: the only ones allowed on "Resource": "*".
WILDCARD_ONLY_ACTIONS = frozenset(
    {
        # task tokens issued by service-integration Task states (.waitForTaskToken) cannot be scoped
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
        "states:SendTaskHeartbeat",
        # needed by the Lambda event source mapping for a DynamoDB stream
        "dynamodb:ListStreams",
        # X-Ray (active tracing): trace segments have no resource type
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
)

# -- building blocks: {resource key: actions}; keys are "<table>", "<table>/index/<name>", "<table>/stream/*"
_GET = ["dynamodb:GetItem", "dynamodb:BatchGetItem"]
LEDGER_READ = {
    "accounts": _GET,
    "transfers": _GET,
    "entries": ["dynamodb:Query"],
}
# TransactWriteItems is authorised per item: Put / Update / ConditionCheck. Ledger items are
# immutable history: no DeleteItem on any ledger table, ever.
LEDGER_WRITE = {
    "accounts": _GET + ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"],
    "transfers": _GET + ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"],
    "entries": ["dynamodb:Query", "dynamodb:PutItem"],
}
LEDGER_REPORTS = {"accounts": ["dynamodb:Scan"]}  # trial balance
LEDGER_SWEEP = {"transfers/index/open_pending": ["dynamodb:Query"]}  # expired pending transfers
LEDGER_BY_DAY = {"transfers/index/by_code_day": ["dynamodb:Query"]}  # reconciliation: a day's movements by kind
#: S3: {bucket short name (Mizani::BucketName): object actions}; s3:ListBucket on the bucket comes
#: with s3:GetObject so that a missing key is NoSuchKey (404), not AccessDenied.
STATEMENTS_RW = {"statements": ["s3:GetObject", "s3:PutObject"]}
APP_RW = {
    "app": _GET
    + ["dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"],
    "app/index/gsi1": ["dynamodb:Query"],
}
#: the sanctions lists (``MIZANI_SANCTIONS_S3_KEY``): read wherever a party is screened (before a payout)
LISTS_READ = {"statements": ["s3:GetObject"]}
#: for a consumer of the app table's stream (@app.on_dynamodb_record); add with "stream": True
APP_STREAM = {"app/stream/*": ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]}


def _merge(*parts: dict) -> dict:
    merged: dict[str, set] = {}
    for part in parts:
        for key, actions in part.items():
            merged.setdefault(key, set()).update(actions)
    return {k: sorted(v) for k, v in merged.items()}


#: function name (as in app.py; the API is "api_handler") -> what it may touch.
#: "states": the API starts the escrow workflow and answers its task tokens.
#: "task_tokens": answers task tokens only (a wait task that finds its answer already decided).
#: "start_workflows": starts the escrow workflow only (a collection paid outside a request: the poller).
#: "secrets": reads provider credentials stored by reference (chalicelib/secrets.py):
#:   SSM parameters under /mizani/<stage>/ or Secrets Manager secrets named mizani/<stage>/...
#: "dlq": a scheduled function: an event it still fails after Lambda's retries goes to the stage's
#:   dead-letter queue (mizani-<stage>-dlq, infra/alarms.py), so it may sqs:SendMessage there.
#: Every function may write X-Ray trace segments (active tracing, "xray": true in .chalice/config.json).
ACCESS: dict[str, dict] = {
    "api_handler": {
        "dynamodb": _merge(LEDGER_WRITE, LEDGER_REPORTS, LEDGER_BY_DAY, APP_RW),
        "s3": STATEMENTS_RW,  # POST /v1/reconciliations keeps statements and results in S3
        "states": True,
        "secrets": True,
    },
    # escrow workflow tasks (infra/escrow.asl.json)
    "customs_wait": {"dynamodb": _merge(APP_RW)},
    "release_escrow": {"dynamodb": _merge(LEDGER_WRITE, APP_RW)},
    "start_payout": {"dynamodb": _merge(LEDGER_WRITE, APP_RW), "secrets": True, "s3": LISTS_READ},
    "check_payout": {"dynamodb": _merge(LEDGER_WRITE, APP_RW), "secrets": True, "s3": LISTS_READ},
    "settle": {"dynamodb": _merge(LEDGER_WRITE, APP_RW)},
    "refund": {"dynamodb": _merge(LEDGER_WRITE, APP_RW), "secrets": True},  # Stripe refund
    # a held payout that never started gives its holds up (chalicelib/payouts/lines.py): a ledger write
    "manual_review": {"dynamodb": _merge(LEDGER_WRITE, APP_RW)},
    # AwaitDispute*: keeps the task token on the order; a dispute closed meanwhile is answered at once
    "dispute_wait": {"dynamodb": _merge(APP_RW), "task_tokens": True},
    # scheduled sweeper: voids pending transfers whose timeout has passed
    "expire_pending": {"dlq": True, "dynamodb": _merge(LEDGER_WRITE, LEDGER_SWEEP)},
    # scheduled: texts each seller whose order waits at customs past eWTP's 24-hour promise (queues the SMS
    # in the app table's outbox, once an order; drain_outbox sends it); reads the order projections (gsi1)
    "customs_reminders": {"dlq": True, "dynamodb": _merge(APP_RW)},
    # scheduled: gives back chargeback reserves whose 120 days have passed (reserve -> seller)
    "release_reserves": {"dlq": True, "dynamodb": _merge(LEDGER_WRITE, APP_RW)},
    # scheduled: seals yesterday's transfers (read through the sharded by_seal_day index), the seal in the
    # app table and its leaves in the statements bucket; the KMS key's kms:GenerateMac is granted with the key
    "seal_books": {"dlq": True, "dynamodb": _merge(APP_RW, {"transfers/index/by_seal_day": ["dynamodb:Query"]}),
                   "s3": {"statements": ["s3:PutObject"]}},
    # scheduled: loads the sanctions lists an operator keeps in the statements bucket; a new version
    # screens every party again (parties and cases in the app table)
    "refresh_sanctions": {"dlq": True, "dynamodb": _merge(APP_RW), "s3": LISTS_READ},
    # scheduled: sends queued SMS (app table outbox) and advances open payouts (posts/voids)
    "drain_outbox": {"dlq": True, "dynamodb": _merge(LEDGER_WRITE, APP_RW), "secrets": True, "s3": LISTS_READ},
    # scheduled: asks the providers about every open mobile-money collection (provider credentials); one
    # paid goes into escrow (ledger, app table) and starts the order's escrow workflow; the SMS is queued
    "poll_collections": {"dlq": True, "dynamodb": _merge(LEDGER_WRITE, APP_RW), "secrets": True, "start_workflows": True},
    # large statements (infra/reconcile.asl.json): the API kept the statement; plan reads it and the
    # ledger's movements of its period and writes the chunks; the others read chunks and chunk
    # results from the statements bucket and write results and the outcome there, nothing else
    "reconcile_plan": {"dynamodb": _merge(LEDGER_BY_DAY), "s3": STATEMENTS_RW},
    "reconcile_chunk": {"s3": STATEMENTS_RW},
    "reconcile_finish": {"s3": STATEMENTS_RW},
    "reconcile_failed": {"s3": {"statements": ["s3:PutObject"]}},
}

#: the state machines the API may start (infra/<name>.asl.json)
STATE_MACHINES = ("escrow", "reconcile")


def policy_path(stage: str, function: str) -> Path:
    return POLICY_DIR / stage / f"{function}.json"


def config_reference(stage: str, function: str) -> str:
    """The ``iam_policy_file`` value (joined onto ``.chalice/`` by chalice)."""
    return f"../policies/{stage}/{function}.json"


def _table_arn(stage: str, key: str) -> str:
    table, _, rest = key.partition("/")
    arn = f"arn:aws:dynamodb:*:*:table/{APP_NAME}-{stage}-{table}"
    return f"{arn}/{rest}" if rest else arn


def build_policy(stage: str, function: str) -> dict:
    """The IAM policy document for ``function`` in ``stage``."""
    access = ACCESS[function]
    prefix = f"{APP_NAME}-{stage}"
    statements = [
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [
                f"arn:aws:logs:*:*:log-group:/aws/lambda/{prefix}-*",
                f"arn:aws:logs:*:*:log-group:/aws/lambda/{prefix}-*:*",
            ],
        }
    ]
    statements.append(
        {
            "Sid": "XRayTraces",
            "Effect": "Allow",
            "Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"],
            "Resource": "*",
        }
    )
    if access.get("dlq"):
        statements.append(
            {"Sid": "DeadLetterQueue", "Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": [dlq_arn_pattern(stage, APP_NAME)]}
        )
    # group resources that need the same actions into one statement
    by_actions: dict[tuple, list[str]] = {}
    for key, actions in sorted(access.get("dynamodb", {}).items()):
        by_actions.setdefault(tuple(sorted(actions)), []).append(_table_arn(stage, key))
    for i, (actions, resources) in enumerate(sorted(by_actions.items(), key=lambda kv: kv[1])):
        statements.append({"Sid": f"DynamoDB{i + 1}", "Effect": "Allow", "Action": list(actions), "Resource": resources})
    for bucket, actions in sorted(access.get("s3", {}).items()):
        bucket_arn = f"arn:aws:s3:::{prefix}-{bucket}"
        statements.append(
            {"Sid": f"{bucket.title()}Objects", "Effect": "Allow", "Action": sorted(actions), "Resource": [f"{bucket_arn}/*"]}
        )
        if "s3:GetObject" in actions:
            statements.append(
                {"Sid": f"{bucket.title()}Listing", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [bucket_arn]}
            )
    if access.get("stream"):
        statements.append({"Sid": "StreamDiscovery", "Effect": "Allow", "Action": ["dynamodb:ListStreams"], "Resource": "*"})
    if access.get("secrets"):
        statements.append(
            {
                "Sid": "ProviderSecretParameters",
                "Effect": "Allow",
                "Action": ["ssm:GetParameter"],
                "Resource": [f"arn:aws:ssm:*:*:parameter/{APP_NAME}/{stage}/*"],
            }
        )
        statements.append(
            {
                "Sid": "ProviderSecrets",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": [f"arn:aws:secretsmanager:*:*:secret:{APP_NAME}/{stage}/*"],
            }
        )
    if access.get("task_tokens") and not access.get("states"):
        statements.append(
            {
                "Sid": "AnswerTaskTokens",
                "Effect": "Allow",
                "Action": ["states:SendTaskSuccess", "states:SendTaskFailure"],
                "Resource": "*",
            }
        )
    if access.get("start_workflows") and not access.get("states"):
        statements.append(
            {
                "Sid": "StartWorkflow",
                "Effect": "Allow",
                "Action": ["states:StartExecution"],
                "Resource": [f"arn:aws:states:*:*:stateMachine:{prefix}-escrow"],
            }
        )
    if access.get("states"):
        statements.append(
            {
                "Sid": "StartWorkflow",
                "Effect": "Allow",
                "Action": ["states:StartExecution"],
                "Resource": [f"arn:aws:states:*:*:stateMachine:{prefix}-{sm}" for sm in STATE_MACHINES],
            }
        )
        statements.append(
            {
                "Sid": "AnswerTaskTokens",
                "Effect": "Allow",
                "Action": ["states:SendTaskSuccess", "states:SendTaskFailure"],
                "Resource": "*",
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def render(stage: str, function: str) -> str:
    return json.dumps(build_policy(stage, function), indent=2) + "\n"


def expected_files() -> dict[Path, str]:
    return {policy_path(s, f): render(s, f) for s in STAGES for f in ACCESS}


def stale_files() -> list[Path]:
    """Generated files that are missing or differ from ``ACCESS``, plus stray files."""
    expected = expected_files()
    stale = [p for p, text in expected.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    for stage in STAGES:
        for path in sorted((POLICY_DIR / stage).glob("*.json")):
            if path not in expected:
                stale.append(path)
    return stale


def synced_config(config: dict) -> dict:
    """``config`` with ``stages.<stage>.lambda_functions.<fn>.iam_policy_file`` matching ``ACCESS``.

    Other per-function settings (``lambda_timeout``, ...) are kept; a function no longer in
    ``ACCESS`` loses its ``iam_policy_file`` (and its entry, if nothing else was set).
    """
    config = json.loads(json.dumps(config))
    for stage in STAGES:
        functions = config.setdefault("stages", {}).setdefault(stage, {}).setdefault("lambda_functions", {})
        for name in list(functions):
            if name not in ACCESS:
                functions[name].pop("iam_policy_file", None)
                if not functions[name]:
                    del functions[name]
        for name in ACCESS:
            functions.setdefault(name, {})["iam_policy_file"] = config_reference(stage, name)
    return config


def render_config(config: dict) -> str:
    return json.dumps(config, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.policies")
    parser.add_argument("--check", action="store_true", help="only report stale files (exit 1)")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        config = json.loads(CHALICE_CONFIG.read_text(encoding="utf-8"))
        if synced_config(config) != config:
            stale.append(CHALICE_CONFIG)
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)}", file=sys.stderr)
        return 1 if stale else 0
    expected = expected_files()
    for path, text in expected.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for stage in STAGES:
        for path in sorted((POLICY_DIR / stage).glob("*.json")):
            if path not in expected:
                path.unlink()
                print(f"removed {path.relative_to(ROOT)}")
    config = json.loads(CHALICE_CONFIG.read_text(encoding="utf-8"))
    synced = synced_config(config)
    if synced != config:
        CHALICE_CONFIG.write_text(render_config(synced), encoding="utf-8")
        print(f"updated iam_policy_file entries in {CHALICE_CONFIG.relative_to(ROOT)}")
    print(f"wrote {len(expected)} policy files under {POLICY_DIR.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
