"""The finance console in a real browser: what finance sees and does, on a laptop and on a phone."""
import time
import uuid

from helpers import token

BAD_REFERENCE = "=2+3<img src=x onerror=alert(1)>"


def console_url(sandbox, role="finance", sub="fin-1", hash_path="#/", **claims):
    return f"{sandbox.api}/console#token={token(role, sub, **claims)}"


def wait_rendered(page, selector: str, timeout: float = 30_000):
    page.wait_for_selector(selector, timeout=timeout)


def open_view(page, sandbox, path: str):
    page.evaluate("path => { window.location.hash = path }", path)


def test_signing_in_with_a_link_shows_the_trial_balance_balanced_and_forgets_the_fragment(page, sandbox_process, settled, shots):
    sandbox_process.paid_order(kg="250")  # money waiting in escrow: an open FX position for the chart
    reply = page.goto(console_url(sandbox_process))
    csp = reply.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    status = page.locator("#tb-status")
    status.wait_for()
    assert status.inner_text() == "Balanced"
    assert "token=" not in page.url  # the token left the address bar (it never reached a server)
    assert page.evaluate("() => sessionStorage.getItem('mizani.console.token')")
    page.wait_for_selector("[data-table=fx-exposure] tbody tr")
    assert page.locator("svg.chart rect").count() >= 2  # one bar per currency of the open position
    page.screenshot(path=str(shots / "console-overview.png"), full_page=True)
    assert page.problems == []


def test_the_story_of_a_settled_order_shows_its_payout_reference(page, sandbox_process, settled, shots):
    story = sandbox_process.ok(sandbox_process.call("GET", f"/v1/orders/{settled['order_id']}/story", "finance", "f"))
    references = [p["provider_reference"] for p in story["payouts"]]
    assert references and all(references)
    page.goto(console_url(sandbox_process))
    page.locator("#tb-status").wait_for()
    open_view(page, sandbox_process, f"#/orders/{settled['order_id']}")
    page.locator("#order-status").wait_for()
    assert page.locator("#order-status").inner_text() == "settled"
    shown = page.locator(".provider-ref").all_inner_texts()
    assert set(references) <= set(shown)
    steps = page.locator("[data-table^=transfers-] tbody").inner_text()
    assert "payment into escrow" in steps and "FX leg out" in steps and "payout paid to the wallet" in steps
    page.screenshot(path=str(shots / "console-order-story.png"), full_page=True)
    assert page.problems == []


def test_an_uploaded_statement_shows_its_break_inert_and_exports_it_inert(page, sandbox_process, settled, shots, tmp_path):
    statement = sandbox_process.http.get(f"{sandbox_process.sim}/sandbox/statements/mtn_momo", timeout=30).text
    today = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    statement = statement.rstrip("\n") + f"\n990001,{BAD_REFERENCE},5000,RWF,SUCCESSFUL,{today}\n"
    page.goto(console_url(sandbox_process))
    page.locator("#tb-status").wait_for()
    open_view(page, sandbox_process, "#/reconciliations")
    page.locator("#upload-form").wait_for()
    page.select_option("#statement-source", "mtn_momo")
    page.fill("#statement-text", statement)
    page.click("#upload-form button[type=submit]")
    page.locator("#rec-status").wait_for()
    assert page.locator("#rec-status").inner_text() == "breaks"
    breaks = page.locator("[data-table^=breaks-] tbody")
    assert BAD_REFERENCE in breaks.inner_text()  # shown as the text it is
    assert "missing_in_ledger" in breaks.inner_text()
    assert page.locator("main img").count() == 0  # ... and never made into an element
    page.screenshot(path=str(shots / "console-reconciliation.png"), full_page=True)
    with page.expect_download() as download:
        page.click("[data-export^=breaks-]")
    saved = tmp_path / "breaks.csv"
    download.value.save_as(str(saved))
    text = saved.read_text(encoding="utf-8")
    assert "'" + BAD_REFERENCE in text and "," + BAD_REFERENCE not in text  # a formula cell becomes text
    assert text.splitlines()[0].startswith("Line,Reference,Outcome")
    assert page.problems == []  # no alert, no CSP violation


