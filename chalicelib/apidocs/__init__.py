"""The API reference page: ``GET /v1/docs`` renders the served OpenAPI document with Swagger UI.

The viewer is vendored (``vendor/swagger-ui``: ``swagger-ui-dist`` 5.35.0 from npm, unchanged, with
its Apache-2.0 licence), never loaded from a CDN: Chalice packages every file under ``chalicelib/``.
The page (``index.html``, ``docs.js``, ``docs.css``) asks only this origin for the document
(``/v1/openapi.json``) and, with "Try it out", for the API itself. It is served with the finance
console's Content-Security-Policy (``chalicelib.console.SECURITY_HEADERS``): nothing but this origin's
own script, style and API, no inline script or style, no frames.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from chalicelib.console import SECURITY_HEADERS
from chalicelib.errors import NotFound

HERE = Path(__file__).parent
VENDOR = HERE / "vendor" / "swagger-ui"
#: The vendored viewer's version and files (``tests/unit/test_api_docs_page.py`` checks the sums).
VENDORED = {
    "version": "5.35.0",
    "swagger-ui-bundle.js": "e6a898692f2d768e807c3ba4626068a69a2c5dd960dd6c76f3e4d3a3de180af2",
    "swagger-ui.css": "5ed08757e53da3e026d6cbecc61fe5d43585c9560b302d534ad56692519a273d",
}
#: ``GET /v1/docs/{asset}``: name -> (file, media type). Anything else is 404.
ASSETS = {
    "docs.js": (HERE / "docs.js", "application/javascript; charset=utf-8"),
    "docs.css": (HERE / "docs.css", "text/css; charset=utf-8"),
    "swagger-ui-bundle.js": (VENDOR / "swagger-ui-bundle.js", "application/javascript; charset=utf-8"),
    "swagger-ui.css": (VENDOR / "swagger-ui.css", "text/css; charset=utf-8"),
    "LICENSE": (VENDOR / "LICENSE", "text/plain; charset=utf-8"),
    "NOTICE": (VENDOR / "NOTICE", "text/plain; charset=utf-8"),
    "swagger-ui-bundle.js.LICENSE.txt": (VENDOR / "swagger-ui-bundle.js.LICENSE.txt", "text/plain; charset=utf-8"),
}
#: The viewer's files change only with a release of Mizani: a browser may keep them an hour.
_ASSET_CACHE = {"Cache-Control": "public, max-age=3600"}


@lru_cache(maxsize=None)
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def page() -> tuple[str, str, dict]:
    """The page's HTML: (body, media type, headers)."""
    return _read(HERE / "index.html"), "text/html; charset=utf-8", dict(SECURITY_HEADERS)


def asset(name: str) -> tuple[str, str, dict]:
    """One of ``ASSETS``, else ``NotFound``."""
    if name not in ASSETS:
        raise NotFound("not_found", "no such docs asset")
    path, media_type = ASSETS[name]
    return _read(path), media_type, {**SECURITY_HEADERS, **_ASSET_CACHE}
