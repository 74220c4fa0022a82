"""Prometheus metrics: what the service does, how long it takes, and what it costs.

The domain records here (answers, ingestion, breakers); `api` adds HTTP latency and `ingest`
the queue depths, both read at scrape time. One process serves its own registry; where
processes fork (`rag worker`'s prefork pool) PROMETHEUS_MULTIPROC_DIR is set before the fork
and the scrape sums every process's values (`exposition()` here, `ingest.metrics` on a
worker). The names are a contract: the Grafana dashboard in deploy/ queries them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

from rag.models import Answer

_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_SLOW = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0, 14400.0)

HTTP_DURATION = Histogram(
    "rag_http_request_duration_seconds",
    "HTTP requests by route template, method and status, until the body is sent.",
    ["route", "method", "status"],
    buckets=_FAST,
)
RETRIEVAL_DURATION = Histogram(
    "rag_retrieval_duration_seconds", "Retrieval for one question.", buckets=_FAST
)
GENERATION_DURATION = Histogram(
    "rag_generation_duration_seconds",
    "Generation for one answer, by the model that answered.",
    ["model"],
    buckets=_SLOW,
)
TOKENS = Counter("rag_generation_tokens", "Tokens by model and kind.", ["model", "kind"])
COST = Counter("rag_generation_cost_usd", "Estimated spend by model (catalog prices).", ["model"])
ANSWERS = Counter(
    "rag_answers",
    "Answers a model wrote, by model and why the first choice did not ('none' when it did).",
    ["model", "fallback_reason"],
)
CLAIMS = Counter(
    "rag_verified_claims",
    "Claims of model answers by verdict (supported, contradicted, not_found), model and verifier.",
    ["model", "verifier", "label"],
)
ABSTENTIONS = Counter(
    "rag_abstentions", "Questions answered 'the documents do not say'.", ["reason"]
)
SCREENED = Counter(
    "rag_guard_screened_passages",
    "Retrieved passages with instruction-like text, by action (flagged, defused, dropped).",
    ["action"],
)
REDACTIONS = Counter(
    "rag_guard_redactions", "Answers with a secret-shaped string redacted, by kind.", ["kind"]
)
DOCUMENTS = Counter("rag_ingest_documents", "Documents finished, by status.", ["status"])
CHUNKS = Counter("rag_ingest_chunks", "Chunks written to the store.")
FAILURES = Counter("rag_ingest_failures", "Documents that failed, by error code.", ["reason"])
DOCUMENT_DURATION = Histogram(
    "rag_ingest_document_duration_seconds",
    "Parse, chunk, embed and write one document.",
    buckets=_SLOW,
)
JOB_DURATION = Histogram(
    "rag_ingest_job_duration_seconds",
    "From a job's submission to its last document.",
    buckets=_SLOW,
)
BREAKER_STATE = Gauge(
    "rag_circuit_breaker_state",
    "Per backend: 0 closed, 1 half-open, 2 open (the worst across a worker's processes).",
    ["backend"],
    multiprocess_mode="max",
)
BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}
MODEL_QUALITY = Gauge(
    "rag_model_quality",
    "Per catalog model: the scoreboard's measured quality (estimate, lower and upper bound).",
    ["model", "bound"],
    multiprocess_mode="max",
)
MODEL_SCORE_N = Gauge(
    "rag_model_score_observations",
    "Per catalog model: eval questions plus ratings behind its measured quality.",
    ["model"],
    multiprocess_mode="max",
)
PII_MASKED = Counter(
    "rag_pii_masked",
    "Personal data values masked before a model below the data's sensitivity, by entity type.",
    ["entity"],
)


def observe_answer(answer: Answer) -> None:
    if answer.model is None:  # no model ran: nothing relevant enough was found
        ABSTENTIONS.labels("no_relevant_passages").inc()
        return
    route = answer.route
    model = route.model if route is not None else answer.model
    GENERATION_DURATION.labels(model).observe((answer.timings.generation_ms or 0.0) / 1000)
    TOKENS.labels(model, "prompt").inc(answer.usage.get("prompt_tokens", 0))
    TOKENS.labels(model, "completion").inc(answer.usage.get("completion_tokens", 0))
    if route is not None:
        COST.labels(model).inc(route.cost_usd)
    fallback = route.fallbacks[0].error if route is not None and route.fallbacks else "none"
    ANSWERS.labels(model, fallback).inc()
    if answer.verification is not None:
        verifier = answer.verification.verifier.split("@")[0]
        for claim in answer.verification.claims:
            CLAIMS.labels(model, verifier, claim.label.value).inc()
    if not answer.answerable:
        ABSTENTIONS.labels("not_supported").inc()


def observe_screening(flagged: int, defused: int, dropped: int) -> None:
    for action, n in (("flagged", flagged), ("defused", defused), ("dropped", dropped)):
        if n:
            SCREENED.labels(action).inc(n)


def observe_redactions(kinds: Iterable[str]) -> None:
    for kind in kinds:
        REDACTIONS.labels(kind).inc()


def observe_document(
    status: str, *, chunks: int = 0, seconds: float = 0.0, reason: str = ""
) -> None:
    DOCUMENTS.labels(status).inc()
    if status == "done":
        CHUNKS.inc(chunks)
        DOCUMENT_DURATION.observe(seconds)
    elif status == "failed":
        FAILURES.labels(reason or "error").inc()


def observe_masked(counts: dict[str, int]) -> None:
    for entity, n in counts.items():
        PII_MASKED.labels(entity).inc(n)


def set_breaker(backend: str, state: str) -> None:
    BREAKER_STATE.labels(backend).set(BREAKER_VALUES[state])


def set_model_score(
    model: str, n: int, quality: float | None, lower: float | None, upper: float | None
) -> None:
    MODEL_SCORE_N.labels(model).set(n)
    for bound, value in (("estimate", quality), ("lower", lower), ("upper", upper)):
        if value is not None:
            MODEL_QUALITY.labels(model, bound).set(value)


def exposition(collectors: Iterable[Collector] = ()) -> tuple[bytes, str]:
    """The scrape body and its content type: this process's metrics (every process's, in
    multiprocess mode) and `collectors` read now (e.g. queue depths)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    body = generate_latest(registry)
    extra = CollectorRegistry()
    for collector in collectors:
        extra.register(collector)
    return body + generate_latest(extra), CONTENT_TYPE_LATEST
