"""An HTTP client on the module's `app` fixture, through ASGI: no socket, the real lifespan.
The client carries an admin key made in the app's own database (auth is on, as by default)."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.main import create_app
from rag.config import Settings
from tests.stubs.openai_stub import OpenAIVendor
from tests.stubs.server import StubServer

GPT = "gpt-4o-mini-2024-07-18"
VLLM = "llama-3.1-8b-instruct"


def admin_key(app: FastAPI, name: str = "tests") -> str:
    keys = app.state.runtime.keys
    known = {k.name for k in keys.list()}
    return str(keys.create(name if name not in known else f"{name}-{len(known)}", ["admin"]).key)


def key_headers(app: FastAPI, name: str, scopes: list[str], **options: Any) -> dict[str, str]:
    """Headers of a new key made in the app's own database (`ApiKeys.create` options)."""
    created = app.state.runtime.keys.create(name, scopes, **options)
    return {"Authorization": f"Bearer {created.key}"}


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


@contextmanager
def model_stubs() -> Iterator[dict[str, StubServer]]:
    """Two models behind OpenAI's wire protocol: a closed API and a self-hosted vLLM."""
    found = {
        "gpt": StubServer(OpenAIVendor(), model=GPT).start(),
        "vllm": StubServer(OpenAIVendor(), model=VLLM).start(),
    }
    try:
        yield found
    finally:
        for stub in found.values():
            stub.stop()


def reset_stubs(stubs: dict[str, StubServer], answer: str) -> StubServer:
    """Every stub forgets its requests and replies `answer`: the closed API's, returned."""
    for server in stubs.values():
        server.reset()
        server.answer_text = answer
    return stubs["gpt"]


@pytest.fixture(scope="module")
def stubs() -> Iterator[dict[str, StubServer]]:
    with model_stubs() as found:
        yield found


@pytest.fixture(scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {admin_key(app)}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://rag.test", timeout=120, headers=headers
    ) as c:
        yield c


@asynccontextmanager
async def running(settings: Settings, env: dict[str, str] | None = None) -> AsyncIterator[FastAPI]:
    """The real app with its lifespan, with `env` set while it runs (a model's API key)."""
    os.environ.update(env or {})
    try:
        application = create_app(settings)
        async with application.router.lifespan_context(application):
            yield application
    finally:
        for name in env or {}:
            os.environ.pop(name, None)


async def add_collection(
    client: httpx.AsyncClient, name: str, documents: list[dict[str, Any]]
) -> str:
    """A new collection holding these text documents, indexed: its name."""
    from tests.e2e.test_api import wait_for_job

    assert (await client.post("/v1/collections", json={"name": name})).status_code == 201
    response = await client.post(
        f"/v1/collections/{name}/documents/text", json={"documents": documents}
    )
    assert response.status_code == 202, response.text
    assert (await wait_for_job(client, response.json()["id"]))["status"] == "succeeded"
    return name
