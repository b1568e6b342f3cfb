"""A filtered list read page by page returns every match once, newest first, however sparse."""
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.documents import MemoryDocuments, matching_page


@settings(max_examples=60, deadline=None)
@given(statuses=st.lists(st.sampled_from(["open", "closed"]), max_size=40), limit=st.integers(1, 7),
       max_read=st.integers(1, 12))
def test_pages_of_a_filtered_list_hold_every_match_once_in_order(statuses, limit, max_read):
    docs = MemoryDocuments()
    for n, status in enumerate(statuses):
        docs.put_new(f"case#{n:03}", {"n": n, "status": status}, index=("cases", f"{n:03}"))
    expected = [n for n in reversed(range(len(statuses))) if statuses[n] == "open"]
    seen, cursor = [], None
    for _ in range(len(statuses) + 2):
        page, cursor = matching_page(docs, "cases", limit, cursor, lambda d: d["status"] == "open", max_read=max_read)
        assert len(page) <= limit
        seen.extend(d["n"] for d in page)
        if cursor is None:
            break
    assert cursor is None and seen == expected


def test_a_match_behind_a_full_page_of_others_is_found_in_one_request():
    docs = MemoryDocuments()
    docs.put_new("case#old", {"status": "open"}, index=("cases", "000"))
    for n in range(1, 150):
        docs.put_new(f"case#{n}", {"status": "closed"}, index=("cases", f"{n:03}"))
    page, cursor = matching_page(docs, "cases", 100, None, lambda d: d["status"] == "open")
    assert page == [{"status": "open"}] and cursor is None
