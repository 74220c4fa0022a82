"""PDF text through rag.parsing with the real tools: OCR (tesseract, poppler) of pages without a
text layer, and the clean-up of text-layer PDFs (ligatures, hyphenation, page furniture).

The fixtures come from tests/fixtures/pdf/make_pdfs.py; OCR settings reach the parser the way they
reach the parse child, through the environment and `get_settings()`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.config import get_settings
from rag.errors import UnreadableDocument
from rag.formats.pdf import clean, dehyphenate
from rag.models import Element, ElementKind
from rag.parse_pool import IsolatedParser
from rag.parsing import parse_file

PDFS = Path(__file__).resolve().parents[1] / "fixtures" / "pdf"
sys.path.insert(0, str(PDFS))
from make_pdfs import MIXED, SCANNED  # noqa: E402


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
