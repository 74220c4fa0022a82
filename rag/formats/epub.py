"""EPUB books: the XHTML documents in the order the OPF spine reads them, each parsed as HTML.

Chapters go through `rag.parsing.partition_html`, the path .html uploads take, so a book and a
web page are chunked alike. The book's title (OPF metadata) is the first heading and the
chapters' headings sit one level below it, so a citation reads "Book > Chapter". A book whose
content is encrypted (DRM, declared in META-INF/encryption.xml) cannot be read; fonts obfuscated
by the IDPF or Adobe algorithm are no obstacle and do not count. Unpacked sizes are checked
against their declared sizes before reading, so a zip bomb fails alone.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from pathlib import Path
from urllib.parse import unquote
from xml.etree.ElementTree import Element as Node

from rag.errors import UnreadableDocument
from rag.models import Element, ElementKind

_CONTAINER = "META-INF/container.xml"
_ENCRYPTION = "META-INF/encryption.xml"
_FONT_OBFUSCATION = frozenset(
    {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}
)
_CHAPTER_TYPES = frozenset({"application/xhtml+xml", "text/html"})
_MAX_UNPACKED = 512 * 1024 * 1024
_DECLARED = re.compile(r"""^\s*<\?xml[^>]*?\?>""")
_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def partition(path: Path) -> list[Element]:
    from rag.parsing import partition_html

    with zipfile.ZipFile(path) as book:
        if sum(info.file_size for info in book.infolist()) > _MAX_UNPACKED:
            raise UnreadableDocument("EPUB unpacks to more than 512 MiB")
        names = set(book.namelist())
        if _ENCRYPTION in names and _encrypted(_xml(book, _ENCRYPTION)):
            raise UnreadableDocument("encrypted EPUB (DRM)")
        if _CONTAINER not in names:
            raise UnreadableDocument("not an EPUB: no META-INF/container.xml")
        opf_path = _rootfile(_xml(book, _CONTAINER))
        opf = _xml(book, opf_path)
        elements: list[Element] = []
        title = _title(opf)
        if title:
            elements.append(Element(kind=ElementKind.TITLE, text=title, heading_level=1))
        for chapter in _spine(opf, posixpath.dirname(opf_path)):
            if chapter not in names:
                continue  # a spine entry the zip lacks: the rest of the book still reads
            for element in partition_html(_xhtml(book.read(chapter))):
                if element.heading_level is not None and title:
                    element.heading_level += 1
                elements.append(element)
    return elements


def _xml(book: zipfile.ZipFile, name: str) -> Node:
    from defusedxml.ElementTree import fromstring

    try:
        root: Node = fromstring(book.read(name))
    except KeyError as exc:
        raise UnreadableDocument(f"EPUB lacks {name}") from exc
    return root


def _encrypted(encryption: Node) -> bool:
    methods = [
        n.get("Algorithm", "") for n in encryption.iter() if _local(n.tag) == "EncryptionMethod"
    ]
    return any(method not in _FONT_OBFUSCATION for method in methods)


def _rootfile(container: Node) -> str:
    for node in container.iter():
        if _local(node.tag) == "rootfile" and node.get("full-path"):
            return node.get("full-path", "")
    raise UnreadableDocument("EPUB container names no OPF package")


def _title(opf: Node) -> str:
    for node in opf.iter():
        if _local(node.tag) == "title" and (node.text or "").strip():
            return " ".join((node.text or "").split())
    return ""


def _spine(opf: Node, base: str) -> list[str]:
    """Zip member names of the spine's XHTML documents, in reading order."""
    manifest = {
        node.get("id", ""): node
        for node in opf.iter()
        if _local(node.tag) == "item" and node.get("media-type") in _CHAPTER_TYPES
    }
    chapters = []
    for node in opf.iter():
        item = manifest.get(node.get("idref", "")) if _local(node.tag) == "itemref" else None
        if item is not None:
            href = unquote(item.get("href", "").partition("#")[0])
            chapters.append(posixpath.normpath(posixpath.join(base, href)))
    return chapters


def _xhtml(data: bytes) -> str:
    """XHTML text without its XML declaration, which the HTML parser rejects in a str."""
    declared = _ENCODING.match(data)
    encoding = declared.group(1).decode("ascii") if declared else "utf-8"
    try:  # a stray bad byte costs one character, not the book
        text = data.decode(encoding, errors="replace")
    except LookupError:
        text = data.decode("utf-8", errors="replace")
    return _DECLARED.sub("", text.removeprefix("\ufeff"), count=1)


def _local(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""
