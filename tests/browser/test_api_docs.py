"""The API reference page in a real browser: the served OpenAPI document rendered by the vendored
Swagger UI, under the strict Content-Security-Policy, asking no other host for anything."""
from urllib.parse import urlsplit


def test_the_reference_renders_every_operation_from_this_origin_only(page, sandbox_process, shots):
    document = sandbox_process.http.get(f"{sandbox_process.api}/v1/openapi.json", timeout=30).json()
    operations = sum(len(ops) for ops in document["paths"].values())
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    responses = []
    page.on("response", lambda response: responses.append(response))
    reply = page.goto(f"{sandbox_process.api}/v1/docs")
    csp = reply.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe" not in csp
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() == operations
    assert page.locator(".info .title").inner_text().startswith("Mizani API")
    page.locator(".opblock-summary-path", has_text="/v1/webhooks/stripe").first.click()  # one operation opened
    page.wait_for_selector("text=Stripe-Signature", timeout=10_000)
    page.screenshot(path=str(shots / "api-docs.png"), full_page=False)
    origin = urlsplit(sandbox_process.api).netloc
    assert {urlsplit(url).netloc for url in asked if not url.startswith("data:")} == {origin}
    failed = [r.url for r in responses if r.status >= 400]
    assert page.problems == [], failed  # no CSP violation, no script error
