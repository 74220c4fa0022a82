"""Three short passages the generator tests share, and how they look as retrieved hits."""

from __future__ import annotations

from rag.models import Chunk, Passage, ScoredChunk

FLEET = Passage(
    marker=1,
    title="Fleet controller",
    section="Architecture",
    text="The fleet controller is written in Rust for memory safety. It runs on every edge "
    "node and reconciles desired state every 15 minutes.",
)
EIFFEL = Passage(
    marker=2,
    title="Eiffel Tower",
    section="History",
    text="The Eiffel Tower was completed in 1889 for the World's Fair in Paris. It is 330 "
    "metres tall.",
)
BACKUPS = Passage(
    marker=3,
    title="Operations handbook",
    section="Backups",
    text="Backups are taken nightly at 02:00 UTC and kept for 30 days. Restores must be "
    "approved by the on-call engineer.",
)


def as_hits(passages: list[Passage]) -> list[ScoredChunk]:
    """Each passage as the retrieved chunk it came from (one document per passage)."""
    return [
        ScoredChunk(
            chunk=Chunk(
                id=f"c{p.marker}",
                document_id=f"doc-{p.marker}",
                collection="test",
                index=0,
                text=p.text,
                title=p.title,
                section=p.section,
            ),
            score=1.0,
        )
        for p in passages
    ]
