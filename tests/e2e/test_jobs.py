"""Bulk ingestion jobs over HTTP with the real worker, store and embedder: incremental
re-ingest, atomic replacement, cancel, pause, dead letters, archives, manifests, progress."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from api.main import create_app
from rag.db.tables import DocumentRow
from tests.conftest import FIXTURES, make_settings
from tests.e2e.conftest import zip_bytes
from tests.e2e.test_api import assert_error, wait_for_job

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture(scope="module")
async def app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FastAPI]:
    data_dir = tmp_path_factory.mktemp("jobs")
    served = tmp_path_factory.mktemp("served")
    settings = make_settings(
        data_dir,
        api={"max_upload_mb": 1},
        ingest={"allowed_roots": [served], "max_archive_mb": 5, "max_archive_ratio": 50},
    )
    application = create_app(settings)
    application.state.served = served
    async with application.router.lifespan_context(application):
        yield application


def _note(n: int, extra: str = "") -> bytes:
    return f"# Note {n}\n\nBuilding {n} opens at {n % 12 + 1} am. {extra}".encode()


async def _collection(client: httpx.AsyncClient, name: str) -> None:
    assert (await client.post("/v1/collections", json={"name": name})).status_code == 201


async def _upload(client: httpx.AsyncClient, collection: str, files: list[Any]) -> dict[str, Any]:
    response = await client.post(f"/v1/collections/{collection}/documents", files=files)
    assert response.status_code == 202, response.text
    return dict(response.json())


async def test_reingesting_unchanged_files_embeds_nothing(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await _collection(client, "inc")
    files = [("files", (f"notes/n{n}.md", _note(n))) for n in range(6)]
    first = await wait_for_job(client, (await _upload(client, "inc", files))["id"])
    assert first["counts"]["done"] == 6 and first["status"] == "succeeded"
    assert {d["source"] for d in first["documents"]} == {f"notes/n{n}.md" for n in range(6)}
    embedder = app.state.runtime.embedder
    before = embedder.documents_embedded
    again = await _upload(client, "inc", files)
    assert again["status"] == "succeeded" and again["counts"]["skipped"] == 6
    assert {d["error"] for d in again["documents"]} == {"unchanged"}
    assert embedder.documents_embedded == before  # not one chunk embedded again


async def test_a_changed_document_replaces_its_chunks_without_a_gap_or_a_mix(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await _collection(client, "swap")
    old = "The shuttle to the airport leaves at noon. " * 60
    new = "The shuttle to the airport leaves at three. " * 70
    job = await wait_for_job(
        client, (await _upload(client, "swap", [("files", ("shuttle.md", old.encode()))]))["id"]
    )
    doc_id = job["documents"][0]["document_id"]
    seen: list[set[str]] = []

    async def read_while_replacing() -> None:
        body = {"collection": "swap", "question": "when does the airport shuttle leave", "top_k": 8}
        while not replaced.is_set():
            hits = (await client.post("/v1/retrieve", json=body | {"max_per_document": 0})).json()
            seen.append({"noon" if "noon" in h["text"] else "three" for h in hits["hits"]})
            await anyio.lowlevel.checkpoint()

    replaced = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(read_while_replacing)
        job = await _upload(client, "swap", [("files", ("shuttle.md", new.encode()))])
        await wait_for_job(client, job["id"])
        replaced.set()
    assert seen and all(kinds in ({"noon"}, {"three"}) for kinds in seen), seen  # never both
    doc = (await client.get(f"/v1/collections/swap/documents/{doc_id}")).json()
    assert doc["version"] == 2 and doc["status"] == "indexed"
    store = app.state.runtime.store
    assert store.count("swap", doc_id) == doc["chunk_count"]  # the old version is gone


async def test_cancel_drops_queued_documents_and_keeps_the_index_consistent(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await _collection(client, "cancel")
    files = [("files", (f"c{n}.md", _note(n, "word " * 400))) for n in range(30)]
    job = await _upload(client, "cancel", files)
    cancelled = (await client.delete(f"/v1/jobs/{job['id']}")).json()
    assert cancelled["status"] == "cancelled"
    with anyio.fail_after(60):  # running ones stop at their next boundary
        while True:
            job = (await client.get(f"/v1/jobs/{job['id']}")).json()
            if not job["counts"]["parsing"] + job["counts"]["embedding"]:
                break
            await anyio.sleep(0.2)
    assert job["counts"]["skipped"] > 0
    assert job["counts"]["done"] + job["counts"]["skipped"] == 30
    store = app.state.runtime.store
    for doc in (await client.get("/v1/collections/cancel/documents")).json():
        expected = doc["chunk_count"] if doc["status"] == "indexed" else 0
        assert doc["status"] in ("indexed", "cancelled")
        assert store.count("cancel", doc["id"]) == expected


async def test_pause_holds_work_until_resume(client: httpx.AsyncClient) -> None:
    await _collection(client, "pause")
    job = await _upload(client, "pause", [("files", (f"p{n}.md", _note(n))) for n in range(30)])
    paused = (await client.post(f"/v1/jobs/{job['id']}/pause")).json()
    assert paused["status"] == "paused"
    await anyio.sleep(3)
    held = (await client.get(f"/v1/jobs/{job['id']}")).json()
    assert held["status"] == "paused" and held["counts"]["queued"] > 0
    assert (await client.post(f"/v1/jobs/{job['id']}/resume")).status_code == 200
    done = await wait_for_job(client, job["id"])
    assert done["status"] == "succeeded" and done["counts"]["done"] == 30


async def test_failed_documents_are_dead_lettered_and_retried_with_one_call(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await _collection(client, "dlq")
    files = [
        ("files", ("broken.txt", (FIXTURES / "binary.txt").read_bytes())),
        ("files", ("fine.md", _note(1))),
    ]
    job = await wait_for_job(client, (await _upload(client, "dlq", files))["id"])
    assert job["status"] == "completed_with_errors"  # one bad document never fails the job
    dead = (await client.get("/v1/dead-letter", params={"collection": "dlq"})).json()
    assert [d["source"] for d in dead] == ["broken.txt"] and dead[0]["error"]
    with app.state.runtime.db.session() as session:  # the cause is fixed (e.g. a new parser)
        query = select(DocumentRow.file_path).where(DocumentRow.source == "broken.txt")
        path = str(session.scalar(query))
    await anyio.Path(path).write_text("Repaired: the archive room is on floor two.")
    retried = await client.post(f"/v1/jobs/{job['id']}/retry")
    assert retried.status_code == 200 and retried.json()["counts"]["failed"] == 0
    job = await wait_for_job(client, job["id"])
    assert job["status"] == "succeeded", job
    assert (await client.get("/v1/dead-letter", params={"collection": "dlq"})).json() == []


async def test_duplicate_content_is_indexed_once_with_both_sources_recorded(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await _collection(client, "dup")
    same = _note(7)
    files = [("files", ("a/policy.md", same)), ("files", ("b/policy-copy.md", same))]
    job = await wait_for_job(client, (await _upload(client, "dup", files))["id"])
    by_source = {d["source"]: d for d in job["documents"]}
    assert by_source["a/policy.md"]["status"] == "done"
    assert by_source["b/policy-copy.md"]["error"] == "same content as a/policy.md"
    docs = {d["source"]: d for d in (await client.get("/v1/collections/dup/documents")).json()}
    assert docs["b/policy-copy.md"]["duplicate_of"] == docs["a/policy.md"]["id"]
    store = app.state.runtime.store
    copy_id = docs["b/policy-copy.md"]["id"]
    assert store.count("dup", copy_id) == 0
    assert store.count("dup") == docs["a/policy.md"]["chunk_count"]
    deleted = await client.delete(f"/v1/collections/dup/documents/{docs['a/policy.md']['id']}")
    assert deleted.status_code == 204  # the copy takes the original's place: nothing is lost
    replacement = (await client.get("/v1/jobs", params={"collection": "dup", "limit": 1})).json()
    assert replacement[0]["origin"] == "replaces deleted a/policy.md"
    await wait_for_job(client, replacement[0]["id"])
    copy = (await client.get(f"/v1/collections/dup/documents/{copy_id}")).json()
    assert copy["status"] == "indexed" and copy["duplicate_of"] is None
    assert store.count("dup") == store.count("dup", copy_id) == copy["chunk_count"] > 0


async def test_archive_jobs_reject_unsafe_members_and_index_the_rest(
    client: httpx.AsyncClient,
) -> None:
    await _collection(client, "arc")
    archive = zip_bytes(
        {
            "guide/intro.md": _note(1),
            "guide/more/details.txt": b"Details: badges are blue.",
            "../../etc/passwd": b"root:x:0:0",
            "tool.exe": b"MZ",
            "empty.txt": b"",
            "bomb.txt": b"0" * (3 * 2**20),  # 3 MiB of zeros: ratio far above 50
        }
    )
    response = await client.post(
        "/v1/jobs/archive",
        data={"collection": "arc", "metadata": '{"team": "ops"}'},
        files=[("archive", ("guide.zip", archive))],
    )
    assert response.status_code == 202, response.text
    job = await wait_for_job(client, response.json()["id"])
    assert job["origin"] == "archive guide.zip" and job["status"] == "completed_with_errors"
    by_source = {d["source"]: d for d in job["documents"]}
    assert by_source["guide/intro.md"]["status"] == "done"
    assert by_source["guide/more/details.txt"]["status"] == "done"
    assert by_source["empty.txt"]["status"] == "failed"
    rejected = {r["name"]: r["reason"] for r in job["rejected"]}
    assert set(rejected) == {"../../etc/passwd", "tool.exe", "bomb.txt"}, rejected
    tarred = io.BytesIO()
    with tarfile.open(fileobj=tarred, mode="w:gz") as tf:
        info = tarfile.TarInfo("link.md")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    response = await client.post(
        "/v1/jobs/archive",
        data={"collection": "arc"},
        files=[("archive", ("links.tar.gz", tarred.getvalue()))],
    )
    job = await wait_for_job(client, response.json()["id"])
    assert job["status"] == "failed" and [r["name"] for r in job["rejected"]] == ["link.md"]
    not_archive = await client.post(
        "/v1/jobs/archive", data={"collection": "arc"}, files=[("archive", ("x.zip", b"nope"))]
    )
    assert_error(not_archive, 422, "invalid_input")


async def test_server_folder_jobs_stay_inside_allowed_roots_and_prune(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await _collection(client, "srv")
    folder = app.state.served / "handbook"
    (folder / "hr").mkdir(parents=True)
    for n in range(3):
        (folder / "hr" / f"h{n}.md").write_bytes(_note(n))
    (folder / "draft.md").write_bytes(_note(9))
    body = {"collection": "srv", "folder": {"path": str(folder), "exclude": ["draft.md"]}}
    job = await wait_for_job(client, (await client.post("/v1/jobs", json=body)).json()["id"])
    assert sorted(d["source"] for d in job["documents"]) == [
        f"handbook/hr/h{n}.md" for n in range(3)
    ]
    (folder / "hr" / "h2.md").unlink()
    body["folder"]["prune"] = True
    job = await wait_for_job(client, (await client.post("/v1/jobs", json=body)).json()["id"])
    assert job["pruned"] == 1 and job["counts"]["skipped"] == 2
    sources = {d["source"] for d in (await client.get("/v1/collections/srv/documents")).json()}
    assert sources == {"handbook/hr/h0.md", "handbook/hr/h1.md"}
    outside = {"collection": "srv", "folder": {"path": "/etc"}}
    assert_error(await client.post("/v1/jobs", json=outside), 422, "invalid_input")
    manifest = {
        "collection": "srv",
        "manifest": [
            {"path": str(folder / "draft.md"), "metadata": {"team": "hr"}},
            {"path": "/etc/hostname"},
            {"url": "http://example.com/a.md"},
        ],
    }
    job = await wait_for_job(client, (await client.post("/v1/jobs", json=manifest)).json()["id"])
    assert job["counts"]["done"] == 1 and len(job["rejected"]) == 2
    reasons = " ".join(r["reason"] for r in job["rejected"])
    assert "outside the allowed folders" in reasons and "RAG_INGEST__ALLOWED_URL_HOSTS" in reasons
    error = assert_error(
        await client.post("/v1/jobs", json={"collection": "srv"}), 422, "validation_error"
    )
    assert "exactly one of folder, files or manifest" in error["message"]


async def test_progress_streams_as_server_sent_events(client: httpx.AsyncClient) -> None:
    await _collection(client, "sse")
    job = await _upload(client, "sse", [("files", (f"s{n}.md", _note(n))) for n in range(4)])
    events: list[tuple[str, dict[str, Any]]] = []
    with anyio.fail_after(120):
        async with client.stream("GET", f"/v1/jobs/{job['id']}/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            name = ""
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    events.append((name, json.loads(line[5:])))
    assert events[-1][0] == "done" and events[-1][1]["counts"]["done"] == 4
    assert events[-1][1]["docs_per_s"] > 0 and events[-1][1]["eta_s"] == 0
    assert_error(await client.get("/v1/jobs/nope/events"), 404, "not_found")


async def test_job_lists_and_pages(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/v1/jobs")).json()
    assert listed and all(job["documents"] == [] for job in listed)
    job_id = listed[-1]["id"]
    page = (await client.get(f"/v1/jobs/{job_id}", params={"documents_limit": 1})).json()
    assert len(page["documents"]) == 1
