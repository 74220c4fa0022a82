"""Images read by OCR through rag.parsing with the real tesseract: PNG, JPEG, a two-page TIFF
(each frame a page), and a damaged file failing alone with its reason."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from rag.errors import UnreadableDocument
from rag.parsing import parse_file

PDFS = Path(__file__).resolve().parents[1] / "fixtures" / "pdf"
sys.path.insert(0, str(PDFS))
from make_pdfs import MIXED, SCANNED, _scan  # noqa: E402


def _image(lines: list[str], fmt: str) -> bytes:
    buffer = io.BytesIO()
    _scan(lines, dpi=200).convert("L").save(buffer, fmt, dpi=(200, 200))
    return buffer.getvalue()


def _words(lines: list[str]) -> list[str]:
    return " ".join(lines).split()


@pytest.mark.parametrize(("name", "fmt"), [("scan.png", "PNG"), ("scan.jpg", "JPEG")])
def test_an_image_is_read_by_ocr(tmp_path: Path, name: str, fmt: str) -> None:
    path = tmp_path / name
    path.write_bytes(_image(SCANNED[0], fmt))
    elements = parse_file(path)
    assert " ".join(e.text for e in elements).split() == _words(SCANNED[0])
    assert {e.page for e in elements} == {None}


def test_each_frame_of_a_tiff_is_a_page(tmp_path: Path) -> None:
    first, second = (_scan(lines, dpi=200).convert("L") for lines in (SCANNED[0], MIXED[1]))
    path = tmp_path / "fax.tiff"
    first.save(path, "TIFF", save_all=True, append_images=[second], dpi=(200, 200))
    elements = parse_file(path)
    assert {e.page for e in elements} == {1, 2}
    second_page = " ".join(e.text for e in elements if e.page == 2)
    assert second_page.split() == _words(MIXED[1])


def test_a_damaged_image_fails_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(_image(SCANNED[0], "PNG")[:100])
    with pytest.raises(UnreadableDocument, match="corrupt or invalid"):
        parse_file(path)
