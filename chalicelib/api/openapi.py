"""The OpenAPI 3.1 document, generated from the route registry.

Nothing here is written by hand: paths, parameters, security and responses come
from each ``RouteSpec``; schemas come from the pydantic models
(``model_json_schema``), gathered under ``components.schemas``. What a route can
answer besides success follows from how it was declared (a body → 400/413/415, roles →
401/403, a path parameter → 404, idempotent → 409/422), from what its view raises
(``errors=``), and from what every route can meet (``COMMON_STATUSES``: the gateway's
429 throttling and 502/504, a 500, a 503 provider or unconfigured stage). Webhooks and
gateway callbacks describe the body and headers they read themselves (``RequestDoc``,
``chalicelib.api.webhook_schemas``).
"""
from __future__ import annotations

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chalicelib.api.routing import JSON, RouteSpec
from chalicelib.api.schemas import ErrorResponse

TITLE = "Mizani API"
VERSION = "1.0.0"
_REF = "#/components/schemas/{model}"

#: What each error status means, and the stable codes it carries (``chalicelib/api/errors.py``; the
#: gateway's own in ``infra/gateway.py``).
_ERROR_TEXT = {
    400: "Malformed or invalid input (validation_error, idempotency_key_required, invalid_signature, "
    "invalid_callback)",
    401: "No token, or a bad or expired token (unauthorized)",
    403: "The caller's role may not use this route (forbidden)",
    404: "Not found, or not yours (not_found)",
    409: "Wrong state, taken, or the same Idempotency-Key is still in flight (invalid_state, msisdn_taken, "
    "request_in_progress, ...)",
    413: "The body is larger than the gateway takes (request_too_large; API Gateway)",
    415: "The body is not JSON (unsupported_media_type): send Content-Type: application/json",
    422: "A business rule refused the request (quote_expired, insufficient_funds, limit_exceeded, "
    "idempotency_key_reused, payee_invalid, ...)",
    429: "Too many requests (throttled, retryable; API Gateway's stage throttling): retry after Retry-After seconds",
    500: "Internal error (internal_error); the body carries only the request_id",
    502: "The function failed before answering (internal_error; API Gateway)",
    503: "A provider is unavailable (provider_unavailable, retryable), or this stage is not configured to "
    "serve safely (not_configured: a secret is missing or left at its public local default)",
    504: "The function did not answer in time (upstream_timeout, retryable; API Gateway)",
}
#: Statuses any route can answer: the gateway's throttling and its failures, a bug, a stage that is not
#: configured (checked before anything else), a provider down.
COMMON_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Statuses only API Gateway answers (``infra/gateway.py``): the document promises the app's
#: ``X-Request-Id`` header only on the answers the app gives itself.
_GATEWAY_ONLY = frozenset({413, 429, 502, 504})

_REQUEST_ID = {
    "description": "The request's id (also in an error's body); quote it to support",
    "schema": {"type": "string", "minLength": 1},
}
_HEADERS_BY_STATUS = {
    401: {"WWW-Authenticate": {"description": "Bearer", "required": True, "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "seconds to wait before a retry", "required": False,
                          "schema": {"type": "string", "pattern": "^[0-9]+$"}}},
}


def error_statuses(spec: RouteSpec) -> list[int]:
    """Every error status ``spec``'s route can answer: ``COMMON_STATUSES``, those that follow from how it
    was declared (input → 400, a JSON body → 413/415, roles → 401/403, a path id → 404, idempotent →
    409/422), and those its view raises itself (``errors=``)."""
    statuses = {*COMMON_STATUSES, *spec.error_statuses}
    if spec.body is not None or spec.query is not None or spec.idempotent or spec.request_doc is not None:
        statuses.add(400)
    if spec.body is not None:
        statuses.update({413, 415})
    elif spec.request_doc is not None:
        statuses.add(413)
    if spec.roles is not None:
        statuses.update({401, 403})
    if spec.path_params:
        statuses.add(404)
    if spec.idempotent:
        statuses.update({409, 422})
    return sorted(statuses)


_REQUEST_ID_REF = "#/components/headers/RequestId"


def _error_response_name(status: int) -> str:
    return f"Error{status}"


