"""Spreadsheets (.xlsx, .xls, .ods): each sheet a section, each data row "header: value; ...".

Rows are described the way CSV rows are (`rag.parsing.describe_row`), so a row found by search
still says what each number means. The header is the first row with two or more filled cells: a
title above the table (often one cell merged across it) is kept as text, not taken for the header.
A header cell merged across columns names each of them; a cell merged down rows fills every row
it covers, so that a grouped row ("Region: North") keeps its group. Values are written the way a
person reads them in the sheet: 3 not "3.0", 25% not 0.25, dates in ISO form.

Each reader loads its sheet whole (openpyxl needs that for merged ranges); the upload size cap
bounds it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

from rag.models import Element, ElementKind
from rag.parsing import describe_row

# (first row, last row, first column, last column), 0-based and inclusive.
Merge = tuple[int, int, int, int]


@dataclass
class Sheet:
    """One sheet's cells as display strings ("" for empty), before any header is chosen."""

    name: str
    rows: list[list[str]]
    merges: list[Merge] = field(default_factory=list)


def partition_xlsx(path: Path) -> list[Element]:
    """Cached values of formulas are read (data_only): the file's own last computed results."""
    import openpyxl

    book = openpyxl.load_workbook(path, data_only=True)
    try:
        return _elements(_xlsx_sheet(ws) for ws in book.worksheets)
    finally:
        book.close()


def partition_xls(path: Path) -> list[Element]:
    """formatting_info gives merged ranges and number formats (percentages) in legacy files."""
    import xlrd

    book = xlrd.open_workbook(str(path), formatting_info=True, on_demand=True)
    try:
        return _elements(_xls_sheet(book, book.sheet_by_index(i)) for i in range(book.nsheets))
    finally:
        book.release_resources()


def partition_ods(path: Path) -> list[Element]:
    """Read with odfpy rather than pandas: pandas glues a cell's paragraphs ("Areakm2")."""
    from odf.opendocument import load
    from odf.table import Table

    from rag.formats import ods

    document = load(str(path))
    return _elements(
        ods.read_table(table) for table in document.spreadsheet.getElementsByType(Table)
    )


# -- from sheets to elements -------------------------------------------------------------------


def _elements(sheets: Iterator[Sheet]) -> list[Element]:
    elements: list[Element] = []
    for sheet in sheets:
        texts = _describe(sheet)
        if texts:
            elements.append(Element(kind=ElementKind.TITLE, text=sheet.name, heading_level=1))
            elements.extend(Element(kind=ElementKind.TEXT, text=t) for t in texts)
    return elements


def _describe(sheet: Sheet) -> list[str]:
    rows = sheet.rows
    filled = [i for i, row in enumerate(rows) if any(row)]
    if not filled:
        return []
    head = next((i for i in filled if sum(1 for c in rows[i] if c) > 1), filled[0])
    _fill_merges(rows, sheet.merges, head)
    captions = [" ".join(c for c in rows[i] if c) for i in filled if i < head]
    captions = [c for c in captions if c != sheet.name]  # the title merged above the table
    header = rows[head]
    # A second table further down the sheet often repeats the header row: it describes nothing.
    body = [rows[i] for i in filled if i > head and _trim(rows[i]) != _trim(header)]
    if not body:  # a header alone, as for CSV
        return [*captions, ", ".join(c for c in header if c)]
    return captions + [t for t in (describe_row(header, row) for row in body) if t]


def _trim(row: list[str]) -> list[str]:
    end = len(row)
    while end and not row[end - 1]:
        end -= 1
    return row[:end]


def _fill_merges(rows: list[list[str]], merges: list[Merge], head: int) -> None:
    """Copy a merged cell's value down the rows it spans, and across columns in the header."""
    for top, bottom, left, right in merges:
        if top >= len(rows) or left >= len(rows[top]) or not rows[top][left]:
            continue
        value = rows[top][left]
        for r in range(top, min(bottom, len(rows) - 1) + 1):
            columns = range(left, right + 1) if r == head else range(left, left + 1)
            row = rows[r]
            for c in columns:
                if c >= len(row):
                    row.extend([""] * (c + 1 - len(row)))
                row[c] = row[c] or value


def render(value: object, *, percent: bool = False) -> str:
    """A cell value as the sheet shows it: integral numbers without ".0", dates in ISO form."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        if value.time() == time():
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, int | float):
        return _number(value * 100) + "%" if percent else _number(value)
    return " ".join(str(value).split())


def _number(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    # 15 significant digits, as spreadsheets show: 0.1 + 0.2 is "0.3", not 0.30000000000000004.
    return format(value, ".15g") if isinstance(value, float) else str(value)


# -- readers -----------------------------------------------------------------------------------


def _xlsx_sheet(ws: object) -> Sheet:
    from openpyxl.worksheet.worksheet import Worksheet

    assert isinstance(ws, Worksheet)
    rows = [
        [render(c.value, percent="%" in str(c.number_format)) for c in row]
        for row in ws.iter_rows()
    ]
    merges = [(m.min_row - 1, m.max_row - 1, m.min_col - 1, m.max_col - 1) for m in ws.merged_cells]
    return Sheet(ws.title, rows, merges)


def _xls_sheet(book: object, sh: object) -> Sheet:
    import xlrd

    assert isinstance(book, xlrd.book.Book) and isinstance(sh, xlrd.sheet.Sheet)

    def cell(r: int, c: int) -> str:
        kind, value = sh.cell_type(r, c), sh.cell_value(r, c)
        if kind == xlrd.XL_CELL_DATE:
            return render(xlrd.xldate.xldate_as_datetime(value, book.datemode))
        if kind == xlrd.XL_CELL_BOOLEAN:
            return render(bool(value))
        if kind == xlrd.XL_CELL_ERROR:
            return str(xlrd.error_text_from_code.get(value, ""))
        if kind == xlrd.XL_CELL_NUMBER:
            fmt = book.format_map.get(book.xf_list[sh.cell_xf_index(r, c)].format_key)
            return render(value, percent=fmt is not None and "%" in fmt.format_str)
        return render(value)

    rows = [[cell(r, c) for c in range(sh.row_len(r))] for r in range(sh.nrows)]
    merges = [(r0, r1 - 1, c0, c1 - 1) for r0, r1, c0, c1 in sh.merged_cells]
    return Sheet(sh.name, rows, merges)
