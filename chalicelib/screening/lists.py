"""The sanctions lists in their published formats, read into one ``SanctionsList``.

- **OFAC SDN**, the legacy delimited files (``sdn.csv``, ``alt.csv``; OFAC's data specification):
  no header row; ``sdn.csv`` columns ``ent_num, SDN_Name, SDN_Type, Program, Title, Call_Sign,
  Vess_type, Tonnage, GRT, Vess_flag, Vess_owner, Remarks``; ``alt.csv`` columns ``ent_num, alt_num,
  alt_type, alt_name, alt_remarks`` (``aka``, ``fka``, ``nka``); null is ``-0-`` (often ``"-0- "``);
  an individual's name is ``LAST, First``; several programs read ``SDGT] [IFSR``; the file may end
  with a Ctrl-Z (0x1A). The files carry no date, so their version is a digest of their bytes.
- **UN Security Council consolidated list** (``consolidated.xml``): ``CONSOLIDATED_LIST``
  (``dateGenerated``) with ``INDIVIDUALS/INDIVIDUAL`` (``DATAID``, ``FIRST_NAME`` ..
  ``FOURTH_NAME``, ``UN_LIST_TYPE``, ``REFERENCE_NUMBER``, ``INDIVIDUAL_ALIAS/ALIAS_NAME``) and
  ``ENTITIES/ENTITY`` (``DATAID``, ``FIRST_NAME`` is the entity's name, ``ENTITY_ALIAS/ALIAS_NAME``).
  Read with expat, any DTD refused (``chalicelib.iso20022.parse``).

The version of the lists in force is ``ofac-sdn:<sha256 of sdn.csv + alt.csv, 12 hex>+un:<dateGenerated>``;
it is recorded on every screening decision. ``sample_list()`` is the small **sample** shipped in
``data/`` for the local stage and the tests (fictional names in the real formats, with ``Sanctioned
Test Person``); ``load_from_s3`` reads the real files an operator keeps in S3 (see the README).
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
#: File names, the same in ``data/`` and under the operator's S3 prefix.
OFAC_SDN, OFAC_ALT, UN_XML = "sdn.csv", "alt.csv", "consolidated.xml"
_NULL = re.compile(r"^\s*-0-\s*$")


class ListFormatError(ValueError):
    """A list file that is not in its published format (the list in force stays the previous one)."""


@dataclass(frozen=True)
class ListEntry:
    entry_id: str  # "ofac:<ent_num>" or "un:<DATAID>"
    source: str  # "OFAC SDN" or "UN"
    name: str
    aliases: tuple[str, ...] = ()
    kind: str = "individual"  # individual | entity | vessel | aircraft
    programs: tuple[str, ...] = ()


@dataclass(frozen=True)
class SanctionsList:
    version: str
    entries: tuple[ListEntry, ...]
    sources: dict = field(default_factory=dict)  # source -> its own version

    def __len__(self) -> int:
        return len(self.entries)


def _value(raw: str) -> str:
    return "" if raw is None or _NULL.match(raw) else raw.strip()


def parse_ofac(sdn_csv: str, alt_csv: str = "") -> tuple[list[ListEntry], str]:
    """OFAC's ``sdn.csv`` (and ``alt.csv``): the entries and the files' version (a digest)."""
    aliases: dict[str, list[str]] = {}
    for line, row in enumerate(csv.reader(io.StringIO(alt_csv.replace("\x1a", ""))), start=1):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) < 4 or not row[0].strip().isdigit():
            raise ListFormatError(f"alt.csv line {line}: expected ent_num, alt_num, alt_type, alt_name, alt_remarks")
        name = _value(row[3])
        if name:
            aliases.setdefault(row[0].strip(), []).append(name)
    entries = []
    for line, row in enumerate(csv.reader(io.StringIO(sdn_csv.replace("\x1a", ""))), start=1):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) < 4 or not row[0].strip().isdigit():
            raise ListFormatError(f"sdn.csv line {line}: expected ent_num, SDN_Name, SDN_Type, Program, ... (12 columns)")
        ent_num, name = row[0].strip(), _value(row[1])
        if not name:
            raise ListFormatError(f"sdn.csv line {line}: entry {ent_num} has no name")
        kind = _value(row[2]).lower() or "entity"  # OFAC leaves an entity's SDN_Type null
        programs = tuple(p.strip() for p in _value(row[3]).strip("[]").split("] [") if p.strip())
        entries.append(ListEntry(f"ofac:{ent_num}", "OFAC SDN", name,
                                 tuple(aliases.get(ent_num, ())), kind, programs))
    digest = hashlib.sha256((sdn_csv + "\n" + alt_csv).encode("utf-8")).hexdigest()[:12]
    return entries, f"ofac-sdn:{digest}"


def parse_un(xml_bytes: bytes) -> tuple[list[ListEntry], str]:
    """The UN consolidated list XML: the entries and its version (``dateGenerated``)."""
    from chalicelib.iso20022 import XmlRefused, parse

    try:
        root, _ = parse(xml_bytes, re.compile(".*"))
    except XmlRefused as refused:
        raise ListFormatError(f"consolidated.xml line {refused.line}: {refused.message}") from None
    if root.tag != "CONSOLIDATED_LIST":
        raise ListFormatError(f"consolidated.xml: the root is {root.tag}, not CONSOLIDATED_LIST")
    entries = []
    for group, item, alias_tag, kind in (("INDIVIDUALS", "INDIVIDUAL", "INDIVIDUAL_ALIAS", "individual"),
                                         ("ENTITIES", "ENTITY", "ENTITY_ALIAS", "entity")):
        holder = root.find(group)
        for node in holder.findall(item) if holder is not None else []:
            data_id = node.value("DATAID")
            parts = [node.value(tag) for tag in ("FIRST_NAME", "SECOND_NAME", "THIRD_NAME", "FOURTH_NAME")]
            name = " ".join(p for p in parts if p)
            if not data_id or not name:
                raise ListFormatError(f"consolidated.xml line {node.line}: {item} without DATAID or name")
            aliases = tuple(a.value("ALIAS_NAME") for a in node.findall(alias_tag) if a.value("ALIAS_NAME"))
            programs = tuple(p for p in (node.value("UN_LIST_TYPE"),) if p)
            entries.append(ListEntry(f"un:{data_id}", "UN", name, aliases, kind, programs))
    generated = root.attrs.get("dateGenerated") or hashlib.sha256(xml_bytes).hexdigest()[:12]
    return entries, f"un:{generated}"


def combine(ofac: tuple[list[ListEntry], str] | None, un: tuple[list[ListEntry], str] | None) -> SanctionsList:
    parts = [p for p in (ofac, un) if p is not None]
    if not parts:
        raise ListFormatError("no sanctions list was read")
    entries = tuple(e for entries, _ in parts for e in entries)
    versions = [version for _, version in parts]
    return SanctionsList("+".join(versions), entries, {v.split(":", 1)[0]: v for v in versions})


def read_files(files: dict[str, bytes]) -> SanctionsList:
    """The lists from their files by name (``sdn.csv``, ``alt.csv``, ``consolidated.xml``; either list may be absent)."""
    ofac = None
    if OFAC_SDN in files:
        ofac = parse_ofac(files[OFAC_SDN].decode("utf-8-sig", "replace"),
                          files.get(OFAC_ALT, b"").decode("utf-8-sig", "replace"))
    un = parse_un(files[UN_XML]) if UN_XML in files else None
    return combine(ofac, un)


def sample_list() -> SanctionsList:
    """The SAMPLE lists shipped in ``data/`` (fictional names; ``Sanctioned Test Person`` among them)."""
    return read_files({name: (DATA_DIR / name).read_bytes() for name in (OFAC_SDN, OFAC_ALT, UN_XML)})


def load_from_s3(bucket: str, prefix: str, client=None) -> SanctionsList:
    """The lists an operator keeps at ``s3://<bucket>/<prefix>/{sdn.csv, alt.csv, consolidated.xml}``."""
    if client is None:
        from chalicelib import aws

        client = aws.s3()
    files = {}
    for name in (OFAC_SDN, OFAC_ALT, UN_XML):
        try:
            files[name] = client.get_object(Bucket=bucket, Key=f"{prefix.rstrip('/')}/{name}")["Body"].read()
        except client.exceptions.NoSuchKey:
            continue
    return read_files(files)
