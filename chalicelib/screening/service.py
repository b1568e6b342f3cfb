"""``ScreeningService``: every seller and member name against the sanctions lists in force.

When: at registration (``at_registration``: the party's fields before its document is written), before
each payout (``before_payout``, through ``PayeeGate``: screened again if the lists changed since, or if
it never was), and for every party when the scheduled refresh loads a new version (``refresh``).

A party's ``screening`` field says what the last screening found, against which ``list_version``:
``clear``, ``possible_match`` (a case is open, the party is ``pending_review``, its payouts wait with
``hold: "screening"``), ``cleared`` or ``blocked`` (an admin's decision). A possible match opens a case,
``screeningcase#<id>`` (gsi1 ``screening#cases``), whose id derives from the party, the list version
and the entries matched, so a retried registration or payout finds the same case. The decision
(``decide``: ``clear`` -> the party is ``active`` and those entries are not raised again for it; ``block``
-> ``blocked``, payouts refused with ``payee_blocked``, the money stays in the balance) closes the case
in one conditional update and then updates the party; repeating the same decision finishes a party
update a crash interrupted, another decision on a closed case is ``invalid_state``.

Every screened party is in ``screenedparty#<party>`` (gsi1 ``screening#parties``), which the refresh
walks. A party's status changes only from the state the screening started from (an admin's decision
taken meanwhile wins).
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone

from chalicelib.documents import DocumentExists, matching_page
from chalicelib.errors import InvalidState, NotFound
from chalicelib.ids import derived_id
from chalicelib.screening.matching import THRESHOLD, Matcher

log = logging.getLogger("mizani.screening")
CASES, PARTIES = "screening#cases", "screening#parties"
CLEAR, POSSIBLE_MATCH, CLEARED, BLOCKED = "clear", "possible_match", "cleared", "blocked"
#: A container reloads the lists at most this often (a new version is also picked up by the refresh).
LIST_TTL_SECONDS = 600


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def party_key(seller_id: str, member_id: str | None) -> str:
    return f"member#{member_id}" if member_id else f"seller#{seller_id}"


def public_case(doc: dict) -> dict:
    keys = ("case_id", "party", "status", "reason", "list_version", "threshold", "matches", "decision", "created_at",
            "updated_at")
    return {k: doc.get(k) for k in keys}


class ScreeningService:
    """See the module doc. ``load_list``: a callable answering the ``SanctionsList`` in force."""

    def __init__(self, docs, load_list, clock=lambda: datetime.now(timezone.utc), threshold: float = THRESHOLD,
                 ttl_seconds: int = LIST_TTL_SECONDS):
        self.docs = docs
        self.load_list = load_list
        self.clock = clock
        self.threshold = threshold
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        self._loaded: tuple[float, object, Matcher] | None = None

    # -- the lists ------------------------------------------------------------------------------
    def current(self, fresh: bool = False):
        """(the ``SanctionsList`` in force, its ``Matcher``), reloaded after ``ttl_seconds``."""
        with self._lock:
            if fresh or self._loaded is None or time.monotonic() - self._loaded[0] > self.ttl_seconds:
                sanctions = self.load_list()
                if self._loaded is None or self._loaded[1].version != sanctions.version:
                    self._loaded = (time.monotonic(), sanctions, Matcher(sanctions.entries, self.threshold))
                else:
                    self._loaded = (time.monotonic(), *self._loaded[1:])
            return self._loaded[1], self._loaded[2]

    @property
    def version(self) -> str:
        return self.current()[0].version

    # -- screening ------------------------------------------------------------------------------
    def screen(self, name: str, cleared: list[str] | None = None):
        """(list version, matches): ``cleared`` entries (an admin cleared them for this party) left out."""
        sanctions, matcher = self.current()
        matches = [m for m in matcher.matches(name) if m.entry_id not in set(cleared or ())]
        return sanctions.version, matches

    def at_registration(self, kind: str, seller_id: str, member_id: str | None, name: str) -> dict:
        """The fields a new party's document gets: ``screening`` and, on a possible match, ``status``."""
        version, matches = self.screen(name)
        key = party_key(seller_id, member_id)
        self._remember(key, kind, seller_id, member_id)
        if not matches:
            return {"screening": self._record(CLEAR, version)}
        case = self._open_case(key, kind, seller_id, member_id, name, version, matches, "registration")
        return {"status": "pending_review", "screening": self._record(POSSIBLE_MATCH, version, case["case_id"])}

    def before_payout(self, key: str, party: dict, reason: str = "payout") -> dict:
        """The party, screened again if the lists in force are not the ones it was screened against (or
        it never was, or its name changed since); a new possible match puts it in review."""
        screening = party.get("screening") or {}
        version = self.version
        if screening.get("list_version") == version and screening.get("name") in (None, party["name"]):
            return party
        if screening.get("result") == BLOCKED:
            return party  # an admin's block stands whatever the lists say
        kind = "member" if party.get("member_id") else "seller"
        self._remember(key, kind, party["seller_id"], party.get("member_id"))
        version, matches = self.screen(party["name"], screening.get("cleared_entries"))
        status = party.get("status", "active")
        if not matches:
            fields = {"screening": {**self._record(CLEAR if screening.get("result") != CLEARED else CLEARED, version),
                                    "cleared_entries": screening.get("cleared_entries", [])}}
        else:
            case = self._open_case(key, kind, party["seller_id"], party.get("member_id"), party["name"], version,
                                   matches, reason)
            fields = {"screening": {**self._record(POSSIBLE_MATCH, version, case["case_id"]),
                                    "cleared_entries": screening.get("cleared_entries", [])}}
            if status == "active":
                fields["status"] = "pending_review"
        return self._update_party(key, fields, only_if_status=status) or party

    def hold_reason(self, party: dict) -> str | None:
        """``screening`` while a possible match waits for an admin (else ``None``)."""
        screening = party.get("screening") or {}
        if screening.get("result") == POSSIBLE_MATCH and party.get("status", "active") == "pending_review":
            return "screening"
        return None

    def _record(self, result: str, version: str, case_id: str | None = None) -> dict:
        record = {"result": result, "list_version": version, "screened_at": _iso(self.clock())}
        if case_id:
            record["case_id"] = case_id
        return record

    def _remember(self, key: str, kind: str, seller_id: str, member_id: str | None) -> None:
        try:
            self.docs.put_new(f"screenedparty#{key}", {"party_key": key, "kind": kind, "seller_id": seller_id,
                                                       "member_id": member_id}, index=(PARTIES, key))
        except DocumentExists:
            pass

    def _open_case(self, key, kind, seller_id, member_id, name, version, matches, reason) -> dict:
        case_id = derived_id("scr_", key, version, *sorted(m.entry_id for m in matches), length=16)
        now = _iso(self.clock())
        case = {"case_id": case_id, "party_key": key,
                "party": {"kind": kind, "seller_id": seller_id, "member_id": member_id, "name": name},
                "status": "open", "reason": reason, "list_version": version, "threshold": self.threshold,
                "matches": [m.to_json() for m in matches], "decision": None, "created_at": now, "updated_at": now}
        try:
            self.docs.put_new(f"screeningcase#{case_id}", case, index=(CASES, f"{now}#{case_id}"))
        except DocumentExists:
            case = self.docs.get(f"screeningcase#{case_id}")
        log.warning("screening: %s %s possibly matches %s (list %s): case %s", kind, key,
                    [m.entry_id for m in matches], version, case_id)
        return case

    def _update_party(self, key: str, fields: dict, only_if_status: str | None = None) -> dict | None:
        def mutate(doc: dict) -> dict | None:
            if only_if_status is not None and doc.get("status", "active") != only_if_status:
                return None  # an admin's decision taken meanwhile wins
            return {**doc, **fields}

        try:
            return self.docs.update(key, mutate)
        except KeyError:
            return None

    # -- admins' decisions ----------------------------------------------------------------------------
    def decide(self, principal, case_id: str, decision: str, note: str) -> dict:
        """``clear`` or ``block`` an open case (see the module doc)."""
        case = self.docs.get(f"screeningcase#{case_id}") if isinstance(case_id, str) else None
        if case is None:
            raise NotFound("not_found", "no such screening case")
        outcome = {"clear": CLEARED, "block": BLOCKED}[decision]

        def close(doc: dict) -> dict | None:
            if doc["status"] == outcome:
                return None  # decided so already: the party's update below is finished if a crash cut it short
            if doc["status"] != "open":
                raise InvalidState("invalid_state", f"case {case_id} is already {doc['status']}")
            at = _iso(self.clock())
            return {**doc, "status": outcome, "updated_at": at,
                    "decision": {"decision": decision, "note": note, "by": principal.sub, "at": at}}

        case = self.docs.update(f"screeningcase#{case_id}", close)
        entries = [m["entry_id"] for m in case["matches"]]

        def apply(party: dict) -> dict | None:
            screening = party.get("screening") or {}
            if decision == "block":
                if party.get("status") == "blocked" and screening.get("result") == BLOCKED:
                    return None
                return {**party, "status": "blocked", "screening": {**screening, "result": BLOCKED, "case_id": case_id}}
            cleared = sorted(set(screening.get("cleared_entries", [])) | set(entries))
            if screening.get("case_id") != case_id or screening.get("result") != POSSIBLE_MATCH:
                # A later screening or decision owns the party now; remember the cleared entries only.
                return None if set(entries) <= set(screening.get("cleared_entries", [])) else \
                    {**party, "screening": {**screening, "cleared_entries": cleared}}
            fields = {"screening": {**screening, "result": CLEARED, "cleared_entries": cleared}}
            if party.get("status") == "pending_review":
                fields["status"] = "active"
            return {**party, **fields}

        try:
            self.docs.update(case["party_key"], apply)
        except KeyError:
            log.warning("screening case %s: party %s is gone", case_id, case["party_key"])
        return public_case(case)

    def page(self, status: str | None, limit: int, cursor: str | None) -> dict:
        found, following = matching_page(self.docs, CASES, limit, cursor, lambda c: status in (None, c["status"]))
        cases = [public_case(c) for c in found]
        return {"cases": cases, "has_more": following is not None, "next_cursor": following}

    def get_case(self, case_id: str) -> dict:
        case = self.docs.get(f"screeningcase#{case_id}") if isinstance(case_id, str) else None
        if case is None:
            raise NotFound("not_found", "no such screening case")
        return public_case(case)

    # -- a new version of the lists -----------------------------------------------------------------------
    def refresh(self, page_size: int = 100) -> dict:
        """The scheduled refresh: load the lists; if their version is new, screen every party again
        (``list_update`` cases). Recorded in ``screening#lists``, so a version is walked once (a run
        that dies midway is finished by the next: a party already screened against it is skipped)."""
        sanctions, _ = self.current(fresh=True)
        state = self.docs.get("screening#lists") or {}
        if state.get("rescreened") == sanctions.version:
            return {"version": sanctions.version, "screened": 0, "cases": 0}
        screened = cases = 0
        cursor = None
        while True:
            found, cursor = self.docs.query_page(PARTIES, page_size, cursor, newest_first=False)
            for marker in found:
                party = self.docs.get(marker["party_key"])
                if party is None:
                    continue
                after = self.before_payout(marker["party_key"], party, reason="list_update")
                screened += 1
                cases += (after.get("screening") or {}).get("result") == POSSIBLE_MATCH
            if cursor is None:
                break
        record = {"rescreened": sanctions.version, "entries": len(sanctions), "at": _iso(self.clock()),
                  "sources": sanctions.sources}
        try:
            self.docs.put_new("screening#lists", record)
        except DocumentExists:
            self.docs.update("screening#lists", lambda doc: {**doc, **record})
        log.info("screening: lists %s (%d entries): %d parties screened again, %d in review", sanctions.version,
                 len(sanctions), screened, cases)
        return {"version": sanctions.version, "screened": screened, "cases": cases}


def build_list_loader(settings):
    """The lists in force: the operator's files in S3 (``MIZANI_SANCTIONS_S3_KEY`` in the statements
    bucket), else the SAMPLE shipped with the code (the local stage, or a stage not configured yet)."""
    from chalicelib.screening import lists

    if settings.sanctions_s3_key:
        return lambda: lists.load_from_s3(settings.statements_bucket, settings.sanctions_s3_key)
    if not settings.is_local:
        log.warning("MIZANI_SANCTIONS_S3_KEY is not set: screening against the SAMPLE list only")
    return lists.sample_list
