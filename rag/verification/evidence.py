"""The retrieved passages, sentence by sentence: where a claim's evidence is looked for.

Evidence for a claim is one sentence of a passage or two adjacent ones (a *window*), never words
gathered from across a passage: "15 days" is not supported by "every 15 minutes" in one sentence
and "fourteen days" in another. The passage's title and section belong to every sentence, since
a chunk often names its subject only there. A claim made of several clauses may find each
clause's evidence in a different passage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rag.models import EvidenceSpan, ScoredChunk
from rag.verification.text import normalize_term, split_sentences, weighted_terms, words

SNIPPET_CHARS = 300

NEGATION = re.compile(
    r"\b(?:not|no|never|none|neither|nor|without|cannot|lacks?|lacking|lacked|fail(?:s|ed)?|"
    r"unable|absen(?:t|ce)|unaffected|insufficient|unchanged)\b|n['’]t\b",
    re.IGNORECASE,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass
class Window:
    """Sentences `first`..`last` (inclusive, adjacent, one passage) of the evidence."""

    passage: int
    first: int
    last: int


@dataclass
class Evidence:
    hits: list[ScoredChunk]
    sentences: list[str]
    passage_of: list[int]
    offsets: list[int]
    terms: list[dict[str, float]]
    headings: list[set[str]]
    windows: list[Window]
    vectors: FloatArray | None
    """Unit dense vectors of the passages (None when a hit came without one)."""

    def text(self, window: Window) -> str:
        return " ".join(self.sentences[window.first : window.last + 1])

    def window_terms(self, window: Window) -> set[str]:
        found = set(self.headings[window.passage])
        for i in range(window.first, window.last + 1):
            found.update(self.terms[i])
        return found

    def span(self, window: Window, marker: int) -> EvidenceSpan:
        chunk = self.hits[window.passage].chunk
        start = self.offsets[window.first]
        end = self.offsets[window.last] + len(self.sentences[window.last])
        return EvidenceSpan(
            passage=marker,
            chunk_id=chunk.id,
            start=start,
            end=end,
            text=chunk.text[start:end],
        )

    def snippet(self, window: Window) -> str:
        """About SNIPPET_CHARS of the passage, centred on the window, cut at word boundaries."""
        text = self.hits[window.passage].chunk.text
        if len(text) <= SNIPPET_CHARS:
            return text.strip()
        start = self.offsets[window.first]
        end = self.offsets[window.last] + len(self.sentences[window.last])
        if end - start >= SNIPPET_CHARS:
            return text[start : start + SNIPPET_CHARS].rstrip() + "…"
        pad = (SNIPPET_CHARS - (end - start)) // 2
        lo = max(0, start - pad)
        hi = min(len(text), lo + SNIPPET_CHARS)
        lo = max(0, hi - SNIPPET_CHARS)
        if lo > 0:
            space = text.find(" ", lo, start + 1)
            lo = space + 1 if space != -1 else lo
        if hi < len(text):
            space = text.rfind(" ", end, hi)
            hi = space if space != -1 else hi
        return ("…" if lo > 0 else "") + text[lo:hi].strip() + ("…" if hi < len(text) else "")


def gather(hits: list[ScoredChunk]) -> Evidence:
    """Split every hit into sentences and list the windows evidence may come from."""
    sentences: list[str] = []
    passage_of: list[int] = []
    offsets: list[int] = []
    headings: list[set[str]] = []
    windows: list[Window] = []
    for p, hit in enumerate(hits):
        chunk = hit.chunk
        headings.append({normalize_term(w) for w in words(f"{chunk.title} {chunk.section or ''}")})
        cursor = 0
        first = len(sentences)
        for sentence in split_sentences(chunk.text) or [chunk.text]:
            found = chunk.text.find(sentence, cursor)
            offsets.append(max(found, 0))
            cursor = max(found, cursor)
            sentences.append(sentence)
            passage_of.append(p)
        last = len(sentences) - 1
        windows += [Window(p, i, i) for i in range(first, last + 1)]
        windows += [Window(p, i, i + 1) for i in range(first, last)]
    vectors = None
    if hits and all(h.vector for h in hits):
        matrix = np.asarray([h.vector for h in hits], dtype=np.float64)
        vectors = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    return Evidence(
        hits=hits,
        sentences=sentences,
        passage_of=passage_of,
        offsets=offsets,
        terms=[weighted_terms(s) for s in sentences],
        headings=headings,
        windows=windows,
        vectors=vectors,
    )
