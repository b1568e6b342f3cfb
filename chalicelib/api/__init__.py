"""The HTTP edge: everything between API Gateway and the services.

``routing.Api`` is the one registrar every route in ``app.py`` goes through; it
composes the request id, error mapping (``errors``), JWT auth and role checks
(``auth``), pydantic body/query parsing (``schemas``), the ``Idempotency-Key``
protocol (``idempotency``) and JSON serialization, and records each route for
the OpenAPI document (``openapi``). Domain packages never import this package.
"""
