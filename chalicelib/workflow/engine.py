"""The workflow port and its Step Functions adapter.

``start`` names the execution after the order: a second start is harmless
(``ExecutionAlreadyExists`` means "already started"). ``succeed``/``fail`` answer a
task token once; a token that is already answered or timed out is ignored, since
the execution has moved on and the caller's duty is done.
"""
from __future__ import annotations

import json
import threading

from chalicelib import aws
from chalicelib.errors import ProviderUnavailable


class StepFunctionsWorkflow:
    def __init__(self, state_machine_arn: str):
        self.state_machine_arn = state_machine_arn

    def start(self, name: str, payload: dict) -> None:
        client = aws.stepfunctions()
        if not self.state_machine_arn:
            raise ProviderUnavailable("provider_unavailable", "the escrow workflow is not configured")
        try:
            client.start_execution(stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(payload))
        except client.exceptions.ExecutionAlreadyExists:
            pass

    def succeed(self, token: str, output: dict) -> None:
        client = aws.stepfunctions()
        try:
            client.send_task_success(taskToken=token, output=json.dumps(output))
        except (client.exceptions.TaskTimedOut, client.exceptions.InvalidToken, client.exceptions.TaskDoesNotExist):
            pass

    def fail(self, token: str, error: str, cause: str) -> None:
        client = aws.stepfunctions()
        try:
            client.send_task_failure(taskToken=token, error=error, cause=cause)
        except (client.exceptions.TaskTimedOut, client.exceptions.InvalidToken, client.exceptions.TaskDoesNotExist):
            pass


class FakeWorkflow:
    """Records what the service asked of the workflow (unit tests)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started: dict[str, dict] = {}
        self.answers: list[tuple] = []

    def start(self, name, payload):
        with self.lock:
            self.started.setdefault(name, payload)

    def succeed(self, token, output):
        self.answers.append(("success", token, output))

    def fail(self, token, error, cause):
        self.answers.append(("failure", token, error))
