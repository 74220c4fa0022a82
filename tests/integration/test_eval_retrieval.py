"""The evaluation harness end to end on a tiny BEIR dataset, with the real runtime: chunker,
MiniLM, BM25 encoder, embedded Qdrant (or QDRANT_URL) and the retriever.

The fixture (tests/fixtures/beir-tiny) holds families of documents whose identifiers differ by
one swapped digit (INC-42813 / INC-48231, FM-4714 / FM-4471, ...), plus policy documents asked
about in other words. Asked for an identifier, the embedding follows the content words to a
sibling; keyword matching finds the exact id. So hybrid retrieval has to beat dense on it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.evaluation import (
    EvalReport,
    evaluate_retrieval,
    load_beir,
    subset,
    write_retrieval_report,
)
from rag.evaluation.retrieval import document_ranking
from rag.factory import build_runtime
from rag.models import Chunk, ScoredChunk
from tests.conftest import FIXTURES, make_settings

TINY = FIXTURES / "beir-tiny"


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EvalReport, list[str]]]:
    runtime = build_runtime(
        make_settings(tmp_path_factory.mktemp("eval"), retrieval={"max_top_k": 100})
    )
    events: list[tuple[str, int, int]] = []
    try:
        report = evaluate_retrieval(
            runtime,
            load_beir(TINY),
            ["dense", "sparse", "hybrid"],
            progress=lambda stage, done, total: events.append((stage, done, total)),
        )
        left = [c.name for c in runtime.catalog.list_collections()]
    finally:
        runtime.close()
    assert events[-1][0] == "query" and events[-1][1] == events[-1][2] == report.queries
    assert ("ingest", report.documents, report.documents) in events
    yield report, left


def test_loader_keeps_judged_queries_and_graded_qrels() -> None:
    data = load_beir(TINY)
    assert data.name == "beir-tiny" and data.split == "test"
    assert len(data.corpus) == 30 and len(data.queries) == 12
    assert "train-1" not in data.queries  # in queries.jsonl, but not judged in this split
    assert data.qrels["q5"] == {"fw-1217": 2, "known-issue-1217": 1}


def test_subset_keeps_the_judged_documents_plus_distractors() -> None:
    small = subset(load_beir(TINY), limit_queries=3, max_docs=2)
    assert list(small.queries) == ["q1", "q2", "q3"]
    ids = {doc.id for doc in small.corpus}
    assert {"inc-42813", "inc-48231", "fm-1474"} <= ids
    assert len(ids) == 5


def test_every_mode_is_scored_and_metrics_are_probabilities(
    evaluated: tuple[EvalReport, list[str]],
) -> None:
    report, _ = evaluated
    assert [r.mode for r in report.modes] == ["dense", "sparse", "hybrid"]
    assert report.queries == 12 and report.documents == 30
    assert report.ingest.chunks >= report.documents
    for result in report.modes:
        assert set(result.metrics) == {
            f"{m}@{k}" for m in ("ndcg", "recall", "mrr") for k in (10, 100)
        }
        assert all(0.0 <= v <= 1.0 for v in result.metrics.values()), result.metrics
        assert set(result.per_query) == set(load_beir(TINY).queries)
        assert 0 < result.latency.p50_ms <= result.latency.p95_ms
        # 30 documents, 100 chunks retrieved: every relevant document is found, but by
        # keywords only when it shares a word with the question (q10 is a paraphrase).
        expected = 11 / 12 if result.mode == "sparse" else 1.0
        assert result.metrics["recall@100"] == pytest.approx(expected)
    assert report.hybrid_dense_latency_ratio is not None


def test_hybrid_beats_dense_when_exact_identifiers_matter(
    evaluated: tuple[EvalReport, list[str]],
) -> None:
    report, _ = evaluated
    ndcg = {r.mode: r.metrics["ndcg@10"] for r in report.modes}
    assert ndcg["hybrid"] > ndcg["dense"], ndcg
    assert ndcg["sparse"] > ndcg["dense"], ndcg


def test_scratch_collection_is_dropped(evaluated: tuple[EvalReport, list[str]]) -> None:
    _, left = evaluated
    assert left == []


def test_report_files(evaluated: tuple[EvalReport, list[str]], tmp_path: Path) -> None:
    report, _ = evaluated
    json_path, md_path = write_retrieval_report(report, tmp_path / "out")
    assert EvalReport.model_validate(json.loads(json_path.read_text())) == report
    markdown = md_path.read_text()
    assert "| mode | nDCG@10 | R@10 | R@100 | MRR@10 | p50 ms | p95 ms |" in markdown
    assert markdown.count("\n| hybrid |") == 1


def test_a_document_ranks_at_its_best_chunk() -> None:
    def hit(document_id: str, index: int) -> ScoredChunk:
        chunk = Chunk(id=f"{document_id}{index}", document_id=document_id, collection="c",
                      index=index, text="t")  # fmt: skip
        return ScoredChunk(chunk=chunk, score=1.0)

    hits = [hit("b", 1), hit("a", 0), hit("b", 0), hit("c", 0), hit("a", 1)]
    assert document_ranking(hits) == ["b", "a", "c"]


def test_cli_runs_in_process(tmp_path: Path) -> None:
    from cli.main import app

    result = CliRunner().invoke(
        app,
        [
            "eval",
            "retrieval",
            "--dataset",
            str(TINY),
            "--modes",
            "dense,hybrid",
            "--limit-queries",
            "4",
            "--max-docs",
            "6",
            "--top-k",
            "20",
            "--fusion",
            "dbsf",
            "--output",
            str(tmp_path / "out"),
            "--mlflow",
        ],
        env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"},
    )
    assert result.exit_code == 0, result.output
    assert "nDCG@10" in result.output and "R@20" in result.output
    report = EvalReport.model_validate_json((tmp_path / "out" / "results.json").read_text())
    assert [r.mode for r in report.modes] == ["dense", "hybrid"] and report.queries == 4
    assert "logged MLflow run" in result.output
    import mlflow

    tracking = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = tracking.get_experiment_by_name("retrieval-beir-tiny")
    assert experiment is not None
    runs = tracking.search_runs([experiment.experiment_id])
    assert len(runs) == 1 and runs[0].data.params["fusion"] == "dbsf"
    assert runs[0].data.metrics["hybrid/ndcg_at_10"] == pytest.approx(
        report.modes[1].metrics["ndcg@10"]
    )
    bad = CliRunner().invoke(app, ["eval", "retrieval", "--dataset", str(TINY), "--modes", "x"])
    assert bad.exit_code == 1 and "--modes takes a comma-separated list" in bad.output
