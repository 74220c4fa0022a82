"""E-mails through the real API (queue, worker, store, embedder): the message is a document with
its headers as metadata, each attachment a document of its own that points back to it and is
found by retrieval, whether the message came as an upload or inside an archive."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.main import create_app
from tests.conftest import FIXTURES, make_settings
from tests.e2e.conftest import zip_bytes
from tests.e2e.test_api import wait_for_job

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
EML = "fake-email-attachment.eml"
MSG = "fake-email-attachment.msg"
ATTACHED = "Hey this is a fake attachment!"


@pytest.fixture(scope="module")
async def app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(tmp_path_factory.mktemp("email")))
    async with application.router.lifespan_context(application):
        yield application


async def _documents(client: httpx.AsyncClient, collection: str) -> dict[str, dict[str, Any]]:
    response = await client.get(f"/v1/collections/{collection}/documents")
    assert response.status_code == 200, response.text
    return {d["source"]: d for d in response.json()}


async def _retrieve(client: httpx.AsyncClient, collection: str, question: str) -> list[Any]:
    body = {"collection": collection, "question": question, "top_k": 3}
    response = await client.post("/v1/retrieve", json=body)
    assert response.status_code == 200, response.text
    hits: list[Any] = response.json()["hits"]
    return hits


async def test_an_uploaded_eml_and_its_attachment_are_documents(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post("/v1/collections", json={"name": "mail"})).status_code == 201
    response = await client.post(
        "/v1/collections/mail/documents",
        files=[("files", (EML, (FIXTURES / "formats" / EML).read_bytes()))],
        data={"metadata": '{"team": "ops"}'},
    )
    assert response.status_code == 202, response.text
    job = await wait_for_job(client, response.json()["id"])
    attachment = f"{EML}/attachments/fake-attachment.txt"
    assert job["status"] == "succeeded", job
    assert sorted(d["source"] for d in job["documents"]) == [EML, attachment]
    assert job["rejected"] == []

    docs = await _documents(client, "mail")
    message = docs[EML]
    assert message["title"] == "Fake email with attachment"
    assert message["metadata"] == {
        "team": "ops",
        "from": "Mallori Harrell <mallori@unstructured.io>",
        "to": ["Mallori Harrell <mallori@unstructured.io>"],
        "date": "2022-12-23T12:08:48-06:00",
        "subject": "Fake email with attachment",
    }
    assert docs[attachment]["status"] == "indexed"
    assert docs[attachment]["metadata"] == {
        "team": "ops",
        "attached_to": EML,
        "email_subject": "Fake email with attachment",
        "email_from": "Mallori Harrell <mallori@unstructured.io>",
        "email_date": "2022-12-23T12:08:48-06:00",
    }

    hits = await _retrieve(client, "mail", "fake attachment")
    assert hits[0]["source"] == attachment
    assert ATTACHED in hits[0]["text"]
    assert hits[0]["metadata"]["attached_to"] == EML
    hits = await _retrieve(client, "mail", "Lots of whitespace")
    assert hits[0]["source"] == EML and hits[0]["title"] == "Fake email with attachment"


async def test_an_msg_inside_an_archive_is_expanded_too(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/collections", json={"name": "archived"})).status_code == 201
    archive = zip_bytes({f"inbox/{MSG}": (FIXTURES / "formats" / MSG).read_bytes()})
    response = await client.post(
        "/v1/jobs/archive",
        data={"collection": "archived"},
        files=[("archive", ("inbox.zip", archive))],
    )
    assert response.status_code == 202, response.text
    job = await wait_for_job(client, response.json()["id"])
    attachment = f"inbox/{MSG}/attachments/fake-attachment.txt"
    assert job["status"] == "succeeded", job
    docs = await _documents(client, "archived")
    assert docs[f"inbox/{MSG}"]["metadata"]["subject"] == "Fake email with attachment"
    assert docs[attachment]["metadata"]["attached_to"] == f"inbox/{MSG}"
    hits = await _retrieve(client, "archived", "fake attachment")
    assert hits[0]["source"] == attachment
