"""Spreadsheets, JSON, XML and EPUB through `parse_file`: real files from public parsing projects
(tests/fixtures/README.md) and edge cases generated here."""

from __future__ import annotations

import json
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from rag.errors import UnreadableDocument
from rag.models import Element, ElementKind
from rag.parsing import parse_file

FIXTURES = Path(__file__).parents[1] / "fixtures" / "formats"
PLANTED = json.loads((FIXTURES / "planted.json").read_text())
OURS = {".xlsx", ".xls", ".ods", ".json", ".jsonl", ".xml", ".epub"}
MINE = [p for p in PLANTED if Path(p["file"]).suffix in OURS]


def titles(elements: list[Element]) -> list[str]:
    return [e.text for e in elements if e.kind is ElementKind.TITLE]


def texts(elements: list[Element]) -> list[str]:
    return [e.text for e in elements if e.kind is not ElementKind.TITLE]


@pytest.mark.parametrize("entry", MINE, ids=[p["file"] for p in MINE])
def test_planted_strings_are_found(entry: dict[str, object]) -> None:
    elements = parse_file(FIXTURES / str(entry["file"]))
    text = "\n".join(e.text for e in elements)
    for planted in entry["strings"]:  # type: ignore[attr-defined]
        assert planted in text


@pytest.mark.parametrize("entry", MINE, ids=[p["file"] for p in MINE])
def test_a_truncated_copy_fails_alone(entry: dict[str, object], tmp_path: Path) -> None:
    source = FIXTURES / str(entry["file"])
    broken = tmp_path / source.name
    broken.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(UnreadableDocument) as caught:
        parse_file(broken)
    message = caught.value.message
    assert "corrupt or invalid" in message or "invalid JSON" in message or "XML" in message


# -- spreadsheets ------------------------------------------------------------------------------


def test_xlsx_sheets_are_sections_and_rows_describe_themselves() -> None:
    elements = parse_file(FIXTURES / "stanley-cups.xlsx")
    assert titles(elements) == ["Stanley Cups", "Stanley Cups Since 67"]
    assert elements[0].heading_level == 1
    # The merged title row A1:E1 is not the header; 13.0 is shown as 13.
    assert "Team: Maple Leafs; Location: TOR; Stanley Cups: 13" in texts(elements)


