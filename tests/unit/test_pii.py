"""rag.privacy: each recogniser, the checksums, stable placeholders, restoring split deltas."""

from __future__ import annotations

import pytest

from rag.models import GroundedPrompt, Passage
from rag.privacy.labels import data_sensitivity
from rag.privacy.pii import Masker, PiiDetector
from rag.privacy.recognizers import iban_valid, luhn_valid


@pytest.fixture(scope="module")
def detector() -> PiiDetector:
    return PiiDetector()


def test_luhn() -> None:
    assert luhn_valid("4111111111111111") and luhn_valid("2223003122003222")
    assert not luhn_valid("4111111111111112") and not luhn_valid("41x1")


def test_iban_checksum() -> None:
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and iban_valid("DE89370400440532013000")
    assert not iban_valid("GB83 WEST 1234 5698 7654 32") and not iban_valid("GB82")


@pytest.mark.parametrize(
    ("text", "value", "label"),
    [
        ("Write to jane.doe+hr@corp.example today.", "jane.doe+hr@corp.example", "EMAIL"),
        ("Call +44 20 7946 0958 now.", "+44 20 7946 0958", "PHONE"),
        (
            "Pay to GB82 WEST 1234 5698 7654 32 and 1234 more.",
            "GB82 WEST 1234 5698 7654 32",
            "IBAN",
        ),
        ("Card 5555-5555-5555-4444 expired.", "5555-5555-5555-4444", "CARD"),
        ("Card 2223003122003222 works.", "2223003122003222", "CARD"),
        ("Her SSN is 219-09-9999.", "219-09-9999", "US_SSN"),
        ("NINO AB123456C on file.", "AB123456C", "UK_NINO"),
        (
            "key sk-proj-abcdefghijklmnopqrstuvwx123 leaked",
            "sk-proj-abcdefghijklmnopqrstuvwx123",
            "API_KEY",
        ),
        ("aws AKIAIOSFODNN7EXAMPLE leaked", "AKIAIOSFODNN7EXAMPLE", "API_KEY"),
        ("token ghp_" + "a" * 36 + " leaked", "ghp_" + "a" * 36, "API_KEY"),
        ("Alice Johnson approved the budget.", "Alice Johnson", "PERSON"),
        ("The team moved to Lisbon last year.", "Lisbon", "LOCATION"),
    ],
)
def test_each_recogniser(detector: PiiDetector, text: str, value: str, label: str) -> None:
    masker = Masker(detector)
    masked = masker.mask(text)
    assert value not in masked and f"<{label}_1>" in masked, masked
    assert masker.restore(masked) == text


def test_a_card_number_failing_luhn_is_left_alone(detector: PiiDetector) -> None:
    assert Masker(detector).mask("Order 4111 1111 1111 1112 shipped.") == (
        "Order 4111 1111 1111 1112 shipped."
    )


def test_placeholders_are_stable_across_texts_and_spellings(detector: PiiDetector) -> None:
    masker = Masker(detector)
    prompt = GroundedPrompt(
        question="What is Bob Smith's email, bob@corp.example?",
        passages=[
            Passage(marker=1, text="Bob Smith (BOB@corp.example) and Carol Jones met."),
            Passage(marker=2, text="Reach Carol Jones at carol@corp.example.", title="Bob Smith"),
        ],
    )
    masked = masker.mask_prompt(prompt)
    assert masked.question == "What is <PERSON_1>'s email, <EMAIL_1>?"
    assert masked.passages[0].text == "<PERSON_1> (<EMAIL_1>) and <PERSON_2> met."
    assert masked.passages[1].text == "Reach <PERSON_2> at <EMAIL_2>."
    assert masked.passages[1].title == "<PERSON_1>"
    assert masker.counts == {"PERSON": 2, "EMAIL": 2}
    again = masker.mask_prompt(prompt)  # a retry: the same placeholders
    assert again == masked and masker.counts_unobserved() == {"PERSON": 2, "EMAIL": 2}
    assert masker.counts_unobserved() == {}


def test_restore_across_split_deltas(detector: PiiDetector) -> None:
    masker = Masker(detector)
    masker.mask("Ask Alice Johnson at alice@corp.example.")
    text = "Ask <PERSON_1> (<EMAIL_1>) about <UNKNOWN_3> and a < b."
    expected = "Ask Alice Johnson (alice@corp.example) about <UNKNOWN_3> and a < b."
    for cut in range(len(text) + 1):
        for cut2 in range(cut, len(text) + 1, 7):
            restorer = masker.restorer()
            parts = [restorer.push(d) for d in (text[:cut], text[cut:cut2], text[cut2:])]
            assert "".join(parts) + restorer.flush() == expected, (cut, cut2)


def test_data_sensitivity_is_the_most_sensitive_label() -> None:
    labels = {"hr": "private", "wiki": "public"}
    assert data_sensitivity(labels, "hr") == "private"  # type: ignore[arg-type]
    assert data_sensitivity(labels, ["wiki", "hr"]) == "private"  # type: ignore[arg-type]
    assert data_sensitivity(labels, ["docs"]) is None  # type: ignore[arg-type]
