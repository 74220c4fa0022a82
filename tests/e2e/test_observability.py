"""What an operator sees: Prometheus metrics for requests, answers and ingestion, request ids,
and OpenTelemetry traces (in-memory exporter) that follow a question through retrieval and
generation and an upload through the broker into the worker's task."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator

from api.main import create_app
from tests.conftest import SAMPLES, make_settings
from tests.e2e.test_api import wait_for_job
from tests.prometheus import Samples, parse, value

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
QUESTION = "What language is the Northwind fleet controller written in?"


class _Ids(IdGenerator):
    """Span ids from the OS, not the `random` module: the provider outlives this module, and
    Hypothesis (tests/e2e/test_schema_fuzz.py) refuses draws during which `random` moved."""

    def generate_span_id(self) -> int:
        return secrets.randbits(64) or 1

    def generate_trace_id(self) -> int:
        return secrets.randbits(128) or 1


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider, exporting to memory (a process gets one provider: the
    exporter is shut down afterwards, so later tests' spans go nowhere)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(id_generator=_Ids())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    assert trace.get_tracer_provider() is provider, "another test installed a tracer provider"
    yield exporter
    exporter.shutdown()


@pytest.fixture(scope="module")
async def app(
    tmp_path_factory: pytest.TempPathFactory, spans: InMemorySpanExporter
) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(tmp_path_factory.mktemp("observe")))
    async with application.router.lifespan_context(application):
        yield application


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/")
    return parse(response.text)


def ancestors(span: ReadableSpan, exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    by_id = {s.context.span_id: s for s in exporter.get_finished_spans()}
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


async def test_upload_and_question_are_measured_and_traced(
    client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    before = await scrape(client)
    assert (await client.post("/v1/collections", json={"name": "ops"})).status_code == 201
    path = SAMPLES / "engineering-handbook.md"
    response = await client.post(
        "/v1/collections/ops/documents", files=[("files", (path.name, path.read_bytes()))]
    )
    assert response.status_code == 202, response.text
    job = await wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    question = {"collection": "ops", "question": QUESTION}
    answered = await client.post("/v1/query", json=question, headers={"X-Request-ID": "q-42"})
    assert answered.status_code == 200 and answered.headers["x-request-id"] == "q-42"
    answer = answered.json()
    after = await scrape(client)

    # Requests by route template (not by path), method and status.
    route = "/v1/collections/{collection}/documents"
    uploads = [
        value(m, "rag_http_request_duration_seconds_count", route=route, status="202")
        for m in (before, after)
    ]
    assert uploads[1] - uploads[0] == 1
    assert value(after, "rag_http_request_duration_seconds_count", route="/v1/query") >= 1
    # Ingestion: one document, its chunks, its job.
    for name, labels in [
        ("rag_ingest_documents_total", {"status": "done"}),
        ("rag_ingest_chunks_total", {}),
        ("rag_ingest_job_duration_seconds_count", {}),
        ("rag_retrieval_duration_seconds_count", {}),
    ]:
        assert value(after, name, **labels) > value(before, name, **labels), name
    # The answer: by the model that wrote it, its tokens and time; the breaker is closed.
    model = answer["route"]["model"] if answer["route"] else answer["model"]
    assert value(after, "rag_answers_total", model=model, fallback_reason="none") >= 1
    assert value(after, "rag_generation_tokens_total", model=model, kind="completion") > 0
    assert value(after, "rag_generation_duration_seconds_count", model=model) >= 1
    assert value(after, "rag_circuit_breaker_state", backend=model) == 0
    assert ("rag_queue_depth", frozenset({("queue", os.environ["RAG_WORKER__QUEUE"])})) in after

    # One trace from the upload request through the broker into the worker's task.
    (upload,) = [s for s in named(spans, f"POST {route}") if s.attributes["http.route"] == route]
    (task,) = named(spans, "task rag.ingest_document")
    (document,) = named(spans, "ingest.document")
    assert upload in ancestors(task, spans)  # across the broker
    assert ancestors(document, spans)[0] == task
    assert document.attributes["rag.job_id"] == job["id"]
    assert document.attributes["rag.document_id"] == job["documents"][0]["document_id"]

    # And one from the question through retrieval and generation.
    (query,) = named(spans, "POST /v1/query")
    assert query.attributes["rag.request_id"] == "q-42"
    for name in ("retrieve", "generate"):
        (inner,) = [s for s in named(spans, name) if query in ancestors(s, spans)]
    assert inner.attributes["rag.model"] == answer["model"]


async def test_a_request_id_is_made_when_none_or_a_bad_one_is_sent(
    client: httpx.AsyncClient,
) -> None:
    made = (await client.get("/healthz")).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    forged = (await client.get("/healthz", headers={"X-Request-ID": "a\nb"})).headers
    assert forged["x-request-id"] != "a\nb"


async def test_unknown_paths_share_one_series(client: httpx.AsyncClient) -> None:
    for path in ("/nope/1", "/nope/2"):
        assert (await client.get(path)).status_code == 404
    metrics = await scrape(client)
    assert value(metrics, "rag_http_request_duration_seconds_count", route="unmatched") >= 2
    assert not any("/nope" in dict(labels).get("route", "") for _, labels in metrics)


async def test_a_streamed_answer_is_traced_too(
    client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    question = {"collection": "ops", "question": QUESTION, "stream": True}
    streamed = await client.post("/v1/query", json=question, headers={"X-Request-ID": "s-1"})
    assert streamed.status_code == 200 and "event: answer" in streamed.text
    (query,) = [
        s for s in named(spans, "POST /v1/query") if s.attributes["rag.request_id"] == "s-1"
    ]
    (generate,) = [s for s in named(spans, "generate") if query in ancestors(s, spans)]
    assert generate.attributes["rag.streamed"] is True and generate.attributes["rag.model"]
