"""A small Amazon States Language interpreter: the subset ``infra/escrow.asl.json`` uses, on virtual time.

It plays a Standard workflow the way Step Functions does, state by state:

* ``Task`` on ``arn:aws:states:::lambda:invoke`` (the result is ``{"Payload": <return value>,
  "StatusCode": 200, ...}``) and ``...:lambda:invoke.waitForTaskToken`` (the task waits for
  ``send_task_success``/``send_task_failure`` on ``$$.Task.Token``, or times out after
  ``TimeoutSeconds``/``TimeoutSecondsPath`` with ``States.Timeout``); ``Parameters`` with
  ``.$`` paths into the input and the context object, ``ResultSelector``, ``ResultPath``,
  ``Retry`` (``IntervalSeconds``, ``BackoffRate``, ``MaxAttempts``, ``MaxDelaySeconds``) and
  ``Catch`` (the error output ``{"Error", "Cause"}``);
* ``Choice`` (string, numeric and boolean comparisons, ``IsPresent``, ``And``/``Or``/``Not``,
  ``Default``), ``Wait`` (``Seconds``, ``SecondsPath``), ``Pass``, ``Succeed``, ``Fail``;
* ``InputPath``/``OutputPath``.

As in AWS, a path that is not in the input (``"error.$": "$.error"`` when nothing set
``$.error``) is a ``States.Runtime`` error: it is neither retried nor caught, and the
execution fails. ``States.ALL`` matches every other error, ``States.TaskFailed`` every
error but ``States.Timeout``. Anything outside the subset is refused when the definition is
loaded (``UnsupportedAsl``), so the interpreter never silently plays a different machine.

Task functions are looked up by the ``${XxxArn}`` placeholder of ``Parameters.FunctionName``;
the caller supplies ``invoke(placeholder, payload, execution, state_name)``, which returns the
function's result or raises ``TaskFailed(error, cause)``. Time is the caller's scheduler:
``scheduler.after(delay_ns, callback, *args)``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from sim.clock import SECOND

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
LAMBDA_WAIT_FOR_TOKEN = "arn:aws:states:::lambda:invoke.waitForTaskToken"
_PLACEHOLDER = re.compile(r"^\$\{([A-Za-z0-9_]+)\}$")

_STATE_FIELDS = {
    "Task": {"Type", "Resource", "Parameters", "ResultSelector", "ResultPath", "Retry", "Catch", "Next", "End",
             "TimeoutSeconds", "TimeoutSecondsPath", "InputPath", "OutputPath", "Comment"},
    "Choice": {"Type", "Choices", "Default", "InputPath", "OutputPath", "Comment"},
    "Wait": {"Type", "Seconds", "SecondsPath", "Next", "End", "InputPath", "OutputPath", "Comment"},
    "Pass": {"Type", "Result", "ResultPath", "Parameters", "Next", "End", "InputPath", "OutputPath", "Comment"},
    "Succeed": {"Type", "InputPath", "OutputPath", "Comment"},
    "Fail": {"Type", "Error", "Cause", "Comment"},
}
_RETRY_FIELDS = {"ErrorEquals", "IntervalSeconds", "BackoffRate", "MaxAttempts", "MaxDelaySeconds"}
_CATCH_FIELDS = {"ErrorEquals", "ResultPath", "Next"}
_COMPARISONS = {
    "StringEquals", "StringLessThan", "StringGreaterThan", "StringLessThanEquals", "StringGreaterThanEquals",
    "NumericEquals", "NumericLessThan", "NumericGreaterThan", "NumericLessThanEquals", "NumericGreaterThanEquals",
    "BooleanEquals", "IsPresent", "IsNull", "IsString", "IsNumeric", "IsBoolean",
}


class UnsupportedAsl(ValueError):
    """The definition uses something this interpreter does not implement."""


class TaskFailed(Exception):
    """A task's failure as Step Functions names it: ``error`` (the Lambda's errorType) and ``cause``."""

    def __init__(self, error: str, cause: str = ""):
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


class _RuntimeError(Exception):
    """``States.Runtime``: the execution fails; no Retry or Catch applies."""


class _Missing:
    pass


MISSING = _Missing()


def read_path(document: Any, path: str) -> Any:
    """``$``, ``$.a.b`` (and ``$['a']`` is not supported); ``MISSING`` when a step is absent."""
    if path == "$":
        return document
    if not path.startswith("$."):
        raise UnsupportedAsl(f"unsupported path {path!r}")
    value = document
    for step in path[2:].split("."):
        if isinstance(value, dict) and step in value:
            value = value[step]
        else:
            return MISSING
    return value


def write_path(document: Any, path: str | None, value: Any) -> Any:
    """``ResultPath``: ``$`` replaces the input, ``None`` (JSON null) discards the result."""
    if path is None:
        return document
    if path == "$":
        return value
    if not path.startswith("$."):
        raise UnsupportedAsl(f"unsupported ResultPath {path!r}")
    root = dict(document) if isinstance(document, dict) else {}
    node = root
    steps = path[2:].split(".")
    for step in steps[:-1]:
        child = node.get(step)
        child = dict(child) if isinstance(child, dict) else {}
        node[step] = child
        node = child
    node[steps[-1]] = value
    return root


def _matches(error: str, names: list[str]) -> bool:
    if error == "States.Runtime":
        return False
    for name in names:
        if name == error or name == "States.ALL" or (name == "States.TaskFailed" and error != "States.Timeout"):
            return True
    return False


@dataclass
class Execution:
    """One execution: where it is, its data, and how it ended."""

    name: str
    input: dict
    data: Any
    started_ns: int
    state: str = ""
    status: str = "RUNNING"  # RUNNING | SUCCEEDED | FAILED
    error: str | None = None
    cause: str | None = None
    end_state: str | None = None
    transitions: int = 0
    retries: dict[int, int] = field(default_factory=dict)  # retrier index -> attempts made in this state
    token: str | None = None  # the task token the execution waits on
    token_serial: int = 0
    entered_ns: int = 0


class Interpreter:
    """Runs executions of one state machine definition (see the module doc)."""

    def __init__(self, definition: dict, invoke: Callable, scheduler, *, on_end: Callable | None = None,
                 trace: Callable[[str], None] | None = None, task_latency_ns: Callable[[], int] | None = None,
                 on_timeout: Callable | None = None):
        check_supported(definition)
        self.definition = definition
        self.states: dict[str, dict] = definition["States"]
        self.invoke = invoke
        self.scheduler = scheduler
        self.on_end = on_end
        self.on_timeout = on_timeout  # on_timeout(execution, state): a task token timed out
        self.trace = trace
        self.task_latency_ns = task_latency_ns or (lambda: 0)
        self.executions: dict[str, Execution] = {}
        self._tokens: dict[str, Execution] = {}

    # -- the Step Functions API ----------------------------------------------------
    def start(self, name: str, payload: dict) -> bool:
        """StartExecution: ``False`` when an execution of that name exists (``ExecutionAlreadyExists``)."""
        if name in self.executions:
            return False
        data = json.loads(json.dumps(payload))
        execution = Execution(name, data, data, self.scheduler.now_ns)
        self.executions[name] = execution
        self._log(execution, f"start {self.definition['StartAt']}")
        self.scheduler.after(self.task_latency_ns(), self._enter, execution, self.definition["StartAt"])
        return True

    def send_task_success(self, token: str, output: str) -> bool:
        """SendTaskSuccess; ``False`` when the token is unknown, answered or timed out (``InvalidToken``...)."""
        execution = self._take_token(token)
        if execution is None:
            return False
        self.scheduler.after(self.task_latency_ns(), self._task_succeeded, execution, execution.state, json.loads(output),
                             False)
        return True

    def send_task_failure(self, token: str, error: str, cause: str) -> bool:
        execution = self._take_token(token)
        if execution is None:
            return False
        self.scheduler.after(self.task_latency_ns(), self._task_failed, execution, execution.state, error, cause)
        return True

    def forget(self, name: str) -> None:
        """Drop a finished execution (the simulator's memory bound); a later start of the name starts anew."""
        execution = self.executions.pop(name, None)
        if execution is not None and execution.token:
            self._tokens.pop(execution.token, None)

    # -- states ------------------------------------------------------------------------
    def _enter(self, execution: Execution, name: str) -> None:
        if execution.status != "RUNNING":
            return
        if execution.state != name:
            execution.retries = {}
        execution.state = name
        execution.entered_ns = self.scheduler.now_ns
        execution.transitions += 1
        state = self.states[name]
        try:
            kind = state["Type"]
            if kind == "Task":
                self._run_task(execution, name, state)
            elif kind == "Choice":
                self._choose(execution, name, state)
            elif kind == "Wait":
                effective = self._input(execution, state)
                seconds = state["Seconds"] if "Seconds" in state else read_path(effective, state["SecondsPath"])
                if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
                    raise _RuntimeError(f"Wait {name}: SecondsPath {state.get('SecondsPath')} is {seconds!r}")
                self.scheduler.after(int(seconds * SECOND), self._leave, execution, name, execution.data)
            elif kind == "Pass":
                effective = self._input(execution, state)
                result = state["Result"] if "Result" in state else (
                    self._parameters(execution, name, state["Parameters"], effective) if "Parameters" in state else effective)
                self._leave(execution, name, write_path(execution.data, state.get("ResultPath", "$"), result))
            elif kind == "Succeed":
                self._end(execution, "SUCCEEDED", name, output=self._output(state, self._input(execution, state)))
            elif kind == "Fail":
                self._end(execution, "FAILED", name, error=state.get("Error"), cause=state.get("Cause"))
        except _RuntimeError as error:
            self._end(execution, "FAILED", name, error="States.Runtime", cause=str(error))

    def _run_task(self, execution: Execution, name: str, state: dict) -> None:
        effective = self._input(execution, state)
        token = None
        if state["Resource"] == LAMBDA_WAIT_FOR_TOKEN:
            execution.token_serial += 1
            token = f"{execution.name}:{name}:{execution.token_serial}"
        context = self._context(execution, name, token)
        params = state["Parameters"]
        payload = self._parameters(execution, name, params["Payload"], effective, context)
        function = _PLACEHOLDER.match(params["FunctionName"]).group(1)
        try:
            result = self.invoke(function, payload, execution, name)
        except TaskFailed as failed:
            self._task_failed(execution, name, failed.error, failed.cause)
            return
        if token is None:
            lambda_result = {"ExecutedVersion": "$LATEST", "Payload": result, "StatusCode": 200}
            self._task_succeeded(execution, name, lambda_result, True)
            return
        # Wait for the token; the function only stored it.
        execution.token = token
        self._tokens[token] = execution
        timeout = state.get("TimeoutSeconds")
        if "TimeoutSecondsPath" in state:
            timeout = read_path(effective, state["TimeoutSecondsPath"])
            if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
                raise _RuntimeError(f"Task {name}: TimeoutSecondsPath {state['TimeoutSecondsPath']} is {timeout!r}")
        if timeout:
            self.scheduler.after(int(timeout) * SECOND, self._token_timeout, execution, token)

    def _token_timeout(self, execution: Execution, token: str) -> None:
        if self._take_token(token) is not None:
            self._log(execution, f"{execution.state} States.Timeout")
            if self.on_timeout is not None:
                self.on_timeout(execution, execution.state)
            self._task_failed(execution, execution.state, "States.Timeout", "The task timed out.")

    def _take_token(self, token: str) -> Execution | None:
        execution = self._tokens.pop(token, None)
        if execution is None or execution.token != token or execution.status != "RUNNING":
            return None
        execution.token = None
        return execution

    def _task_succeeded(self, execution: Execution, name: str, result: Any, _direct: bool) -> None:
        if execution.status != "RUNNING" or execution.state != name:
            return
        state = self.states[name]
        try:
            if "ResultSelector" in state:
                result = self._parameters(execution, name, state["ResultSelector"], result)
            data = write_path(execution.data, state.get("ResultPath", "$"), result)
            self._leave(execution, name, data)
        except _RuntimeError as error:
            self._end(execution, "FAILED", name, error="States.Runtime", cause=str(error))

    def _task_failed(self, execution: Execution, name: str, error: str, cause: str) -> None:
        if execution.status != "RUNNING" or execution.state != name:
            return
        state = self.states[name]
        for index, retrier in enumerate(state.get("Retry", [])):
            if _matches(error, retrier["ErrorEquals"]):
                made = execution.retries.get(index, 0)
                if made < retrier.get("MaxAttempts", 3):
                    execution.retries[index] = made + 1
                    delay = retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** made
                    if "MaxDelaySeconds" in retrier:
                        delay = min(delay, retrier["MaxDelaySeconds"])
                    self._log(execution, f"{name} {error} retry {made + 1} in {delay:g}s")
                    self.scheduler.after(int(delay * SECOND), self._enter, execution, name)
                    return
                break  # the first matching retrier decides; exhausted, the error goes to Catch
        for catcher in state.get("Catch", []):
            if _matches(error, catcher["ErrorEquals"]):
                self._log(execution, f"{name} {error} caught -> {catcher['Next']}")
                data = write_path(execution.data, catcher.get("ResultPath", "$"), {"Error": error, "Cause": cause})
                execution.data = data
                self._goto(execution, catcher["Next"])
                return
        self._end(execution, "FAILED", name, error=error, cause=cause)

    def _choose(self, execution: Execution, name: str, state: dict) -> None:
        effective = self._input(execution, state)
        for rule in state["Choices"]:
            if self._rule(rule, effective):
                self._goto(execution, rule["Next"])
                return
        if "Default" in state:
            self._goto(execution, state["Default"])
            return
        raise _RuntimeError(f"Choice {name}: no rule matched and there is no Default (States.NoChoiceMatched)")

    def _rule(self, rule: dict, data: Any) -> bool:
        if "And" in rule:
            return all(self._rule(r, data) for r in rule["And"])
        if "Or" in rule:
            return any(self._rule(r, data) for r in rule["Or"])
        if "Not" in rule:
            return not self._rule(rule["Not"], data)
        value = read_path(data, rule["Variable"])
        op = next(k for k in rule if k in _COMPARISONS)
        expected = rule[op]
        if op == "IsPresent":
            return (value is not MISSING) == expected
        if value is MISSING:
            raise _RuntimeError(f"Choice: {rule['Variable']} is not in the input")
        if op == "IsNull":
            return (value is None) == expected
        if op == "IsString":
            return isinstance(value, str) == expected
        if op == "IsBoolean":
            return isinstance(value, bool) == expected
        if op == "IsNumeric":
            return (isinstance(value, (int, float)) and not isinstance(value, bool)) == expected
        if op.startswith("String"):
            if not isinstance(value, str):
                return False
        elif op.startswith("Numeric"):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                return False
        elif op == "BooleanEquals":
            return isinstance(value, bool) and value == expected
        comparison = op.replace("String", "").replace("Numeric", "")
        return {
            "Equals": value == expected, "LessThan": value < expected, "GreaterThan": value > expected,
            "LessThanEquals": value <= expected, "GreaterThanEquals": value >= expected,
        }[comparison]

    def _leave(self, execution: Execution, name: str, data: Any) -> None:
        if execution.status != "RUNNING" or execution.state != name:
            return
        state = self.states[name]
        execution.data = self._output(state, data)
        if state.get("End"):
            self._end(execution, "SUCCEEDED", name, output=execution.data)
        else:
            self._goto(execution, state["Next"])

    def _goto(self, execution: Execution, target: str) -> None:
        if self.states[target]["Type"] == "Task":
            # Each task starts in its own step: other orders' events may come between two states.
            execution.state = f"->{target}"
            self.scheduler.after(self.task_latency_ns(), self._enter, execution, target)
        else:
            self._enter(execution, target)

    def _end(self, execution: Execution, status: str, name: str, output=None, error=None, cause=None) -> None:
        execution.status, execution.end_state, execution.error, execution.cause = status, name, error, cause
        if execution.token:
            self._tokens.pop(execution.token, None)
            execution.token = None
        self._log(execution, f"end {status} at {name}" + (f" ({error})" if error else ""))
        if self.on_end is not None:
            self.on_end(execution)

    # -- data --------------------------------------------------------------------------
    def _input(self, execution: Execution, state: dict) -> Any:
        if "InputPath" not in state:
            return execution.data
        if state["InputPath"] is None:
            return {}
        value = read_path(execution.data, state["InputPath"])
        if value is MISSING:
            raise _RuntimeError(f"InputPath {state['InputPath']} is not in the input")
        return value

    @staticmethod
    def _output(state: dict, data: Any) -> Any:
        if "OutputPath" not in state:
            return data
        if state["OutputPath"] is None:
            return {}
        value = read_path(data, state["OutputPath"])
        if value is MISSING:
            raise _RuntimeError(f"OutputPath {state['OutputPath']} is not in the output")
        return value

    def _context(self, execution: Execution, name: str, token: str | None) -> dict:
        context = {
            "Execution": {"Name": execution.name, "Input": execution.input, "StartTime": execution.started_ns},
            "State": {"Name": name, "EnteredTime": execution.entered_ns,
                      "RetryCount": sum(execution.retries.values())},
        }
        if token is not None:
            context["Task"] = {"Token": token}
        return context

    def _parameters(self, execution: Execution, name: str, template: Any, data: Any, context: dict | None = None) -> Any:
        if isinstance(template, dict):
            out = {}
            for key, value in template.items():
                if key.endswith(".$"):
                    if value.startswith("$$"):
                        found = read_path(context or self._context(execution, name, None), value[1:])
                    else:
                        found = read_path(data, value)
                    if found is MISSING:
                        raise _RuntimeError(
                            f"{name}: the JSONPath '{value}' specified for the field '{key}' could not be found in the input")
                    out[key[:-2]] = found
                else:
                    out[key] = self._parameters(execution, name, value, data, context)
            return out
        if isinstance(template, list):
            return [self._parameters(execution, name, v, data, context) for v in template]
        return template

    def _log(self, execution: Execution, text: str) -> None:
        if self.trace is not None:
            self.trace(f"sfn {execution.name} {text}")


def task_functions(definition: dict) -> dict[str, str]:
    """``{state name: placeholder}`` for every Task (``"ReleaseEscrow": "ReleaseEscrowArn"``)."""
    found = {}
    for name, state in definition["States"].items():
        if state["Type"] == "Task":
            found[name] = _PLACEHOLDER.match(state["Parameters"]["FunctionName"]).group(1)
    return found


def check_supported(definition: dict) -> None:
    """Refuse (``UnsupportedAsl``) any state, field, resource or rule outside the interpreter's subset."""
    states = definition.get("States") or {}
    if definition.get("StartAt") not in states:
        raise UnsupportedAsl("StartAt names no state")
    for name, state in states.items():
        kind = state.get("Type")
        if kind not in _STATE_FIELDS:
            raise UnsupportedAsl(f"state {name}: type {kind!r} is not supported")
        extra = set(state) - _STATE_FIELDS[kind]
        if extra:
            raise UnsupportedAsl(f"state {name}: fields {sorted(extra)} are not supported")
        for target in [state.get("Next"), state.get("Default")] + [c.get("Next") for c in state.get("Catch", [])]:
            if target is not None and target not in states:
                raise UnsupportedAsl(f"state {name}: Next {target!r} is not a state")
        if kind == "Task":
            if state.get("Resource") not in (LAMBDA_INVOKE, LAMBDA_WAIT_FOR_TOKEN):
                raise UnsupportedAsl(f"state {name}: resource {state.get('Resource')!r} is not supported")
            function = (state.get("Parameters") or {}).get("FunctionName")
            if not isinstance(function, str) or not _PLACEHOLDER.match(function):
                raise UnsupportedAsl(f"state {name}: FunctionName must be a ${{XxxArn}} placeholder")
            if "Payload" not in state["Parameters"]:
                raise UnsupportedAsl(f"state {name}: Parameters.Payload is required")
            for retrier in state.get("Retry", []):
                if set(retrier) - _RETRY_FIELDS:
                    raise UnsupportedAsl(f"state {name}: Retry fields {sorted(set(retrier) - _RETRY_FIELDS)}")
            for catcher in state.get("Catch", []):
                if set(catcher) - _CATCH_FIELDS:
                    raise UnsupportedAsl(f"state {name}: Catch fields {sorted(set(catcher) - _CATCH_FIELDS)}")
        if kind == "Choice":
            for rule in state.get("Choices", []):
                _check_rule(name, rule)
        if kind in ("Task", "Wait", "Pass") and not state.get("End") and "Next" not in state:
            raise UnsupportedAsl(f"state {name}: needs Next or End")


def _check_rule(name: str, rule: dict) -> None:
    if "And" in rule or "Or" in rule:
        for sub in rule.get("And", rule.get("Or")):
            _check_rule(name, sub)
        return
    if "Not" in rule:
        _check_rule(name, rule["Not"])
        return
    ops = [k for k in rule if k not in ("Variable", "Next")]
    if "Variable" not in rule or len(ops) != 1 or ops[0] not in _COMPARISONS:
        raise UnsupportedAsl(f"state {name}: choice rule {rule} is not supported")
