"""Evaluation: retrieval on BEIR-layout datasets and answers on question/answer sets.

It lives in the domain package (no FastAPI or Celery) so the CLI, tests and notebooks measure the
same pipeline components the service runs, in-process.
"""

from rag.evaluation.beir import BeirDataset, CorpusDoc, load_beir, subset
from rag.evaluation.metrics import evaluate_run, mrr_at_k, ndcg_at_k, recall_at_k
from rag.evaluation.retrieval import (
    EvalReport,
    IngestStats,
    ModeResult,
    evaluate_retrieval,
    write_retrieval_report,
)
from rag.evaluation.stats import LatencyStats, latency_stats

__all__ = [
    "BeirDataset",
    "CorpusDoc",
    "EvalReport",
    "IngestStats",
    "LatencyStats",
    "ModeResult",
    "evaluate_retrieval",
    "evaluate_run",
    "latency_stats",
    "load_beir",
    "mrr_at_k",
    "ndcg_at_k",
    "recall_at_k",
    "subset",
    "write_retrieval_report",
]
