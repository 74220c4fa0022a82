"""Structure-aware, token-bounded chunking.

A heading starts a new section (and, in paged formats, so does a new page, so that a citation
names one exact page); a section's text is split into chunks of at most `max_tokens`
embedder tokens (sentence-aware, with overlap) by llama-index's `SentenceSplitter`. Each chunk
keeps its heading path and the page it starts on, which is what a citation shows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rag.models import Chunk, Element, ElementKind

# Fixed namespace: the same document and chunk index always give the same point id, so
# re-running an ingestion overwrites points instead of duplicating them.
_CHUNK_NAMESPACE = uuid.UUID("6f1c2a8e-3b7d-4a55-9d0e-2f8b1c4e7a90")

Tokenize = Callable[[str], Sequence[Any]]


def chunk_id(document_id: str, index: int, version: int = 0) -> str:
    """Stable per (document, version, index): a redelivered task overwrites its own points, and
    a new version never overwrites the one readers see until it is complete."""
    return str(uuid.uuid5(_CHUNK_NAMESPACE, f"{document_id}:{version}:{index}"))


@dataclass
class _Section:
    path: list[str]
    parts: list[tuple[int, int | None]] = field(default_factory=list)  # (char offset, page)
    text: str = ""

    def add(self, text: str, page: int | None) -> None:
        if self.text:
            self.text += "\n\n"
        self.parts.append((len(self.text), page))
        self.text += text

    def page_at(self, offset: int) -> int | None:
        page = self.parts[0][1] if self.parts else None
        for start, part_page in self.parts:
            if start > offset:
                break
            page = part_page
        return page


def _sections(elements: Sequence[Element]) -> Iterator[_Section]:
    headings: list[tuple[int, str]] = []  # (level, text) stack
    current = _Section(path=[])
    for element in elements:
        if element.kind is ElementKind.TITLE:
            if current.text:
                yield current
            level = element.heading_level if element.heading_level is not None else 0
            headings = [(lvl, txt) for lvl, txt in headings if lvl < level] + [
                (level, element.text)
            ]
            current = _Section(path=[txt for _, txt in headings])
            current.parts.append((0, element.page))  # a heading's page counts if it has no body yet
        else:
            # A page break closes the chunk too, so that a citation names one exact page.
            last_page = current.parts[-1][1] if current.parts else None
            if current.text and None not in (last_page, element.page) and last_page != element.page:
                yield current
                current = _Section(path=current.path)
            current.add(element.text, element.page)
    if current.text:
        yield current


def _titles_as_text(elements: Sequence[Element]) -> Sequence[Element]:
    """A document with no body text is its titles: a one-line note ("Office Hours 9 To 5")
    parses as a single Title, which would otherwise head nothing and leave no chunk at all."""
    if any(e.kind is not ElementKind.TITLE and e.text.strip() for e in elements):
        return elements
    return [e.model_copy(update={"kind": ElementKind.TEXT}) for e in elements]


class Chunker:
    def __init__(self, tokenize: Tokenize, *, max_tokens: int = 200, overlap_tokens: int = 32):
        from llama_index.core.node_parser import SentenceSplitter

        self._tokenize = tokenize
        self._splitter = SentenceSplitter(
            chunk_size=max_tokens,
            chunk_overlap=overlap_tokens,
            tokenizer=tokenize,
            paragraph_separator="\n\n",
        )

    def chunk(
        self,
        elements: Sequence[Element],
        *,
        document_id: str,
        collection: str,
        source: str,
        title: str,
        metadata: dict[str, Any] | None = None,
        version: int = 0,
    ) -> list[Chunk]:
        chunks: list[Chunk] = []
        for section in _sections(_titles_as_text(elements)):
            heading = " > ".join(section.path) or None
            cursor = 0
            for text in self._splitter.split_text(section.text):
                found = section.text.find(text[:64], cursor)
                offset = found if found >= 0 else cursor
                cursor = offset
                index = len(chunks)
                chunks.append(
                    Chunk(
                        id=chunk_id(document_id, index, version),
                        document_id=document_id,
                        version=version,
                        collection=collection,
                        index=index,
                        text=text,
                        section=heading,
                        page=section.page_at(offset),
                        token_count=len(self._tokenize(text)),
                        source=source,
                        title=title,
                        metadata=dict(metadata or {}),
                    )
                )
        return chunks


def readable_text(chunks: Sequence[Chunk]) -> str:
    """Chunks overlap (the splitter repeats the end of one at the start of the next) and carry
    their heading apart from their text: the text without repeats, each section under its
    heading, is what a person or a model wants to read."""
    parts: list[str] = []
    previous: Chunk | None = None
    for chunk in chunks:
        text = chunk.text
        if previous is not None and previous.section == chunk.section:
            text = text[_overlap(previous.text, text) :].lstrip()
            if text:
                parts[-1] += " " + text
            previous = chunk
            continue
        if chunk.section:
            path = chunk.section.split(" > ")
            parts.append(f"{'#' * len(path)} {path[-1]}")
        parts.append(text)
        previous = chunk
    return "\n\n".join(parts)


def _overlap(before: str, after: str, shortest: int = 8) -> int:
    """Length of the longest end of `before` that `after` starts with (0 below `shortest`)."""
    if len(after) < shortest:
        return 0
    start = before.find(after[:shortest])
    while start >= 0:
        if after.startswith(before[start:]):
            return len(before) - start
        start = before.find(after[:shortest], start + 1)
    return 0
