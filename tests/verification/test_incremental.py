"""A verified stream shows only checked text and never takes any of it back: whatever pieces
the model's text arrives in, what was shown is a prefix of the final answer, in the end all of
it."""

from __future__ import annotations

import random

import pytest

from rag.verification.check import Checked, check
from rag.verification.deterministic import DeterministicVerifier
from rag.verification.incremental import IncrementalCheck
from tests.verification.conftest import FLEET_QUESTION, HITS

MIXED = (
    "The fleet controller is written in Rust [3]. It was rewritten in Go by a team in Lisbon. "
    "It reconciles desired state every 15 minutes [3].\nBackups are kept for 30 days."
)
WHEN = "When are backups taken?"
NO_TIME = "Restores must be approved by the on-call engineer. "


def _stream(
    text: str, incremental: IncrementalCheck, rng: random.Random
) -> tuple[list[str], Checked]:
    """Feed `text` in random pieces of 1-12 characters: the pieces shown (the last one at the
    end) and the final check."""
    shown, at = [], 0
    while at < len(text):
        step = rng.randint(1, 12)
        if piece := incremental.feed(text[at : at + step]):
            shown.append(piece)
        at += step
    checked = incremental.finish(text)
    return [*shown, incremental.rest] if incremental.rest else shown, checked


@pytest.mark.parametrize("seed", range(5))
def test_what_is_shown_is_the_final_answer_in_order(
    verifier: DeterministicVerifier, seed: int
) -> None:
    incremental = IncrementalCheck(HITS, verifier, FLEET_QUESTION)
    shown, final = _stream(MIXED, incremental, random.Random(seed))
    assert "".join(shown) == final.answer == check(MIXED, HITS, verifier, FLEET_QUESTION).answer
    assert "Lisbon" not in final.answer and "Rust" in final.answer
    assert len(shown) >= 2  # sentence by sentence, not all at the end
    assert shown[0].startswith("The fleet controller is written in Rust")
    # The text with its citation markers grows the same way, to the final one.
    assert incremental.shown_marked == final.marked
    assert final.marked.startswith("The fleet controller is written in Rust [1].")


def test_each_sentence_is_marked_with_the_citations_it_rests_on(
    verifier: DeterministicVerifier,
) -> None:
    checked = check(MIXED, HITS, verifier, FLEET_QUESTION)
    assert [c.marker for c in checked.citations] == [1]
    assert checked.marked == (
        "The fleet controller is written in Rust [1]. "
        "It reconciles desired state every 15 minutes [1]."
    )


def test_a_sentence_is_shown_once_the_next_one_begins(verifier: DeterministicVerifier) -> None:
    incremental = IncrementalCheck(HITS, verifier, FLEET_QUESTION)
    assert incremental.feed("The fleet controller is written in Rust.") == ""
    assert incremental.feed(" It") == "The fleet controller is written in Rust."


def test_a_when_question_shows_nothing_until_a_time_is_given(
    verifier: DeterministicVerifier,
) -> None:
    text = NO_TIME + "Backups are taken nightly at 02:00 UTC."
    incremental = IncrementalCheck(HITS, verifier, WHEN)
    assert incremental.feed(NO_TIME + "Backups") == ""  # supported, but gives no time
    incremental.finish(text)
    assert incremental.rest == check(text, HITS, verifier, WHEN).answer
    assert incremental.rest.startswith("Restores") and "02:00" in incremental.rest

    shown, final = _stream(
        NO_TIME + "Ask them.", IncrementalCheck(HITS, verifier, WHEN), random.Random(0)
    )
    assert shown == [] and not final.answerable
