"""``GET /v1/docs``: the API reference page, its vendored viewer and licence, a strict CSP; and the
repository's own API reference and design notes (docs/API.md, docs/DESIGN.md) that the README cites."""
import hashlib
import re
from pathlib import Path

import pytest
from chalice.test import Client

import app as mizani
from chalicelib import apidocs

ROOT = Path(mizani.__file__).resolve().parent


@pytest.fixture(scope="module")
def client():
    with Client(mizani.app, stage_name="local") as c:
        yield c


def test_the_page_is_served_with_the_consoles_strict_content_security_policy(client):
    reply = client.http.get("/v1/docs")
    assert reply.status_code == 200 and reply.headers["Content-Type"].startswith("text/html")
    csp = dict(d.strip().split(" ", 1) for d in reply.headers["Content-Security-Policy"].split(";"))
    assert csp["default-src"] == "'none'" and csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert csp["connect-src"] == "'self'" and csp["frame-ancestors"] == "'none'"
    assert "unsafe" not in reply.headers["Content-Security-Policy"]
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    html = reply.body.decode()
    assert 'src="docs/swagger-ui-bundle.js"' in html and 'src="docs/docs.js"' in html


def test_the_viewer_and_its_licence_are_served_from_this_origin(client):
    for name, media in [("swagger-ui-bundle.js", "application/javascript"), ("swagger-ui.css", "text/css"),
                        ("docs.js", "application/javascript"), ("docs.css", "text/css"), ("LICENSE", "text/plain"),
                        ("NOTICE", "text/plain")]:
        reply = client.http.get(f"/v1/docs/{name}")
        assert reply.status_code == 200 and reply.headers["Content-Type"].startswith(media), name
        assert "Content-Security-Policy" in reply.headers
    assert "Apache License" in client.http.get("/v1/docs/LICENSE").body.decode()
    for name in ("index.html", "__init__.py", "..%2F__init__.py", "swagger-ui.css.map", "README.md"):
        reply = client.http.get(f"/v1/docs/{name}")
        assert reply.status_code == 404 and reply.json_body["error"]["code"] == "not_found", name


def test_the_vendored_viewer_is_the_release_it_says_unchanged():
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        digest = hashlib.sha256((apidocs.VENDOR / name).read_bytes()).hexdigest()
        assert digest == apidocs.VENDORED[name], name
    readme = (apidocs.VENDOR / "README.md").read_text()
    assert apidocs.VENDORED["version"] in readme and apidocs.VENDORED["swagger-ui-bundle.js"] in readme
    assert "Apache License" in (apidocs.VENDOR / "LICENSE").read_text()


def test_the_page_and_its_script_load_nothing_inline_nor_from_another_host():
    html = (apidocs.HERE / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"\sstyle=", html) and not re.search(r"\son[a-z]+=", html)
    assert not re.search(r"https?://", html)
    script = (apidocs.HERE / "docs.js").read_text()
    assert "validatorUrl: null" in script and not re.search(r"https?://", script)


def test_the_document_lists_the_docs_routes(client):
    paths = client.http.get("/v1/openapi.json").json_body["paths"]
    assert "text/html" in paths["/v1/docs"]["get"]["responses"]["200"]["content"]
    assert {"application/javascript", "text/css", "text/plain"} <= set(
        paths["/v1/docs/{asset}"]["get"]["responses"]["200"]["content"])


def test_the_repository_carries_the_api_reference_and_design_notes_the_readme_cites():
    readme = (ROOT / "README.md").read_text()
    cited = set(re.findall(r"\]\(((?:\./)?docs/[A-Z]+\.md)(?:#[^)]*)?\)", readme))
    assert {"docs/API.md", "docs/DESIGN.md"} <= {c.removeprefix("./") for c in cited}
    for name in ("API.md", "DESIGN.md"):
        text = (ROOT / "docs" / name).read_text()
        assert len(text) > 1000 and text.startswith("#"), name
    assert "`GET /v1/docs`" in (ROOT / "docs" / "API.md").read_text()
    # Every link to a local Markdown file resolves.
    for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", readme):
        assert (ROOT / target).is_file(), target
