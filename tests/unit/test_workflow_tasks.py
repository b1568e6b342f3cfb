"""The workflow tasks' error contract: what Step Functions retries and what goes to ManualReview."""
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from chalicelib.errors import InvalidState, ProviderUnavailable
from chalicelib.workflow.tasks import TransientError, transient_on_provider_trouble


def failing(error):
    @transient_on_provider_trouble
    def task(event):
        raise error

    return task


@pytest.mark.parametrize("error", [
    ReadTimeoutError(endpoint_url="http://dynamodb"),
    EndpointConnectionError(endpoint_url="http://dynamodb"),
    ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "UpdateItem"),
    ClientError({"Error": {"Code": "TransactionConflictException", "Message": "busy"}}, "TransactWriteItems"),
    ProviderUnavailable("provider_unavailable", "MTN is down"),
])
def test_a_timeout_throttling_or_a_provider_outage_is_retried_not_sent_to_an_operator(error):
    with pytest.raises(TransientError):
        failing(error)({"order_id": "o1"})


@pytest.mark.parametrize("error", [
    ClientError({"Error": {"Code": "ValidationException", "Message": "bad"}}, "PutItem"),
    InvalidState("invalid_state", "the order is refunded"),
    KeyError("order_id"),
])
def test_a_bug_or_a_wrong_state_is_not_retried(error):
    with pytest.raises(type(error)):
        failing(error)({"order_id": "o1"})