def test_a_malformed_statement_shows_the_line_numbers_the_api_returns(page, sandbox_process):
    page.goto(console_url(sandbox_process))
    page.locator("#tb-status").wait_for()
    open_view(page, sandbox_process, "#/reconciliations")
    page.locator("#upload-form").wait_for()
    page.select_option("#statement-source", "mtn_momo")
    page.fill("#statement-text", "financialTransactionId,externalId,amount,currency,status,date\n1,po_x,abc,RWF,SUCCESSFUL,yesterday\n")
    page.click("#upload-form button[type=submit]")
    error = page.locator("#upload-result .error")
    error.wait_for()
    assert "line 2" in error.inner_text()
    assert page.locator("#rec-status").count() == 0


def test_an_expired_token_sends_the_user_back_to_the_token_screen(page, sandbox_process):
    page.goto(f"{sandbox_process.api}/console#token={token('finance', 'fin-1', expires_in=-3600)}")
    reason = page.locator("#signin-reason")
    reason.wait_for()
    assert "expired" in reason.inner_text()
    assert page.locator("#signin").is_visible() and not page.locator("#nav").is_visible()
    assert page.evaluate("() => sessionStorage.getItem('mizani.console.token')") is None
    page.fill("#token-input", token("admin", "ops"))  # a fresh token signs in again
    page.click("#signin-form button[type=submit]")
    page.locator("#tb-status").wait_for()


def test_a_buyers_token_sees_nothing_of_the_console(page, sandbox_process):
    page.goto(console_url(sandbox_process, role="buyer", sub="b-1"))
    page.locator("[role=alert]").wait_for()
    assert "Not allowed" in page.locator("[role=alert]").inner_text()


def test_views_have_addresses_and_work_on_a_phone(browser, sandbox_process, settled, shots):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    try:
        page.goto(f"{sandbox_process.api}/console#token={token('finance', 'fin-1')}")
        page.locator("#tb-status").wait_for()
        # A shared link to a seller's page opens that view directly.
        page.goto(f"{sandbox_process.api}/console#/sellers/{settled['seller_id']}")
        page.wait_for_selector("[data-table^=payouts-] tbody tr")
        assert settled["seller_id"] in page.locator("#view h1").inner_text()
        page.goto(f"{sandbox_process.api}/console#/orders/{settled['order_id']}")
        page.locator("#order-status").wait_for()
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1  # wide tables scroll inside their box; the page itself does not
        page.screenshot(path=str(shots / "console-phone.png"), full_page=False)
    finally:
        context.close()


def test_an_admin_sees_a_screening_hit_and_an_open_dispute_in_their_views(page, sandbox_process, shots):
    seller_id = f"coop-{uuid.uuid4().hex[:8]}"
    hit = sandbox_process.ok(sandbox_process.call("POST", "/v1/sellers", "seller", seller_id, {
        "name": "Sanctioned Test Person", "country": "RW",
        "payout": {"rail": "mtn_momo", "msisdn": "25078" + str(uuid.uuid4().int)[:7], "currency": "RWF"}}), 201)
    assert hit["status"] == "pending_review"
    order = sandbox_process.paid_order()
    pi = order["payment"]["payment_intent_id"]
    opened = sandbox_process.http.post(f"{sandbox_process.sim}/sandbox/payments/{pi}/dispute",
                                       json={"reason": "fraudulent"}, timeout=30).json()

    page.goto(console_url(sandbox_process, role="admin", sub="ops"))
    page.locator("#tb-status").wait_for()
    open_view(page, sandbox_process, "#/screening?status=open")
    page.wait_for_selector("[data-table=screening-cases] tbody tr")
    row = page.locator("[data-table=screening-cases] tbody tr", has_text=seller_id)
    assert "Sanctioned Test Person" in row.inner_text() and "OFAC SDN" in row.inner_text()
    assert "open" in row.inner_text()
    page.screenshot(path=str(shots / "console-screening.png"), full_page=True)

    open_view(page, sandbox_process, "#/disputes")
    page.wait_for_selector("[data-table=disputes] tbody tr")
    row = page.locator("[data-table=disputes] tbody tr", has_text=opened["dispute_id"])
    assert order["order_id"] in row.inner_text() and "fraudulent" in row.inner_text()
    assert page.problems == []


def test_finance_is_told_screening_is_for_administrators(page, sandbox_process):
    page.goto(console_url(sandbox_process))
    page.locator("#tb-status").wait_for()
    open_view(page, sandbox_process, "#/screening")
    page.wait_for_selector("#view .notice")
    assert "administrators" in page.locator("#view .notice").inner_text()
