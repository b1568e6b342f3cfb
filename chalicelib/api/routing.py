"""The one way to declare a route: ``Api.route``.

Every view in ``app.py`` is registered through it, so every route gets the same
edge, in this order:

1. a request id (API Gateway's, else a fresh one), echoed as ``X-Request-Id``;
2. authentication (``Authorization: Bearer``) and the route's role check;
3. ``Idempotency-Key`` presence, for the POSTs that create or move something;
4. the JSON body and the query string parsed into strict pydantic models;
5. the claim of the idempotency key, the view itself, and the stored/replayed reply;
6. the reply serialized as JSON with the route's status code;
7. any exception mapped to the error envelope by ``chalicelib.api.errors``.

Chalice middleware never sees exceptions raised in views, which is why this is a
decorator. Each registration is also recorded (``Api.routes``) for the OpenAPI
document served at ``GET /v1/openapi.json``.

    api = Api(app, idempotency_store=bootstrap.idempotency_store)

    @api.route("POST", "/v1/fx/quotes", roles=ANY_ROLE, body=QuoteRequest,
               response=QuoteResponse, status=201, summary="Quote an exchange")
    def create_quote(call: Call) -> QuoteResponse:
        return QuoteResponse.of(bootstrap.quotes().create(...))
"""
from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import pydantic
from chalice import Response
from pydantic import BaseModel

from chalicelib.api import auth, config_check
from chalicelib.api.errors import status_for, to_http
from chalicelib.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from chalicelib.api.idempotency import Idempotency, IdempotencyStore, StoredResponse, record_key, require_key
from chalicelib.errors import MizaniError, UnsupportedMediaType, ValidationError
from chalicelib.observability import logs as observed

logger = logging.getLogger("mizani.api")

#: ``roles=PUBLIC``: no token needed (health, OpenAPI, signed webhooks).
PUBLIC = None
JSON = "application/json"
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_PATH_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)}")


@dataclass(frozen=True)
class RouteSpec:
    """What the registry knows about one route (the OpenAPI document is built from these)."""

    method: str
    path: str
    name: str
    roles: frozenset[str] | None
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    idempotent: bool
    summary: str
    description: str
    tags: tuple[str, ...]
    media_type: str
    error_statuses: tuple[int, ...] = ()
    request_doc: "RequestDoc | None" = None
    other_media_types: tuple[str, ...] = ()  # success bodies of other types (a console asset: CSS or JS)

    @property
    def path_params(self) -> list[str]:
        return _PATH_PARAM.findall(self.path)


@dataclass(frozen=True)
class HeaderDoc:
    """A request header a route reads itself (a webhook's signature), for the OpenAPI document."""

    name: str
    description: str
    required: bool = True
    pattern: str | None = None


@dataclass(frozen=True)
class RequestDoc:
    """What a route without a ``body`` model reads from the raw request (webhooks, gateway forms,
    XML): the media types and schema of the body, and the headers it checks. Documentation only:
    the view parses and verifies it itself (signatures must see the raw bytes)."""

    media_types: tuple[str, ...] = (JSON,)
    schema: type[BaseModel] | None = None  # None: any text of those media types
    required: bool = True
    headers: tuple[HeaderDoc, ...] = ()


@dataclass(frozen=True)
class Call:
    """One parsed, authenticated request, as a view receives it."""

    request_id: str
    method: str
    path: str  # the concrete path, e.g. /v1/ledger/accounts/fx:USD
    principal: auth.Principal | None
    body: Any  # an instance of the route's ``body`` model, or None
    query: Any  # an instance of the route's ``query`` model, or None
    params: dict[str, str]
    headers: Mapping[str, str]
    raw_body: bytes
    idempotency_key: str | None = None

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


@dataclass(frozen=True)
class Reply:
    """A view's explicit reply, when the route's status/JSON default does not fit
    (another status, extra headers, or a non-JSON body such as CSV)."""

    body: Any = None
    status: int | None = None
    headers: dict = field(default_factory=dict)
    content_type: str = JSON


