"""The API Gateway in front of the API Lambda: stage throttling, X-Ray, and API Gateway's own
errors in our error envelope.

Chalice generates the ``RestAPI`` (``AWS::Serverless::Api``) with the routes as an inline Swagger
``DefinitionBody``; ``rest_api_properties`` is deep-merged into it by ``chalice package
--merge-template`` (see ``infra/build.py``):

- ``Name`` and the body's ``info.title`` are ``mizani-${Stage}``: the REST API's name is the
  ``ApiName`` dimension of API Gateway's metrics, which the 5xx alarm (``infra/alarms.py``) names;
- ``MethodSettings`` on ``/*/*``: stage-wide throttling, a steady rate and a burst, from
  ``.chalice/config.json`` (``stages.<stage>.api_throttling``: ``rate_limit`` requests per second,
  ``burst_limit`` requests) through the template parameters ``ApiThrottleRateLimit`` /
  ``ApiThrottleBurstLimit`` (an operator may override them at deploy time). A client over the limit
  gets ``429 throttled`` from the gateway; the Lambda never sees the request;
- ``TracingEnabled``: X-Ray on the stage;
- ``GatewayResponses``: every error API Gateway answers by itself (no such route, throttled, body
  too large, integration timed out, ...) rendered as the app's envelope
  ``{"error": {"code", "message", "request_id", "retryable"?}}`` (``chalicelib/api/errors.py``),
  with the same ``X-Request-Id`` and ``Cache-Control: no-store`` headers the app sends.

API Gateway's request id is ``$context.requestId``, which is also what the app puts in
``request_id`` (it reads ``requestId`` from the request context), so one id names a request
whether the gateway or the app answered it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHALICE_CONFIG = ROOT / ".chalice" / "config.json"
REST_API_LOGICAL_ID = "RestAPI"
RATE_PARAMETER = "ApiThrottleRateLimit"
BURST_PARAMETER = "ApiThrottleBurstLimit"
#: the VTL variable API Gateway fills with its request id (the app's ``request_id`` too)
REQUEST_ID_VARIABLE = "$context.requestId"

INTERNAL_ERROR_MESSAGE = "An internal error occurred. Quote the request_id when you contact support."


@dataclass(frozen=True)
class GatewayError:
    """How one API Gateway response type is answered: ``status`` None keeps the gateway's own
    status (for the ``DEFAULT_*`` fallbacks, whose status varies), ``code`` is the stable wire code."""

    status: int | None
    code: str
    message: str
    retryable: bool = False
    headers: tuple[tuple[str, str], ...] = ()


#: Every gateway response type (API Gateway's "Gateway response types" table), each in our envelope.
#: Codes are the app's own where the meaning is the same (not_found, unauthorized, forbidden,
#: validation_error, unsupported_media_type, internal_error); new ones: throttled, request_too_large,
#: upstream_timeout. The routes use no API Gateway authorizer, so a request for an unknown path or
#: method arrives as MISSING_AUTHENTICATION_TOKEN (API Gateway's 403): we answer 404 not_found.
GATEWAY_ERRORS: dict[str, GatewayError] = {
    "DEFAULT_4XX": GatewayError(None, "bad_request", "The request was refused before it reached the API."),
    "DEFAULT_5XX": GatewayError(None, "internal_error", INTERNAL_ERROR_MESSAGE),
    "MISSING_AUTHENTICATION_TOKEN": GatewayError(404, "not_found", "No such route."),
    "RESOURCE_NOT_FOUND": GatewayError(404, "not_found", "No such route."),
    "THROTTLED": GatewayError(429, "throttled", "Too many requests: slow down and retry after a pause.",
                              retryable=True, headers=(("Retry-After", "1"),)),
    "QUOTA_EXCEEDED": GatewayError(429, "throttled", "The request quota is used up: retry later.",
                                   retryable=True, headers=(("Retry-After", "60"),)),
    "UNAUTHORIZED": GatewayError(401, "unauthorized", "No token, or a token that does not verify.",
                                 headers=(("WWW-Authenticate", "Bearer"),)),
    "ACCESS_DENIED": GatewayError(403, "forbidden", "The caller may not use this route."),
    "EXPIRED_TOKEN": GatewayError(403, "forbidden", "The caller may not use this route."),
    "INVALID_API_KEY": GatewayError(403, "forbidden", "The caller may not use this route."),
    "INVALID_SIGNATURE": GatewayError(403, "forbidden", "The caller may not use this route."),
    "WAF_FILTERED": GatewayError(403, "forbidden", "The request was refused."),
    "BAD_REQUEST_BODY": GatewayError(400, "validation_error", "The request body is not valid."),
    "BAD_REQUEST_PARAMETERS": GatewayError(400, "validation_error", "The request parameters are not valid."),
    "REQUEST_TOO_LARGE": GatewayError(413, "request_too_large", "The request is too large."),
    "UNSUPPORTED_MEDIA_TYPE": GatewayError(415, "unsupported_media_type", "This media type is not accepted."),
    "INTEGRATION_FAILURE": GatewayError(502, "internal_error", INTERNAL_ERROR_MESSAGE),
    "INTEGRATION_TIMEOUT": GatewayError(504, "upstream_timeout",
                                        "The request timed out. Retry it with the same Idempotency-Key.",
                                        retryable=True),
    "API_CONFIGURATION_ERROR": GatewayError(500, "internal_error", INTERNAL_ERROR_MESSAGE),
    "AUTHORIZER_CONFIGURATION_ERROR": GatewayError(500, "internal_error", INTERNAL_ERROR_MESSAGE),
    "AUTHORIZER_FAILURE": GatewayError(500, "internal_error", INTERNAL_ERROR_MESSAGE),
}


def response_template(error: GatewayError) -> str:
    """The ``application/json`` mapping template: our envelope, the request id filled by API Gateway.

    The messages hold no ``$`` or ``#`` (VTL would read them), so the only VTL in the template is
    the request id variable."""
    body: dict = {"code": error.code, "message": error.message, "request_id": "__REQUEST_ID__"}
    if error.retryable:
        body["retryable"] = True
    text = json.dumps({"error": body})
    if "$" in text or "#" in text:
        raise ValueError(f"{error.code}: a gateway message may not hold '$' or '#' (VTL would read them)")
    return text.replace("__REQUEST_ID__", REQUEST_ID_VARIABLE)


def gateway_responses() -> dict:
    """SAM ``GatewayResponses`` (``AWS::Serverless::Api``): SAM writes them into the Swagger body as
    ``x-amazon-apigateway-gateway-responses``, so they are deployed with the API's own deployment."""
    responses = {}
    for kind, error in GATEWAY_ERRORS.items():
        headers = {
            # SAM prefixes these with gatewayresponse.header.; a value is a mapping expression:
            # a quoted literal or a context variable
            "X-Request-Id": "context.requestId",
            "Cache-Control": "'no-store'",
        }
        headers.update({name: f"'{value}'" for name, value in error.headers})
        response = {
            "ResponseParameters": {"Headers": headers},
            "ResponseTemplates": {"application/json": response_template(error)},
        }
        if error.status is not None:
            response["StatusCode"] = str(error.status)
        responses[kind] = response
    return responses


