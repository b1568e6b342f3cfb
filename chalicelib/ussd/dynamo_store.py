"""``UssdStore`` on the app table: PIN records and sessions as plain DynamoDB attributes.

    pk ussd#pin#<msisdn>      sk pin      pin_hash, fails, fail_ids (SS), locked_until, updated_at
    pk ussd#session#<msisdn>  sk session  session_id, state (JSON), consumed, screen, expires_at, ttl, version,
                                          caller (JSON), lang

A session carries ``ttl`` (epoch seconds), the app table's TimeToLiveSpecification attribute, so
DynamoDB deletes it some time after it expired; the code never relies on that and compares
``expires_at`` itself. PIN records carry no ``ttl``.

The lockout is two conditional writes, never a read followed by a write: a failure is ADDed
only while the number is not locked, this attempt id is not counted yet and the row is short of
the last failure; the last failure instead SETs the lock under the same conditions. Either way
the condition is the rule, so concurrent requests can neither skip the lock nor count twice.
"""
from __future__ import annotations

import json

from chalicelib import aws
from chalicelib.ussd.store import LOCK_SECONDS, MAX_FAILURES, PinFailure, PinRecord, SessionRecord

TTL_ATTRIBUTE = "ttl"
_NOT_LOCKED = "(attribute_not_exists(locked_until) OR locked_until <= :now)"


def _pin_key(msisdn: str) -> dict:
    return {"pk": {"S": f"ussd#pin#{msisdn}"}, "sk": {"S": "pin"}}


def _session_key(msisdn: str) -> dict:
    return {"pk": {"S": f"ussd#session#{msisdn}"}, "sk": {"S": "session"}}


def _n(value: int) -> dict:
    return {"N": str(int(value))}


class DynamoUssdStore:
    """``UssdStore`` on the app table (see the module docstring)."""

    def __init__(self, table: str, client=None):
        self.table = table
        self._client = client

    client = aws.LazyDynamoClient()

    def _failed(self):
        return self.client.exceptions.ConditionalCheckFailedException

    # -- PINs ------------------------------------------------------------------------------
    def get_pin(self, msisdn):
        item = self.client.get_item(TableName=self.table, Key=_pin_key(msisdn), ConsistentRead=True).get("Item")
        if not item or "pin_hash" not in item:
            return None
        return PinRecord(item["pin_hash"]["S"], int(item.get("fails", {"N": "0"})["N"]),
                         int(item.get("locked_until", {"N": "0"})["N"]))

    def create_pin(self, msisdn, pin_hash, now):
        try:
            self.client.put_item(
                TableName=self.table,
                Item={**_pin_key(msisdn), "pin_hash": {"S": pin_hash}, "fails": _n(0), "updated_at": _n(now)},
                ConditionExpression="attribute_not_exists(pk)",  # the first PIN only: never overwrite one
            )
            return True
        except self._failed():
            return False

    def replace_pin(self, msisdn, pin_hash, now):
        try:
            self.client.update_item(
                TableName=self.table,
                Key=_pin_key(msisdn),
                UpdateExpression="SET pin_hash = :h, fails = :zero, updated_at = :now REMOVE fail_ids",
                ConditionExpression=f"attribute_exists(pin_hash) AND {_NOT_LOCKED}",  # a locked number keeps its PIN
                ExpressionAttributeValues={":h": {"S": pin_hash}, ":zero": _n(0), ":now": _n(now)},
            )
            return True
        except self._failed():
            return False

    def wrong_pin(self, msisdn, attempt_id, now):
        values = {":now": _n(now), ":id": {"S": attempt_id}, ":last": _n(MAX_FAILURES - 1)}
        # Not locked, this attempt not counted yet: the condition common to both writes.
        fresh = f"attribute_exists(pin_hash) AND {_NOT_LOCKED} AND NOT contains(fail_ids, :id)"
        try:
            # Failures 1 .. MAX-1 of the row: count it (ADD), only while the row is short of the last.
            reply = self.client.update_item(
                TableName=self.table,
                Key=_pin_key(msisdn),
                UpdateExpression="ADD fails :one, fail_ids :ids SET updated_at = :now",
                ConditionExpression=f"{fresh} AND (attribute_not_exists(fails) OR fails < :last)",
                ExpressionAttributeValues={**values, ":one": _n(1), ":ids": {"SS": [attempt_id]}},
                ReturnValues="UPDATED_NEW",
            )
            return PinFailure(MAX_FAILURES - int(reply["Attributes"]["fails"]["N"]))
        except self._failed():
            pass
        locked_until = now + LOCK_SECONDS
        try:
            # The MAX-th failure in a row: lock the number and start a new row.
            self.client.update_item(
                TableName=self.table,
                Key=_pin_key(msisdn),
                UpdateExpression="SET locked_until = :until, fails = :zero, updated_at = :now REMOVE fail_ids",
                ConditionExpression=f"{fresh} AND fails >= :last",
                ExpressionAttributeValues={**values, ":until": _n(locked_until), ":zero": _n(0)},
            )
            return PinFailure(0, locked_until)
        except self._failed():
            pass
        # Neither: locked already, or this attempt was counted by an earlier try of the same request.
        record = self.get_pin(msisdn)
        if record is None:
            raise KeyError(msisdn)
        if record.locked(now):
            return PinFailure(0, record.locked_until)
        return PinFailure(MAX_FAILURES - record.fails)

    def right_pin(self, msisdn, now):
        try:
            self.client.update_item(
                TableName=self.table,
                Key=_pin_key(msisdn),
                UpdateExpression="SET fails = :zero, updated_at = :now REMOVE fail_ids",
                ConditionExpression=f"attribute_exists(pin_hash) AND {_NOT_LOCKED}",  # a lock set meanwhile holds
                ExpressionAttributeValues={":zero": _n(0), ":now": _n(now)},
            )
            return True
        except self._failed():
            return False

    # -- sessions ---------------------------------------------------------------------------
    def get_session(self, msisdn):
        item = self.client.get_item(TableName=self.table, Key=_session_key(msisdn), ConsistentRead=True).get("Item")
        if not item:
            return None
        return SessionRecord(
            session_id=item["session_id"]["S"],
            state=json.loads(item["state"]["S"]),
            consumed=int(item["consumed"]["N"]),
            screen=item["screen"]["S"],
            expires_at=int(item["expires_at"]["N"]),
            version=int(item["version"]["N"]),
            caller=json.loads(item["caller"]["S"]) if "caller" in item else None,
            lang=item.get("lang", {"S": "en"})["S"],
        )

    def put_session(self, msisdn, record):
        item = {
            **_session_key(msisdn),
            "session_id": {"S": record.session_id},
            "state": {"S": json.dumps(record.state, separators=(",", ":"))},
            "consumed": _n(record.consumed),
            "screen": {"S": record.screen},
            "expires_at": _n(record.expires_at),
            TTL_ATTRIBUTE: _n(record.expires_at),
            "version": _n(record.version + 1),
            "lang": {"S": record.lang},
        }
        if record.caller is not None:
            item["caller"] = {"S": json.dumps(record.caller, separators=(",", ":"))}
        if record.version:
            condition, values = "version = :seen", {":seen": _n(record.version)}
        else:
            condition, values = "attribute_not_exists(pk)", None
        try:
            # Optimistic: only over the version this request read (a concurrent retry loses, and re-reads).
            self.client.put_item(TableName=self.table, Item=item, ConditionExpression=condition,
                                 **({"ExpressionAttributeValues": values} if values else {}))
            return True
        except self._failed():
            return False
