"""One OpenDocument table (an .ods sheet) as a `Sheet` of display strings, read with odfpy.

ODF stores runs of equal rows and cells once with a repeat count, and a sheet usually ends in a
run of a million empty rows or thousands of empty cells: empty runs are counted, never built.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from odf import teletype
from odf.namespaces import OFFICENS, TABLENS, TEXTNS
from odf.table import TableRow

from rag.formats.spreadsheet import Merge, Sheet, render

_CELLS = {(TABLENS, "table-cell"), (TABLENS, "covered-table-cell")}


def read_table(table: Any) -> Sheet:
    rows: list[list[str]] = []
    merges: list[Merge] = []
    blank_rows = 0
    for row in table.getElementsByType(TableRow):
        cells, spans = _row(row)
        repeat = _count(row, "number-rows-repeated")
        if not cells:
            blank_rows += repeat
            continue
        rows.extend([] for _ in range(blank_rows))
        blank_rows = 0
        for r0, r1, c0, c1 in spans:
            merges.append((len(rows) + r0, len(rows) + r1, c0, c1))
        rows.extend(list(cells) for _ in range(repeat))
    return Sheet(str(table.getAttrNS(TABLENS, "name") or "Sheet"), rows, merges)


def _row(row: Any) -> tuple[list[str], list[Merge]]:
    """The row's cells (trailing empties dropped) and the merged ranges that start in it."""
    cells: list[str] = []
    spans: list[Merge] = []
    blanks = 0
    for cell in row.childNodes:
        if cell.qname not in _CELLS:
            continue
        value = _value(cell)
        repeat = _count(cell, "number-columns-repeated")
        if not value:
            blanks += repeat
            continue
        cells.extend([""] * blanks)
        blanks = 0
        down = _count(cell, "number-rows-spanned") - 1
        across = _count(cell, "number-columns-spanned") - 1
        if down or across:
            spans.append((0, down, len(cells), len(cells) + across))
        cells.extend([value] * repeat)
    return cells, spans


def _value(cell: Any) -> str:
    kind = cell.getAttrNS(OFFICENS, "value-type")
    if kind in ("float", "percentage"):
        return render(float(cell.getAttrNS(OFFICENS, "value")), percent=kind == "percentage")
    if kind == "date":
        return render(datetime.fromisoformat(cell.getAttrNS(OFFICENS, "date-value")))
    if kind == "boolean":
        return render(cell.getAttrNS(OFFICENS, "boolean-value") == "true")
    # Strings, currencies and times: the text the sheet displays ("$1,200.00", "10:30"). Only the
    # cell's own paragraphs: a comment (office:annotation) holds paragraphs too.
    paragraphs = (n for n in cell.childNodes if n.qname == (TEXTNS, "p"))
    return render(" ".join(teletype.extractText(p) for p in paragraphs))


def _count(node: Any, attribute: str) -> int:
    value = node.getAttrNS(TABLENS, attribute)
    return max(int(value), 1) if value else 1
