"""The OpenAPI 3.1 document, generated from the route registry.

Nothing here is written by hand: paths, parameters, security and responses come
from each ``RouteSpec``; schemas come from the pydantic models
(``model_json_schema``), gathered under ``components.schemas``. What a route can
answer besides success follows from how it was declared (a body → 400, roles →
401/403, a path parameter → 404, idempotent → 409/422).
"""
from __future__ import annotations

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chalicelib.api.routing import JSON, RouteSpec
from chalicelib.api.schemas import ErrorResponse

TITLE = "Mizani API"
VERSION = "1.0.0"
_REF = "#/components/schemas/{model}"

_ERROR_TEXT = {
    400: "Malformed or invalid input (validation_error, idempotency_key_required, invalid_signature)",
    401: "No token, or a bad or expired token (unauthorized)",
    403: "The caller's role may not use this route (forbidden)",
    404: "Not found, or not yours (not_found)",
    409: "Wrong state, or the same Idempotency-Key is still in flight (invalid_state, request_in_progress)",
    422: "A business rule refused the request (quote_expired, insufficient_funds, limit_exceeded, "
    "idempotency_key_reused)",
    500: "Internal error (internal_error); the body carries only the request_id",
    503: "A provider is unavailable (provider_unavailable, retryable)",
}


def error_statuses(spec: RouteSpec) -> list[int]:
    statuses = {500, *spec.error_statuses}
    if spec.body is not None or spec.query is not None or spec.idempotent:
        statuses.add(400)
    if spec.roles is not None:
        statuses.update({401, 403})
    if spec.path_params:
        statuses.add(404)
    if spec.idempotent:
        statuses.update({409, 422})
    return sorted(statuses)


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
        success: dict = {"description": "Success"}
        if spec.response is not None:
            success["content"] = {spec.media_type: {"schema": ref(spec.response, "serialization")}}
        elif spec.media_type != JSON:
            success["content"] = {spec.media_type: {"schema": {"type": "string"}}}
        if spec.idempotent:
            success["headers"] = {
                "Idempotent-Replayed": {
                    "description": "true when this is the stored response of an earlier request with the same key",
                    "schema": {"type": "string", "enum": ["true"]},
                }
            }
        operation["responses"][str(spec.status)] = success
        for status in error_statuses(spec):
            operation["responses"][str(status)] = {
                "description": _ERROR_TEXT.get(status, "Error"),
                "content": {JSON: {"schema": error_ref}},
            }
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
