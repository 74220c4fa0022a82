"""A PDF page rendered for the source view: a PNG of the page, the cited passage's words
marked on it (and only where a run of them appears), clear errors for a page or file that
is not there."""

from __future__ import annotations

import io
from pathlib import Path

import pdfplumber
import pytest
from PIL import Image

from rag.errors import NotFoundError, UnreadableDocument
from rag.formats.pdf_render import _boxes, render_page

MEMO = Path(__file__).parents[1] / "fixtures" / "formats" / "fake-memo.pdf"
PASSAGE = "There were 20,000 bottles of water, 10,000 blankets, and 200 laptops delivered"


def test_a_page_is_a_png_with_the_passage_marked() -> None:
    plain = Image.open(io.BytesIO(render_page(MEMO, 1)))
    marked = Image.open(io.BytesIO(render_page(MEMO, 1, PASSAGE)))
    assert plain.format == marked.format == "PNG" and plain.size == marked.size
    assert plain.width > 600  # 110 dpi of a letter page
    assert plain.tobytes() != marked.tobytes()  # something was drawn
    bigger = Image.open(io.BytesIO(render_page(MEMO, 1, dpi=150)))
    assert bigger.width > plain.width


def test_only_runs_of_the_passage_words_are_marked() -> None:
    with pdfplumber.open(MEMO) as pdf:
        page = pdf.pages[0]
        words = {w["text"] for w in page.extract_words()}
        boxes = _boxes(page, PASSAGE)
        assert len(boxes) >= 12  # "There were 20,000 ... delivered"
        assert _boxes(page, "water and laptops") == []  # no run of three in order
        assert _boxes(page, "Regards") == []
    assert "laptops" in words


def test_a_missing_page_or_a_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="page 3 not found: the document has 1"):
        render_page(MEMO, 3)
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 not really")
    with pytest.raises(UnreadableDocument, match="cannot open the PDF"):
        render_page(broken, 1)
