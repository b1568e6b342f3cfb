"""What pages an operator: CloudWatch alarms, their SNS topic, and the dead-letter queue.

Added to the merge template by ``infra/build.py``. Every alarm notifies ``AlarmTopic``
(``mizani-${Stage}-alarms``; subscribe the on-call address to it) on ALARM and on OK.

- ``<Name>StateMachineExecutionsFailedAlarm``, one per ``infra/<name>.asl.json``: any execution
  that failed, timed out or was aborted in 5 minutes (``AWS/States``, dimension ``StateMachineArn``).
  The escrow workflow's ManualReview ends in a Fail state, so a manual review counts here too.
- ``EscrowManualReviewAlarm``: an order was put in manual review (the app's ``ManualReviews``
  count, which the ``manual_review`` task reports only when it left the order there: one whose
  task failed after the order was already over ends where it ended, and pages nobody): money
  waits for a person.
- ``Api5xxRateAlarm``: more than 5 % of the API's requests answered 5xx, in each of two
  consecutive 5-minute periods with at least 20 requests (``AWS/ApiGateway``, ``ApiName`` =
  ``mizani-${Stage}``, ``Stage`` = the Chalice ``api_gateway_stage``). The rate, not a count, so a
  busy hour does not page and a quiet one still does.
- ``PayoutsUnknownAlarm``: a payout sent to a rail more than an hour ago still has no final answer.
  The app reports the gauge ``PayoutsUnknownOverAnHour`` in namespace ``Mizani`` (the sweeper,
  every minute, 0 when none) as an embedded-metric log line, so no ``cloudwatch:PutMetricData``
  is needed; the alarm reads it with a Metrics Insights query, whatever dimensions the app adds.
  Missing data is breaching: a sweeper that stopped reporting is an outage of its own.
- ``DeadLetterQueueDepthAlarm``: a message waits in ``DeadLetterQueue`` (``mizani-${Stage}-dlq``):
  a scheduled function (``"dlq": True`` in ``infra/policies.py``) failed its event after Lambda's
  own retries; the event is kept there 14 days.
"""
from __future__ import annotations

from infra.statemachines import StateMachineDef, to_cfn_resource_name

TOPIC_LOGICAL_ID = "AlarmTopic"
DLQ_LOGICAL_ID = "DeadLetterQueue"
DLQ_NAME_SUFFIX = "dlq"
#: the app's own metrics the alarms read (a contract with the code that emits them)
APP_METRICS_NAMESPACE = "Mizani"
PAYOUTS_UNKNOWN_METRIC = "PayoutsUnknownOverAnHour"
MANUAL_REVIEWS_METRIC = "ManualReviews"
FIVE_MINUTES = 300
API_5XX_RATE = 0.05
API_5XX_MIN_REQUESTS = 20


def _actions() -> dict:
    topic = {"Ref": TOPIC_LOGICAL_ID}
    return {"ActionsEnabled": True, "AlarmActions": [topic], "OKActions": [topic]}


def _name(suffix: str) -> dict:
    return {"Fn::Sub": "mizani-${Stage}-" + suffix}


def topic() -> dict:
    return {
        "Type": "AWS::SNS::Topic",
        "Properties": {"TopicName": _name("alarms"), "KmsMasterKeyId": "alias/aws/sns"},
    }


def dead_letter_queue() -> dict:
    return {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "QueueName": _name(DLQ_NAME_SUFFIX),
            "MessageRetentionPeriod": 14 * 24 * 3600,
            "SqsManagedSseEnabled": True,
        },
    }


def dlq_arn_pattern(stage: str, app_name: str = "mizani") -> str:
    """The queue's ARN as the (literal, per-stage) policy files name it."""
    return f"arn:aws:sqs:*:*:{app_name}-{stage}-{DLQ_NAME_SUFFIX}"


def function_dead_letter_queue() -> dict:
    """Deep-merged into a scheduled function's ``AWS::Serverless::Function`` properties."""
    return {"DeadLetterQueue": {"Type": "SQS", "TargetArn": {"Fn::GetAtt": [DLQ_LOGICAL_ID, "Arn"]}}}


def _metric(id_: str, namespace: str, name: str, dimensions: dict, stat: str = "Sum", return_data: bool = False) -> dict:
    return {
        "Id": id_,
        "ReturnData": return_data,
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            },
            "Period": FIVE_MINUTES,
            "Stat": stat,
        },
    }


