"""The finance console as served: one origin, a strict Content-Security-Policy, nothing run from data."""
import re
from pathlib import Path

import pytest
from chalice.test import Client

import app as mizani
from chalicelib import console

CONSOLE = Path(console.__file__).parent


@pytest.fixture(scope="module")
def client():
    with Client(mizani.app, stage_name="local") as c:  # the local stage: its secrets are the known defaults
        yield c


def test_the_page_is_served_with_a_strict_content_security_policy(client):
    reply = client.http.get("/console")
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    csp = reply.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Referrer-Policy"] == "no-referrer"
    assert b"console/console.js" in reply.body


def test_the_assets_are_served_with_their_types_and_nothing_else_is(client):
    js = client.http.get("/console/console.js")
    assert js.status_code == 200 and js.headers["Content-Type"].startswith("application/javascript")
    css = client.http.get("/console/console.css")
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    for name in ("index.html", "__init__.py", "..%2Fapp.py", "console.js.map"):
        reply = client.http.get(f"/console/{name}")
        assert reply.status_code == 404, name
        assert reply.json_body["error"]["code"] == "not_found"


def test_the_page_has_no_inline_script_style_or_handlers_the_policy_would_have_to_allow():
    html = (CONSOLE / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"\sstyle=", html) and not re.search(r"\son[a-z]+=", html)
    assert not re.search(r"https?://", html)  # no CDN, no other host


def test_the_script_never_turns_data_into_html_or_code():
    js = (CONSOLE / "console.js").read_text()
    code = "\n".join(line for line in js.splitlines() if not line.strip().startswith(("*", "/*", "//")))
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "setTimeout(\"", "javascript:"):
        assert sink not in code, sink
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", code)  # no other host (the SVG namespace is a name)


def test_the_console_is_packaged_with_the_code():
    """Chalice packages chalicelib/ whole: the page and its assets travel with the Lambda."""
    for name in ("index.html", *console.ASSETS):
        assert (CONSOLE / name).is_file()