class Api:
    """Registrar of the routes of one Chalice app (see the module docstring)."""

    def __init__(
        self,
        app,
        idempotency_store: Callable[[], IdempotencyStore] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.routes: list[RouteSpec] = []
        self._idempotency_store = idempotency_store
        self._clock = clock

    # -- registration -----------------------------------------------------------

    def route(
        self,
        method: str,
        path: str,
        *,
        roles: Iterable[str] | None,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        idempotent: bool | None = None,
        summary: str = "",
        description: str = "",
        tags: Iterable[str] = (),
        media_type: str = JSON,
        content_types: list[str] | None = None,
        errors: Iterable[int] = (),
        request_doc: RequestDoc | None = None,
        other_media_types: Iterable[str] = (),
    ):
        """Register ``view(call, **path_params)`` for ``method path``.

        ``roles``: the roles allowed (``auth.ANY_ROLE``, ``{"finance", "admin"}``), or
        ``PUBLIC``. ``body``/``query``: pydantic models the request must match.
        ``response``: the model of the success body (the view may return an instance
        of it, a dict it validates, or a ``Reply``). ``idempotent``: require and honour
        ``Idempotency-Key`` (default: every POST; webhooks pass ``False``).
        ``errors``: the error statuses the view itself can answer besides those that follow
        from the declaration (see ``openapi.error_statuses``), e.g. 404 for an id in the body.
        ``request_doc``: the body and headers a route without ``body`` reads itself (webhooks).
        ``other_media_types``: more media types of the success body than ``media_type``.
        """
        method = method.upper()
        if method not in _METHODS:
            raise ValueError(f"unsupported method {method}")
        if roles is not None:
            roles = frozenset(roles)
            unknown = roles - auth.ROLES
            if not roles or unknown:
                raise ValueError(f"{method} {path}: roles must be a non-empty subset of {sorted(auth.ROLES)}")
        if body is not None and method == "GET":
            raise ValueError(f"GET {path} cannot take a body")
        if idempotent is None:
            idempotent = method == "POST"

        def register(view: Callable[..., Any]):
            name = view.__name__
            if any(r.name == name for r in self.routes):
                raise ValueError(f"two routes share the view name {name!r} (it is the OpenAPI operationId)")
            spec = RouteSpec(
                method=method,
                path=path,
                name=name,
                roles=roles,
                body=body,
                query=query,
                response=response,
                status=status,
                idempotent=bool(idempotent),
                summary=summary or (view.__doc__ or "").strip().split("\n")[0],
                description=description,
                tags=tuple(tags) or _default_tags(path),
                media_type=media_type,
                error_statuses=tuple(errors),
                request_doc=request_doc,
                other_media_types=tuple(other_media_types),
            )
            self.routes.append(spec)

            def chalice_view(**path_params):
                return self._handle(spec, view, path_params)

            chalice_view.__name__ = name
            chalice_view.__doc__ = view.__doc__
            chalice_view.__wrapped__ = view  # type: ignore[attr-defined]
            self.app.route(path, methods=[method], content_types=content_types or ["*/*"])(chalice_view)
            return view

        return register

    def get(self, path: str, **kwargs):
        return self.route("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.route("POST", path, **kwargs)

    # -- serving ------------------------------------------------------------------------

    def _handle(self, spec: RouteSpec, view: Callable[..., Any], path_params: dict) -> Response:
        request = self.app.current_request
        request_id = _request_id(request)
        observed.install()  # JSON log lines (Powertools), once per container
        # every line logged while this request runs carries its id and the ids in its path
        path_ids = {k: unquote(v) for k, v in (path_params or {}).items() if k in observed.KEYS}
        with observed.scope(request_id=request_id, **path_ids):
            return self._handle_in_scope(spec, view, path_params, request, request_id)

    def _handle_in_scope(self, spec: RouteSpec, view, path_params: dict, request, request_id: str) -> Response:
        started = time.perf_counter()
        principal = None
        try:
            config_check.require_safe_secrets()  # outside local: no public default secret is ever trusted
            params = {k: unquote(v) for k, v in (path_params or {}).items()}
            headers = request.headers if request is not None else {}
            if spec.roles is not None:
                principal = auth.authenticate(headers.get("authorization"))
                auth.authorize(principal, spec.roles)
            key = require_key(headers.get(IDEMPOTENCY_HEADER.lower())) if spec.idempotent else None
            raw_body = (request.raw_body if request is not None else b"") or b""
            if spec.body is not None:
                require_json_media_type(headers.get("content-type"))
            payload = parse_json_object(raw_body) if spec.body is not None else None
            call = Call(
                request_id=request_id,
                method=spec.method,
                path=_concrete_path(spec.path, params),
                principal=principal,
                body=validate(spec.body, payload) if spec.body is not None else None,
                query=validate(spec.query, _query_dict(request), where="query") if spec.query is not None else None,
                params=params,
                headers=headers,
                raw_body=raw_body,
                idempotency_key=key,
            )
            if key is None:
                outcome, extra_headers = self._run(spec, view, call, store_errors=False)
            else:
                extra_headers = {}

                def execute() -> StoredResponse:
                    result, more = self._run(spec, view, call, store_errors=True)
                    extra_headers.update(more)
                    return result

                sub = principal.sub if principal else "anonymous"
                idem = Idempotency(self._store(), clock=self._clock)
                outcome = idem.run(record_key(sub, spec.method, call.path, key), payload, execute)
                if outcome.replayed:
                    extra_headers["Idempotent-Replayed"] = "true"
            response = Response(
                body=outcome.body,
                status_code=outcome.status,
                headers=_headers(request_id, extra_headers),
            )
        except Exception as exc:  # noqa: BLE001 - the edge: every failure gets the envelope
            error = to_http(exc, request_id)
            response = Response(
                body=_dumps(error.body),
                status_code=error.status,
                headers=_headers(request_id, error.headers),
            )
        logger.info("request", extra={  # the access line (request_id and the path's ids come from the scope)
            "route": f"{spec.method} {spec.path}",
            "status": response.status_code,
            "role": principal.role if principal else None,
            "ms": round((time.perf_counter() - started) * 1000, 1),
        })
        if spec.path.startswith("/v1/webhooks/") and response.status_code == 200 and '"duplicate":true' in (
                response.body if isinstance(response.body, str) else ""):
            from chalicelib.observability import metrics

            metrics.webhook_duplicate(spec.name)  # a provider's repeat, acknowledged and not acted on
        return response

    def _run(self, spec: RouteSpec, view, call: Call, store_errors: bool) -> tuple[StoredResponse, dict]:
        """Call the view and render its reply; with ``store_errors``, domain 4xx become
        replies (stored and replayed); everything else propagates (and releases the key)."""
        try:
            result = view(call, **call.params)
        except MizaniError as exc:
            if store_errors and status_for(exc) < 500:
                error = to_http(exc, call.request_id)
                return StoredResponse(error.status, _dumps(error.body)), dict(error.headers)
            raise
        return render(spec, result)

    def _store(self) -> IdempotencyStore:
        if self._idempotency_store is None:
            raise RuntimeError("this Api has idempotent routes but no idempotency_store")
        return self._idempotency_store()


# -- parsing -----------------------------------------------------------------------------


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"the key {k!r} appears twice")
        out[k] = v
    return out


def require_json_media_type(content_type: str | None) -> None:
    """A JSON route's body must say it is JSON (``application/json`` or ``application/<x>+json``, any
    parameters); another media type is a 415. No header at all is read as JSON (``parse_json_object``
    then decides), so hand-written clients keep working; the form-encoded gateway callbacks declare
    no ``body`` model and are never held to this."""
    if content_type is None or not content_type.strip():
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == JSON or (media_type.startswith("application/") and media_type.endswith("+json")):
        return
    raise UnsupportedMediaType("unsupported_media_type", f"send the body as {JSON}, not {media_type[:60]}")


def parse_json_object(raw: bytes | str) -> dict:
    """The request body as a JSON object, or a 400 ``validation_error`` saying why not."""
    if not raw:
        raise _invalid("body", "a JSON object body is required")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        data = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)
    except UnicodeDecodeError:
        raise _invalid("body", "the body is not UTF-8 text") from None
    except ValueError as exc:
        raise _invalid("body", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise _invalid("body", "the body nests too deeply") from None
    if not isinstance(data, dict):
        raise _invalid("body", "the body must be a JSON object")
    return data


def validate(model: type[BaseModel], data: Any, where: str = "") -> BaseModel:
    """``model`` built from ``data``, or a 400 ``validation_error`` listing every bad field."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        fields = [_field(err, where) for err in exc.errors(include_url=False, include_input=False)]
        raise ValidationError("validation_error", "the request is invalid; see fields", fields=fields) from None


def _field(err: dict, where: str) -> dict:
    loc = ".".join(str(part) for part in err.get("loc", ()))
    path = ".".join(p for p in (where, loc) if p) or "body"
    message = err.get("msg", "invalid")
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix):]
    return {"path": path, "message": message}


def _invalid(path: str, message: str) -> ValidationError:
    return ValidationError("validation_error", message, fields=[{"path": path, "message": message}])


def _query_dict(request) -> dict:
    params = getattr(request, "query_params", None) or {}
    out: dict = {}
    for name in params:
        values = params.getlist(name) if hasattr(params, "getlist") else [params[name]]
        if len(values) > 1:
            raise _invalid(f"query.{name}", "give this parameter once")
        out[name] = values[0]
    return out


# -- rendering -----------------------------------------------------------------------------


def render(spec: RouteSpec, result: Any) -> tuple[StoredResponse, dict]:
    """A view's return value as (status + JSON text, extra headers)."""
    status, headers, content_type = spec.status, {}, JSON
    if isinstance(result, Reply):
        status = result.status or status
        headers = dict(result.headers)
        content_type = result.content_type
        result = result.body
    if content_type != JSON:
        headers["Content-Type"] = content_type
        return StoredResponse(status, result if isinstance(result, str) else result.decode("utf-8")), headers
    if isinstance(result, BaseModel):
        data = result.model_dump(mode="json", by_alias=True)
    elif result is None:
        data = None
    elif spec.response is not None:
        # A dict from the view is held to the declared schema: the contract cannot drift silently.
        data = spec.response.model_validate(result).model_dump(mode="json", by_alias=True)
    else:
        data = result
    return StoredResponse(status, "" if data is None else _dumps(data)), headers


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _headers(request_id: str, extra: dict) -> dict:
    headers = {"Content-Type": JSON, "X-Request-Id": request_id, "Cache-Control": "no-store"}
    headers.update(extra)
    return headers


def _request_id(request) -> str:
    context = getattr(request, "context", None) or {}
    rid = context.get("requestId") if isinstance(context, dict) else None
    return rid or uuid.uuid4().hex


def _concrete_path(template: str, params: dict) -> str:
    return _PATH_PARAM.sub(lambda m: params.get(m.group(1), m.group(0)), template)


def _default_tags(path: str) -> tuple[str, ...]:
    parts = [p for p in path.split("/") if p and not p.startswith("{")]
    return (parts[1],) if len(parts) > 1 else ("meta",)