def state_machine_failed_alarm(sm: StateMachineDef) -> tuple[str, dict]:
    dims = {"StateMachineArn": {"Ref": sm.logical_id}}
    return sm.logical_id + "ExecutionsFailedAlarm", {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": _name(f"{sm.name}-executions-failed"),
            "AlarmDescription": f"Executions of mizani-<stage>-{sm.name} failed, timed out or were aborted. "
            "Open the execution in the Step Functions console; the order or reconciliation it names needs a person.",
            **_actions(),
            "Metrics": [
                _metric("failed", "AWS/States", "ExecutionsFailed", dims),
                _metric("timedout", "AWS/States", "ExecutionsTimedOut", dims),
                _metric("aborted", "AWS/States", "ExecutionsAborted", dims),
                {"Id": "unsuccessful", "Expression": "failed + timedout + aborted", "ReturnData": True,
                 "Label": "executions that did not succeed"},
            ],
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 1,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "TreatMissingData": "notBreaching",
        },
    }


def manual_review_alarm() -> tuple[str, dict]:
    return "EscrowManualReviewAlarm", {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": _name("escrow-manual-review"),
            "AlarmDescription": "An escrow execution put an order in manual review: its money waits for an "
            "operator (the order's review record says why).",
            **_actions(),
            "Metrics": [
                {
                    "Id": "reviews",
                    "ReturnData": True,
                    "Period": FIVE_MINUTES,
                    "Label": "orders put in manual review",
                    "Expression": f'SELECT SUM({MANUAL_REVIEWS_METRIC}) FROM "{APP_METRICS_NAMESPACE}"',
                }
            ],
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 1,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "TreatMissingData": "notBreaching",
        },
    }


def api_5xx_alarm(api_name: dict, gateway_stage: str) -> tuple[str, dict]:
    dims = {"ApiName": api_name, "Stage": gateway_stage}
    return "Api5xxRateAlarm", {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": _name("api-5xx-rate"),
            "AlarmDescription": f"More than {API_5XX_RATE:.0%} of API requests answered 5xx for 10 minutes "
            f"(at least {API_5XX_MIN_REQUESTS} requests each 5 minutes). Search the API's logs by request_id.",
            **_actions(),
            "Metrics": [
                _metric("errors", "AWS/ApiGateway", "5XXError", dims),
                _metric("requests", "AWS/ApiGateway", "Count", dims),
                {"Id": "rate", "ReturnData": True, "Label": "share of requests answered 5xx",
                 "Expression": f"IF(requests >= {API_5XX_MIN_REQUESTS}, errors / requests, 0)"},
            ],
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": API_5XX_RATE,
            "EvaluationPeriods": 2,
            "DatapointsToAlarm": 2,
            "TreatMissingData": "notBreaching",
        },
    }


def payouts_unknown_alarm() -> tuple[str, dict]:
    return "PayoutsUnknownAlarm", {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": _name("payouts-unknown-over-an-hour"),
            "AlarmDescription": "A payout sent more than an hour ago has no final answer from its rail (or the "
            "sweeper stopped reporting). GET /v1/payouts lists it as pending; ask the provider.",
            **_actions(),
            "Metrics": [
                {
                    "Id": "unknown",
                    "ReturnData": True,
                    "Period": FIVE_MINUTES,
                    "Label": "payouts without a final answer after an hour",
                    "Expression": f'SELECT MAX({PAYOUTS_UNKNOWN_METRIC}) FROM "{APP_METRICS_NAMESPACE}"',
                }
            ],
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 1,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "TreatMissingData": "breaching",
        },
    }


def dlq_alarm() -> tuple[str, dict]:
    return "DeadLetterQueueDepthAlarm", {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": _name("dlq-depth"),
            "AlarmDescription": "A scheduled function failed an event after Lambda's retries; the event waits in "
            "mizani-<stage>-dlq (14 days). Read it, fix the cause, and run the function again.",
            **_actions(),
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [DLQ_LOGICAL_ID, "QueueName"]}}],
            "Statistic": "Maximum",
            "Period": FIVE_MINUTES,
            "EvaluationPeriods": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 1,
            "TreatMissingData": "notBreaching",
        },
    }


def resources(machines: list[StateMachineDef], api_name: dict, gateway_stage: str) -> dict:
    """Every alarm, the topic and the queue, as ``{logical id: resource}``."""
    found = {TOPIC_LOGICAL_ID: topic(), DLQ_LOGICAL_ID: dead_letter_queue()}
    for sm in machines:
        logical_id, alarm = state_machine_failed_alarm(sm)
        found[logical_id] = alarm
    for logical_id, alarm in (manual_review_alarm(), api_5xx_alarm(api_name, gateway_stage), payouts_unknown_alarm(),
                              dlq_alarm()):
        found[logical_id] = alarm
    return found


def scheduled_function_logical_ids(access: dict) -> list[str]:
    """Chalice logical ids of the functions ``infra/policies.py`` marks ``"dlq": True``."""
    return [to_cfn_resource_name(name) for name, grant in sorted(access.items()) if grant.get("dlq")]
