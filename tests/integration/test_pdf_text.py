"""PDF text through rag.parsing with the real tools: OCR (tesseract, poppler) of pages without a
text layer, the clean-up of text-layer PDFs (ligatures, hyphenation, page furniture), and ruled
tables read as tables (pdfplumber).

The fixtures come from tests/fixtures/pdf/make_pdfs.py; OCR settings reach the parser the way they
reach the parse child, through the environment and `get_settings()`.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.config import get_settings
from rag.errors import UnreadableDocument
from rag.formats import pdf, pdf_tables
from rag.formats.pdf import clean, dehyphenate
from rag.models import Element, ElementKind
from rag.parse_pool import IsolatedParser
from rag.parsing import describe_row, parse_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PDFS = FIXTURES / "pdf"
sys.path.insert(0, str(PDFS))
from make_pdfs import MIXED, SCANNED, TABLE, TABLE_ABOVE, TABLE_BELOW  # noqa: E402


@pytest.fixture
def ocr_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Environment changes seen by `get_settings()`, undone afterwards."""
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def words(text: str) -> list[str]:
    return text.split()


def test_a_scanned_pdf_is_read_by_ocr() -> None:
    elements = parse_file(PDFS / "scanned.pdf")
    assert {e.page for e in elements} == {1}
    assert all(e.kind is ElementKind.TEXT for e in elements)
    expected = [" ".join(SCANNED[0][:2]), SCANNED[0][3]]  # paragraphs, split at the gap
    assert [e.text for e in elements] == expected


def test_a_mixed_pdf_keeps_its_text_page_and_ocrs_the_scanned_one() -> None:
    elements = parse_file(PDFS / "mixed.pdf")
    assert [e.page for e in elements] == [1, 2]
    assert elements[0].text == " ".join(MIXED[0])  # the text layer, untouched
    assert words(elements[1].text) == words(" ".join(MIXED[1]))


def test_the_parse_child_ocrs_under_its_limits() -> None:
    parser = IsolatedParser(timeout_s=120, max_memory_mb=2048)
    try:
        elements = parser(PDFS / "scanned.pdf", "scan.pdf")
    finally:
        parser.close()
    assert "Rotterdam shipped 1,240 parcels" in elements[0].text


def test_text_layer_is_cleaned() -> None:
    from pdfminer.high_level import extract_text

    raw = extract_text(PDFS / "cleanup.pdf")
    for dirt in ("ﬁ", "implementa-\n", "Page 2 of 4", "Northwind Robotics | Annual Report"):
        assert dirt in raw  # what the clean-up has to remove is really there
    elements = parse_file(PDFS / "cleanup.pdf")
    assert [(e.page, e.text) for e in elements] == [
        (
            1,
            "The final office configuration uses a state-of-the-art implementation of the "
            "e-mail workflow for all sites.",
        ),
        (
            2,
            "Robots are charged overnight, and the well-known schedule keeps maintenance "
            "windows short for every warehouse team.",
        ),
        (3, "Pre- and post-shift checks take five minutes each on the floor."),
        (4, "The fleet grew to 1,200 robots across nine sites in four countries."),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("an implementa- tion detail", "an implementation detail"),
        ("the data- base", "the database"),
        ("a pharmaco- kinetic model", "a pharmacokinetic model"),
        ("a well- known fact", "a well-known fact"),
        ("self- supervised learning", "self-supervised learning"),
        ("our state-of-the- art model", "our state-of-the-art model"),
        ("send an e- mail", "send an e-mail"),
        ("pre- and post-processing", "pre- and post-processing"),
        ("low- vs. high-dose", "low- vs. high-dose"),
        ("a 5q- syndrome", "a 5q- syndrome"),
        ("shrink\u00ad ing", "shrinking"),
        ("state-of-the-art e-mail", "state-of-the-art e-mail"),
        ("COVID- 19 and Type- A", "COVID- 19 and Type- A"),
        ("a dash - not a hyphen", "a dash - not a hyphen"),
    ],
)
def test_dehyphenation(text: str, expected: str) -> None:
    assert dehyphenate(text) == expected


def test_clean_keeps_super_and_subscripts_and_joins_across_elements() -> None:
    def text(value: str, page: int) -> Element:
        return Element(kind=ElementKind.TEXT, text=value, page=page)

    pages = [
        [text("An area of 5 m² holds H₂O and ½ of the ﬁles; the implementa-", 1)],
        [text("tion ends here.", 2), text("3", 2)],
    ]
    assert [(e.page, e.text) for e in clean(pages)] == [
        (1, "An area of 5 m² holds H₂O and ½ of the files; the implementation ends here.")
    ]


