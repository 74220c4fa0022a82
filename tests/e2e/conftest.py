"""An HTTP client on the module's `app` fixture, through ASGI: no socket, the real lifespan.
The client carries an admin key made in the app's own database (auth is on, as by default)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

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


@pytest.fixture(scope="module")
def stubs() -> Iterator[dict[str, StubServer]]:
    """Two models behind OpenAI's wire protocol: a closed API and a self-hosted vLLM."""
    found = {
        "gpt": StubServer(OpenAIVendor(), model=GPT).start(),
        "vllm": StubServer(OpenAIVendor(), model=VLLM).start(),
    }
    yield found
    for stub in found.values():
        stub.stop()


@pytest.fixture(scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {admin_key(app)}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://rag.test", timeout=120, headers=headers
    ) as c:
        yield c