def test_generated_xlsx_merges_blanks_numbers_and_dates(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Budget"
    sheet.append(["Budget 2024"])
    sheet.merge_cells("A1:D1")
    sheet.append(["Team", "Cost", None, "Quarter"])
    sheet.merge_cells("B2:C2")
    sheet.append(["Ops", 3.0, 0.25, datetime(2024, 3, 31)])
    sheet["C3"].number_format = "0%"
    sheet.append(["Region North", None, None, None])
    sheet.append([None, 1.5, None, datetime(2024, 6, 30, 9, 30)])
    book.create_sheet("Empty")
    second = book.create_sheet("Staff")
    second.append(["Name", None, "Role"])
    second.append(["Ada", "extra", "Engineer"])
    path = tmp_path / "budget.xlsx"
    book.save(path)

    elements = parse_file(path)
    assert titles(elements) == ["Budget", "Staff"]  # the empty sheet is skipped
    assert texts(elements) == [
        "Budget 2024",
        "Team: Ops; Cost: 3; Cost: 25%; Quarter: 2024-03-31",
        "Team: Region North",
        "Cost: 1.5; Quarter: 2024-06-30 09:30:00",
        "Name: Ada; extra; Role: Engineer",
    ]


def test_xls_and_ods_rows() -> None:
    xls = texts(parse_file(FIXTURES / "tests-example.xls"))
    assert "Abbreviation: MC; Question Type: Multiple Choice" in xls
    ods = parse_file(FIXTURES / "countrystatistics.ods")
    assert titles(ods) == ["Population", "HDI"]
    # A header cell of two paragraphs reads as two words, not "Populationin millions".
    assert "Country: Austria; Population in millions: 8.3; Area km2: 83858" in ods[1].text


def test_an_xlsx_that_is_not_a_zip_names_the_format(tmp_path: Path) -> None:
    path = tmp_path / "report.xlsx"
    path.write_bytes(b"this is not a spreadsheet at all")
    with pytest.raises(UnreadableDocument, match=r"corrupt or invalid XLSX file \(BadZipFile"):
        parse_file(path)


# -- JSON --------------------------------------------------------------------------------------


def test_json_records_are_sections_titled_by_their_name() -> None:
    elements = parse_file(FIXTURES / "arbitrary-records.json")
    assert titles(elements) == ["Garden Trowel", "Watering Can", "Pruning Shears"]
    assert "sku: GRD-1290" in texts(elements)
    assert "in_stock: false" in texts(elements)
    assert titles(parse_file(FIXTURES / "arbitrary-records.jsonl"))[2] == "Pruning Shears"


def test_json_paths_and_large_keys(tmp_path: Path) -> None:
    path = tmp_path / "orders.json"
    items = [{"name": f"part {i}", "qty": i} for i in range(12)]
    items[2]["name"] = "bolt"
    document = {
        "customer": "ACME",
        "address": {"city": "Paris", "zip": None},
        "items": items,
        "notes": ["rush", "fragile"],
    }
    path.write_text(json.dumps(document), encoding="utf-16")  # RFC 8259 allows UTF-16
    elements = parse_file(path)
    assert texts(elements)[:2] == ["customer: ACME", "address.city: Paris"]
    assert titles(elements)[:4] == ["items", "part 0", "part 1", "bolt"]
    assert [e.heading_level for e in elements if e.text in ("items", "bolt")] == [1, 2]
    assert "notes[1]: fragile" in texts(elements)
    small = tmp_path / "small.json"
    small.write_text(json.dumps([{"items": [{"x": 1}, {"name": "bolt"}, {"name": "nut"}]}]))
    assert parse_file(small)[0].text == "record 1"
    assert "items[2].name: nut" in texts(parse_file(small))


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("bad.json", '{"a": 1,\n  "b": }', "invalid JSON at line 2, column 8"),
        ("bad.jsonl", '{"a": 1}\n{"a": 2\n', "invalid JSON at line 2, column 8"),
    ],
)
def test_bad_json_says_where(tmp_path: Path, name: str, content: str, expected: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(UnreadableDocument, match=expected):
        parse_file(path)


# -- XML ---------------------------------------------------------------------------------------


def test_xml_children_of_the_root_are_records() -> None:
    elements = parse_file(FIXTURES / "factbook-utf-16.xml")  # UTF-16 that declares UTF-8
    assert titles(elements) == ["United States", "Canada", "France", "Trinidad & Tobado"]
    assert "factbook > country > capital: Ottawa" in texts(elements)


def test_xml_mixed_content_and_attributes(tmp_path: Path) -> None:
    path = tmp_path / "catalog.xml"
    path.write_text(
        '<catalog><book id="bk101"><title>XML Guide</title>'
        "<p>A <b>bold</b> claim.</p></book></catalog>"
    )
    elements = parse_file(path)
    assert titles(elements) == ["XML Guide"]  # a title before an id
    assert texts(elements) == [
        "catalog > book @id: bk101",
        "catalog > book > title: XML Guide",
        "catalog > book > p: A bold claim.",
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            "<l>&b;</l>",
            "refused for safety",
        ),
        ('<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>', "refused"),
        ("<root>\n  <a>text</b>\n</root>", r"invalid XML \(mismatched tag: line 2"),
    ],
)
def test_unsafe_or_broken_xml_is_refused(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "doc.xml"
    path.write_text(content)
    with pytest.raises(UnreadableDocument, match=expected):
        parse_file(path)


# -- EPUB --------------------------------------------------------------------------------------


def test_epub_follows_the_spine_under_the_book_title() -> None:
    elements = parse_file(FIXTURES / "winter-sports.epub")
    assert elements[0] == Element(
        kind=ElementKind.TITLE, text="Winter Sports in Switzerland", heading_level=1
    )
    levels = [e.heading_level for e in elements[1:] if e.kind is ElementKind.TITLE]
    assert levels and all(level is None or level > 1 for level in levels)
    text = "\n".join(texts(elements))
    # The spine's order: the Gutenberg header comes before the licence at the end.
    assert text.index("START OF THE PROJECT GUTENBERG EBOOK") < text.index("END OF THE PROJECT")


def _epub(path: Path, *, encrypted: bool) -> Path:
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("mimetype", "application/epub+zip")
        book.writestr(
            "META-INF/container.xml",
            '<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
            '<rootfile full-path="OPS/book.opf"/></rootfiles></container>',
        )
        book.writestr(
            "OPS/book.opf",
            '<package xmlns="http://www.idpf.org/2007/opf" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/"><metadata><dc:title>Tiny</dc:title>'
            '</metadata><manifest><item id="c1" href="ch%201.xhtml" '
            'media-type="application/xhtml+xml"/></manifest><spine><itemref idref="c1"/>'
            "</spine></package>",
        )
        book.writestr(
            "OPS/ch 1.xhtml",
            '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
            "<body><h1>Chapter One</h1><p>The lighthouse keeper counted ships.</p></body></html>",
        )
        aes, fonts = (
            "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
            "http://www.idpf.org/2008/embedding",
        )
        method = aes if encrypted else fonts
        book.writestr(
            "META-INF/encryption.xml",
            '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
            'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
            f'<enc:EncryptionMethod Algorithm="{method}"/><enc:CipherData>'
            '<enc:CipherReference URI="OPS/ch%201.xhtml"/></enc:CipherData></enc:EncryptedData>'
            "</encryption>",
        )
    return path


def test_epub_generated_and_drm(tmp_path: Path) -> None:
    elements = parse_file(_epub(tmp_path / "tiny.epub", encrypted=False))
    assert [(e.text, e.heading_level) for e in elements if e.kind is ElementKind.TITLE] == [
        ("Tiny", 1),
        ("Chapter One", 2),
    ]
    assert "The lighthouse keeper counted ships." in texts(elements)
    with pytest.raises(UnreadableDocument, match=r"encrypted EPUB \(DRM\)"):
        parse_file(_epub(tmp_path / "drm.epub", encrypted=True))
