"""ISO 20022 XML read safely: the bank's statements (camt.053) and credit notifications (camt.054).

The file comes from outside, so the parser is expat used directly with any ``<!DOCTYPE>``
refused: no DTD means no entity declarations, so no billion-laughs or quadratic-blowup
expansion and no external entities, whatever the expat version. The document is fed to
expat in one call and callers cap its size. ``defusedxml`` is therefore not needed.

``parse(data)`` -> ``(document, namespace)``: the root element as a small ``Node`` tree (tags
are local names, ``line`` is where the element starts) and the first namespace URI seen that
``namespace`` (a compiled pattern) matches, or ``""``. Malformed or refused input raises
``XmlRefused`` with the line.
"""
from __future__ import annotations

import re
from xml.parsers import expat


class XmlRefused(ValueError):
    """The document is not well-formed XML, is empty, or declares a DTD (refused)."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


class Node:
    """One element: local ``tag``, ``attrs``, ``children``, ``text``, the ``line`` it starts on."""

    __slots__ = ("tag", "attrs", "children", "text", "line")

    def __init__(self, tag: str, attrs: dict, line: int):
        self.tag = tag
        self.attrs = attrs
        self.children: list[Node] = []
        self.text = ""
        self.line = line

    def find(self, path: str) -> "Node | None":
        node = self
        for part in path.split("/"):
            node = next((c for c in node.children if c.tag == part), None)
            if node is None:
                return None
        return node

    def findall(self, tag: str) -> list["Node"]:
        return [c for c in self.children if c.tag == tag]

    def value(self, path: str) -> str:
        node = self.find(path)
        return node.text.strip() if node is not None else ""


class _Refused(Exception):
    pass


def parse(data: bytes, namespace: "re.Pattern[str]") -> tuple[Node, str]:
    """Parse with expat, refusing any DTD (see the module doc)."""
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    root = Node("", {}, 0)
    stack = [root]
    texts: list[list[str]] = [[]]
    namespaces: set[str] = set()

    def refuse_dtd(*_):
        raise _Refused("a DOCTYPE is not allowed here (entity expansion is refused)")

    def start(name, attrs):
        uri, _, local = name.rpartition(" ")
        namespaces.add(uri)
        node = Node(local, attrs, parser.CurrentLineNumber)
        stack[-1].children.append(node)
        stack.append(node)
        texts.append([])

    def end(_name):
        node = stack.pop()
        node.text = "".join(texts.pop())

    def chars(data):
        texts[-1].append(data)

    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_dtd
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(data, True)
    except _Refused as e:
        raise XmlRefused(parser.CurrentLineNumber, str(e)) from None
    except expat.ExpatError as e:
        raise XmlRefused(e.lineno, f"not well-formed XML: {expat.ErrorString(e.code)}") from None
    if not root.children:
        raise XmlRefused(0, "the document is empty")
    uri = next((u for u in sorted(namespaces) if namespace.fullmatch(u)), "")
    return root.children[0], uri


# -- ISO 11649 structured creditor references ("RF" references) --------------------------------

_RF_BODY = re.compile(r"^[0-9A-Z]{1,21}$")


def _mod97(text: str) -> int:
    digits = "".join(str(int(ch, 36)) for ch in text)
    return int(digits) % 97


def creditor_reference(body: str) -> str:
    """The ISO 11649 reference for ``body`` (1-21 of 0-9A-Z): ``RF`` + two check digits + ``body``."""
    body = body.upper()
    if not _RF_BODY.fullmatch(body):
        raise ValueError("an RF reference body is 1 to 21 characters 0-9 A-Z")
    check = 98 - _mod97(body + "RF00")
    return f"RF{check:02d}{body}"


def parse_creditor_reference(text: str | None) -> str | None:
    """``text`` as a valid RF reference (spaces removed, upper case), or ``None`` if it is not one."""
    if not text:
        return None
    candidate = "".join(str(text).split()).upper()
    if len(candidate) < 5 or len(candidate) > 25 or not candidate.startswith("RF") or not candidate[2:4].isdigit():
        return None
    if not _RF_BODY.fullmatch(candidate[4:]):
        return None
    return candidate if _mod97(candidate[4:] + candidate[:4]) == 1 else None


def remittance_reference(node: Node | None) -> str | None:
    """The RF reference a camt ``TxDtls`` (or ``Ntry``) carries: ``RmtInf/Strd/CdtrRefInf/Ref`` first,
    else an RF reference written in ``RmtInf/Ustrd`` (banks that flatten the structured field)."""
    if node is None:
        return None
    remittance = node.find("RmtInf")
    if remittance is None:
        return None
    for structured in remittance.findall("Strd"):
        found = parse_creditor_reference(structured.value("CdtrRefInf/Ref"))
        if found:
            return found
    for unstructured in remittance.findall("Ustrd"):
        found = find_creditor_reference(unstructured.text)
        if found:
            return found
    return None


_RF_IN_TEXT = re.compile(r"RF\d{2}(?: ?[0-9A-Z]){1,21}")


def find_creditor_reference(text: str) -> str | None:
    """The first valid RF reference written in free text, printed in groups or not ("RF18 5390 0754 7034")."""
    for match in _RF_IN_TEXT.finditer(str(text or "").upper()):
        compact = match.group(0).replace(" ", "")
        for end in range(len(compact), 4, -1):  # the longest prefix whose check digits hold
            found = parse_creditor_reference(compact[:end])
            if found:
                return found
    return None
