"""Security over HTTP: every /v1 route refuses a missing key (401), a key without its scope
(403) and another tenant's collection or job (404, worded exactly as a missing one); document
permissions through keys and delegation; audit; limits. Real app, real backends."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.main import create_app
from rag.collections import IncomingFile
from rag.errors import RateLimited
from tests.conftest import make_settings
from tests.e2e.conftest import key_headers
from tests.e2e.test_api import assert_error, wait_for_job

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# Every /v1 route and the scope it needs. A new route must be added here (a test checks).
ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/v1/collections"): "admin",
    ("GET", "/v1/collections"): "query|ingest",
    ("GET", "/v1/collections/{collection}"): "query|ingest",
    ("DELETE", "/v1/collections/{collection}"): "admin",
    ("POST", "/v1/collections/{collection}/documents"): "ingest",
    ("POST", "/v1/collections/{collection}/documents/text"): "ingest",
    ("GET", "/v1/collections/{collection}/documents"): "ingest",
    ("GET", "/v1/collections/{collection}/documents/{document_id}"): "ingest",
    ("GET", "/v1/collections/{collection}/documents/{document_id}/text"): "query",
    ("GET", "/v1/collections/{collection}/documents/{document_id}/pages/{page}"): "query",
    ("PUT", "/v1/collections/{collection}/documents/{document_id}/permissions"): "ingest",
    ("DELETE", "/v1/collections/{collection}/documents/{document_id}"): "ingest",
    ("GET", "/v1/jobs"): "ingest",
    ("POST", "/v1/jobs"): "ingest",
    ("POST", "/v1/jobs/archive"): "ingest",
    ("GET", "/v1/jobs/{job_id}"): "ingest",
    ("GET", "/v1/jobs/{job_id}/events"): "ingest",
    ("DELETE", "/v1/jobs/{job_id}"): "ingest",
    ("POST", "/v1/jobs/{job_id}/pause"): "ingest",
    ("POST", "/v1/jobs/{job_id}/resume"): "ingest",
    ("POST", "/v1/jobs/{job_id}/retry"): "ingest",
    ("POST", "/v1/jobs/{job_id}/prune"): "ingest",
    ("GET", "/v1/dead-letter"): "ingest",
    ("POST", "/v1/dead-letter/retry"): "ingest",
    ("POST", "/v1/retrieve"): "query",
    ("POST", "/v1/query"): "query",
    ("GET", "/v1/models"): "query",
    ("POST", "/v1/feedback"): "query",
    ("POST", "/v1/keys"): "admin",
    ("GET", "/v1/keys"): "admin",
    ("DELETE", "/v1/keys/{key}"): "admin",
    ("GET", "/v1/audit"): "admin",
}
WRONG_SCOPE = {"query": ["ingest"], "ingest": ["query"], "admin": ["query", "ingest"]}
USERS = {"alice": ["hr"], "bob": ["eng"]}


@asynccontextmanager
async def security_app(data_dir: Path) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        data_dir, api={"max_json_mb": 1}, auth={"user_groups": USERS, "max_active_jobs": 50}
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="module")
async def app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FastAPI]:
    async with security_app(tmp_path_factory.mktemp("security")) as application:
        yield application


@pytest.fixture(scope="module")
async def world(client: httpx.AsyncClient, app: FastAPI) -> dict[str, Any]:
    return await make_world(client, app)


async def make_world(client: httpx.AsyncClient, app: FastAPI) -> dict[str, Any]:
    """Collections 'mine' and 'theirs', each with documents and a job; keys of every kind."""
    ids: dict[str, Any] = {}
    for name in ("mine", "theirs"):
        assert (await client.post("/v1/collections", json={"name": name})).status_code == 201
        docs = [
            {"source": "public.md", "text": f"# Cafeteria\n\nThe {name} cafeteria opens at 8."},
            {
                "source": "hr.md",
                "text": f"# Salaries\n\nThe {name} salary review happens in March.",
                "allowed_groups": ["hr"],
            },
            {
                "source": "bob.md",
                "text": f"# Bob's plan\n\nThe {name} launch plan is called Falcon.",
                "allowed_users": ["bob"],
            },
        ]
        response = await client.post(
            f"/v1/collections/{name}/documents/text", json={"documents": docs}
        )
        job = await wait_for_job(client, response.json()["id"])
        assert job["status"] == "succeeded", job
        listed = (await client.get(f"/v1/collections/{name}/documents")).json()
        ids[name] = {"job": job["id"], "docs": {d["source"]: d["id"] for d in listed}}
    ids["keys"] = {
        scope: key_headers(app, f"only-{scope}", WRONG_SCOPE[scope])
        for scope in ("query", "ingest", "admin")
    }
    ids["tenant"] = key_headers(app, "tenant", ["admin"], collections=["mine"])
    return ids


def _request(method: str, path: str, world: dict[str, Any], collection: str) -> dict[str, Any]:
    """A well-formed request for the route, aimed at `collection` and its objects."""
    target = world[collection]
    url = (
        path.replace("{collection}", collection)
        .replace("{document_id}", target["docs"]["public.md"])
        .replace("{job_id}", target["job"])
        .replace("{key}", "nobody")
        .replace("{page}", "1")
    )
    body: dict[str, Any] = {}
    if path in ("/v1/retrieve", "/v1/query"):
        body = {"json": {"collection": collection, "question": "When does the cafeteria open?"}}
    elif path == "/v1/jobs" and method == "POST":
        body = {"json": {"collection": collection, "manifest": [{"path": "/nowhere/a.md"}]}}
    elif path == "/v1/jobs/archive":
        body = {"data": {"collection": collection}, "files": [("archive", ("a.zip", b"PK"))]}
    elif path.endswith("/documents") and method == "POST":
        body = {"files": [("files", ("new.md", b"# New\n\nA new note."))]}
    elif path.endswith("/text"):
        body = {"json": {"documents": [{"source": "t.md", "text": "# T\n\nText."}]}}
    elif path.endswith("/permissions"):
        body = {"json": {"allowed_groups": ["hr"]}}
    elif path.endswith("/prune"):
        body = {"json": {"prefix": "gone/"}}
    elif path == "/v1/feedback":
        body = {"json": {"answer_id": "unknown", "value": 1}}
    elif path == "/v1/keys" and method == "POST":
        body = {"json": {"name": "never", "scopes": ["query"]}}
    if method == "GET" and path in ("/v1/jobs", "/v1/dead-letter"):
        body = {"params": {"collection": collection}}
    if method == "POST" and path == "/v1/dead-letter/retry":
        body = {"params": {"collection": collection}}
    return {"method": method, "url": url, **body}


async def test_every_route_is_in_the_table(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    routes = {(m.upper(), p) for p, ops in paths.items() if p.startswith("/v1/") for m in ops}
    assert routes == set(ROUTES)


@pytest.mark.parametrize(("method", "path"), sorted(ROUTES))
async def test_no_key_is_401(app: FastAPI, world: dict[str, Any], method: str, path: str) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rag.test") as anonymous:
        request = _request(method, path, world, "mine")
        response = await anonymous.request(**request)
        assert_error(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"] == "Bearer"
        bad = {"Authorization": "Bearer rag_0123456789ab_not-the-secret"}
        assert_error(await anonymous.request(**request, headers=bad), 401, "unauthenticated")


# Routes some key can lack the scope of (every key holds query, ingest or admin).
SCOPED = sorted(route for route, scope in ROUTES.items() if scope in WRONG_SCOPE)


@pytest.mark.parametrize(("method", "path"), SCOPED)
async def test_a_key_without_the_scope_is_403(
    client: httpx.AsyncClient, world: dict[str, Any], method: str, path: str
) -> None:
    headers = world["keys"][ROUTES[(method, path)]]
    response = await client.request(**_request(method, path, world, "mine"), headers=headers)
    assert_error(response, 403, "forbidden")


TENANT_ROUTES = [
    r
    for r in sorted(ROUTES)
    if "{collection}" in r[1]
    or "{job_id}" in r[1]
    or r[1] in ("/v1/retrieve", "/v1/query")
    or r in {("POST", "/v1/jobs"), ("POST", "/v1/jobs/archive"), ("GET", "/v1/jobs")}
    or r[1].startswith("/v1/dead-letter")
]


@pytest.mark.parametrize(("method", "path"), TENANT_ROUTES)
async def test_another_tenants_collection_is_404_as_if_missing(
    client: httpx.AsyncClient, world: dict[str, Any], method: str, path: str
) -> None:
    theirs = await client.request(
        **_request(method, path, world, "theirs"), headers=world["tenant"]
    )
    error = assert_error(theirs, 404, "not_found")
    if "{job_id}" in path:
        return
    # Worded exactly as for a collection that does not exist (asked by an unlimited key).
    nowhere = {**world, "nowhere": world["theirs"]}
    missing = await client.request(**_request(method, path, nowhere, "nowhere"))
    if missing.status_code == 404:
        assert missing.json()["error"]["message"] == error["message"].replace("theirs", "nowhere")


async def test_tenant_lists_and_admin_routes_are_limited(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    tenant = world["tenant"]
    listed = (await client.get("/v1/collections", headers=tenant)).json()
    assert [c["name"] for c in listed] == ["mine"]
    jobs = (await client.get("/v1/jobs", headers=tenant)).json()
    assert {j["collection"] for j in jobs} == {"mine"}
    # A second collection searched with the first is checked as the first is.
    body = {"collection": "mine", "collections": ["theirs"], "question": "When?"}
    error = assert_error(
        await client.post("/v1/query", json=body, headers=tenant), 404, "not_found"
    )
    assert error["message"] == "collection 'theirs' not found"
    # A collection-limited admin key could otherwise mint itself a wider key.
    assert_error(await client.get("/v1/keys", headers=tenant), 403, "forbidden")
    body = {"name": "wider", "scopes": ["admin"]}
    assert_error(await client.post("/v1/keys", json=body, headers=tenant), 403, "forbidden")


async def _retrieved(
    client: httpx.AsyncClient, headers: dict[str, str], question: str, collection: str = "mine"
) -> set[str]:
    body = {"collection": collection, "question": question, "top_k": 10}
    response = await client.post("/v1/retrieve", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return {hit["source"] for hit in response.json()["hits"]}


async def test_documents_are_read_by_their_groups_and_users_only(
    client: httpx.AsyncClient, app: FastAPI, world: dict[str, Any]
) -> None:
    question = "salary review, cafeteria and launch plan"
    hr = key_headers(app, "hr-reader", ["query"], groups=["hr"])
    nobody = key_headers(app, "plain-reader", ["query"])
    assert await _retrieved(client, hr, question) == {"public.md", "hr.md"}
    assert await _retrieved(client, nobody, question) == {"public.md"}
    assert await _retrieved(client, client.headers, question) == {"public.md", "hr.md", "bob.md"}
    count = (await client.get("/v1/collections/mine", headers=nobody)).json()["document_count"]
    assert count == 1  # counts do not reveal unreadable documents

    bot = key_headers(app, "chat-bot", ["query"], delegate=True)
    as_bob = {**bot, "X-On-Behalf-Of": "bob"}
    as_alice = {**bot, "X-On-Behalf-Of": "alice"}
    assert await _retrieved(client, as_bob, question) == {"public.md", "bob.md"}
    assert await _retrieved(client, as_alice, question) == {"public.md", "hr.md"}
    response = await client.post(
        "/v1/retrieve",
        json={"collection": "mine", "question": question},
        headers={**hr, "X-On-Behalf-Of": "bob"},
    )
    assert_error(response, 403, "forbidden")  # only delegate keys may name a user
    response = await client.get("/v1/models", headers={**bot, "X-On-Behalf-Of": "two words"})
    assert_error(response, 422, "invalid_input")

    # Permissions change in place: no re-embedding, visible at once.
    embedder = app.state.runtime.embedder
    embedded = embedder.documents_embedded
    hr_doc = world["mine"]["docs"]["hr.md"]
    url = f"/v1/collections/mine/documents/{hr_doc}/permissions"
    changed = await client.put(url, json={"allowed_groups": ["eng"]})
    assert changed.status_code == 200 and changed.json()["allowed_groups"] == ["eng"]
    assert await _retrieved(client, hr, question) == {"public.md"}
    assert await _retrieved(client, as_bob, question) == {"public.md", "bob.md", "hr.md"}
    assert embedder.documents_embedded == embedded
    await client.put(url, json={"allowed_groups": ["hr"]})

    # Streamed answers see the same documents as retrieval.
    body = {"collection": "mine", "question": "When is the salary review?", "stream": True}
    async with client.stream("POST", "/v1/query", json=body, headers=nobody) as stream:
        text = "".join([line async for line in stream.aiter_lines()])
    assert "March" not in text and "hr.md" not in text


async def test_re_ingesting_changes_access_only_when_asked_and_audits_it(
    client: httpx.AsyncClient, app: FastAPI, world: dict[str, Any]
) -> None:
    question, url = "When is the salary review?", "/v1/collections/theirs/documents"
    nobody = key_headers(app, "reingest-reader", ["query"])
    doc_id = world["theirs"]["docs"]["hr.md"]

    async def item_after(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code == 202, response.text
        job = await wait_for_job(client, response.json()["id"])
        (item,) = [d for d in job["documents"] if d["document_id"] == doc_id]
        return dict(item)

    async def access() -> list[str]:
        return list((await client.get(f"{url}/{doc_id}")).json()["allowed_groups"])

    # The same bytes, and then new bytes, without any access list: still hr's only.
    same = {"source": "hr.md", "text": "# Salaries\n\nThe theirs salary review happens in March."}
    item = await item_after(await client.post(f"{url}/text", json={"documents": [same]}))
    assert item["status"] == "skipped" and item["error"] == "unchanged", item
    new = {"files": [("files", ("hr.md", b"# Salaries\n\nThe salary review moves to April."))]}
    assert (await item_after(await client.post(url, **new)))["status"] == "done"
    assert await access() == ["hr"]
    assert "hr.md" not in await _retrieved(client, nobody, question, "theirs")

    # A misspelled access field is refused, in a form and in JSON: never a public document.
    typo = await client.post(url, data={"allowed_group": "hr"}, **new)
    assert "allowed_group" in assert_error(typo, 422, "invalid_input")["message"]
    body = {"documents": [{**same, "allowedGroups": ["hr"]}]}
    assert_error(await client.post(f"{url}/text", json=body), 422, "validation_error")

    # Naming a list changes it: on the item, in the store at once, and in the audit log.
    item = await item_after(await client.post(url, data={"allowed_groups": "eng"}, **new))
    assert item["error"] == "unchanged; access changed from group:hr to group:eng", item
    assert await access() == ["eng"]
    eng = key_headers(app, "reingest-eng", ["query"], groups=["eng"])
    assert "hr.md" in await _retrieved(client, eng, question, "theirs")
    entries = (await client.get("/v1/audit", params={"action": "permissions"})).json()
    (entry,) = [e for e in entries if e["target"] == doc_id]
    assert entry["detail"]["allowed_groups"] == ["eng"]
    assert entry["detail"]["previous"] == ["group:hr"]
    await client.put(f"{url}/{doc_id}/permissions", json={"allowed_groups": ["hr"]})


async def test_the_audit_log_records_who_did_what(
    client: httpx.AsyncClient, app: FastAPI, world: dict[str, Any]
) -> None:
    reader = key_headers(app, "audited", ["query"])
    body = {"collection": "mine", "question": "When does the cafeteria open?"}
    assert (await client.post("/v1/retrieve", json=body, headers=reader)).status_code == 200
    entries = (await client.get("/v1/audit", params={"key": "audited"})).json()
    (entry,) = entries
    assert entry["action"] == "retrieve" and entry["collection"] == "mine"
    assert world["mine"]["docs"]["public.md"] in entry["detail"]["document_ids"]
    assert "cafeteria" not in json.dumps(entry)  # ids, not text, by default
    created = (await client.get("/v1/audit", params={"action": "key.create"})).json()
    assert created == []  # keys made through the runtime, not the API, in this module
    await client.post("/v1/keys", json={"name": "via-api", "scopes": ["query"]})
    created = (await client.get("/v1/audit", params={"action": "key.create"})).json()
    assert [e["target"] for e in created] == ["via-api"]
    denied = (await client.get("/v1/audit", params={"action": "denied", "limit": 1})).json()
    assert denied and denied[0]["status"] == 403


async def test_keys_are_shown_once_stored_hashed_and_revocable(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    created = (
        await client.post("/v1/keys", json={"name": "short-lived", "scopes": ["query"]})
    ).json()
    secret = created["key"]
    listed = (await client.get("/v1/keys")).text
    assert secret.removeprefix(f"rag_{created['id']}_") not in listed
    own = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/v1/models", headers=own)).status_code == 200
    used = [k for k in (await client.get("/v1/keys")).json() if k["name"] == "short-lived"]
    assert used[0]["last_used_at"] is not None
    assert (await client.delete("/v1/keys/short-lived")).status_code == 200
    assert_error(await client.get("/v1/models", headers=own), 401, "unauthenticated")


async def test_limits_name_the_setting(client: httpx.AsyncClient, app: FastAPI) -> None:
    long = {"collection": "mine", "question": "x" * 2001}
    error = assert_error(await client.post("/v1/retrieve", json=long), 422, "invalid_input")
    assert "api.max_question_chars" in error["message"]
    deep = {"collection": "mine", "question": "cafeteria", "top_k": 51}
    error = assert_error(await client.post("/v1/retrieve", json=deep), 422, "invalid_input")
    assert "retrieval.max_top_k" in error["message"]
    huge = {"documents": [{"source": "big.md", "text": "a" * (2 << 20)}]}
    response = await client.post("/v1/collections/mine/documents/text", json=huge)
    assert "api.max_json_mb" in assert_error(response, 413, "payload_too_large")["message"]
    big = {"files": [("files", ("big.md", io.BytesIO(b"a" * (60 << 20))))]}
    response = await client.post("/v1/collections/mine/documents", **big)
    assert "api.max_upload_mb" in assert_error(response, 413, "payload_too_large")["message"]


async def test_unfinished_jobs_per_key_are_capped(app: FastAPI, tmp_path: Path) -> None:
    jobs = app.state.runtime.jobs
    path = tmp_path / "a.md"

    def staged(n: int) -> list[IncomingFile]:
        path.write_text(f"# Note {n}")
        return [IncomingFile(path, f"cap-{n}.md", path.stat().st_size, f"{n:064x}")]

    jobs.submit("mine", staged(1), key_id="capped", max_active_jobs=1)  # queued, never sent
    with pytest.raises(RateLimited, match="auth.max_active_jobs=1"):
        jobs.submit("mine", staged(2), key_id="capped", max_active_jobs=1)
    jobs.submit("mine", staged(3), key_id="other", max_active_jobs=1)
