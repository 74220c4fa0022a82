"""rag.parsing against the real sample documents and the broken-file fixtures (no mocks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import UnreadableDocument, UnsupportedDocument
from rag.models import Element, ElementKind
from rag.parsing import SUPPORTED_EXTENSIONS, detect_format, parse_file

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "docs"
FIXTURES = ROOT / "tests" / "fixtures"

SAMPLE_FILES = [
    "engineering-handbook.md",
    "incident-response.html",
    "annual-report-2025.pdf",
    "travel-policy.docx",
    "product-roadmap.pptx",
    "office-locations.csv",
    "release-notes.txt",
]


@pytest.fixture(scope="module")
def parsed() -> dict[str, list[Element]]:
    """Every sample parsed once for the whole module: the first parse pays for the imports."""
    return {name: parse_file(SAMPLES / name) for name in SAMPLE_FILES}


def texts(elements: list[Element], kind: ElementKind | None = None) -> list[str]:
    return [e.text for e in elements if kind is None or e.kind is kind]


def find(elements: list[Element], needle: str) -> Element:
    matches = [e for e in elements if needle in e.text]
    assert matches, f"{needle!r} not in {texts(elements)}"
    return matches[0]


def test_supported_extensions_cover_every_sample() -> None:
    assert {Path(n).suffix for n in SAMPLE_FILES} <= set(SUPPORTED_EXTENSIONS)
    assert set(SUPPORTED_EXTENSIONS.values()) == {
        "markdown",
        "text",
        "html",
        "pdf",
        "docx",
        "pptx",
        "csv",
        *("xlsx", "xls", "ods", "json", "jsonl", "xml", "epub"),  # rag/formats
        *("doc", "rtf", "odt", "ppt", "odp", "eml", "msg"),
        *("png", "jpeg", "tiff"),
    }


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("notes.md", "markdown"),
        ("notes.markdown", "markdown"),
        ("REPORT.PDF", "pdf"),
        ("page.htm", "html"),
        ("Deck.PpTx", "pptx"),
        ("data.csv", "csv"),
    ],
)
def test_detect_format_by_extension_case_insensitive(filename: str, expected: str) -> None:
    assert detect_format(filename) == expected


@pytest.mark.parametrize("filename", ["setup.exe", "archive.tar.gz", "README"])
def test_unsupported_extension_lists_supported_types(filename: str) -> None:
    with pytest.raises(UnsupportedDocument) as info:
        detect_format(filename)
    message = str(info.value)
    assert filename in message
    for ext in (".pdf", ".docx", ".pptx", ".md", ".txt", ".html", ".csv"):
        assert ext in message
    if filename == "setup.exe":
        assert "'.exe'" in message


def test_parse_file_rejects_unsupported_upload_name(tmp_path: Path) -> None:
    path = tmp_path / "tool.exe"
    path.write_bytes(b"MZ\x90\x00")
    with pytest.raises(UnsupportedDocument, match=r"\.exe"):
        parse_file(path)


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_every_sample_yields_clean_elements(parsed: dict[str, list[Element]], name: str) -> None:
    elements = parsed[name]
    assert elements
    for element in elements:
        assert element.text == element.text.strip()
        assert element.text


def test_markdown_headings_and_levels(parsed: dict[str, list[Element]]) -> None:
    elements = parsed["engineering-handbook.md"]
    find(elements, "Our fleet controller is written in Rust.")
    levels = {e.text: e.heading_level for e in elements if e.kind is ElementKind.TITLE}
    assert levels["Northwind Robotics Engineering Handbook"] == 1
    assert levels["Languages we use"] == 2
    assert levels["Code review rules"] == 2
    assert levels["Rollbacks"] == 3
    review = find(elements, "approval from two reviewers")
    assert review.kind is ElementKind.LIST_ITEM


def test_html_headings_and_key_sentence(parsed: dict[str, list[Element]]) -> None:
    elements = parsed["incident-response.html"]
    ack = find(elements, "A severity 1 incident must be acknowledged within 15 minutes")
    assert ack.kind is ElementKind.TEXT
    titles = {e.text: e.heading_level for e in elements if e.kind is ElementKind.TITLE}
    assert titles["Incident Response Policy"] == 1
    assert titles["Escalation"] == 2
    assert "Northwind Robotics - Incident Response Policy" not in texts(elements)  # <title>
    assert find(elements, "Severity 2: picking throughput").kind is ElementKind.LIST_ITEM


def test_pdf_pages_carry_their_own_facts(parsed: dict[str, list[Element]]) -> None:
    elements = parsed["annual-report-2025.pdf"]
    assert {e.page for e in elements} == {1, 2, 3}
    assert find(elements, "Revenue for 2025 was EUR 48.2 million").page == 1
    assert find(elements, "employed 412 people").page == 2
    assert find(elements, "warehouse and test site in Tilburg").page == 3
    assert find(elements, "Northwind Robotics Annual Report 2025").kind is ElementKind.TITLE


def test_docx_headings_paragraphs_and_table(parsed: dict[str, list[Element]]) -> None:
    elements = parsed["travel-policy.docx"]
    titles = {e.text: e.heading_level for e in elements if e.kind is ElementKind.TITLE}
    assert titles["Travel Policy"] == 1
    assert titles["Booking travel"] == 2
    find(elements, "booked through the TravelDesk portal at least 14 days")
    (table,) = [e for e in elements if e.kind is ElementKind.TABLE]
    rows = table.text.splitlines()
    assert rows[0] == "City: Amsterdam; Hotel cap per night: EUR 190; Daily allowance: EUR 60"
    assert len(rows) == 4


def test_pptx_slides_become_pages_with_titles(parsed: dict[str, list[Element]]) -> None:
    elements = parsed["product-roadmap.pptx"]
    assert {e.page for e in elements} == {1, 2, 3, 4}
    slide_titles = [(e.page, e.text) for e in elements if e.kind is ElementKind.TITLE]
    assert (3, "Q2 2026: PickAssist arm pilot") in slide_titles
    assert find(elements, "Columbus, Ohio").page == 4
    assert all(e.heading_level == 1 for e in elements if e.kind is ElementKind.TITLE)


def test_csv_rows_are_self_describing(parsed: dict[str, list[Element]]) -> None:
    elements = parsed["office-locations.csv"]
    assert len(elements) == 4  # the header is folded into every row, not an element of its own
    assert all(e.kind is ElementKind.TEXT for e in elements)
    tilburg = find(elements, "city: Tilburg")
    assert tilburg.text.startswith("office: Warehouse and test site; city: Tilburg;")
    assert "postal_code: 02110" in find(elements, "city: Boston").text  # leading zero kept


def test_text_file_titles_and_list_items(parsed: dict[str, list[Element]]) -> None:
    elements = parsed["release-notes.txt"]
    assert find(elements, "Version 2.4.0").kind is ElementKind.TITLE
    assert find(elements, "battery-aware task scheduling").kind is ElementKind.LIST_ITEM


def test_cp932_csv_decodes_japanese() -> None:
    elements = parse_file(FIXTURES / "cp932.csv")
    assert [e.text.split(";")[0] for e in elements] == ["拠点: 本社", "拠点: 倉庫", "拠点: 営業所"]
    assert "備考: ロボット制御ソフトウェアの開発を担当しています" in elements[0].text


def test_latin1_text_decodes() -> None:
    joined = "\n".join(texts(parse_file(FIXTURES / "latin1.txt")))
    assert "Café Müller in Zürich" in joined
    assert "Señor García" in joined
    assert "façade" in joined
    assert "Bahnhofstraße" in joined


def test_utf16_with_bom_decodes(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes("Die Lieferung nach Köln ist pünktlich angekommen.\n".encode("utf-16"))
    assert texts(parse_file(path)) == ["Die Lieferung nach Köln ist pünktlich angekommen."]


def test_filename_overrides_the_stored_name(tmp_path: Path) -> None:
    path = tmp_path / "upload-7f3a.bin"
    path.write_bytes((SAMPLES / "engineering-handbook.md").read_bytes())
    elements = parse_file(path, filename="engineering-handbook.md")
    assert elements[0].kind is ElementKind.TITLE
    assert elements[0].heading_level == 1


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("empty.txt", "empty file"),
        ("corrupt.pdf", "corrupt or invalid PDF file"),
        ("encrypted.pdf", "encrypted PDF"),
        ("binary.txt", "does not look like text"),
    ],
)
def test_unreadable_files_say_why(fixture: str, reason: str) -> None:
    with pytest.raises(UnreadableDocument) as info:
        parse_file(FIXTURES / fixture)
    message = str(info.value)
    assert reason in message
    assert "Traceback" not in message
    assert str(FIXTURES) not in message


def test_corrupt_docx_names_the_format(tmp_path: Path) -> None:
    path = tmp_path / "policy.docx"
    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(UnreadableDocument, match="corrupt or invalid DOCX file") as info:
        parse_file(path)
    assert str(tmp_path) not in str(info.value)


def test_whitespace_only_text_has_no_text(tmp_path: Path) -> None:
    path = tmp_path / "blank.md"
    path.write_text("  \n\n\t\n", encoding="utf-8")
    with pytest.raises(UnreadableDocument, match="no text found"):
        parse_file(path)
