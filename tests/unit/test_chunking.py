from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rag.chunking import Chunker, chunk_id
from rag.models import Element, ElementKind
from rag.parsing import parse_file


@pytest.fixture(scope="module")
def tokenize() -> Callable[[str], list[str]]:
    from transformers import AutoTokenizer

    from rag.embedding import packaged_model_path

    tokenizer = AutoTokenizer.from_pretrained(packaged_model_path())
    return tokenizer.tokenize  # type: ignore[no-any-return]


def _title(text: str, level: int = 0, page: int | None = None) -> Element:
    return Element(kind=ElementKind.TITLE, text=text, heading_level=level, page=page)


def _text(text: str, page: int | None = None) -> Element:
    return Element(kind=ElementKind.TEXT, text=text, page=page)


def _chunk(chunker: Chunker, elements: list[Element]):  # type: ignore[no-untyped-def]
    return chunker.chunk(elements, document_id="doc", collection="c", source="a.md", title="A")


def test_headings_start_chunks_and_travel_as_a_path(tokenize) -> None:  # type: ignore[no-untyped-def]
    chunker = Chunker(tokenize, max_tokens=100, overlap_tokens=10)
    chunks = _chunk(
        chunker,
        [
            _title("Handbook", 1),
            _title("Languages", 2),
            _text("We use Rust."),
            _title("Reviews", 2),
            _text("Two approvals are needed."),
        ],
    )
    assert [c.text for c in chunks] == ["We use Rust.", "Two approvals are needed."]
    assert [c.section for c in chunks] == ["Handbook > Languages", "Handbook > Reviews"]
    # The document's title first, unless it is the first heading already.
    assert chunks[0].embedding_text() == "A > Handbook > Languages\nWe use Rust."
    handbook = chunks[0].model_copy(update={"title": "Handbook"})
    assert handbook.embedding_text() == "Handbook > Languages\nWe use Rust."
    untitled = chunks[0].model_copy(update={"title": "", "section": None})
    assert untitled.embedding_text() == "We use Rust."


def test_chunks_respect_the_token_bound_and_overlap(tokenize) -> None:  # type: ignore[no-untyped-def]
    chunker = Chunker(tokenize, max_tokens=60, overlap_tokens=15)
    sentences = [f"Robot number {i} moves pallets in warehouse aisle {i}." for i in range(40)]
    chunks = _chunk(chunker, [_text(" ".join(sentences))])
    assert len(chunks) > 3
    assert all(len(tokenize(c.text)) <= 60 for c in chunks)
    assert all(c.token_count == len(tokenize(c.text)) for c in chunks)
    # Overlap: each chunk starts with text the previous chunk ended with.
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.text.split(".")[0] in before.text
    assert " ".join(sentences).startswith(chunks[0].text[:40])


def test_chunks_carry_the_page_they_start_on(tokenize) -> None:  # type: ignore[no-untyped-def]
    chunker = Chunker(tokenize, max_tokens=40, overlap_tokens=5)
    elements = [
        _title("Report", 1, page=1),
        _text("Revenue grew. " * 12, page=1),
        _text("Headcount was 412 people at year end. " * 6, page=2),
    ]
    chunks = _chunk(chunker, elements)
    assert chunks[0].page == 1
    assert chunks[-1].page == 2
    # A chunk never spans a page break: the page of a citation is exact.
    assert all(("412" in c.text) == (c.page == 2) for c in chunks)
    assert all(c.section == "Report" for c in chunks)


def test_ids_are_deterministic_and_distinct(tokenize) -> None:  # type: ignore[no-untyped-def]
    chunker = Chunker(tokenize, max_tokens=50, overlap_tokens=5)
    elements = [_text("One. " * 60)]
    first, second = _chunk(chunker, elements), _chunk(chunker, elements)
    assert [c.id for c in first] == [c.id for c in second]
    assert len({c.id for c in first}) == len(first)
    assert first[1].id == chunk_id("doc", 1) != chunk_id("other", 1)


def test_a_document_of_only_headings_is_indexed_as_their_text(tokenize) -> None:  # type: ignore[no-untyped-def]
    elements = [_title("Office Hours", 1, page=1), _title("9 To 5", 2, page=1)]
    chunks = _chunk(Chunker(tokenize), elements)
    assert [c.text for c in chunks] == ["Office Hours\n\n9 To 5"]
    assert chunks[0].section is None and chunks[0].page == 1


def test_a_one_line_text_file_is_parsed_and_chunked(tokenize, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "hours.txt"
    path.write_text("Office Hours 9 To 5\n", encoding="utf-8")
    elements = parse_file(path)
    assert [e.kind for e in elements] == [ElementKind.TITLE]  # unstructured's reading of it
    assert [c.text for c in _chunk(Chunker(tokenize), elements)] == ["Office Hours 9 To 5"]
