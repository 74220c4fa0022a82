"""Security probe findings (issue 17) over HTTP, real app and backends: metadata field names
show only to keys that may read a document carrying them; a one-line text file is indexed; a
filter bound of NaN or Infinity is refused; a bad archive member is rejected alone; a collection
name may not end with a newline; a text document's source follows the upload rule; an upload's
name may not hold bidirectional controls. (Body limits: test_security_processes.py; access lists
on re-ingest and unknown fields: test_security.py; verified streams: test_api_models.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from api.main import create_app
from tests.conftest import make_settings
from tests.e2e.conftest import key_headers, zip_bytes
from tests.e2e.test_api import assert_error, wait_for_job

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

COLLECTION, NAMES = "fields", "names"


@pytest.fixture(scope="module")
async def app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(tmp_path_factory.mktemp("hardening")))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="module")
async def keys(client: httpx.AsyncClient, app: FastAPI) -> dict[str, dict[str, str]]:
    """A public document with field `team`, one for group hr only with `salary_band`."""
    assert (await client.post("/v1/collections", json={"name": COLLECTION})).status_code == 201
    docs = [
        {
            "source": "cafeteria.md",
            "text": "# Cafeteria\n\nThe cafeteria opens at 8.",
            "metadata": {"team": "facilities"},
        },
        {
            "source": "pay.md",
            "text": "# Pay\n\nSalary band B pays between 50k and 60k.",
            "metadata": {"salary_band": "B"},
            "allowed_groups": ["hr"],
        },
    ]
    response = await client.post(
        f"/v1/collections/{COLLECTION}/documents/text", json={"documents": docs}
    )
    job = await wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    return {
        "plain": key_headers(app, "plain-reader", ["query"]),
        "hr": key_headers(app, "hr-reader", ["query"], groups=["hr"]),
    }


async def _fields(client: httpx.AsyncClient, headers: dict[str, str]) -> list[set[str]]:
    """The metadata field names of the collection as listed, then as fetched alone."""
    listed = (await client.get("/v1/collections", headers=headers)).json()
    one = (await client.get(f"/v1/collections/{COLLECTION}", headers=headers)).json()
    return [set(listed[0]["metadata_fields"]), set(one["metadata_fields"])]


async def test_a_key_sees_only_fields_of_documents_it_may_read(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    assert await _fields(client, keys["plain"]) == [{"team"}] * 2
    assert await _fields(client, keys["hr"]) == [{"team", "salary_band"}] * 2
    assert await _fields(client, {}) == [{"team", "salary_band"}] * 2


async def test_a_filter_on_a_field_the_key_cannot_see_is_an_unknown_field(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    body = {"collection": COLLECTION, "question": "salary band", "filters": {"salary_band": "B"}}
    refused = await client.post("/v1/retrieve", json=body, headers=keys["plain"])
    message = assert_error(refused, 422, "invalid_input")["message"]
    listed = message.split("this collection has: ")[1].split(", ")
    assert "team" in listed and "salary_band" not in listed, message

    allowed = await client.post("/v1/retrieve", json=body, headers=keys["hr"])
    assert allowed.status_code == 200, allowed.text
    assert {hit["source"] for hit in allowed.json()["hits"]} == {"pay.md"}


async def test_a_one_line_text_file_is_indexed_and_retrieved(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    files = [("files", ("hours.txt", b"Office Hours 9 To 5\n", "text/plain"))]
    response = await client.post(f"/v1/collections/{COLLECTION}/documents", files=files)
    assert response.status_code == 202, response.text
    job = await wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    body = {"collection": COLLECTION, "question": "When are the office hours?", "top_k": 1}
    hits = (await client.post("/v1/retrieve", json=body, headers=keys["plain"])).json()["hits"]
    assert [(h["source"], h["text"]) for h in hits] == [("hours.txt", "Office Hours 9 To 5")]


@pytest.mark.parametrize(
    "condition", [b'{"gte": NaN}', b'{"lt": Infinity}', b"-Infinity", b"[1, NaN]"]
)
async def test_a_non_finite_number_in_a_filter_is_refused(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]], condition: bytes
) -> None:
    raw = b'{"collection": "%s", "question": "q", "filters": {"page": %s}}' % (
        COLLECTION.encode(),
        condition,
    )
    headers = {**keys["plain"], "Content-Type": "application/json"}
    response = await client.post("/v1/retrieve", content=raw, headers=headers)
    error = assert_error(response, 422, "invalid_input")
    assert "'page'" in error["message"] and "is not a finite number" in error["message"]


@pytest.fixture(scope="module")
async def collection(client: httpx.AsyncClient) -> str:
    """A collection of its own for the names tests."""
    response = await client.post("/v1/collections", json={"name": NAMES})
    assert response.status_code == 201, response.text
    return NAMES


async def test_an_archive_member_with_a_bad_name_is_rejected_alone(
    client: httpx.AsyncClient, collection: str
) -> None:
    spoofed, long = "invoice\u202efdp.md", "x" * 253 + ".md"
    archive = zip_bytes(
        {
            "guide/intro.md": b"# Intro\n\nThe front desk opens at eight.",
            spoofed: b"# Spoof",
            "guide/bell\x07.md": b"# Bell",
            long: b"# Long",
            "guide/more.txt": b"Badges are blue.",
        }
    )
    response = await client.post(
        "/v1/jobs/archive",
        data={"collection": collection},
        files=[("archive", ("names.zip", archive))],
    )
    assert response.status_code == 202, response.text
    job = await wait_for_job(client, response.json()["id"])
    assert job["status"] == "completed_with_errors", job
    assert {d["source"]: d["status"] for d in job["documents"]} == {
        "guide/intro.md": "done",
        "guide/more.txt": "done",
    }
    rejected = {r["name"]: r["reason"] for r in job["rejected"]}
    assert set(rejected) == {spoofed, "guide/bell\x07.md", long}, rejected
    assert "U+202E" in rejected[spoofed] and "U+0007" in rejected["guide/bell\x07.md"]
    assert rejected[long].startswith("file name too long")


async def test_a_collection_name_with_a_trailing_newline_is_refused(
    client: httpx.AsyncClient,
) -> None:
    assert_error(await client.post("/v1/collections", json={"name": "x\n"}), 422, "invalid_input")
    names = [c["name"] for c in (await client.get("/v1/collections")).json()]
    assert not any(name.startswith("x") for name in names), names


async def test_a_text_document_source_may_not_climb_out(
    client: httpx.AsyncClient, collection: str
) -> None:
    for source in ("../../x", "notes/\u202egpj.md"):
        response = await client.post(
            f"/v1/collections/{collection}/documents/text",
            json={"documents": [{"source": source, "text": "# Escape"}]},
        )
        error = assert_error(response, 422, "validation_error")
        assert "invalid file name" in error["message"], error


async def test_an_upload_named_with_a_bidi_override_is_refused(
    client: httpx.AsyncClient, collection: str
) -> None:
    response = await client.post(
        f"/v1/collections/{collection}/documents",
        files=[("files", ("invoice\u202efdp.md", b"# Invoice"))],
    )
    error = assert_error(response, 422, "invalid_input")
    assert "U+202E" in error["message"], error
