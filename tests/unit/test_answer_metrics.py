"""Answer metrics against hand-computed cases, and the QA file format's errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import InvalidInput
from rag.evaluation.answers import (
    AnswerRecord,
    QAItem,
    exact_match,
    load_qa,
    normalize,
    summarize,
    token_f1,
)


def test_normalize_ignores_case_punctuation_articles_and_markers() -> None:
    assert normalize("The fleet controller is written in Rust. [1]") == (
        "fleet controller is written in rust"
    )


def test_exact_match_and_f1() -> None:
    assert exact_match("Rust.", ["rust"]) == 1.0
    assert exact_match("It is Rust", ["Rust"]) == 0.0
    # "within 15 minutes" vs "15 minutes": 2 common tokens, P = 2/3, R = 1 → F1 = 0.8
    assert token_f1("within 15 minutes", ["15 minutes"]) == pytest.approx(0.8)
    assert token_f1("two reviewers", ["one", "two reviewers"]) == 1.0  # best reference
    assert token_f1("", ["Rust"]) == 0.0


def record(expected: bool, answerable: bool, f1: float | None, sources: list[str],
           precision: float | None) -> AnswerRecord:  # fmt: skip
    return AnswerRecord(
        question="q", expected_answerable=expected, answer="a", answerable=answerable,
        model="m", exact_match=f1, f1=f1, cited_sources=sources, citation_precision=precision,
        latency_ms=1.0, prompt_tokens=10, completion_tokens=2, cost_usd=0.0,
    )  # fmt: skip


def test_summary_splits_answerable_from_unanswerable() -> None:
    metrics = summarize(
        [
            record(True, True, 1.0, ["a.md"], 1.0),
            record(True, False, 0.0, [], None),  # a false abstention
            record(True, True, 0.5, [], None),  # answered without a citation
            record(False, False, None, [], None),  # a right abstention
            record(False, True, None, ["b.md"], 0.0),  # answered what it should not
        ]
    )
    assert metrics["f1"] == pytest.approx(0.5)
    assert metrics["false_abstention"] == pytest.approx(1 / 3)
    assert metrics["abstention_on_unanswerable"] == pytest.approx(0.5)
    assert metrics["citation_precision"] == pytest.approx(0.5)
    assert metrics["answered_without_citation"] == pytest.approx(1 / 3)
    assert summarize([record(True, True, 1.0, [], None)])["abstention_on_unanswerable"] is None


def test_qa_items_and_file_errors(tmp_path: Path) -> None:
    assert QAItem(question="q", answer="a").answer == ["a"]
    assert not QAItem(question="q").expects_answer
    assert QAItem(question="q", answerable=True).expects_answer
    bad = tmp_path / "qa.jsonl"
    bad.write_text('{"question": "ok", "answer": "a"}\n{"question": ""}\n')
    with pytest.raises(InvalidInput, match="qa.jsonl line 2"):
        load_qa(bad)
    bad.write_text("{not json\n")
    with pytest.raises(InvalidInput, match="line 1"):
        load_qa(bad)
    bad.write_text("\n")
    with pytest.raises(InvalidInput, match="holds no questions"):
        load_qa(bad)
