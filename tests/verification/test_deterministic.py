"""Claim-level verification with the deterministic verifier, the fitted model and the real
MiniLM embedder: labelled fixtures of what must be kept and what must be dropped."""

from __future__ import annotations

import time

import pytest

from rag.models import ClaimLabel
from rag.verification.check import (
    ABSTAINED_REASON,
    CONTRADICTED_REASON,
    EMPTY_REASON,
    NO_NUMBER_REASON,
    NO_PASSAGES_REASON,
    UNSUPPORTED_REASON,
    check,
)
from rag.verification.deterministic import DeterministicVerifier
from tests.verification.conftest import BACKUPS, EIFFEL, FLEET, FLEET_QUESTION, HITS, hit


def test_a_short_extractive_answer_is_cited_to_the_passage_that_contains_it(
    verifier: DeterministicVerifier,
) -> None:
    result = check("Rust", HITS, verifier, FLEET_QUESTION)

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
    [claim] = result.claims
    assert claim.label is ClaimLabel.SUPPORTED
    assert claim.citations == [1]
    assert claim.evidence[0].passage == 3  # as the model saw it: FLEET was [3]
    assert claim.evidence[0].text == "The fleet controller is written in Rust for memory safety."
    assert result.verifier.startswith("deterministic@")


@pytest.mark.parametrize(
    ("answer", "question", "document_id"),
    [
        ("15 minutes", "How often does the controller reconcile desired state?", "doc-1"),
        ("completed in 1889", "When was the Eiffel Tower completed?", "doc-2"),
        ("The on-call engineer.", "Who approves restores?", "doc-3"),
        # Paraphrases: few words in common with the passage, same meaning.
        (
            "An engineer on call has to sign off on any restore.",
            "Who approves restores?",
            "doc-3",
        ),
        (
            "Gustave Eiffel's engineering company designed the tower, which stands 330 m high.",
            "Who designed the Eiffel Tower?",
            "doc-2",
        ),
    ],
)
def test_short_answers_and_paraphrases_are_kept(
    verifier: DeterministicVerifier, answer: str, question: str, document_id: str
) -> None:
    result = check(answer, HITS, verifier, question)

    assert result.answerable, result.claims
    assert [c.document_id for c in result.citations] == [document_id]


@pytest.mark.parametrize(
    ("answer", "question"),
    [
        ("The Eiffel Tower was completed in 1887.", "When was the Eiffel Tower completed?"),
        ("Backups are kept for 90 days.", "How long are backups kept?"),
        ("15 days.", "How long are backups kept?"),
    ],
)
def test_a_flipped_number_is_contradicted(
    verifier: DeterministicVerifier, answer: str, question: str
) -> None:
    result = check(answer, HITS, verifier, question)

    assert not result.answerable, result.claims
    assert result.reason == CONTRADICTED_REASON
    [claim] = result.claims
    assert claim.label is ClaimLabel.CONTRADICTED
    assert claim.evidence and claim.citations == []


def test_a_negated_claim_is_contradicted(verifier: DeterministicVerifier) -> None:
    result = check(
        "Restores do not need to be approved by the on-call engineer.",
        HITS,
        verifier,
        "Who approves restores?",
    )

    assert not result.answerable, result.claims
    assert result.claims[0].label is ClaimLabel.CONTRADICTED
    assert result.claims[0].evidence[0].text == "Restores must be approved by the on-call engineer."


@pytest.mark.parametrize(
    ("answer", "question"),
    [
        # A swapped entity: the question's words with a wrong fact.
        ("The fleet controller is written in Python.", FLEET_QUESTION),
        ("The fleet controller is written in golang.", FLEET_QUESTION),
        # A plausible answer no passage mentions.
        ("Tokyo.", "What is the capital of Japan?"),
        # A passage mentions Paris, but not as anybody's capital.
        ("Paris is the capital.", "What is the capital of France?"),
        # A name from an unrelated passage.
        ("Gustave Eiffel approves restores.", "Who approves restores?"),
    ],
)
def test_an_answer_no_passage_supports_is_dropped(
    verifier: DeterministicVerifier, answer: str, question: str
) -> None:
    result = check(answer, HITS, verifier, question)

    assert not result.answerable, result.claims
    assert result.reason == UNSUPPORTED_REASON
    assert result.answer == ""
    assert result.citations == []
    assert [c.text for c in result.unsupported] == [answer]
    assert result.unsupported[0].label is not ClaimLabel.SUPPORTED


