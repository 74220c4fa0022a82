"""End-to-end retrieval evaluation: index a BEIR corpus through the service's own components
(chunker, embedder, BM25 encoder, vector store, retriever) and score each retrieval mode.

It deliberately reuses the runtime's parts instead of re-implementing search, so a number moves
only when the pipeline does. The corpus goes into a scratch collection; chunk hits map back to
corpus ids through `chunk.document_id`, and a document ranks by its best chunk.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from rag.config import RetrievalMode
from rag.errors import InvalidInput
from rag.evaluation.beir import BeirDataset, CorpusDoc
from rag.evaluation.corpus import fresh_collection
from rag.evaluation.metrics import evaluate_run, per_query_metrics
from rag.evaluation.report import write_report
from rag.evaluation.stats import LatencyStats, latency_stats
from rag.models import Chunk, Element, ElementKind, ScoredChunk
from rag.retrieval import SearchOptions

if TYPE_CHECKING:
    from rag.factory import Runtime

# (stage, done, total); stage is "ingest" (documents) or "query" (queries, all modes each).
ProgressCallback = Callable[[str, int, int], None]


class IngestStats(BaseModel):
    documents: int
    chunks: int
    seconds: float
    chunks_per_second: float
    stage_seconds: dict[str, float] = Field(
        description="Time spent chunking, embedding, BM25-encoding and upserting."
    )


class ModeResult(BaseModel):
    mode: RetrievalMode
    metrics: dict[str, float] = Field(description="Means over judged queries: ndcg@10, ...")
    latency: LatencyStats = Field(description="Per `Retriever.retrieve` call, query embedding in.")
    per_query: dict[str, dict[str, float]] = Field(default_factory=dict)


class EvalReport(BaseModel):
    dataset: str
    split: str
    queries: int
    documents: int
    top_k: int = Field(description="Chunks retrieved per query; documents are deduplicated.")
    k_values: list[int]
    embedding_model: str
    chunking: dict[str, int]
    ingest: IngestStats
    modes: list[ModeResult]
    hybrid_dense_latency_ratio: float | None = Field(
        default=None, description="p50 latency of hybrid over dense, when both ran."
    )
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def evaluate_retrieval(
    runtime: Runtime,
    dataset: BeirDataset,
    modes: Sequence[RetrievalMode],
    *,
    k_values: Sequence[int] = (10, 100),
    top_k: int = 100,
    options: SearchOptions | None = None,
    limit_queries: int | None = None,
    progress: ProgressCallback | None = None,
    collection: str | None = None,
    keep_collection: bool = False,
    batch_size: int = 256,
) -> EvalReport:
    """Index `dataset.corpus` into a fresh collection of `runtime`, run every query in every
    mode, and score the document rankings against the qrels. `options` (fusion, diversity,
    filters) apply to every mode; unset ones take the runtime's configured defaults.

    `top_k` chunks are retrieved per query, so it must not exceed the retriever's `max_top_k`
    nor be below the largest k. Embedding runs `batch_size` chunks at a time across documents,
    which is what keeps a corpus of thousands of short documents fast.
    """
    if not modes:
        raise InvalidInput("no retrieval mode to evaluate")
    ks = sorted(set(k_values))
    if not ks or ks[0] < 1 or top_k < ks[-1]:
        raise InvalidInput(f"top_k ({top_k}) must be at least the largest k ({ks})")
    if top_k > runtime.retriever.max_top_k:
        raise InvalidInput(
            f"top_k {top_k} exceeds retrieval.max_top_k {runtime.retriever.max_top_k}: "
            "build the runtime with a larger max_top_k"
        )
    report_progress = progress or (lambda stage, done, total: None)
    query_ids = list(dataset.queries)[:limit_queries] if limit_queries else list(dataset.queries)
    name = collection or _collection_name(dataset.name)
    fresh_collection(runtime, name, f"retrieval evaluation on {dataset.name} ({dataset.split})")
    try:
        ingest = ingest_corpus(runtime, dataset.corpus, name, batch_size, report_progress)
        rankings, latencies = _run_queries(
            runtime,
            name,
            dataset,
            query_ids,
            modes,
            top_k,
            options or SearchOptions(),
            report_progress,
        )
    finally:
        if not keep_collection:
            runtime.catalog.delete_collection(name)
    qrels = {qid: dataset.qrels.get(qid, {}) for qid in query_ids}
    results = [
        ModeResult(
            mode=mode,
            metrics=evaluate_run(rankings[mode], qrels, ks),
            latency=latency_stats(latencies[mode]),
            per_query={
                qid: per_query_metrics(rankings[mode].get(qid, []), qrels[qid], ks)
                for qid in query_ids
            },
        )
        for mode in modes
    ]
    by_mode = {r.mode: r for r in results}
    ratio = None
    if "hybrid" in by_mode and "dense" in by_mode and by_mode["dense"].latency.p50_ms > 0:
        ratio = by_mode["hybrid"].latency.p50_ms / by_mode["dense"].latency.p50_ms
    settings = runtime.settings.chunking
    return EvalReport(
        dataset=dataset.name,
        split=dataset.split,
        queries=len(query_ids),
        documents=len(dataset.corpus),
        top_k=top_k,
        k_values=ks,
        embedding_model=runtime.embedder.model_name,
        chunking={"max_tokens": settings.max_tokens, "overlap_tokens": settings.overlap_tokens},
        ingest=ingest,
        modes=results,
        hybrid_dense_latency_ratio=ratio,
    )


def _collection_name(dataset_name: str) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", dataset_name.lower()).strip("-_")[:50]
    return f"eval-{slug}" if slug else "eval"


def document_elements(doc: CorpusDoc) -> list[Element]:
    """Title as a heading, so it travels with every chunk (`Chunk.embedding_text`) like a
    parsed file's heading does; a title-only document becomes body text so it is still found."""
    title, text = doc.title.strip(), doc.text.strip()
    if not text:
        return [Element(kind=ElementKind.TEXT, text=title)] if title else []
    head = [Element(kind=ElementKind.TITLE, text=title, heading_level=1)] if title else []
    return [*head, Element(kind=ElementKind.TEXT, text=text)]