def test_a_blank_pdf_has_no_text(tmp_path: Path) -> None:
    import pikepdf

    path = tmp_path / "blank.pdf"
    with pikepdf.new() as pdf:
        pdf.add_blank_page()
        pdf.save(path)
    with pytest.raises(UnreadableDocument, match=r"no text found \(no text layer, and OCR"):
        parse_file(path)


def test_ocr_disabled_says_so(ocr_env: pytest.MonkeyPatch) -> None:
    ocr_env.setenv("RAG_OCR__ENABLED", "false")
    with pytest.raises(UnreadableDocument, match=r"scanned PDF\? OCR is not enabled"):
        parse_file(PDFS / "scanned.pdf")


def test_missing_tesseract_says_how_to_install(ocr_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ocr_env.setenv("PATH", str(tmp_path))
    with pytest.raises(UnreadableDocument, match=r"OCR needs tesseract.*make setup"):
        parse_file(PDFS / "scanned.pdf")


def test_a_page_over_the_time_limit_fails_the_document(ocr_env: pytest.MonkeyPatch) -> None:
    ocr_env.setenv("RAG_OCR__PAGE_TIMEOUT_S", "0.01")
    with pytest.raises(UnreadableDocument, match=r"OCR of page 1 took longer than 0.01 s"):
        parse_file(PDFS / "scanned.pdf")


def test_a_ruled_table_is_one_table_element_between_its_paragraphs() -> None:
    elements = parse_file(PDFS / "table.pdf")
    assert [(e.kind, e.page) for e in elements] == [
        (ElementKind.TEXT, 1),
        (ElementKind.TABLE, 1),
        (ElementKind.TEXT, 1),
    ]
    above, table, below = (e.text for e in elements)
    assert above == " ".join(TABLE_ABOVE)
    assert below == " ".join(TABLE_BELOW)
    assert table.splitlines() == [describe_row(TABLE[0], row) for row in TABLE[1:]]
    assert table.splitlines()[0] == "Region: North; Revenue: 1,240; Growth: 12%"
    cells = {cell for row in TABLE for cell in row}
    assert not cells & set(words(above + " " + below))  # no cell is said twice


@pytest.mark.parametrize(
    "path",
    [FIXTURES / "formats" / "fake-memo.pdf", FIXTURES / "formats" / "layout-parser-paper-fast.pdf"],
    ids=lambda p: p.name,
)
def test_a_pdf_without_ruled_tables_is_unchanged(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even with every page searched for tables, not only pages that draw enough rules."""
    monkeypatch.setattr(pdf, "with_tables", lambda path, raw, convert: convert(raw))
    before = parse_file(path)
    monkeypatch.undo()
    pages = len(pdf._page_sizes(path))
    monkeypatch.setattr(pdf_tables, "ruled_pages", lambda path: list(range(1, pages + 1)))
    assert pdf_tables.find_tables(path) == []
    assert parse_file(path) == before


def test_only_text_inside_a_table_and_in_its_cells_is_replaced() -> None:
    from unstructured.documents.coordinates import PixelSpace
    from unstructured.documents.elements import CoordinatesMetadata, ElementMetadata, Text

    def loose(text: str, box: tuple[float, float, float, float] | None) -> Text:
        meta = ElementMetadata(page_number=1)
        if box is not None:
            x0, top, x1, bottom = box
            points = ((x0, top), (x0, bottom), (x1, bottom), (x1, top))
            meta.coordinates = CoordinatesMetadata(points, PixelSpace(600, 800))
        return Text(text, metadata=meta)

    def table() -> pdf_tables._Table:
        words = Counter(["Region", "Growth", "North", "12%"])
        return pdf_tables._Table(page=1, box=(100, 100, 300, 200), text="...", words=words)

    assert table().absorbs(loose("North 12%", (110, 120, 200, 130)))
    assert table().absorbs(loose("North", None))  # no coordinates: the words decide
    assert not table().absorbs(loose("North", (110, 220, 200, 230)))  # below the table
    assert not table().absorbs(loose("North grew 12%", (110, 120, 200, 130)))
    once = table()
    assert once.absorbs(loose("North", None))
    assert not once.absorbs(loose("North", None))  # each cell word accounts for one word
