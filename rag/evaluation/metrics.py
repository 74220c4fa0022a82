"""Ranking metrics with the definitions BEIR reports (pytrec_eval's `ndcg_cut`, `recall`, and
BEIR's own MRR), so our numbers can be set next to published ones.

- nDCG@k: gain = graded relevance (linear, not 2^rel - 1), discount 1/log2(rank + 1), normalised
  by the ideal DCG of the query's judged-relevant documents.
- Recall@k: relevant documents in the top k / all relevant documents of the query.
- MRR@k: 1/rank of the first relevant document in the top k, 0 if none.

A document is relevant when its qrel grade is > 0 (BEIR files may carry explicit 0 judgements).
Rankings are lists of distinct document ids, best first; a repeated id counts once, at its first
position, so a caller's duplicate can never inflate a score.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

Qrels = Mapping[str, Mapping[str, int]]  # query id -> document id -> relevance grade
Run = Mapping[str, Sequence[str]]  # query id -> ranked document ids, best first


def _distinct(ranking: Sequence[str], k: int) -> list[str]:
    seen: set[str] = set()
    top: list[str] = []
    for doc_id in ranking:
        if doc_id not in seen:
            seen.add(doc_id)
            top.append(doc_id)
            if len(top) == k:
                break
    return top


def _relevant(judged: Mapping[str, int]) -> dict[str, int]:
    return {doc_id: grade for doc_id, grade in judged.items() if grade > 0}


def ndcg_at_k(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    relevant = _relevant(judged)
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(grade / math.log2(rank + 2) for rank, grade in enumerate(ideal))
    if idcg == 0:
        return 0.0
    dcg = sum(
        relevant.get(doc_id, 0) / math.log2(rank + 2)
        for rank, doc_id in enumerate(_distinct(ranking, k))
    )
    return dcg / idcg


def recall_at_k(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    relevant = _relevant(judged)
    if not relevant:
        return 0.0
    return sum(doc_id in relevant for doc_id in _distinct(ranking, k)) / len(relevant)


def mrr_at_k(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    relevant = _relevant(judged)
    for rank, doc_id in enumerate(_distinct(ranking, k)):
        if doc_id in relevant:
            return 1.0 / (rank + 1)
    return 0.0


def per_query_metrics(
    ranking: Sequence[str], judged: Mapping[str, int], k_values: Iterable[int]
) -> dict[str, float]:
    """All metrics of one query, keyed `ndcg@10`, `recall@100`, `mrr@10`, ..."""
    scores: dict[str, float] = {}
    for k in k_values:
        scores[f"ndcg@{k}"] = ndcg_at_k(ranking, judged, k)
        scores[f"recall@{k}"] = recall_at_k(ranking, judged, k)
        scores[f"mrr@{k}"] = mrr_at_k(ranking, judged, k)
    return scores


def evaluate_run(run: Run, qrels: Qrels, k_values: Iterable[int]) -> dict[str, float]:
    """Mean of each metric over the queries that have at least one relevant document.

    A judged query missing from `run` counts as an empty ranking (0), never as skipped: a system
    that fails to answer must not score better than one that answers badly. Queries with no
    relevant document are left out, since no metric is defined for them.
    """
    ks = sorted(set(k_values))
    judged_queries = [qid for qid, judged in qrels.items() if _relevant(judged)]
    if not judged_queries:
        return {}
    totals: dict[str, float] = {}
    for qid in judged_queries:
        for name, value in per_query_metrics(run.get(qid, ()), qrels[qid], ks).items():
            totals[name] = totals.get(name, 0.0) + value
    return {name: total / len(judged_queries) for name, total in totals.items()}
