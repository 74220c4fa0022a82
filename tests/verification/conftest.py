"""Passages the verification tests share, as retrieved hits, and the verifiers under test."""

from __future__ import annotations

import pytest

from rag.embedding.sentence_transformers import SentenceTransformerEmbedder
from rag.models import Chunk, ScoredChunk
from rag.verification.deterministic import DeterministicVerifier


def hit(n: int, text: str, *, title: str = "", section: str | None = None) -> ScoredChunk:
    chunk = Chunk(
        id=f"chunk-{n}",
        document_id=f"doc-{n}",
        collection="test",
        index=0,
        text=text,
        title=title,
        section=section,
        page=n,
        source=f"doc-{n}.md",
    )
    return ScoredChunk(chunk=chunk, score=1.0 / n)


FLEET = hit(
    1,
    "The fleet controller is written in Rust for memory safety. It runs on every edge node "
    "and reconciles desired state every 15 minutes.",
    title="Fleet controller",
    section="Architecture",
)
EIFFEL = hit(
    2,
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris. It is 330 metres "
    "tall and was designed by the engineering firm of Gustave Eiffel.",
    title="Eiffel Tower",
    section="History",
)
BACKUPS = hit(
    3,
    "Backups are taken nightly at 02:00 UTC and kept for 30 days. Restores must be approved "
    "by the on-call engineer.",
    title="Operations handbook",
    section="Backups",
)
HITS = [EIFFEL, BACKUPS, FLEET]
FLEET_QUESTION = "What language is the fleet controller written in?"


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def verifier(embedder: SentenceTransformerEmbedder) -> DeterministicVerifier:
    return DeterministicVerifier(embedder)
