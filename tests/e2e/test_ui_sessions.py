"""The web UI's sessions over HTTP (the browser tests are in tests/e2e/ui): signing in turns a
key into an HttpOnly, SameSite=Strict cookie that every /v1 route treats exactly as the key
(the same 403s), a change also needs the session's CSRF token; signing out or revoking the key
ends it; /ui pages need a session and their scope; no open redirect, no cross-site sign-in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from api.auth import SAFE_METHODS
from api.ui import pages
from tests.e2e.conftest import key_headers
from tests.e2e.test_api import assert_error
from tests.e2e.test_security import ROUTES, SCOPED, _request, make_world, security_app

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# Every /ui route and what it needs: None = open (sign in, sign out, redirects). A page is an
# HTML shell: the data it shows comes from /v1, through the table in test_security.
UI_ROUTES: dict[tuple[str, str], str | None] = {
    ("GET", "/ui"): None,
    ("GET", "/ui/"): None,
    ("GET", "/ui/login"): None,
    ("POST", "/ui/login"): None,
    ("POST", "/ui/logout"): None,
    ("GET", "/ui/ask"): "query",
    ("GET", "/ui/documents"): "ingest",
    ("GET", "/ui/jobs/{job_id}"): "ingest",
    ("GET", "/ui/admin"): "admin",
}
PAGES = sorted((path, scope) for (_, path), scope in UI_ROUTES.items() if scope)
WITHOUT = {"query": ["ingest"], "ingest": ["query"], "admin": ["query", "ingest"]}
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]*)">')


@pytest.fixture(scope="module")
async def app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FastAPI]:
    async with security_app(tmp_path_factory.mktemp("ui-sessions")) as application:
        yield application


@pytest.fixture(scope="module")
async def world(client: httpx.AsyncClient, app: FastAPI) -> dict[str, Any]:
    return await make_world(client, app)


def _key(app: FastAPI, scopes: list[str], **options: Any) -> str:
    name = f"ui-{len(app.state.runtime.keys.list())}"
    return key_headers(app, name, scopes, **options)["Authorization"].split()[1]


def _name_of(app: FastAPI, key: str) -> str:
    key_id = key.split("_")[1]
    return next(k.name for k in app.state.runtime.keys.list() if k.id == key_id)


@asynccontextmanager
async def browser(app: FastAPI, key: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """A client like a browser: cookies kept, signed in with `key` if given; the session's
    CSRF token (read from a page, as the UI's scripts do) in `.csrf`."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rag.test") as client:
        client.csrf = ""  # type: ignore[attr-defined]
        if key is not None:
            signed = await client.post("/ui/login", data={"key": key})
            assert signed.status_code == 303, signed.text
            page = await client.get(signed.headers["location"])
            client.csrf = CSRF.search(page.text).group(1)  # type: ignore[attr-defined, union-attr]
        yield client


async def test_every_ui_route_is_in_the_table(app: FastAPI) -> None:
    routes = {
        (m, r.path) for r in pages.router.routes if isinstance(r, APIRoute) for m in r.methods
    }
    assert routes == set(UI_ROUTES)
    assert not [path for path in app.openapi()["paths"] if path.startswith("/ui")]


async def test_sign_in_sets_a_strict_http_only_cookie_and_is_audited(app: FastAPI) -> None:
    key = _key(app, ["query"])
    async with browser(app) as client:
        response = await client.post("/ui/login", data={"key": key, "next": "/ui/ask"})
    assert response.status_code == 303 and response.headers["location"] == "/ui/ask"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("rag_session=") and key.split("_", 2)[-1] not in cookie
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    entries = app.state.runtime.audit.page(action="ui.signin", limit=50)
    assert any(e.key_name == _name_of(app, key) for e in entries)


@pytest.mark.parametrize(("method", "path"), SCOPED)
async def test_a_session_is_refused_what_its_key_is(
    app: FastAPI, world: dict[str, Any], method: str, path: str
) -> None:
    """The same 403 as the key itself would get, CSRF token and all."""
    async with browser(app, _key(app, WITHOUT[ROUTES[(method, path)]])) as client:
        request = _request(method, path, world, "mine")
        headers = {"X-CSRF-Token": client.csrf}  # type: ignore[attr-defined]
        assert_error(await client.request(**request, headers=headers), 403, "forbidden")


UNSAFE = sorted(r for r in ROUTES if r[0] not in SAFE_METHODS)


@pytest.mark.parametrize(("method", "path"), UNSAFE)
async def test_a_session_change_needs_the_csrf_token(
    app: FastAPI, world: dict[str, Any], method: str, path: str
) -> None:
    async with browser(app, _key(app, ["admin"])) as client:
        request = _request(method, path, world, "mine")
        error = assert_error(await client.request(**request), 403, "forbidden")
        assert "X-CSRF-Token" in error["message"] or "x-csrf-token" in error["message"]
        wrong = {"X-CSRF-Token": "forged"}
        assert_error(await client.request(**request, headers=wrong), 403, "forbidden")


async def test_a_session_reads_and_changes_as_its_key(app: FastAPI) -> None:
    async with browser(app, _key(app, ["admin"])) as client:
        assert (await client.get("/v1/collections")).status_code == 200
        headers = {"X-CSRF-Token": client.csrf}  # type: ignore[attr-defined]
        made = await client.post("/v1/collections", json={"name": "by-ui"}, headers=headers)
        assert made.status_code == 201, made.text
        gone = await client.delete("/v1/collections/by-ui", headers=headers)
        assert gone.status_code == 204


@pytest.mark.parametrize(("path", "scope"), PAGES)
async def test_pages_need_a_session_and_their_scope(app: FastAPI, path: str, scope: str) -> None:
    url = path.replace("{job_id}", "0")
    async with browser(app) as anonymous:
        response = await anonymous.get(url)
        assert response.status_code == 303
        assert response.headers["location"] == f"/ui/login?next={url}"
    async with browser(app, _key(app, WITHOUT[scope])) as client:
        refused = await client.get(url)
        assert refused.status_code == 403 and scope in refused.text
    async with browser(app, _key(app, [scope])) as client:
        page = await client.get(url)
        assert page.status_code == 200, page.text
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp


async def test_signing_out_ends_the_session(app: FastAPI) -> None:
    async with browser(app, _key(app, ["query"])) as client:
        refused = await client.post("/ui/logout", data={"csrf": "forged"})
        assert refused.status_code == 403  # another site cannot sign you out either
        assert (await client.get("/v1/collections")).status_code == 200
        cookie = client.cookies["rag_session"]
        out = await client.post("/ui/logout", data={"csrf": client.csrf})  # type: ignore[attr-defined]
        assert out.status_code == 303 and out.headers["location"] == "/ui/login"
        assert 'rag_session=""' in out.headers["set-cookie"]
    async with browser(app) as replay:  # the old cookie, replayed, is worth nothing
        replay.cookies.set("rag_session", cookie, domain="rag.test")
        assert_error(await replay.get("/v1/collections"), 401, "unauthenticated")


async def test_revoking_the_key_ends_its_sessions(app: FastAPI) -> None:
    key = _key(app, ["query"])
    async with browser(app, key) as client:
        assert (await client.get("/v1/collections")).status_code == 200
        app.state.runtime.keys.revoke(key.split("_")[1])
        assert_error(await client.get("/v1/collections"), 401, "unauthenticated")
        page = await client.get("/ui/ask")
        assert page.status_code == 303 and page.headers["location"].startswith("/ui/login")


async def test_sign_in_refuses_bad_keys_other_sites_and_open_redirects(app: FastAPI) -> None:
    key = _key(app, ["query"])
    async with browser(app) as client:
        bad = await client.post("/ui/login", data={"key": "rag_000000000000_wrong"})
        assert bad.status_code == 401 and "not valid" in bad.text and "Traceback" not in bad.text
        refused = app.state.runtime.audit.page(action="ui.signin", limit=50)
        assert any(e.status == 401 for e in refused)  # failed sign-ins are audited too
        assert "rag_session" not in client.cookies
        forged = await client.post(
            "/ui/login", data={"key": key}, headers={"Origin": "https://evil.test"}
        )
        assert forged.status_code == 403 and "rag_session" not in client.cookies
        for target in ("//evil.test/ui/x", "https://evil.test/", "/v1/keys", "/ui/../v1/keys"):
            response = await client.post("/ui/login", data={"key": key, "next": target})
            assert response.headers["location"] == "/ui/ask", target
