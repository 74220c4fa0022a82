"""Ranking metrics against hand-computed values (BEIR / pytrec_eval definitions)."""

from __future__ import annotations

import math

import pytest

from rag.evaluation.metrics import evaluate_run, mrr_at_k, ndcg_at_k, recall_at_k

LOG2_3 = math.log2(3)  # discount at rank 2


def test_perfect_ranking_scores_one() -> None:
    judged = {"a": 1, "b": 1}
    ranking = ["a", "b", "x", "y"]
    assert ndcg_at_k(ranking, judged, 10) == pytest.approx(1.0)
    assert recall_at_k(ranking, judged, 10) == 1.0
    assert mrr_at_k(ranking, judged, 10) == 1.0


def test_single_relevant_at_rank_three() -> None:
    judged = {"a": 1}
    ranking = ["x", "y", "a", "z"]
    # DCG = 1/log2(3 + 1) = 0.5; IDCG = 1/log2(2) = 1.
    assert ndcg_at_k(ranking, judged, 10) == pytest.approx(0.5)
    assert recall_at_k(ranking, judged, 10) == 1.0
    assert mrr_at_k(ranking, judged, 10) == pytest.approx(1 / 3)


def test_graded_relevance_uses_linear_gain() -> None:
    judged = {"a": 2, "b": 1}
    # DCG = 1/1 + 2/log2(3); IDCG = 2/1 + 1/log2(3)  → 0.8597
    expected = (1 + 2 / LOG2_3) / (2 + 1 / LOG2_3)
    assert ndcg_at_k(["b", "a"], judged, 10) == pytest.approx(expected)
    assert expected == pytest.approx(0.85972, abs=1e-5)
    assert ndcg_at_k(["a", "b"], judged, 10) == pytest.approx(1.0)
    # MRR and recall ignore grades: any relevant document counts.
    assert mrr_at_k(["b", "a"], judged, 10) == 1.0
    assert recall_at_k(["b"], judged, 10) == 0.5


def test_nothing_relevant_retrieved_scores_zero() -> None:
    judged = {"a": 1}
    for metric in (ndcg_at_k, recall_at_k, mrr_at_k):
        assert metric(["x", "y", "z"], judged, 10) == 0.0
        assert metric([], judged, 10) == 0.0


def test_k_cuts_off_the_ranking_and_the_ideal() -> None:
    judged = {"a": 1, "b": 1}
    ranking = ["x", "a", "b"]
    # @2: DCG = 1/log2(3); IDCG@2 = 1 + 1/log2(3) → 0.3869
    assert ndcg_at_k(ranking, judged, 2) == pytest.approx((1 / LOG2_3) / (1 + 1 / LOG2_3))
    assert recall_at_k(ranking, judged, 2) == 0.5
    assert recall_at_k(ranking, judged, 3) == 1.0
    assert mrr_at_k(ranking, judged, 1) == 0.0
    assert mrr_at_k(ranking, judged, 2) == 0.5
    # The ideal is cut at k too: one relevant document on top is perfect at @1.
    assert ndcg_at_k(["a"], {"a": 1, "b": 1, "c": 1}, 1) == pytest.approx(1.0)


def test_zero_grades_and_duplicates_do_not_count() -> None:
    judged = {"a": 0, "b": 1}  # BEIR files may judge a document explicitly non-relevant
    assert mrr_at_k(["a", "b"], judged, 10) == 0.5
    assert recall_at_k(["a", "b"], judged, 10) == 1.0
    # A repeated id takes one rank only, so "b" is at rank 2 (not 3) and is cut at k=1.
    assert mrr_at_k(["x", "x", "b"], judged, 10) == 0.5
    assert recall_at_k(["x", "x", "b"], judged, 2) == 1.0


def test_evaluate_run_means_over_judged_queries() -> None:
    qrels = {
        "q1": {"a": 1},
        "q2": {"b": 1},
        "q3": {"c": 1},  # no ranking at all: scored 0, not skipped
        "q4": {"d": 0},  # nothing relevant: no metric is defined, left out
    }
    run = {"q1": ["a"], "q2": ["x", "y", "b"], "q4": ["d"]}
    scores = evaluate_run(run, qrels, [10, 1])
    assert scores["ndcg@10"] == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    assert scores["recall@10"] == pytest.approx(2 / 3)
    assert scores["recall@1"] == pytest.approx(1 / 3)
    assert scores["mrr@10"] == pytest.approx((1 + 1 / 3) / 3)
    assert set(scores) == {f"{m}@{k}" for m in ("ndcg", "recall", "mrr") for k in (1, 10)}
    assert evaluate_run(run, {}, [10]) == {}
