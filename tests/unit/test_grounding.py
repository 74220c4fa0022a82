"""Citation attribution by our own code, with the real MiniLM embedder."""

from __future__ import annotations

import pytest

from rag.embedding.sentence_transformers import SentenceTransformerEmbedder
from rag.grounding import (
    ABSTAINED_REASON,
    EMPTY_REASON,
    UNSUPPORTED_REASON,
    attribute,
    split_sentences,
)
from rag.models import Chunk, ScoredChunk

THRESHOLD = 0.5  # RetrievalSettings.support_threshold's default


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


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


def test_a_short_extractive_answer_is_cited_to_the_passage_that_contains_it(
    embedder: SentenceTransformerEmbedder,
) -> None:
    result = attribute(
        "Rust",
        HITS,
        embedder,
        threshold=THRESHOLD,
        question=FLEET_QUESTION,
    )

    assert result.answerable
    assert result.answer == "Rust"
    assert [c.document_id for c in result.citations] == ["doc-1"]
    citation = result.citations[0]
    assert citation.marker == 1
    assert citation.chunk_id == "chunk-1"
    assert (citation.source, citation.title, citation.section, citation.page) == (
        "doc-1.md",
        "Fleet controller",
        "Architecture",
        1,
    )
    assert "written in Rust" in citation.snippet
    assert citation.score >= THRESHOLD


@pytest.mark.parametrize(
    ("answer", "question", "document_id"),
    [
        ("15 minutes", "How often does the controller reconcile desired state?", "doc-1"),
        ("completed in 1889", "When was the Eiffel Tower completed?", "doc-2"),
        ("The on-call engineer.", "Who approves restores?", "doc-3"),
    ],
)
def test_other_short_answers_count_as_supported(
    embedder: SentenceTransformerEmbedder, answer: str, question: str, document_id: str
) -> None:
    result = attribute(answer, HITS, embedder, threshold=THRESHOLD, question=question)

    assert result.answerable
    assert [c.document_id for c in result.citations] == [document_id]


def test_an_invented_sentence_is_dropped_and_the_supported_one_kept(
    embedder: SentenceTransformerEmbedder,
) -> None:
    answer = (
        "The fleet controller is written in Rust. "
        "It was created by Google engineers in 2015 to replace Kubernetes."
    )
    result = attribute(
        answer,
        HITS,
        embedder,
        threshold=THRESHOLD,
        question=FLEET_QUESTION,
    )

    assert result.answerable
    assert result.answer == "The fleet controller is written in Rust."
    assert result.unsupported == [
        "It was created by Google engineers in 2015 to replace Kubernetes."
    ]
    assert [c.document_id for c in result.citations] == ["doc-1"]


@pytest.mark.parametrize(
    ("answer", "question"),
    [
        # Restates the question with a wrong fact.
        ("The fleet controller is written in Python.", FLEET_QUESTION),
        ("The fleet controller is written in golang.", FLEET_QUESTION),
        # Right words, wrong number.
        ("The Eiffel Tower was completed in 1887.", "When was the Eiffel Tower completed?"),
        # A plausible answer no passage mentions.
        ("Tokyo.", "What is the capital of Japan?"),
        # A passage mentions Paris, but not as anybody's capital.
        ("Paris is the capital.", "What is the capital of France?"),
        # The words are in a passage, in a sentence about something else.
        ("The engineering firm.", "Who approves restores?"),
        # Stitched from two passages: "every 15 minutes" and "30 days".
        ("15 days.", "How long are backups kept?"),
    ],
)
def test_an_answer_no_passage_supports_is_not_answerable(
    embedder: SentenceTransformerEmbedder, answer: str, question: str
) -> None:
    result = attribute(answer, HITS, embedder, threshold=THRESHOLD, question=question)

    assert not result.answerable
    assert result.reason == UNSUPPORTED_REASON
    assert result.answer == ""
    assert result.citations == []
    assert result.unsupported == [answer]