def ingest_corpus(
    runtime: Runtime,
    corpus: Sequence[CorpusDoc],
    collection: str,
    batch_size: int,
    progress: ProgressCallback,
) -> IngestStats:
    started = time.perf_counter()
    stages = dict.fromkeys(("chunk", "embed", "sparse", "upsert"), 0.0)
    pending: list[Chunk] = []
    total_chunks = 0

    def flush(batch: list[Chunk]) -> None:
        texts = [chunk.embedding_text() for chunk in batch]
        t0 = time.perf_counter()
        dense = runtime.embedder.embed_documents(texts)
        t1 = time.perf_counter()
        sparse = [runtime.sparse.encode_document(text) for text in texts]
        t2 = time.perf_counter()
        runtime.store.upsert(batch, dense, sparse)
        stages["embed"] += t1 - t0
        stages["sparse"] += t2 - t1
        stages["upsert"] += time.perf_counter() - t2

    progress("ingest", 0, len(corpus))
    for done, doc in enumerate(corpus, start=1):
        t0 = time.perf_counter()
        chunks = runtime.chunker.chunk(
            document_elements(doc),
            document_id=doc.id,
            collection=collection,
            source=doc.id,
            title=doc.title,
        )
        stages["chunk"] += time.perf_counter() - t0
        pending.extend(chunks)
        total_chunks += len(chunks)
        while len(pending) >= batch_size:
            flush(pending[:batch_size])
            del pending[:batch_size]
            progress("ingest", done, len(corpus))
    if pending:
        flush(pending)
    progress("ingest", len(corpus), len(corpus))
    seconds = time.perf_counter() - started
    return IngestStats(
        documents=len(corpus),
        chunks=total_chunks,
        seconds=round(seconds, 3),
        chunks_per_second=round(total_chunks / seconds, 1) if seconds > 0 else 0.0,
        stage_seconds={stage: round(value, 3) for stage, value in stages.items()},
    )


