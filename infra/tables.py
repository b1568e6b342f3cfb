"""The DynamoDB tables, read from ``infra/resources.base.json``.

Each ``AWS::DynamoDB::Table`` resource carries ``"Metadata": {"Mizani::TableName": "<name>"}``:
that explicit short name ("accounts", "transfers", "entries", "app") is how code
refers to a table; the physical name is ``<prefix>-<name>`` (``settings.table(name)``),
``mizani-${Stage}-<name>`` in CloudFormation.

``create_table_kwargs(name, prefix)`` converts the CloudFormation properties into
``dynamodb.create_table`` arguments, so the sandbox and the tests build exactly the
tables that deploy (a table's TimeToLiveSpecification is applied by ``create_tables``).
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

BASE_TEMPLATE_PATH = Path(__file__).with_name("resources.base.json")
TABLE_NAME_METADATA = "Mizani::TableName"
TABLE_TYPE = "AWS::DynamoDB::Table"


@dataclass(frozen=True)
class TableDef:
    """One table: its short name, CloudFormation logical id and properties."""

    name: str
    logical_id: str
    properties: dict

    @property
    def index_names(self) -> list[str]:
        return [gsi["IndexName"] for gsi in self.properties.get("GlobalSecondaryIndexes", [])]

    @property
    def has_stream(self) -> bool:
        return "StreamSpecification" in self.properties


def load_base_template(path: Path | str = BASE_TEMPLATE_PATH) -> dict:
    """The base merge template as a dict (a fresh copy every call)."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def table_defs(template: dict | None = None) -> dict[str, TableDef]:
    """``{short name: TableDef}`` for every table resource in ``template`` (default: the base file)."""
    template = load_base_template() if template is None else template
    found: dict[str, TableDef] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != TABLE_TYPE:
            continue
        name = (resource.get("Metadata") or {}).get(TABLE_NAME_METADATA)
        if not name:
            raise ValueError(f"table resource {logical_id} has no Metadata.{TABLE_NAME_METADATA}")
        if name in found:
            raise ValueError(f"two table resources are named {name!r}")
        found[name] = TableDef(name=name, logical_id=logical_id, properties=copy.deepcopy(resource["Properties"]))
    return found


def physical_name(prefix: str, name: str) -> str:
    """``<prefix>-<name>``: the same rule as ``chalicelib.settings.Settings.table``."""
    return f"{prefix}-{name}"


def create_table_kwargs(table: TableDef | str, prefix: str) -> dict:
    """``dynamodb.create_table(**kwargs)`` arguments equivalent to the CloudFormation resource.

    Point-in-time recovery is a separate API call (and irrelevant to a local table), so it is
    not part of the result; everything that shapes the data (keys, indexes, stream) is.
    """
    if isinstance(table, str):
        table = table_defs()[table]
    props = table.properties
    kwargs: dict = {
        "TableName": physical_name(prefix, table.name),
        "AttributeDefinitions": copy.deepcopy(props["AttributeDefinitions"]),
        "KeySchema": copy.deepcopy(props["KeySchema"]),
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if props.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = [
            {k: copy.deepcopy(v) for k, v in gsi.items() if k in ("IndexName", "KeySchema", "Projection")}
            for gsi in props["GlobalSecondaryIndexes"]
        ]
    if props.get("LocalSecondaryIndexes"):
        kwargs["LocalSecondaryIndexes"] = copy.deepcopy(props["LocalSecondaryIndexes"])
    stream = props.get("StreamSpecification")
    if stream:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    sse = props.get("SSESpecification")
    if sse:
        kwargs["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled"))}
    return kwargs


def create_tables(dynamodb_client, prefix: str, template: dict | None = None) -> dict[str, str]:
    """Create every table for ``prefix``; returns ``{short name: physical name}``.

    A table that already exists is left alone (the sandbox restarts against a fresh
    moto, tests use a fresh prefix, so "exists" only happens on a deliberate re-run).
    """
    created: dict[str, str] = {}
    for name, table in table_defs(template).items():
        kwargs = create_table_kwargs(table, prefix)
        try:
            dynamodb_client.create_table(**kwargs)
        except dynamodb_client.exceptions.ResourceInUseException:
            pass
        else:
            ttl = table.properties.get("TimeToLiveSpecification")
            if ttl:  # a separate API call, as in AWS (CloudFormation makes it for the deployed table)
                dynamodb_client.update_time_to_live(TableName=kwargs["TableName"], TimeToLiveSpecification=ttl)
        created[name] = kwargs["TableName"]
    return created


def delete_tables(dynamodb_client, prefix: str, template: dict | None = None) -> None:
    """Delete every table for ``prefix`` (missing ones are ignored)."""
    for name in table_defs(template):
        try:
            dynamodb_client.delete_table(TableName=physical_name(prefix, name))
        except dynamodb_client.exceptions.ResourceNotFoundException:
            pass
