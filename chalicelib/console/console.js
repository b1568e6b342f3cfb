/* Mizani finance console. Plain JavaScript, no build step, no other host: it calls the public API
 * of the origin that served it, with the token kept in this tab's sessionStorage.
 *
 * Safety rules this file keeps everywhere:
 *  - every value from the API (a provider reference, a name, an error message) goes into the page
 *    through textContent or a text node: never innerHTML, never an attribute other than our own
 *    links, whose targets are built from encodeURIComponent'd ids under "#/";
 *  - a CSV export neutralises cells a spreadsheet would run as a formula (= + - @ tab CR first);
 *  - a 401 from the API forgets the token and shows the sign-in screen again.
 */
"use strict";

(function () {
  const TOKEN_KEY = "mizani.console.token";
  const API_BASE = new URL(".", window.location.href); // "/" locally, "/api/" behind API Gateway
  const STATUSES = ["awaiting_payment", "paid", "shipped", "customs_cleared", "released", "payout_pending",
    "settled", "payout_failed", "refunded", "manual_review", "disputed", "charged_back"];
  const SOURCES = ["stripe_balance", "mtn_momo", "mpesa_b2c", "airtel_money", "camt053"];

  // -- DOM helpers: text only --------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "onclick") node.addEventListener("click", value);
      else if (name === "onsubmit") node.addEventListener("submit", value);
      else if (name === "onchange") node.addEventListener("change", value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    append(node, children);
    return node;
  }
  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  function link(hash, text) { return el("a", { href: hash }, text); }
  function orderLink(id) { return id ? link("#/orders/" + encodeURIComponent(id), id) : ""; }
  function sellerLink(id) { return id ? link("#/sellers/" + encodeURIComponent(id), id) : ""; }
  function recLink(id) { return id ? link("#/reconciliations/" + encodeURIComponent(id), id) : ""; }
  function code(text) { return el("code", {}, text === null || text === undefined ? "" : String(text)); }
  const view = () => document.getElementById("view");
  function show(...nodes) { const v = view(); v.replaceChildren(); append(v, nodes); }

  // -- money, integer minor units to text without floating point ----------------------------------
  const digitsCache = {};
  function exponent(currency) {
    if (!(currency in digitsCache)) {
      try {
        digitsCache[currency] = new Intl.NumberFormat("en", { style: "currency", currency: currency })
          .resolvedOptions().maximumFractionDigits;
      } catch (e) { digitsCache[currency] = 2; }
    }
    return digitsCache[currency];
  }
  function major(amount, currency) {
    const exp = exponent(currency);
    const negative = amount < 0;
    let digits = String(Math.abs(amount)).padStart(exp + 1, "0");
    const whole = digits.slice(0, digits.length - exp).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    const fraction = exp ? "." + digits.slice(digits.length - exp) : "";
    return (negative ? "-" : "") + whole + fraction;
  }
  function money(m) { return m ? major(m.amount, m.currency) + " " + m.currency : ""; }
  function moneyCell(m) { return { text: money(m), value: m ? major(m.amount, m.currency) : "", num: true }; }

  // -- the token ---------------------------------------------------------------------------------------
  function token() { return window.sessionStorage.getItem(TOKEN_KEY); }
  function takeTokenFromFragment() {
    const hash = window.location.hash;
    if (hash.startsWith("#token=")) {
      const value = decodeURIComponent(hash.slice("#token=".length)).trim();
      if (value) window.sessionStorage.setItem(TOKEN_KEY, value);
      // The fragment never reached a server; take it out of the address bar and the history too.
      window.history.replaceState(null, "", window.location.pathname + window.location.search + "#/");
    }
  }
  function signOut(reason) {
    window.sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(reason);
  }
  function showSignIn(reason) {
    document.getElementById("nav").hidden = true;
    view().replaceChildren();
    const box = document.getElementById("signin");
    box.hidden = false;
    const why = document.getElementById("signin-reason");
    why.hidden = !reason;
    why.textContent = reason || "";
    document.getElementById("token-input").focus();
  }

  // -- the API ------------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || ("the API answered " + status));
      this.status = status;
      this.code = error.code || null;
      this.fields = error.fields || [];
      this.requestId = error.request_id || null;
      this.ours = Boolean(body && body.error && body.error.code);
    }
  }
  async function api(path, options) {
    const opts = options || {};
    const headers = { Authorization: "Bearer " + token() };
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      headers["Idempotency-Key"] = opts.key || newKey();
    }
    const reply = await fetch(new URL(path, API_BASE), {
      method: opts.method || (opts.body !== undefined ? "POST" : "GET"),
      headers: headers,
      body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
      credentials: "omit",
      cache: "no-store",
    });
    let body = null;
    try { body = await reply.json(); } catch (e) { body = null; }
    if (reply.status === 401) {
      signOut("Your token has expired or is not valid. Enter a token again.");
      throw new ApiError(401, body);
    }
    if (!reply.ok) throw new ApiError(reply.status, body);
    return body;
  }
  function newKey() {
    if (window.crypto && window.crypto.randomUUID) return "console-" + window.crypto.randomUUID();
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return "console-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  function errorBox(error) {
    if (error.status === 401) return null; // the sign-in screen says it
    const box = el("div", { class: "error", role: "alert" },
      el("strong", {}, error.status === 403 ? "Not allowed: " : "Error: "), error.message,
      error.code ? el("span", { class: "muted" }, " (" + error.code + ")") : null);
    if (error.fields && error.fields.length) {
      box.appendChild(el("ul", { class: "fields" }, error.fields.map((f) => el("li", {}, f.path + ": " + f.message))));
    }
    if (error.requestId) box.appendChild(el("div", { class: "muted" }, "request " + error.requestId));
    return box;
  }

  // -- tables with CSV export ---------------------------------------------------------------------------
  // columns: [{title, get(row) -> string | Node | {text, value, num}, num?}]
  function cellParts(value) {
    if (value && typeof value === "object" && !(value instanceof Node) && "text" in value) return value;
    if (value instanceof Node) return { node: value, value: value.textContent };
    return { text: value === null || value === undefined ? "" : String(value), value: value };
  }
  function table(name, columns, rows, options) {
    const opts = options || {};
    const head = el("tr", {}, columns.map((c) => el("th", { class: c.num ? "num" : null, scope: "col" }, c.title)));
    const body = rows.map((row) => el("tr", { class: opts.rowClass ? opts.rowClass(row) : null },
      columns.map((c) => {
        const part = cellParts(c.get(row));
        return el("td", { class: c.num || part.num ? "num" : null }, part.node || part.text);
      })));
    const data = [columns.map((c) => c.title)].concat(rows.map((row) => columns.map((c) => {
      const part = cellParts(c.get(row));
      return part.value === undefined || part.value === null ? "" : part.value;
    })));
    const exportButton = el("button", { type: "button", class: "secondary", "data-export": name,
      onclick: () => download(name + ".csv", toCsv(data)) }, "Export CSV");
    return el("div", { class: "table-block", "data-table": name },
      el("div", { class: "tools" }, exportButton, el("span", { class: "muted" }, rows.length + " rows")),
      el("div", { class: "table-wrap" }, el("table", {}, el("thead", {}, head),
        el("tbody", {}, rows.length ? body : el("tr", {}, el("td", { colspan: columns.length, class: "muted" }, "none"))))));
  }
  function csvCell(value) {
    let text = value === null || value === undefined ? "" : String(value);
    // A spreadsheet runs a cell that starts with one of these as a formula: make it text.
    if (typeof value !== "number" && /^[=+\-@\t\r]/.test(text) && !/^-?\d[\d,]*(\.\d+)?$/.test(text)) text = "'" + text;
    return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }
  function toCsv(rows) { return rows.map((r) => r.map(csvCell).join(",")).join("\r\n") + "\r\n"; }
  function download(filename, text) {
    const url = URL.createObjectURL(new Blob([text], { type: "text/csv;charset=utf-8" }));
    const a = el("a", { href: url, download: filename });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
  function facts(pairs) {
    return el("dl", { class: "facts" }, pairs.filter((p) => p).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  }
  function card(title, ...children) { return el("section", { class: "card" }, el("h2", {}, title), children); }

  // -- the chart: FX exposure per currency, marked to market in USD (SVG, text nodes only) --------------
  function exposureChart(currencies) {
    const rows = Object.entries(currencies);
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    const rowHeight = 26, labelWidth = 56, width = 640, valueWidth = 130;
    const height = Math.max(rowHeight * rows.length + 10, 40);
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("class", "chart");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "Open FX position per currency, marked to market in USD");
    const max = Math.max(1, ...rows.map(([, c]) => Math.abs(c.mark_to_market.amount)));
    const span = (width - labelWidth - valueWidth) / 2;
    const zero = labelWidth + span;
    const line = document.createElementNS(ns, "line");
    [["x1", zero], ["x2", zero], ["y1", 0], ["y2", height], ["class", "axis"]].forEach(([k, v]) => line.setAttribute(k, v));
    svg.appendChild(line);
    rows.forEach(([currency, c], i) => {
      const value = c.mark_to_market.amount;
      const w = Math.round((Math.abs(value) / max) * span);
      const y = 6 + i * rowHeight;
      const rect = document.createElementNS(ns, "rect");
      [["x", value < 0 ? zero - w : zero], ["y", y], ["width", Math.max(w, 1)], ["height", rowHeight - 8],
        ["class", value < 0 ? "neg" : "pos"]].forEach(([k, v]) => rect.setAttribute(k, v));
      svg.appendChild(rect);
      const label = document.createElementNS(ns, "text");
      label.setAttribute("x", 0);
      label.setAttribute("y", y + 13);
      label.textContent = currency;
      svg.appendChild(label);
      const amount = document.createElementNS(ns, "text");
      amount.setAttribute("x", width - valueWidth + 6);
      amount.setAttribute("y", y + 13);
      amount.textContent = money(c.mark_to_market);
      svg.appendChild(amount);
    });
    return svg;
  }

  // -- views --------------------------------------------------------------------------------------------
  async function overview() {
    const [tb, exposure, customs] = await Promise.all([
      api("v1/ledger/trial-balance"), api("v1/treasury/exposure"), api("v1/customs/clearance"),
    ]);
    const tbRows = Object.entries(tb.currencies).map(([currency, t]) => ({ currency, ...t }));
    const exRows = Object.entries(exposure.currencies).map(([currency, c]) => ({ currency, ...c }));
    show(
      el("h1", {}, "Overview"),
      el("div", { class: "grid" },
        card("Trial balance",
          el("p", {}, "Status: ", el("span", { id: "tb-status", class: tb.balanced ? "ok" : "bad" },
            tb.balanced ? "Balanced" : "NOT balanced")),
          table("trial-balance", [
            { title: "Currency", get: (r) => r.currency },
            { title: "Debits", num: true, get: (r) => ({ text: major(r.debits, r.currency), value: major(r.debits, r.currency) }) },
            { title: "Credits", num: true, get: (r) => ({ text: major(r.credits, r.currency), value: major(r.credits, r.currency) }) },
            { title: "Pending debits", num: true, get: (r) => major(r.debits_pending, r.currency) },
            { title: "Pending credits", num: true, get: (r) => major(r.credits_pending, r.currency) },
          ], tbRows, { rowClass: (r) => (r.debits !== r.credits || r.debits_pending !== r.credits_pending ? "failed" : null) })),
        card("FX exposure",
          facts([["Open orders", String(exposure.open_orders)], ["Unrealized P&L", money(exposure.unrealized_pnl)],
            ["Realized P&L", money(exposure.realized_pnl)], ["Rates as of", exposure.rates_as_of || ""]]),
          exRows.length ? exposureChart(exposure.currencies) : el("p", { class: "muted" }, "No open FX position."),
          table("fx-exposure", [
            { title: "Currency", get: (r) => r.currency },
            { title: "Guaranteed", get: (r) => moneyCell(r.guaranteed) },
            { title: "Held", get: (r) => moneyCell(r.held) },
            { title: "Mark to market (USD)", get: (r) => moneyCell(r.mark_to_market) },
            { title: "Limit", get: (r) => (r.limit ? moneyCell(r.limit) : "none") },
            { title: "Orders", num: true, get: (r) => r.orders },
          ], exRows))),
      card("Customs against the 24-hour promise",
        table("customs-offices", [
          { title: "Office", get: (r) => r.office },
          { title: "Decided", num: true, get: (r) => r.decided },
          { title: "Median h", num: true, get: (r) => (r.median_hours === null ? "" : r.median_hours) },
          { title: "p90 h", num: true, get: (r) => (r.p90_hours === null ? "" : r.p90_hours) },
          { title: "Waiting > 24 h", num: true, get: (r) => r.waiting_over_24h },
        ], customs.offices),
        el("h2", {}, "Waiting past 24 hours"),
        table("customs-waiting", [
          { title: "Order", get: (r) => ({ node: orderLink(r.order_id), text: r.order_id, value: r.order_id }) },
          { title: "Office", get: (r) => r.office },
          { title: "Hours", num: true, get: (r) => r.hours },
        ], customs.waiting)),
    );
  }

  async function orders(params) {
    const status = STATUSES.includes(params.get("status")) ? params.get("status") : "shipped";
    const cursor = params.get("cursor");
    const page = await api("v1/orders?status=" + encodeURIComponent(status) + "&limit=50" +
      (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
    const search = el("form", { class: "tools", onsubmit: (event) => {
      event.preventDefault();
      const id = event.target.querySelector("input").value.trim();
      if (id) window.location.hash = "#/orders/" + encodeURIComponent(id);
    } }, el("label", { for: "order-search" }, "Order id"),
    el("input", { id: "order-search", type: "search", placeholder: "ord_…", spellcheck: "false" }),
    el("button", { type: "submit" }, "Open story"));
    show(
      el("h1", {}, "Orders"),
      search,
      el("div", { class: "tabs" }, STATUSES.map((s) => el("a", { href: "#/orders?status=" + s,
        "aria-current": s === status ? "page" : null }, s.replace(/_/g, " ")))),
      table("orders-" + status, [
        { title: "Order", get: (r) => ({ node: orderLink(r.order_id), text: r.order_id, value: r.order_id }) },
        { title: "Seller", get: (r) => ({ node: sellerLink(r.seller_id), text: r.seller_id, value: r.seller_id }) },
        { title: "Pays", get: (r) => moneyCell(r.pay) },
        { title: "Payout", get: (r) => moneyCell(r.payout) },
        { title: "Customs office", get: (r) => r.office || "" },
        { title: "Updated", get: (r) => r.updated_at },
      ], page.orders),
      page.next_cursor ? link("#/orders?status=" + status + "&cursor=" + encodeURIComponent(page.next_cursor), "More…") : null,
    );
  }

  function payoutsTable(name, payouts) {
    // Failures first, then what is still pending, then what reached the wallet.
    const rank = { failed: 0, pending: 1, succeeded: 2 };
    const sorted = payouts.slice().sort((a, b) => (rank[a.status] ?? 1) - (rank[b.status] ?? 1));
    return table(name, [
      { title: "Payout", get: (r) => code(r.payout_id) },
      { title: "Status", get: (r) => ({ node: el("span", { class: r.status === "failed" ? "bad" : (r.status === "succeeded" ? "ok" : "warn") }, r.status), text: r.status, value: r.status }) },
      { title: "Amount", get: (r) => moneyCell(r.amount) },
      { title: "Rail", get: (r) => r.rail },
      { title: "Wallet", get: (r) => r.msisdn || "" },
      { title: "Provider reference", get: (r) => ({ node: el("code", { class: "provider-ref" }, r.provider_reference || ""), text: r.provider_reference || "", value: r.provider_reference || "" }) },
      { title: "Reason", get: (r) => r.reason || r.hold || "" },
      { title: "Order", get: (r) => ({ node: orderLink(r.order_id), text: r.order_id || "", value: r.order_id || "" }) },
    ], sorted, { rowClass: (r) => (r.status === "failed" ? "failed" : null) });
  }

  async function story(orderId) {
    const s = await api("v1/orders/" + encodeURIComponent(orderId) + "/story");
    const outcome = (t) => {
      const r = t.reconciliation;
      if (!r) return { text: t.provider ? "" : "internal", value: t.provider ? "" : "internal" };
      const cls = r.outcome === "matched" ? "ok" : (r.outcome === "not_reconciled" ? "muted" : "bad");
      const label = r.outcome.replace(/_/g, " ");
      return { node: el("span", {}, el("span", { class: cls }, label), r.reconciliation_id ? [" ", recLink(r.reconciliation_id)] : null),
        text: label, value: r.outcome };
    };
    show(
      el("h1", {}, "Order ", code(s.order_id)),
      el("div", { class: "grid" },
        card("The order", facts([
          ["Status", el("strong", { id: "order-status" }, s.status)],
          ["Buyer", s.buyer_id], ["Seller", sellerLink(s.seller_id)],
          ["Total", money(s.total)], ["Buyer pays", money(s.pay)], ["Fee", money(s.fee)],
          ["Guaranteed payout", money(s.payout)],
          s.shipment ? ["Shipment", [s.shipment.carrier, " ", s.shipment.tracking_number, s.shipment.customs_office ? " → " + s.shipment.customs_office : ""]] : null,
          s.customs ? ["Customs", s.customs.outcome + " at " + s.customs.office] : null,
          s.fx ? ["FX", "locked " + s.fx.locked_rate + " (" + s.fx.state + ")" + (s.fx.realized_pnl ? ", realized " + money(s.fx.realized_pnl) : "")] : null,
        ])),
        card("Timeline", el("ol", { class: "timeline" }, s.timeline.map((e) =>
          el("li", {}, el("span", { class: "when" }, e.at), el("strong", {}, e.status.replace(/_/g, " ")),
            e.detail ? [" — ", e.detail] : null))))),
      card("Money, leg by leg",
        table("transfers-" + s.order_id, [
          { title: "When", get: (t) => t.at },
          { title: "Step", get: (t) => t.step },
          { title: "Amount", get: (t) => moneyCell(t.amount) },
          { title: "From (debit)", get: (t) => code(t.legs[0].account_id) },
          { title: "To (credit)", get: (t) => code(t.legs[1].account_id) },
          { title: "Status", get: (t) => t.status },
          { title: "Reconciliation", get: outcome },
          { title: "Transfer", get: (t) => code(t.transfer_id) },
        ], s.transfers)),
      card("Payouts", payoutsTable("payouts-" + s.order_id, s.payouts)),
      card("Provider references", table("references-" + s.order_id, [
        { title: "Kind", get: (r) => r.kind.replace(/_/g, " ") },
        { title: "Provider", get: (r) => r.provider },
        { title: "Reference", get: (r) => ({ node: el("code", { class: "reference" }, r.reference), text: r.reference, value: r.reference }) },
        { title: "Payout", get: (r) => r.payout_id || "" },
      ], s.references)),
    );
  }

  async function seller(sellerId) {
    const id = encodeURIComponent(sellerId);
    const [who, balance, payouts] = await Promise.all([
      api("v1/sellers/" + id), api("v1/sellers/" + id + "/balance"), api("v1/sellers/" + id + "/payouts?limit=100"),
    ]);
    show(
      el("h1", {}, "Seller ", code(who.seller_id)),
      el("div", { class: "grid" },
        card("Seller", facts([["Name", who.name], ["Country", who.country], ["Status", who.status || "active"],
          ["Paid to", who.payout.rail + " " + who.payout.msisdn + " (" + who.payout.currency + ")"]])),
        card("Balance", facts([["Available", money(balance.available)],
          ["In escrow", balance.in_escrow.map(money).join(", ") || "nothing"],
          ["Being paid out", money(balance.payout_pending)], balance.reserved ? ["Reserved", money(balance.reserved)] : null]))),
      card("Payouts (failures first)", payoutsTable("payouts-" + who.seller_id, payouts.payouts)),
    );
  }

  async function reconciliations() {
    const runs = await api("v1/reconciliations?limit=100");
    const result = el("div", { id: "upload-result" });
    const source = el("select", { id: "statement-source" }, SOURCES.map((s) => el("option", { value: s }, s)));
    const file = el("input", { id: "statement-file", type: "file", accept: ".csv,.txt,.xml,.json,text/*" });
    const text = el("textarea", { id: "statement-text", spellcheck: "false", placeholder: "…or paste the statement here" });
    file.addEventListener("change", async () => { if (file.files[0]) text.value = await file.files[0].text(); });
    const form = el("form", { id: "upload-form", onsubmit: async (event) => {
      event.preventDefault();
      result.replaceChildren(el("p", { class: "muted" }, "Reconciling…"));
      try {
        const rec = await api("v1/reconciliations", { body: { source: source.value, content: text.value } });
        window.location.hash = "#/reconciliations/" + encodeURIComponent(rec.reconciliation_id);
      } catch (error) {
        result.replaceChildren();
        append(result, [errorBox(error)]);
      }
    } }, el("label", { for: "statement-source" }, "Source"), source,
    el("label", { for: "statement-file" }, "Statement file"), file, text,
    el("div", { class: "tools" }, el("button", { type: "submit" }, "Upload and reconcile")));
    show(
      el("h1", {}, "Reconciliations"),
      card("Upload a provider statement", form, result),
      card("Runs", table("reconciliation-runs", [
        { title: "Reconciliation", get: (r) => ({ node: recLink(r.reconciliation_id), text: r.reconciliation_id, value: r.reconciliation_id }) },
        { title: "Source", get: (r) => r.source || "" },
        { title: "Status", get: (r) => ({ node: el("span", { class: r.status === "balanced" ? "ok" : "bad" }, r.status || ""), text: r.status || "", value: r.status || "" }) },
        { title: "Lines", num: true, get: (r) => (r.summary ? r.summary.lines : "") },
        { title: "Breaks", num: true, get: (r) => (r.breaks === null || r.breaks === undefined ? "" : r.breaks) },
        { title: "Days", get: (r) => (r.first_day ? r.first_day + " … " + r.last_day : "") },
        { title: "Submitted", get: (r) => r.submitted_at },
      ], runs.reconciliations)),
    );
  }

  async function reconciliation(recId, params) {
    const page = Math.max(1, parseInt(params.get("page") || "1", 10) || 1);
    const rec = await api("v1/reconciliations/" + encodeURIComponent(recId) + "?page=" + page);
    const summary = rec.summary || {};
    show(
      el("h1", {}, "Reconciliation ", code(rec.reconciliation_id)),
      card("Summary", facts([["Source", rec.source], ["Status", el("strong", { id: "rec-status" }, rec.status)],
        ["Lines", String(summary.lines ?? "")], ["Matched", String(summary.matched ?? "")],
        ["Amount mismatch", String(summary.amount_mismatch ?? "")], ["Missing in ledger", String(summary.missing_in_ledger ?? "")],
        ["Missing at provider", String(summary.missing_at_provider ?? "")], ["Duplicate", String(summary.duplicate ?? "")]])),
      card("Settlement", table("settlement-" + rec.reconciliation_id, [
        { title: "Provider", get: (r) => r.provider }, { title: "Currency", get: (r) => r.currency },
        { title: "Day", get: (r) => r.day }, { title: "Expected", get: (r) => moneyCell(r.expected) },
        { title: "Reported", get: (r) => moneyCell(r.reported) }, { title: "Difference", get: (r) => moneyCell(r.difference) },
      ], rec.settlement || [])),
      card("Breaks" + (page > 1 ? " (page " + page + ")" : ""), table("breaks-" + rec.reconciliation_id, [
        { title: "Line", num: true, get: (b) => (b.line === null ? "" : b.line) },
        { title: "Reference", get: (b) => ({ node: el("code", { class: "reference" }, b.reference), text: b.reference, value: b.reference }) },
        { title: "Outcome", get: (b) => b.outcome }, { title: "Kind", get: (b) => b.kind || "" },
        { title: "Ledger", get: (b) => moneyCell(b.ledger_amount) }, { title: "Provider", get: (b) => moneyCell(b.provider_amount) },
        { title: "Provider id", get: (b) => b.provider_id || "" }, { title: "Transfer", get: (b) => b.transfer_id || "" },
      ], rec.breaks || []),
      rec.next_page ? link("#/reconciliations/" + encodeURIComponent(recId) + "?page=" + rec.next_page, "Next page…") : null),
    );
  }

  // A list with status tabs and cursor paging: disputes and screening cases.
  function pagedList(base, statuses, status, cursor, rows, nextCursor, columns, name) {
    const tabs = el("div", { class: "tabs" }, [el("a", { href: base, "aria-current": status ? null : "page" }, "all")]
      .concat(statuses.map((s) => el("a", { href: base + "?status=" + s, "aria-current": s === status ? "page" : null },
        s.replace(/_/g, " ")))));
    const more = nextCursor ? link(base + "?" + (status ? "status=" + status + "&" : "") + "cursor=" +
      encodeURIComponent(nextCursor), "More…") : null;
    return [tabs, table(name, columns, rows), more];
  }
  function query(status, cursor) {
    return "limit=50" + (status ? "&status=" + encodeURIComponent(status) : "") +
      (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
  }

  const DISPUTE_STATUSES = ["needs_response", "under_review", "won", "lost", "warning_needs_response",
    "warning_under_review", "warning_closed"];
  async function disputes(params) {
    const status = DISPUTE_STATUSES.includes(params.get("status")) ? params.get("status") : null;
    const page = await api("v1/disputes?" + query(status, params.get("cursor")));
    show(el("h1", {}, "Disputes"), card("Card disputes", ...pagedList("#/disputes", DISPUTE_STATUSES, status,
      params.get("cursor"), page.disputes, page.next_cursor, [
        { title: "Dispute", get: (d) => code(d.dispute_id) },
        { title: "Order", get: (d) => ({ node: orderLink(d.order_id), text: d.order_id, value: d.order_id }) },
        { title: "Amount", get: (d) => moneyCell(d.amount) }, { title: "Reason", get: (d) => d.reason },
        { title: "Status", get: (d) => d.status }, { title: "Stage", get: (d) => d.stage || "" },
        { title: "Evidence", get: (d) => (d.evidence_submitted ? "submitted" : "not yet") },
        { title: "Due by", get: (d) => d.due_by || "" },
        { title: "Taken from escrow", get: (d) => moneyCell(d.recovered && d.recovered.escrow) },
        { title: "Platform loss", get: (d) => moneyCell(d.recovered && d.recovered.loss) },
      ], "disputes")));
  }

  const CASE_STATUSES = ["open", "cleared", "blocked"];
  async function screening(params) {
    const status = CASE_STATUSES.includes(params.get("status")) ? params.get("status") : null;
    let page;
    try {
      page = await api("v1/screening/cases?" + query(status, params.get("cursor")));
    } catch (error) {
      if (error.status !== 403) throw error;
      show(el("h1", {}, "Screening cases"), el("p", { class: "notice" },
        "Screening cases are for administrators: sign in with an admin token to see them."));
      return;
    }
    const party = (c) => c.party || {};
    const best = (c) => (c.matches && c.matches.length ? c.matches[0] : null);
    show(el("h1", {}, "Screening cases"), card("Cases", ...pagedList("#/screening", CASE_STATUSES, status,
      params.get("cursor"), page.cases, page.next_cursor, [
        { title: "Case", get: (c) => code(c.case_id) },
        { title: "Party", get: (c) => { const p = party(c); const id = p.member_id || p.seller_id || "";
          return p.seller_id && !p.member_id ? { node: sellerLink(id), text: id, value: id } : (p.kind ? p.kind + " " : "") + id; } },
        { title: "Name", get: (c) => party(c).name || "" },
        { title: "Status", get: (c) => ({ node: el("span", { class: c.status === "open" ? "warn" : (c.status === "blocked" ? "bad" : "ok") }, c.status), text: c.status, value: c.status }) },
        { title: "Reason", get: (c) => c.reason || "" },
        { title: "Best match", get: (c) => { const m = best(c); return m ? m.name + " (" + m.list + ", " + m.score + ")" : ""; } },
        { title: "List version", get: (c) => c.list_version || "" },
        { title: "Decision", get: (c) => (c.decision ? c.decision.decision + " by " + c.decision.by + ": " + (c.decision.note || "") : "") },
        { title: "Opened", get: (c) => c.created_at || "" },
      ], "screening-cases")));
  }

  // -- routing ------------------------------------------------------------------------------------------
  const ROUTES = [
    [/^#?\/?$/, () => overview()],
    [/^#\/orders$/, (m, params) => orders(params)],
    [/^#\/orders\/([^/?]+)$/, (m) => story(decodeURIComponent(m[1]))],
    [/^#\/sellers\/([^/?]+)$/, (m) => seller(decodeURIComponent(m[1]))],
    [/^#\/reconciliations$/, () => reconciliations()],
    [/^#\/reconciliations\/([^/?]+)$/, (m, params) => reconciliation(decodeURIComponent(m[1]), params)],
    [/^#\/disputes$/, (m, params) => disputes(params)],
    [/^#\/screening$/, (m, params) => screening(params)],
  ];
  let renderCount = 0;
  async function render() {
    takeTokenFromFragment();
    if (!token()) { showSignIn(""); return; }
    document.getElementById("signin").hidden = true;
    document.getElementById("nav").hidden = false;
    const [path, query] = (window.location.hash || "#/").split("?");
    const params = new URLSearchParams(query || "");
    for (const a of document.querySelectorAll("#nav a")) {
      const target = a.getAttribute("href");
      a.setAttribute("aria-current", (target === "#/" ? path === "#/" || path === "" : path.startsWith(target)) ? "page" : "false");
    }
    const found = ROUTES.map(([re, fn]) => [path.match(re), fn]).find(([m]) => m);
    const mine = ++renderCount;
    show(el("p", { class: "muted", id: "loading" }, "Loading…"));
    try {
      if (!found) { show(el("h1", {}, "Not found"), el("p", {}, "No such page. ", link("#/", "Back to the overview"))); return; }
      await found[1](found[0], params);
    } catch (error) {
      if (mine !== renderCount || error.status === 401) return;
      show(errorBox(error) || "", el("p", {}, link("#/", "Back to the overview")));
    } finally {
      if (mine === renderCount) document.body.setAttribute("data-rendered", String(mine));
    }
  }

  function start() {
    document.getElementById("signin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = document.getElementById("token-input");
      const value = input.value.trim();
      input.value = "";
      if (!value) return;
      window.sessionStorage.setItem(TOKEN_KEY, value);
      render();
    });
    document.getElementById("sign-out").addEventListener("click", () => signOut("Signed out."));
    window.addEventListener("hashchange", render);
    render();
  }
  start();
})();
