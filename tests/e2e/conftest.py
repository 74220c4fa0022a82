"""An HTTP client on the module's `app` fixture, through ASGI: no socket, the real lifespan.
The client carries an admin key made in the app's own database (auth is on, as by default)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI


def admin_key(app: FastAPI, name: str = "tests") -> str:
    keys = app.state.runtime.keys
    known = {k.name for k in keys.list()}
    return str(keys.create(name if name not in known else f"{name}-{len(known)}", ["admin"]).key)


@pytest.fixture(scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {admin_key(app)}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://rag.test", timeout=120, headers=headers
    ) as c:
        yield c