def test_a_long_multi_claim_answer_is_partly_kept(verifier: DeterministicVerifier) -> None:
    answer = (
        "The fleet controller is written in Rust for memory safety [3], and it reconciles "
        "desired state every 15 minutes on every edge node. It was created by Google engineers "
        "in 2015 to replace Kubernetes. Backups run nightly at 02:00 UTC and are kept for 30 "
        "days [2]."
    )
    result = check(answer, HITS, verifier, "How are the fleet controller and the backups run?")

    assert result.answerable
    labels = [(c.text[:30], c.label) for c in result.claims]
    assert [label for _, label in labels] == [
        ClaimLabel.SUPPORTED,
        ClaimLabel.SUPPORTED,
        ClaimLabel.NOT_FOUND,
        ClaimLabel.SUPPORTED,
    ], labels
    assert "Google" not in result.answer
    assert result.answer.startswith("The fleet controller is written in Rust for memory safety,")
    assert result.answer.endswith("kept for 30 days.")
    assert [c.document_id for c in result.citations] == ["doc-1", "doc-3"]
    assert result.claims[3].citations == [2]


def test_a_sentence_emptied_by_removing_its_citation_is_not_an_answer(
    verifier: DeterministicVerifier,
) -> None:
    result = check("The two places it runs on are [3].", HITS, verifier, FLEET_QUESTION)

    assert not result.answerable
    assert result.claims[0].note is not None
    assert result.claims[0].label is ClaimLabel.NOT_FOUND


def test_restating_the_question_is_not_an_answer(verifier: DeterministicVerifier) -> None:
    result = check("The fleet controller is written in a language.", HITS, verifier, FLEET_QUESTION)

    assert not result.answerable
    assert "restates the question" in (result.claims[0].note or "")


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
def test_an_abstention_is_not_answerable(verifier: DeterministicVerifier, answer: str) -> None:
    result = check(answer, HITS, verifier)

    assert not result.answerable
    assert result.reason == ABSTAINED_REASON
    assert result.citations == []


@pytest.mark.parametrize("answer", ["", "   ", "[1]"])
def test_empty_output_is_not_answerable(verifier: DeterministicVerifier, answer: str) -> None:
    result = check(answer, HITS, verifier)

    assert not result.answerable
    assert result.reason == EMPTY_REASON


def test_no_passages_means_nothing_is_supported(verifier: DeterministicVerifier) -> None:
    result = check("Rust.", [], verifier, FLEET_QUESTION)

    assert not result.answerable
    assert result.reason == NO_PASSAGES_REASON
    assert [c.label for c in result.claims] == [ClaimLabel.NOT_FOUND]


def test_citations_are_renumbered_in_order_of_first_use(verifier: DeterministicVerifier) -> None:
    # Passages were shown as [1] Eiffel, [2] backups, [3] fleet; the answer uses 3 then 2.
    answer = (
        "The fleet controller is written in Rust [3]. Backups are kept for 30 days [2]. "
        "The fleet controller reconciles desired state every 15 minutes [3]."
    )
    result = check(answer, HITS, verifier)

    assert result.answerable
    assert [(c.marker, c.document_id) for c in result.citations] == [(1, "doc-1"), (2, "doc-3")]
    assert "[" not in result.answer
    assert result.answer == (
        "The fleet controller is written in Rust. Backups are kept for 30 days. "
        "The fleet controller reconciles desired state every 15 minutes."
    )
    assert [c.citations for c in result.claims] == [[1], [2], [1]]


