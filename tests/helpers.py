"""Test helpers for the HTTP edge: mint local-stage JWTs and build request headers."""
from __future__ import annotations

import json
import time
import uuid
import warnings

import jwt

from chalicelib.settings import LOCAL_JWT_SECRET


def token(
    role: str = "buyer",
    sub: str | None = None,
    *,
    secret: str = LOCAL_JWT_SECRET,
    expires_in: int | None = 3600,
    omit: tuple[str, ...] = (),
    **claims,
) -> str:
    """A JWT as the local stage expects it: HS256 with the local secret, claims sub + role.

    ``sub`` defaults to ``"<role>-1"``; ``omit=("role",)`` leaves claims out;
    ``expires_in`` < 0 mints an expired token, ``None`` one without ``exp``.
    """
    now = int(time.time())
    payload: dict = {"sub": sub or f"{role}-1", "role": role, "iat": now}
    if expires_in is not None:
        payload["exp"] = now + expires_in
    payload.update(claims)
    for claim in omit:
        payload.pop(claim, None)
    with warnings.catch_warnings():  # the local secret is a short, documented sandbox default
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(payload, secret, algorithm="HS256")


def auth_headers(role: str = "buyer", sub: str | None = None, **kwargs) -> dict:
    return {"Authorization": f"Bearer {token(role, sub, **kwargs)}"}


def post_headers(role: str = "buyer", sub: str | None = None, key: str | None = "auto", **kwargs) -> dict:
    """JSON POST headers with a bearer token and, unless ``key=None``, an Idempotency-Key."""
    headers = {**auth_headers(role, sub, **kwargs), "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = uuid.uuid4().hex if key == "auto" else key
    return headers


def body(data) -> bytes:
    return json.dumps(data).encode("utf-8")


class LocalHttpServer:
    """A provider stand-in on 127.0.0.1 (a free port) for tests of outbound HTTP: a subclass answers
    each request in ``answer(handler)`` (``http.server``'s handler: read ``handler.rfile``, write the
    reply); ``url`` is its base; ``close()`` stops it and its thread."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                outer.answer(self)

            do_GET = do_POST = do_PUT = _answer  # noqa: N815 (http.server's names)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def answer(self, handler) -> None:
        raise NotImplementedError

    @staticmethod
    def reply_json(handler, status: int, body: bytes, headers: dict | None = None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
