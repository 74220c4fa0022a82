"""XML as text with its element path ("catalog > book > title: ..."), parsed with defusedxml.

An uploaded XML file is untrusted: defusedxml refuses entity declarations (billion laughs) and
external references, and the refusal is the document's failure, not the service's. Each child
of the root is a section (a record: a <book> of a <catalog>), titled by its name, title or id
when it has one. An element mixing text and markup (<p>A <b>bold</b> claim</p>) is one passage,
so that a sentence is never cut at its inline tags.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from xml.etree.ElementTree import Element as Node
from xml.etree.ElementTree import ParseError

from rag.errors import UnreadableDocument
from rag.models import Element, ElementKind
from rag.parsing import BOMS

_TITLE_NAMES = ("title", "name", "id")
_MAX_TITLE = 120
_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_DECLARATION = re.compile(r"""^\s*<\?xml[^>]*?\?>""")


def partition(path: Path) -> list[Element]:
    root = _parse(path.read_bytes())
    if _mixed(root):  # a text document (DocBook, TEI...) rather than records
        return _lines(root, [], children=True)
    elements = _lines(root, [], children=False)
    tags = Counter(_name(child) for child in root)
    seen: Counter[str] = Counter()
    for child in root:
        tag = _name(child)
        seen[tag] += 1
        lines = _lines(child, [_name(root)], children=True)
        if not lines:
            continue
        title = _title_of(child) or (f"{tag} {seen[tag]}" if tags[tag] > 1 else tag)
        elements.append(Element(kind=ElementKind.TITLE, text=title, heading_level=1))
        elements += lines
    return elements


def _parse(data: bytes) -> Node:
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        try:
            root: Node = fromstring(data)
        except ParseError as exc:
            if "encoding" not in str(exc):
                raise
            root = fromstring(_decode(data))
    except ParseError as exc:
        raise UnreadableDocument(f"invalid XML ({exc})") from exc
    except DefusedXmlException as exc:
        raise UnreadableDocument(f"XML refused for safety: {exc}") from exc
    except (LookupError, UnicodeDecodeError) as exc:
        raise UnreadableDocument(f"XML text does not match its declared encoding ({exc})") from exc
    return root


def _decode(data: bytes) -> str:
    """For what expat cannot decode: encodings it lacks (Shift_JIS), and a file whose byte order
    mark contradicts its declaration (converted to UTF-16, still declaring UTF-8). The mark wins."""
    encoding = next((name for bom, name in BOMS if data.startswith(bom)), None)
    declared = _DECLARED.match(data)
    if encoding is None:
        encoding = declared.group(1).decode("ascii") if declared else "utf-8"
    text = data.decode(encoding)
    return _DECLARATION.sub("", text, count=1)


def _lines(node: Node, parents: list[str], *, children: bool) -> list[Element]:
    """`node`'s attributes and text, and with `children` its whole subtree, as path lines."""
    path = [*parents, _name(node)]
    shown = " > ".join(path)
    elements = [_text(f"{shown} @{_local(k)}: {v}") for k, v in node.attrib.items() if v.strip()]
    if _mixed(node):
        elements.append(_text(f"{shown}: {' '.join(''.join(node.itertext()).split())}"))
        return elements
    own = " ".join((node.text or "").split())
    if own:
        elements.append(_text(f"{shown}: {own}"))
    if children:
        for child in node:
            elements += _lines(child, path, children=True)
    return elements


def _mixed(node: Node) -> bool:
    return len(node) > 0 and any((t or "").strip() for t in [node.text, *(c.tail for c in node)])


def _title_of(node: Node) -> str | None:
    for name in _TITLE_NAMES:
        for key, value in node.attrib.items():
            if _local(key).lower() == name and value.strip():
                return _short(value)
        for child in node:
            if _name(child).lower() == name and (child.text or "").strip() and len(child) == 0:
                return _short(child.text or "")
    return None


def _short(text: str) -> str | None:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_TITLE else None


def _name(node: Node) -> str:
    return _local(node.tag) if isinstance(node.tag, str) else ""


def _local(tag: str) -> str:
    """A tag without its namespace ("{http://...}title" is "title"): URIs make paths unreadable."""
    return tag.rpartition("}")[2]


def _text(text: str) -> Element:
    return Element(kind=ElementKind.TEXT, text=text)