def load_chalice_config(path: Path | str = CHALICE_CONFIG) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def throttling(stage: str, config: dict | None = None) -> tuple[int, int]:
    """``(rate_limit, burst_limit)`` of ``stage`` from ``.chalice/config.json``; both required."""
    config = load_chalice_config() if config is None else config
    settings = ((config.get("stages") or {}).get(stage) or {}).get("api_throttling")
    if not isinstance(settings, dict):
        raise ValueError(f".chalice/config.json: stages.{stage}.api_throttling (rate_limit, burst_limit) is missing")
    rate, burst = settings.get("rate_limit"), settings.get("burst_limit")
    for name, value in (("rate_limit", rate), ("burst_limit", burst)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f".chalice/config.json: stages.{stage}.api_throttling.{name} must be a positive integer")
    if burst < rate:
        raise ValueError(f".chalice/config.json: stages.{stage}.api_throttling: burst_limit must be at least rate_limit")
    return rate, burst


def api_gateway_stage(stage: str, config: dict | None = None) -> str:
    """The API Gateway stage name Chalice deploys the API under (``api_gateway_stage``, default ``api``)."""
    config = load_chalice_config() if config is None else config
    stage_cfg = (config.get("stages") or {}).get(stage) or {}
    return stage_cfg.get("api_gateway_stage") or config.get("api_gateway_stage") or "api"


def parameters(stage: str, config: dict | None = None) -> dict:
    """The template parameters for the throttle, defaulting to the stage's configuration."""
    rate, burst = throttling(stage, config)
    return {
        RATE_PARAMETER: {"Type": "Number", "Default": rate, "MinValue": 1,
                         "Description": "API Gateway stage throttle: steady requests per second (all routes)."},
        BURST_PARAMETER: {"Type": "Number", "Default": burst, "MinValue": 1,
                          "Description": "API Gateway stage throttle: burst of requests (all routes)."},
    }


def api_name() -> dict:
    return {"Fn::Sub": "mizani-${Stage}"}


def rest_api_properties() -> dict:
    """Deep-merged into Chalice's ``RestAPI`` properties."""
    return {
        "Name": api_name(),
        "DefinitionBody": {"info": {"title": api_name()}},
        "TracingEnabled": True,
        "MethodSettings": [
            {
                "ResourcePath": "/*",
                "HttpMethod": "*",
                "ThrottlingRateLimit": {"Ref": RATE_PARAMETER},
                "ThrottlingBurstLimit": {"Ref": BURST_PARAMETER},
            }
        ],
        "GatewayResponses": gateway_responses(),
    }