def test_a_model_marker_pointing_at_the_wrong_passage_is_ignored(
    verifier: DeterministicVerifier,
) -> None:
    # [1] is the Eiffel Tower passage, which says nothing about backups.
    result = check("Backups are kept for 30 days [1].", HITS, verifier)

    assert result.answerable
    assert [c.document_id for c in result.citations] == ["doc-3"]
    assert result.answer == "Backups are kept for 30 days."


def test_another_years_winner_does_not_answer_for_this_year(
    verifier: DeterministicVerifier,
) -> None:
    results = hit(
        5,
        "Rafael Nadal won the 2017 US Open men's singles title. In 2018 the title went to "
        "Novak Djokovic.",
        title="US Open champions",
    )
    question = "Who won the 2019 US Open men's singles?"

    assert not check("Rafael Nadal.", [results], verifier, question).answerable
    assert check("Rafael Nadal.", [results], verifier, "Who won the 2017 US Open?").answerable


def test_the_snippet_is_trimmed_around_the_supporting_sentence(
    verifier: DeterministicVerifier,
) -> None:
    filler = " ".join(f"Filler sentence number {i} talks about nothing useful." for i in range(12))
    long = hit(4, f"{filler} The queue is drained by the janitor service. {filler}")
    result = check(
        "The janitor service drains the queue.", [long], verifier, "Which service drains the queue?"
    )

    assert result.answerable
    snippet = result.citations[0].snippet
    assert "The queue is drained by the janitor service." in snippet
    assert len(snippet) <= 302  # ~300 characters plus the ellipses


def test_verification_is_deterministic(verifier: DeterministicVerifier) -> None:
    answer = "Rust. It runs on every edge node. It was written in 2015."
    assert check(answer, HITS, verifier) == check(answer, HITS, verifier)


def test_a_fifty_sentence_answer_is_checked_quickly(verifier: DeterministicVerifier) -> None:
    sentences = [
        "The fleet controller is written in Rust.",
        "Backups are kept for 30 days.",
        "The Eiffel Tower was designed by a firm from Zanzibar.",
    ]
    answer = " ".join(sentences[i % 3] for i in range(50))
    question = "What do we know about the fleet controller, backups and the Eiffel Tower?"
    hits = [FLEET, EIFFEL, BACKUPS, FLEET, EIFFEL]
    check(answer, hits, verifier, question)  # warm
    started = time.perf_counter()
    result = check(answer, hits, verifier, question)
    elapsed = time.perf_counter() - started

    assert len(result.claims) == 50
    assert sum(c.label is ClaimLabel.SUPPORTED for c in result.claims) == 34
    assert elapsed < 5  # a generous bound: the figure itself is measured in bench/


def test_passages_in_another_language_give_a_clear_result(
    verifier: DeterministicVerifier,
) -> None:
    german = hit(6, "Der Flottencontroller ist in Rust geschrieben. Er läuft auf jedem Knoten.")
    result = check("The fleet controller is written in Rust.", [german], verifier)

    assert [c.label for c in result.claims] in (
        [ClaimLabel.SUPPORTED],
        [ClaimLabel.NOT_FOUND],
    )
    assert result.answerable == (result.claims[0].label is ClaimLabel.SUPPORTED)


def test_a_when_question_needs_a_date_or_number_in_what_is_kept(
    verifier: DeterministicVerifier,
) -> None:
    rota = hit(
        7,
        "The on-call rotation changes every Monday at 09:00 UTC. The platform team owns the "
        "rotation and publishes it in the on-call calendar.",
        title="On-call",
    )
    question = "When does the on-call rotation change?"

    vague = check("The platform team owns the on-call rotation.", [rota], verifier, question)
    assert not vague.answerable
    assert vague.reason == NO_NUMBER_REASON
    assert check("It changes every Monday at 09:00 UTC.", [rota], verifier, question).answerable
    assert check("On Mondays.", [rota], verifier, question).answerable
