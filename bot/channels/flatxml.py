"""The callbacks' XML, parsed safely and cheaply: one ``<xml>`` root whose children are the fields.

Runs expat directly with the guards defusedxml installs (``forbid_dtd``, ``forbid_entities``,
``forbid_external``): a DOCTYPE, an entity declaration or an external entity stops the parse before
any expansion, so billion-laughs and XXE never start. defusedxml itself wraps ElementTree's
pure-Python parser class and builds a tree, which cost more than decrypting the message; these
documents are a handful of flat fields, so the handlers below keep just those (docs/benchmarks.md,
"Intake").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NoReturn
from xml.parsers import expat


class UnsafeXml(ValueError):
    """A DTD, an entity declaration or an external entity: refused, never expanded."""


@dataclass
class FlatXml:
    """The root's tag and its child elements' texts. ``flat`` is False when a child has children or
    attributes or repeats: the caller needs a full parser for that document (texts here are then
    each child's own character data only)."""

    root: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    flat: bool = True


def _refuse(*_: object) -> NoReturn:
    raise UnsafeXml("DTDs and entities are not accepted")


def parse_flat(data: bytes | str) -> FlatXml:
    """Parse ``data``; raises :class:`UnsafeXml` or ``expat.ExpatError`` (both ValueError-like)."""
    doc = FlatXml()
    depth = 0
    text: list[str] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth == 1:
            doc.root = name
        elif depth == 2:
            text.clear()
            if attrs or name in doc.fields:
                doc.flat = False
        else:
            doc.flat = False

    def end(name: str) -> None:
        nonlocal depth
        if depth == 2:
            doc.fields[name] = "".join(text)
        depth -= 1

    def chars(data: str) -> None:
        if depth == 2:
            text.append(data)

    parser = expat.ParserCreate()
    parser.buffer_text = True  # one callback per text, not one per line or CDATA piece
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.Parse(data, True)
    return doc