def _run_queries(
    runtime: Runtime,
    collection: str,
    dataset: BeirDataset,
    query_ids: Sequence[str],
    modes: Sequence[RetrievalMode],
    top_k: int,
    base: SearchOptions,
    progress: ProgressCallback,
) -> tuple[dict[RetrievalMode, dict[str, list[str]]], dict[RetrievalMode, list[float]]]:
    """Modes are interleaved per query, so machine noise hits every mode alike and the latency
    ratio stays fair; one untimed warm-up call per mode keeps first-call costs out of p50/p95."""
    retriever = runtime.retriever

    def options(mode: RetrievalMode) -> SearchOptions:
        return base.model_copy(update={"mode": mode, "top_k": top_k})

    rankings: dict[RetrievalMode, dict[str, list[str]]] = {mode: {} for mode in modes}
    latencies: dict[RetrievalMode, list[float]] = {mode: [] for mode in modes}
    texts = [dataset.queries[qid] for qid in query_ids if dataset.queries[qid].strip()]
    for mode in modes:
        if texts:
            retriever.retrieve(collection, texts[0], options(mode))
    progress("query", 0, len(query_ids))
    for done, qid in enumerate(query_ids, start=1):
        text = dataset.queries[qid]
        for mode in modes:
            if not text.strip():  # nothing to ask: an empty ranking, scored 0
                rankings[mode][qid] = []
                continue
            t0 = time.perf_counter()
            hits = retriever.retrieve(collection, text, options(mode))
            latencies[mode].append((time.perf_counter() - t0) * 1000)
            rankings[mode][qid] = document_ranking(hits)
        progress("query", done, len(query_ids))
    return rankings, latencies


def document_ranking(hits: Sequence[ScoredChunk]) -> list[str]:
    """Chunk hits (best first) → document ids, each at its best chunk's position (max-pooling)."""
    seen: dict[str, None] = {}
    for hit in hits:
        seen.setdefault(hit.chunk.document_id, None)
    return list(seen)


# Output -----------------------------------------------------------------------------------


def summary_table(report: EvalReport) -> tuple[list[str], list[list[str]]]:
    """Header and rows shared by the Markdown file and the CLI: nDCG and MRR at the smallest k,
    recall at every k, then latency."""
    k0 = report.k_values[0]
    header = [
        "mode",
        f"nDCG@{k0}",
        *(f"R@{k}" for k in report.k_values),
        f"MRR@{k0}",
        "p50 ms",
        "p95 ms",
    ]
    rows = [
        [
            r.mode,
            f"{r.metrics.get(f'ndcg@{k0}', 0.0):.3f}",
            *(f"{r.metrics.get(f'recall@{k}', 0.0):.3f}" for k in report.k_values),
            f"{r.metrics.get(f'mrr@{k0}', 0.0):.3f}",
            f"{r.latency.p50_ms:.1f}",
            f"{r.latency.p95_ms:.1f}",
        ]
        for r in report.modes
    ]
    return header, rows


def summary_lines(report: EvalReport) -> list[str]:
    ingest = report.ingest
    lines = [
        f"{report.queries} queries · {report.documents:,} documents → {ingest.chunks:,} chunks · "
        f"{report.embedding_model} · top {report.top_k} chunks per query",
        f"ingest: {ingest.seconds:.1f} s ({ingest.chunks_per_second:.0f} chunks/s; "
        + ", ".join(f"{k} {v:.1f} s" for k, v in ingest.stage_seconds.items())
        + ")",
    ]
    if report.hybrid_dense_latency_ratio is not None:
        lines.append(f"hybrid/dense latency (p50): {report.hybrid_dense_latency_ratio:.2f}×")
    return lines


def write_retrieval_report(report: EvalReport, out_dir: Path) -> tuple[Path, Path]:
    header, rows = summary_table(report)
    return write_report(
        report,
        out_dir,
        title=f"Retrieval evaluation: {report.dataset} ({report.split})",
        lines=summary_lines(report),
        header=header,
        rows=rows,
    )


def flat_metrics(report: EvalReport) -> dict[str, float]:
    """`mode/metric` → value, for experiment trackers."""
    flat = {f"{r.mode}/{name}": value for r in report.modes for name, value in r.metrics.items()}
    flat |= {f"{r.mode}/p50_ms": r.latency.p50_ms for r in report.modes}
    flat["ingest_seconds"] = report.ingest.seconds
    if report.hybrid_dense_latency_ratio is not None:
        flat["hybrid_dense_latency_ratio"] = report.hybrid_dense_latency_ratio
    return flat
