"""Cursor pagination (``limit``, ``cursor``, ``has_more``, ``next_cursor``) on the lists that did not have
it: a reconciliation's breaks (beside its ``?page=``). Paging through more items than one page gets
each once; a cursor that is not the list's own is a 400, never a 500 (issue 16, item 9)."""
from __future__ import annotations

import base64
import datetime
import json

import pytest

from helpers import auth_headers, post_headers

BREAKS = 45


def momo_statement(refs) -> str:
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = ["financialTransactionId,externalId,amount,currency,status,date"]
    lines += [f"{i + 100},{ref},{1000 + i},RWF,SUCCESSFUL,{today}" for i, ref in enumerate(refs)]
    return "\n".join(lines) + "\n"


@pytest.fixture
def reconciliation(client) -> dict:
    """A reconciliation of an MTN statement whose 45 lines the ledger has never heard of: 45 breaks."""
    statement = momo_statement([f"po_unknown_{i:02d}" for i in range(BREAKS)])
    reply = client.http.post("/v1/reconciliations", body=json.dumps({"source": "mtn_momo", "content": statement}),
                             headers=post_headers("finance", "fin-1"))
    assert reply.status_code == 201, reply.body
    assert reply.json_body["summary"]["missing_in_ledger"] == BREAKS
    return reply.json_body


def get(client, path: str):
    return client.http.get(path, headers=auth_headers("finance", "fin-1"))


def test_paging_a_reconciliations_breaks_by_cursor_gets_each_break_once(client, reconciliation):
    rid = reconciliation["reconciliation_id"]
    assert reconciliation["has_more"] is False and reconciliation["next_cursor"] is None  # 45 < 100 a page
    seen, pages, cursor = [], 0, None
    while True:
        page = get(client, f"/v1/reconciliations/{rid}?limit=20" + (f"&cursor={cursor}" if cursor else "")).json_body
        pages += 1
        seen += [b["line"] for b in page["breaks"]]
        assert len(page["breaks"]) <= 20
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
        assert cursor
    assert pages == 3 and len(seen) == BREAKS and len(set(seen)) == BREAKS


def test_paging_by_page_number_says_has_more_too_and_agrees_with_the_cursor(client, reconciliation):
    rid = reconciliation["reconciliation_id"]
    first = get(client, f"/v1/reconciliations/{rid}?page=1&limit=20").json_body
    second = get(client, f"/v1/reconciliations/{rid}?page=2&limit=20").json_body
    by_cursor = get(client, f"/v1/reconciliations/{rid}?limit=20&cursor={first['next_cursor']}").json_body
    assert first["next_page"] == 2 and first["has_more"] is True
    assert [b["line"] for b in by_cursor["breaks"]] == [b["line"] for b in second["breaks"]]
    last = get(client, f"/v1/reconciliations/{rid}?page=3&limit=20").json_body
    assert len(last["breaks"]) == 5 and last["has_more"] is False and last["next_page"] is None


@pytest.mark.parametrize("query", ["page=0", "page=-1", "limit=0", "limit=101", "page=1&cursor=abc"])
def test_a_bad_page_or_limit_is_a_validation_error(client, reconciliation, query):
    reply = get(client, f"/v1/reconciliations/{reconciliation['reconciliation_id']}?{query}")
    assert reply.status_code == 400, (query, reply.body)
    assert reply.json_body["error"]["code"] == "validation_error"


def _cursor(position) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    _cursor({"reconciliation_id": "rec_another", "offset": 20}),
    _cursor({"offset": 20}),
    _cursor({"reconciliation_id": None, "offset": -1}),
    "bm90LWpzb24",  # "not-json"
    base64.urlsafe_b64encode(b"[" * 1400).decode().rstrip("="),  # nests deeper than the JSON parser goes
], ids=["another-reconciliation", "no-id", "negative", "not-json", "deeply-nested"])
def test_a_cursor_that_is_not_this_reconciliations_is_refused(client, reconciliation, cursor):
    reply = get(client, f"/v1/reconciliations/{reconciliation['reconciliation_id']}?cursor={cursor}")
    assert reply.status_code == 400, reply.body
    assert reply.json_body["error"]["code"] == "invalid_cursor"


DEEP_CURSOR = base64.urlsafe_b64encode(b"[" * 1400).decode().rstrip("=")


@pytest.mark.parametrize("path", ["/v1/orders?status=paid", "/v1/disputes", "/v1/screening/cases", "/v1/refunds",
                                  "/v1/reconciliations", "/v1/treasury/positions"])
def test_a_deeply_nested_cursor_on_any_list_is_a_400(client, path):
    sep = "&" if "?" in path else "?"
    reply = client.http.get(f"{path}{sep}cursor={DEEP_CURSOR}", headers=auth_headers("admin", "adm-1"))
    assert 400 <= reply.status_code < 500, (path, reply.status_code, reply.body)


# -- GET /v1/customs/clearance: the orders waiting past the promise --------------------------------


class _ShippedIndex:
    """The two reads the report makes of the order index: shipped orders, decisions since a day."""

    def __init__(self, rows):
        self.rows = rows

    def shipped(self):
        return list(self.rows)

    def decided(self, since):
        return []


def test_paging_the_orders_waiting_at_customs_gets_each_once_even_when_one_is_decided_meanwhile():
    from chalicelib.customs_report import CustomsClearance

    now = datetime.datetime(2026, 12, 1, 12, tzinfo=datetime.timezone.utc)
    rows = [{"order_id": f"ord_{i:02d}", "office": "Kigali", "seller_id": "coop-1",
             "shipped_at": (now - datetime.timedelta(hours=30 + i % 7, minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")}
            for i in range(45)]
    index = _ShippedIndex(rows)
    report = CustomsClearance(index, clock=lambda: now)
    first = report.report(limit=20)
    assert len(first["waiting"]) == 20 and first["has_more"] is True
    assert first["offices"][0]["waiting_over_24h"] == 45  # the counts stay whole; only the list is paged
    hours = [w["hours"] for w in first["waiting"]]
    assert hours == sorted(hours, reverse=True)  # the longest waiting first
    index.rows = [r for r in rows if r["order_id"] != first["waiting"][0]["order_id"]]  # customs decided one
    seen, cursor = [w["order_id"] for w in first["waiting"]], first["next_cursor"]
    while cursor:
        page = report.report(limit=20, cursor=cursor)
        seen += [w["order_id"] for w in page["waiting"]]
        cursor = page["next_cursor"]
        assert (cursor is None) == (page["has_more"] is False)
    assert sorted(seen) == sorted(r["order_id"] for r in rows) and len(seen) == len(set(seen))


def test_the_clearance_report_pages_over_http_and_refuses_a_cursor_not_its_own(client):
    reply = get(client, "/v1/customs/clearance?limit=5")
    assert reply.status_code == 200 and reply.json_body["has_more"] is False and reply.json_body["next_cursor"] is None
    for cursor in (DEEP_CURSOR, _cursor({"shipped_at": 1, "order_id": "x"}), "bm90LWpzb24"):
        bad = get(client, f"/v1/customs/clearance?cursor={cursor}")
        assert bad.status_code == 400 and bad.json_body["error"]["code"] == "invalid_cursor"
    assert get(client, "/v1/customs/clearance?limit=0").status_code == 400
