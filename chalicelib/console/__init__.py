"""The finance console: a static page (HTML, CSS, JavaScript from this folder) served by the app.

``GET /console`` answers ``index.html``; ``GET /console/{asset}`` its script and style sheet. No build
step, no CDN: Chalice packages every file under ``chalicelib/``. The page calls only the public API
with the token the user entered (kept in the tab's ``sessionStorage``; ``/console#token=<JWT>`` signs
in, and the fragment never reaches a server). Every value is put in the page as text, never as HTML,
and the Content-Security-Policy below allows nothing but this origin's own script, style and API:
no inline script or style, no frames, no forms posting anywhere, no other hosts.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from chalicelib.errors import NotFound

HERE = Path(__file__).parent
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
#: The assets the page loads, and their media types (anything else is 404).
ASSETS = {
    "console.js": "application/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}


@lru_cache(maxsize=None)
def _read(name: str) -> str:
    return (HERE / name).read_text(encoding="utf-8")


def page() -> tuple[str, str, dict]:
    """The console's HTML: (body, media type, headers)."""
    return _read("index.html"), "text/html; charset=utf-8", dict(SECURITY_HEADERS)


def asset(name: str) -> tuple[str, str, dict]:
    """One of the page's assets (``ASSETS``), else ``NotFound``."""
    if name not in ASSETS:
        raise NotFound("not_found", "no such console asset")
    return _read(name), ASSETS[name], dict(SECURITY_HEADERS)
