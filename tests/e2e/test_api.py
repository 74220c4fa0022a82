"""The service end to end over HTTP: real Redis, a real in-process Celery worker, real Qdrant,
the real embedder and the real local LLM, on SQLite and on PostgreSQL."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from celery import Celery
from fastapi import FastAPI

from api.deps import get_intake
from api.main import create_app
from ingest.dispatch import Dispatcher
from rag.errors import BackendUnavailable
from rag.intake import Intake
from rag.staging import stage
from tests.conftest import FIXTURES, SAMPLES, make_settings

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
QUESTIONS = [
    line.split("\t") for line in (SAMPLES.parent / "questions.tsv").read_text().splitlines()
]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FastAPI]:
    data_dir = tmp_path_factory.mktemp("api")
    url = (
        f"sqlite:///{data_dir / 'rag.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    application = create_app(make_settings(data_dir, database_url=url, api={"max_upload_mb": 1}))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="module")
async def demo(client: httpx.AsyncClient) -> dict[str, Any]:
    """The sample documents ingested through the queue into collection 'demo'."""
    assert (await client.post("/v1/collections", json={"name": "demo"})).status_code == 201
    files = [("files", (p.name, p.read_bytes())) for p in sorted(SAMPLES.iterdir())]
    response = await client.post(
        "/v1/collections/demo/documents", files=files, data={"metadata": '{"team": "ops"}'}
    )
    assert response.status_code == 202, response.text
    return await wait_for_job(client, response.json()["id"])


async def wait_for_job(
    client: httpx.AsyncClient, job_id: str, timeout_s: float = 300
) -> dict[str, Any]:
    with anyio.fail_after(timeout_s):
        while True:
            job = (await client.get(f"/v1/jobs/{job_id}")).json()
            if job["status"] not in ("queued", "running"):
                return job
            await anyio.sleep(0.2)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert "Traceback" not in response.text
    return error


async def test_samples_are_ingested(client: httpx.AsyncClient, demo: dict[str, Any]) -> None:
    assert demo["status"] == "succeeded", demo
    assert demo["counts"]["done"] == len(demo["documents"]) >= 7
    docs = (await client.get("/v1/collections/demo/documents")).json()
    assert {d["status"] for d in docs} == {"indexed"}
    assert all(d["chunk_count"] > 0 and len(d["content_hash"]) == 64 for d in docs)
    assert all(d["metadata"] == {"team": "ops"} for d in docs)


@pytest.mark.parametrize(("question", "source", "expected"), QUESTIONS)
async def test_query_answers_with_a_citation_to_the_right_document(
    client: httpx.AsyncClient, demo: dict[str, Any], question: str, source: str, expected: str
) -> None:
    response = await client.post("/v1/query", json={"collection": "demo", "question": question})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["answerable"], answer
    assert answer["citations"][0]["source"] == source
    assert expected.split()[-1].lower() in answer["answer"].lower()
    assert answer["model"].startswith("qwen2.5-coder-0.5b")  # the built-in default
    assert answer["timings"]["retrieval_ms"] > 0 and answer["timings"]["generation_ms"] > 0


async def test_pdf_citation_carries_the_page(
    client: httpx.AsyncClient, demo: dict[str, Any]
) -> None:
    question, source, _ = QUESTIONS[2]
    answer = (
        await client.post("/v1/query", json={"collection": "demo", "question": question})
    ).json()
    pages = {c["page"] for c in answer["citations"] if c["source"] == source}
    assert pages == {2}  # the head count is on page 2 of the report


async def test_a_question_the_documents_do_not_cover_is_not_answered(
    client: httpx.AsyncClient, demo: dict[str, Any]
) -> None:
    body = {"collection": "demo", "question": "What is the boiling point of liquid nitrogen?"}
    answer = (await client.post("/v1/query", json=body)).json()
    assert answer["answerable"] is False and answer["citations"] == []
    assert "do not answer" in answer["answer"]


async def test_retrieve_with_filters_and_modes(
    client: httpx.AsyncClient, demo: dict[str, Any]
) -> None:
    for mode in ("dense", "sparse", "hybrid"):
        body = {
            "collection": "demo",
            "question": "travel booking",
            "mode": mode,
            "filters": {"source": "travel-policy.docx"},
            "top_k": 3,
        }
        hits = (await client.post("/v1/retrieve", json=body)).json()["hits"]
        assert hits and {h["source"] for h in hits} == {"travel-policy.docx"}
    body = {"collection": "demo", "question": "x", "filters": {"team": {"$gt": 1}}}
    assert_error(await client.post("/v1/retrieve", json=body), 422, "invalid_input")
    body = {"collection": "demo", "question": "x", "filters": {"colour": "red"}}
    error = assert_error(await client.post("/v1/query", json=body), 422, "invalid_input")
    assert "unknown filter field 'colour'" in error["message"] and "team" in error["message"]
    collections = (await client.get("/v1/collections")).json()
    demo_info = next(c for c in collections if c["name"] == "demo")
    assert demo_info["metadata_fields"] == {"team": "keyword"}


async def test_range_filters_on_uploaded_metadata(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/collections", json={"name": "dated"})).status_code == 201
    documents = [
        {"source": f"memo-{year}.md", "text": f"# Memo\n\nThe budget memo for {year}.",
         "metadata": {"published": f"{year}-06-01", "year": year}}
        for year in (2023, 2024, 2025)
    ]  # fmt: skip
    response = await client.post(
        "/v1/collections/dated/documents/text", json={"documents": documents}
    )
    assert (await wait_for_job(client, response.json()["id"]))["status"] == "succeeded"
    for filters, expected in [
        ({"published": {"gte": "2024-01-01"}}, {"memo-2024.md", "memo-2025.md"}),
        ({"year": {"lt": 2024}}, {"memo-2023.md"}),
        ({"year": [2023, 2025]}, {"memo-2023.md", "memo-2025.md"}),
    ]:
        body = {"collection": "dated", "question": "budget memo", "filters": filters}
        hits = (await client.post("/v1/retrieve", json=body)).json()["hits"]
        assert {h["source"] for h in hits} == expected, filters
    body = {"collection": "dated", "question": "memo", "filters": {"year": {"gte": "soon"}}}
    assert_error(await client.post("/v1/retrieve", json=body), 422, "invalid_input")


async def test_reuploading_unchanged_files_skips_them(
    client: httpx.AsyncClient, demo: dict[str, Any]
) -> None:
    path = SAMPLES / "incident-response.html"
    response = await client.post(
        "/v1/collections/demo/documents", files=[("files", (path.name, path.read_bytes()))]
    )
    job = await wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded" and job["counts"]["skipped"] == 1


async def test_bad_files_fail_alone_with_a_reason(client: httpx.AsyncClient) -> None:
    await client.post("/v1/collections", json={"name": "bad"})
    files = [
        ("files", (name, (FIXTURES / name).read_bytes()))
        for name in ("empty.txt", "corrupt.pdf", "encrypted.pdf", "binary.txt")
    ]
    files.append(("files", ("good.md", b"# Good\n\nThe cafeteria opens at 8am.")))
    files.append(("files", ("tools/setup.exe", b"MZ")))  # refused alone, listed on the job
    job = await wait_for_job(
        client, (await client.post("/v1/collections/bad/documents", files=files)).json()["id"]
    )
    assert job["status"] == "completed_with_errors"
    [rejected] = job["rejected"]
    assert rejected["name"] == "tools/setup.exe" and "unsupported file type" in rejected["reason"]
    by_source = {d["source"]: d for d in job["documents"]}
    assert by_source["good.md"]["status"] == "done"
    assert "empty" in by_source["empty.txt"]["error"]
    for name in ("corrupt.pdf", "encrypted.pdf", "binary.txt"):
        assert by_source[name]["status"] == "failed" and by_source[name]["error"]
    docs = {d["source"]: d for d in (await client.get("/v1/collections/bad/documents")).json()}
    assert docs["empty.txt"]["status"] == "failed" and docs["good.md"]["status"] == "indexed"


async def test_request_errors_are_clear(client: httpx.AsyncClient) -> None:
    await client.post("/v1/collections", json={"name": "errs"})
    error = assert_error(
        await client.post("/v1/collections/errs/documents", files=[("files", ("x.exe", b"MZ"))]),
        415,
        "unsupported_media_type",
    )
    assert ".pdf" in error["message"] and ".docx" in error["message"]
    two = [("files", ("x.exe", b"MZ")), ("files", ("y.dll", b"MZ"))]
    error = assert_error(
        await client.post("/v1/collections/errs/documents", files=two),
        415,
        "unsupported_media_type",
    )
    assert error["message"].startswith("none of the 2 files is of a supported type")
    assert_error(
        await client.post("/v1/collections/nope/documents", files=[("files", ("a.md", b"# a"))]),
        404,
        "not_found",
    )
    assert_error(
        await client.post("/v1/query", json={"collection": "nope", "question": "hi"}),
        404,
        "not_found",
    )
    assert_error(await client.get("/v1/jobs/does-not-exist"), 404, "not_found")
    malformed = await client.post(
        "/v1/query",
        content=b'{"collection": "errs", "question": ',
        headers={"content-type": "application/json"},
    )
    assert_error(malformed, 422, "validation_error")
    assert_error(
        await client.post("/v1/query", json={"collection": "errs"}), 422, "validation_error"
    )
    big = io.BytesIO(b"a" * (2 * 2**20))
    assert_error(
        await client.post("/v1/collections/errs/documents", files=[("files", ("big.txt", big))]),
        413,
        "payload_too_large",
    )
    assert_error(await client.post("/v1/collections", json={"name": "errs"}), 409, "conflict")
    assert_error(await client.get("/v1/no-such-route"), 404, "not_found")


async def test_delete_document_removes_its_vectors(client: httpx.AsyncClient, app: FastAPI) -> None:
    await client.post("/v1/collections", json={"name": "del"})
    response = await client.post(
        "/v1/collections/del/documents/text",
        json={
            "documents": [
                {"source": "notes/parking", "text": "Visitor parking is behind building C."}
            ]
        },
    )
    job = await wait_for_job(client, response.json()["id"])
    doc_id = job["documents"][0]["document_id"]
    store = app.state.runtime.store
    assert store.count("del", doc_id) > 0
    assert (await client.delete(f"/v1/collections/del/documents/{doc_id}")).status_code == 204
    assert store.count("del", doc_id) == 0
    assert_error(await client.get(f"/v1/collections/del/documents/{doc_id}"), 404, "not_found")
    assert (await client.delete("/v1/collections/del")).status_code == 204
    assert_error(await client.get("/v1/collections/del"), 404, "not_found")


async def test_broker_down_refuses_uploads_with_503(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await client.post("/v1/collections", json={"name": "down"})
    runtime = app.state.runtime
    dead = Dispatcher(
        _dead_broker(), runtime.jobs, queue="unused", redispatch_after_s=60, lease_s=60
    )
    intake = Intake(runtime.settings, runtime.jobs, dead, runtime.audit)
    app.dependency_overrides[get_intake] = lambda: intake
    try:
        response = await client.post(
            "/v1/collections/down/documents", files=[("files", ("a.md", b"# a"))]
        )
    finally:
        app.dependency_overrides.clear()
    error = assert_error(response, 503, "backend_unavailable")
    assert error["backend"] == "broker"
    assert (await client.get("/v1/collections/down/documents")).json() == []


async def test_accepted_work_survives_a_broker_outage(
    client: httpx.AsyncClient, app: FastAPI, tmp_path: Path
) -> None:
    runtime = app.state.runtime
    await client.post("/v1/collections", json={"name": "outage"})
    staged = stage(
        io.BytesIO(b"# Badges\n\nBadges are renewed every March."),
        "badges.md",
        tmp_path,
        max_bytes=2**20,
    )
    submission = runtime.jobs.submit("outage", [staged])
    dead = Dispatcher(
        _dead_broker(), runtime.jobs, queue="unused", redispatch_after_s=60, lease_s=60
    )
    with pytest.raises(BackendUnavailable):
        dead.dispatch(submission.to_dispatch)
    # Intake's policy: work already recorded is accepted, and waits for the relay.
    Intake(runtime.settings, runtime.jobs, dead, runtime.audit).publish(submission.to_dispatch)
    assert runtime.jobs.undispatched() == submission.to_dispatch
    assert app.state.dispatcher.relay_once() == 1  # the broker is back: the relay sends it
    job = await wait_for_job(client, submission.job.id)
    assert job["status"] == "succeeded"


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"]) >= {
        "database",
        "broker",
        "store",
        "embedder",
        "generator",
        "worker",
    }
    assert "/v1/query" in (await client.get("/openapi.json")).json()["paths"]


def _dead_broker() -> Celery:
    app = Celery("dead", broker="redis://127.0.0.1:1/0")
    app.conf.broker_connection_timeout = 1
    app.conf.task_publish_retry_policy = {"max_retries": 0}
    return app