def _error_responses(error_ref: dict) -> dict:
    """``components.responses``: one error response per status, shared by every operation."""
    responses = {}
    for status, text in _ERROR_TEXT.items():
        headers = {} if status in _GATEWAY_ONLY else {"X-Request-Id": {"$ref": _REQUEST_ID_REF}}
        headers.update(_HEADERS_BY_STATUS.get(status, {}))
        responses[_error_response_name(status)] = {"description": text, "headers": headers,
                                                   "content": {JSON: {"schema": error_ref}}}
    return responses


def document(api) -> dict:
    """The document for an ``Api``'s routes, built once per container (routes are fixed at import)."""
    cached = getattr(api, "_openapi_document", None)
    if cached is None or cached[0] != len(api.routes):
        cached = (len(api.routes), build(api.routes))
        api._openapi_document = cached
    return cached[1]


def build(routes: list[RouteSpec]) -> dict:
    """The OpenAPI 3.1 document for ``routes``."""
    models: list[tuple[type[BaseModel], str]] = [(ErrorResponse, "serialization")]
    for spec in routes:
        if spec.body is not None:
            models.append((spec.body, "validation"))
        if spec.request_doc is not None and spec.request_doc.schema is not None:
            models.append((spec.request_doc.schema, "validation"))
        if spec.response is not None:
            models.append((spec.response, "serialization"))
    unique = list(dict.fromkeys(models))
    refs, defs = models_json_schema(unique, ref_template=_REF)
    schemas = dict(sorted(defs.get("$defs", {}).items()))

    def ref(model: type[BaseModel], mode: str) -> dict:
        return refs[(model, mode)]

    error_ref = ref(ErrorResponse, "serialization")
    paths: dict = {}
    for spec in routes:
        operation: dict = {
            "operationId": spec.name,
            "summary": spec.summary or spec.name.replace("_", " "),
            "tags": list(spec.tags),
            "parameters": _parameters(spec),
            "responses": {},
        }
        if spec.description:
            operation["description"] = spec.description
        if spec.roles is None:
            operation["security"] = []
        else:
            operation["security"] = [{"bearerAuth": []}]
            operation["x-mizani-roles"] = sorted(spec.roles)
        if spec.body is not None:
            operation["requestBody"] = {"required": True, "content": {JSON: {"schema": ref(spec.body, "validation")}}}
        elif spec.request_doc is not None:
            doc = spec.request_doc
            schema = ref(doc.schema, "validation") if doc.schema is not None else {"type": "string"}
            operation["requestBody"] = {"required": doc.required,
                                        "content": {media: {"schema": schema} for media in doc.media_types}}
        success: dict = {"description": "Success", "headers": {"X-Request-Id": {"$ref": _REQUEST_ID_REF}}}
        if spec.response is not None:
            success["content"] = {spec.media_type: {"schema": ref(spec.response, "serialization")}}
        elif spec.media_type != JSON:
            success["content"] = {media: {"schema": {"type": "string"}}
                                  for media in (spec.media_type, *spec.other_media_types)}
        if spec.idempotent:
            success["headers"]["Idempotent-Replayed"] = {
                "description": "true when this is the stored response of an earlier request with the same key",
                "schema": {"type": "string", "enum": ["true"]},
            }
        operation["responses"][str(spec.status)] = success
        for status in error_statuses(spec):
            operation["responses"][str(status)] = {"$ref": f"#/components/responses/{_error_response_name(status)}"}
        if not operation["parameters"]:
            del operation["parameters"]
        paths.setdefault(spec.path, {})[spec.method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "Escrow, FX and settlement for cross-border sellers. Money is integer minor units; "
            "rates are decimal strings; times are RFC 3339 UTC.",
        },
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "responses": _error_responses(error_ref),
            "headers": {"RequestId": {**_REQUEST_ID, "required": True}},
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def _parameters(spec: RouteSpec) -> list[dict]:
    params: list[dict] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in spec.path_params
    ]
    if spec.query is not None:
        schema = spec.query.model_json_schema(ref_template=_REF)
        required = set(schema.get("required", ()))
        for name, prop in schema.get("properties", {}).items():
            param = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if "description" in prop:
                param["description"] = prop["description"]
            params.append(param)
    if spec.request_doc is not None:
        for header in spec.request_doc.headers:
            schema = {"type": "string", "minLength": 1}
            if header.pattern:
                schema["pattern"] = header.pattern
            params.append({"name": header.name, "in": "header", "required": header.required,
                           "description": header.description, "schema": schema})
    if spec.idempotent:
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": True,
                "description": "Same key + same body replays the first response; another body is 422.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        )
    return params
