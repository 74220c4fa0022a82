"""Ruled tables on the text layer of a PDF, as TABLE elements in place of their loose cell text.

pdfminer (unstructured's "fast" strategy) reads a table cell by cell as loose text, so "Revenue"
and "1,240" end up in separate elements that no longer say what the number is. pdfplumber finds
tables from the lines drawn around their cells (its default "lines" strategy; the strategies that
guess columns from text alignment make tables out of ordinary prose) and reads each cell; the
rows are then rendered like .docx and .csv tables ("Region: North; Revenue: 1,240; ...").

pdfplumber interprets a page again after pdfminer, which doubled the parse time of a PDF, so
only pages whose content draws enough rectangles and line segments to rule a grid are opened: a
pikepdf scan of the content streams' operators, a few milliseconds a document.

A loose element is replaced by a table only when it lies inside the table's box (unstructured
gives each element's coordinates, in points from the page's top left like pdfplumber's) and each
of its words is a word of a cell not yet accounted for; without coordinates the words alone
decide. Text that is not in the table is never dropped: at worst a cell is said twice, and a
table none of whose cells is matched stays loose text.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.models import Element, ElementKind

if TYPE_CHECKING:
    from unstructured.documents.elements import Element as RawElement

log = logging.getLogger(__name__)

Convert = Callable[[Sequence["RawElement"]], list[Element]]
Box = tuple[float, float, float, float]  # x0, top, x1, bottom in points

# Painted rectangles and line segments: the smallest ruled grid, two by two cells, is one
# rectangle and two lines; a page's background is a rectangle or a path of three segments.
_MIN_RULES = 4
_RULE_OPERATORS = frozenset({"re", "l"})
_PAINT_OPERATORS = frozenset({"S", "s", "f", "F", "f*", "B", "B*", "b", "b*"})
_MAX_FORM_DEPTH = 3
_SLACK = 2.0  # points an element may stick out of its table's box (glyph bounds, rounding)


@dataclass
class _Table:
    page: int
    box: Box
    text: str
    words: Counter[str] = field(default_factory=Counter)  # cell words not yet matched
    placed: bool = False

    def absorbs(self, item: RawElement) -> bool:
        """Whether `item` is cell text of this table; its words are then used up."""
        if item.metadata.page_number != self.page:
            return False
        box = _box(item)
        if box is not None and not _inside(box, self.box):
            return False
        needed = Counter((item.text or "").split())
        if not needed or needed - self.words:
            return False
        self.words -= needed
        return True


def with_tables(path: Path, raw: Sequence[RawElement], convert: Convert) -> list[Element]:
    """`raw` converted, each ruled table one TABLE element where its first cell was."""
    tables = find_tables(path)
    if not tables:
        return convert(raw)
    elements: list[Element] = []
    for item in raw:
        table = next((t for t in tables if t.absorbs(item)), None)
        if table is None:
            elements.extend(convert([item]))
        elif not table.placed:
            elements.append(Element(kind=ElementKind.TABLE, text=table.text, page=table.page))
            table.placed = True
    return elements


def find_tables(path: Path) -> list[_Table]:
    """The ruled tables with text, on the pages that draw enough rules to hold one."""
    try:
        pages = ruled_pages(path)
        return _plumb(path, pages) if pages else []
    except Exception as exc:  # best effort: the loose text is still there
        log.warning("table detection failed, PDF tables stay loose text: %r", exc)
        return []


def ruled_pages(path: Path) -> list[int]:
    """Pages (from 1) whose content, forms included, paints `_MIN_RULES` rectangles and line
    segments; clipping paths do not count."""
    import pikepdf

    with pikepdf.open(path) as pdf:
        return [n for n, page in enumerate(pdf.pages, start=1) if _rules(page.obj, 0) >= _MIN_RULES]


def _rules(holder: Any, depth: int) -> int:
    """Rectangles and line segments drawn by a page or form XObject, and the forms it uses."""
    import pikepdf

    count = pending = 0
    for instruction in pikepdf.parse_content_stream(holder):
        op = str(instruction.operator)
        if op in _RULE_OPERATORS:
            pending += 1
        elif op in _PAINT_OPERATORS:
            count, pending = count + pending, 0
        elif op == "n":  # a clipping path, not drawn
            pending = 0
    resources = holder.get("/Resources")
    xobjects = resources.get("/XObject") if resources is not None else None
    if depth < _MAX_FORM_DEPTH and xobjects is not None:
        for _, xobject in xobjects.items():
            if xobject.get("/Subtype") == "/Form" and count < _MIN_RULES:
                count += _rules(xobject, depth + 1)
    return count


def _plumb(path: Path, numbers: list[int]) -> list[_Table]:
    import pdfplumber

    from rag.parsing import _render_table  # rag.parsing imports this module's caller

    tables: list[_Table] = []
    with pdfplumber.open(path, pages=numbers) as pdf:
        for page in pdf.pages:
            for found in page.find_tables():  # default settings: the "lines" strategy
                rows = _cells(found.extract())
                text = _render_table(rows) if rows else ""
                if text:
                    words = Counter(word for row in rows for cell in row for word in cell.split())
                    tables.append(_Table(page.page_number, found.bbox, text, words))
            page.close()
    return tables


def _cells(extracted: list[list[str | None]]) -> list[list[str]]:
    """Rows with whitespace collapsed, without empty rows and columns; none unless at least two
    rows by two columns are left (two ruled boxes around one paragraph are not a table)."""
    rows = [[" ".join((cell or "").split()) for cell in row] for row in extracted]
    rows = [row for row in rows if any(row)]
    width = max((len(row) for row in rows), default=0)
    keep = [c for c in range(width) if any(c < len(row) and row[c] for row in rows)]
    rows = [[row[c] if c < len(row) else "" for c in keep] for row in rows]
    return rows if len(rows) >= 2 and len(keep) >= 2 else []


def _box(item: RawElement) -> Box | None:
    coordinates = item.metadata.coordinates
    points = coordinates.points if coordinates is not None else None
    if not points:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def _inside(inner: Box, outer: Box) -> bool:
    return (
        inner[0] >= outer[0] - _SLACK
        and inner[1] >= outer[1] - _SLACK
        and inner[2] <= outer[2] + _SLACK
        and inner[3] <= outer[3] + _SLACK
    )