@pytest.mark.parametrize(
    "answer",
    [
        "I don't know.",
        "I do not know the answer.",
        "The passages do not mention the CEO.",
        "This is not mentioned in the passages.",
        "Cannot answer from the given context.",
    ],
)
def test_an_abstention_is_not_answerable(
    embedder: SentenceTransformerEmbedder, answer: str
) -> None:
    result = attribute(answer, HITS, embedder, threshold=THRESHOLD)

    assert not result.answerable
    assert result.reason == ABSTAINED_REASON
    assert result.citations == []


@pytest.mark.parametrize("answer", ["", "   ", "[1]"])
def test_empty_output_is_not_answerable(embedder: SentenceTransformerEmbedder, answer: str) -> None:
    result = attribute(answer, HITS, embedder, threshold=THRESHOLD)

    assert not result.answerable
    assert result.reason == EMPTY_REASON


def test_citations_are_renumbered_in_order_of_first_use(
    embedder: SentenceTransformerEmbedder,
) -> None:
    # Passages were shown as [1] Eiffel, [2] backups, [3] fleet; the answer uses 3 then 2.
    answer = (
        "The fleet controller is written in Rust [3]. Backups are kept for 30 days [2]. "
        "The fleet controller reconciles desired state every 15 minutes [3]."
    )
    result = attribute(answer, HITS, embedder, threshold=THRESHOLD)

    assert result.answerable
    assert [(c.marker, c.document_id) for c in result.citations] == [(1, "doc-1"), (2, "doc-3")]
    assert "[" not in result.answer
    assert result.answer == (
        "The fleet controller is written in Rust. Backups are kept for 30 days. "
        "The fleet controller reconciles desired state every 15 minutes."
    )


def test_a_model_marker_pointing_at_the_wrong_passage_is_ignored(
    embedder: SentenceTransformerEmbedder,
) -> None:
    # [1] is the Eiffel Tower passage, which says nothing about backups.
    result = attribute("Backups are kept for 30 days [1].", HITS, embedder, threshold=THRESHOLD)

    assert result.answerable
    assert [c.document_id for c in result.citations] == ["doc-3"]
    assert result.answer == "Backups are kept for 30 days."


def test_the_snippet_is_trimmed_around_the_supporting_sentence(
    embedder: SentenceTransformerEmbedder,
) -> None:
    filler = " ".join(f"Filler sentence number {i} talks about nothing useful." for i in range(12))
    long = hit(4, f"{filler} The queue is drained by the janitor service. {filler}")
    result = attribute(
        "The janitor service drains the queue.",
        [long],
        embedder,
        threshold=THRESHOLD,
        question="Which service drains the queue?",
    )

    assert result.answerable
    snippet = result.citations[0].snippet
    assert "The queue is drained by the janitor service." in snippet
    assert len(snippet) <= 302  # ~300 characters plus the ellipses


def test_attribution_is_deterministic(embedder: SentenceTransformerEmbedder) -> None:
    answer = "Rust. It runs on every edge node. It was written in 2015."
    first = attribute(answer, HITS, embedder, threshold=THRESHOLD)
    second = attribute(answer, HITS, embedder, threshold=THRESHOLD)

    assert first == second


def test_sentences_split_on_ends_but_not_on_abbreviations_or_decimals() -> None:
    assert split_sentences("Version 3.5 shipped, e.g. to Dr. Smith. It works!\n- a list item") == [
        "Version 3.5 shipped, e.g. to Dr. Smith.",
        "It works!",
        "a list item",
    ]


def test_model_markers_split_sent_passages_from_invented_ones() -> None:
    from rag.grounding import model_markers

    assert model_markers("Rust [1]. Tuesdays [2, 7]. Also [3-4]", passages=3) == ([1, 2, 3], [4, 7])
    assert model_markers("No markers here.", passages=3) == ([], [])
