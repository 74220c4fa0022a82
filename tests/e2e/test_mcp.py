"""The MCP server through the SDK's own client, against a real `rag serve` process: streamable
HTTP at /mcp and stdio (`rag mcp`). Every tool is a /v1 call with the caller's key, so the
security matrix here is /v1's: scopes, collection limits, document permissions."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from tests.e2e.serve import serve_env, start_server, stop_server
from tests.e2e.test_api import assert_error

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
TOOLS = {"search", "ask", "list_collections", "get_document"}
DOCUMENTS = [
    {
        "source": "travel.md",
        "text": "# Travel\n\nTravel over 2,000 EUR is approved by the finance director.",
    },
    {
        "source": "salaries.md",
        "text": "# Salaries\n\nThe salary review happens every March.",
        "allowed_groups": ["hr"],
    },
    {
        "source": "launch.md",
        "text": "# Launch\n\nThe launch plan is called Falcon.",
        "allowed_users": ["bob"],
    },
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server with collections 'handbook' (public, hr-only and bob-only documents) and
    'other', and keys of every kind the matrix needs."""
    env = serve_env(tmp_path_factory.mktemp("mcp"))
    proc = start_server(env)
    admin = {"Authorization": f"Bearer {env['RAG_API_KEY']}"}
    try:
        with httpx.Client(base_url=env["RAG_API_URL"], headers=admin, timeout=120) as http:
            for name, documents in (("handbook", DOCUMENTS), ("other", DOCUMENTS[:1])):
                assert http.post("/v1/collections", json={"name": name}).status_code == 201
                url = f"/v1/collections/{name}/documents/text"
                job = http.post(url, json={"documents": documents}).json()
                while job["status"] in ("queued", "running"):
                    time.sleep(0.2)
                    job = http.get(f"/v1/jobs/{job['id']}").json()
                assert job["status"] == "succeeded", job
            listed = http.get("/v1/collections/handbook/documents").json()
            docs = {d["source"]: d["id"] for d in listed}
            keys = {
                name: http.post("/v1/keys", json={"name": name, **spec}).json()["key"]
                for name, spec in {
                    "reader": {"scopes": ["query"]},
                    "hr": {"scopes": ["query"], "groups": ["hr"]},
                    "bot": {"scopes": ["query"], "delegate": True},
                    "ingester": {"scopes": ["ingest"]},
                    "tenant": {"scopes": ["query"], "collections": ["other"]},
                }.items()
            }
        yield {"env": env, "url": f"{env['RAG_API_URL']}/mcp", "docs": docs, "keys": keys}
    finally:
        stop_server(proc)


@asynccontextmanager
async def connected(
    server: dict[str, Any], key: str | None, **headers: str
) -> AsyncIterator[Client]:
    """The SDK's client over streamable HTTP, sending `key` as a Bearer token."""
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    async with (
        httpx2.AsyncClient(headers=headers, timeout=120) as http,
        Client(streamable_http_client(server["url"], http_client=http)) as client,
    ):
        yield client


def _text(result: CallToolResult) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


async def _sources(client: Client, question: str, collection: str = "handbook") -> set[str]:
    result = await client.call_tool(
        "search", {"collection": collection, "question": question, "top_k": 10}
    )
    assert not result.is_error, _text(result)
    assert result.structured_content is not None
    return {hit["source"] for hit in result.structured_content["hits"]}


async def test_an_admin_key_uses_every_tool_and_reads_documents(server: dict[str, Any]) -> None:
    travel = server["docs"]["travel.md"]
    async with connected(server, server["env"]["RAG_API_KEY"]) as client:
        assert {t.name for t in (await client.list_tools()).tools} == TOOLS
        templates = (await client.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["rag://{collection}/documents/{document_id}"]

        found = await client.call_tool(
            "search", {"collection": "handbook", "question": "Who approves travel expenses?"}
        )
        assert found.structured_content is not None
        hit = found.structured_content["hits"][0]
        assert hit["source"] == "travel.md" and hit["document_id"] == travel
        assert {"title", "section", "page", "score", "text"} <= hit.keys()
        assert "finance director" in _text(found)

        listed = await client.call_tool("list_collections", {})
        assert listed.structured_content is not None
        assert {c["name"] for c in listed.structured_content["result"]} == {"handbook", "other"}

        document = await client.call_tool(
            "get_document", {"collection": "handbook", "document_id": travel}
        )
        assert document.structured_content is not None
        assert document.structured_content["source"] == "travel.md"
        text = document.structured_content["text"]
        assert text.startswith("# Travel") and "finance director" in text
        read = await client.read_resource(f"rag://handbook/documents/{travel}")
        assert [getattr(c, "text", None) for c in read.contents] == [text]


async def test_ask_answers_with_numbered_citations(server: dict[str, Any]) -> None:
    question = "Who approves travel over 2,000 EUR?"
    async with connected(server, server["keys"]["reader"]) as client:
        # The catalog's extractive model: deterministic, where a small local LLM may abstain.
        body = {"collection": "handbook", "question": question, "model": "extractive"}
        answered = await client.call_tool("ask", body)
    assert not answered.is_error, _text(answered)
    assert answered.structured_content is not None
    citations = answered.structured_content["citations"]
    assert answered.structured_content["answerable"] and citations, _text(answered)
    assert {c["source"] for c in citations} == {"travel.md"}
    assert "[1] travel.md" in _text(answered)


async def test_a_missing_or_bad_key_is_refused_at_connect(server: dict[str, Any]) -> None:
    """The SDK reports any error status at connect as an `MCPError` (in its task groups); the
    status itself is our 401, with our error body."""
    for key in (None, "rag_0123456789ab_not-the-secret"):
        with pytest.raises(ExceptionGroup) as refused:
            async with connected(server, key):
                pass
        assert refused.group_contains(MCPError, depth=None)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        async with httpx.AsyncClient() as http:
            response = await http.post(server["url"], json=message, headers=headers)
        assert_error(response, 401, "unauthenticated")


async def test_scopes_and_collection_limits_are_those_of_v1(server: dict[str, Any]) -> None:
    body = {"collection": "handbook", "question": "travel"}
    async with connected(server, server["keys"]["ingester"]) as client:
        refused = await client.call_tool("search", body)
    assert refused.is_error and "(403 forbidden)" in _text(refused)
    assert "Traceback" not in _text(refused)

    async with connected(server, server["keys"]["tenant"]) as client:
        theirs = await client.call_tool("search", body)
        assert await _sources(client, "travel", "other") == {"travel.md"}
    async with connected(server, server["env"]["RAG_API_KEY"]) as client:
        missing = await client.call_tool("search", body | {"collection": "nowhere"})
    assert theirs.is_error and "collection 'handbook' not found (404 not_found)" in _text(theirs)
    assert _text(theirs).replace("handbook", "nowhere") == _text(missing)


async def test_unreadable_documents_never_appear(server: dict[str, Any]) -> None:
    salaries, launch = server["docs"]["salaries.md"], server["docs"]["launch.md"]
    question = "salary review, travel and launch plan"
    async with connected(server, server["keys"]["reader"]) as client:
        assert await _sources(client, question) == {"travel.md"}
        answered = await client.call_tool(
            "ask", {"collection": "handbook", "question": "When is the salary review?"}
        )
        assert answered.structured_content is not None
        assert answered.structured_content["citations"] == []
        assert "March" not in _text(answered)
        listed = await client.call_tool("list_collections", {})
        assert listed.structured_content is not None
        counts = {c["name"]: c["document_count"] for c in listed.structured_content["result"]}
        assert counts["handbook"] == 1

        hidden = await client.call_tool(
            "get_document", {"collection": "handbook", "document_id": salaries}
        )
        nowhere = await client.call_tool(
            "get_document", {"collection": "handbook", "document_id": "no-such-id"}
        )
        assert hidden.is_error and "March" not in _text(hidden)
        assert _text(hidden).replace(salaries, "no-such-id") == _text(nowhere)
        assert "not found in collection 'handbook' (404 not_found)" in _text(hidden)
        with pytest.raises(MCPError, match="not found"):
            await client.read_resource(f"rag://handbook/documents/{salaries}")

    async with connected(server, server["keys"]["hr"]) as client:
        assert await _sources(client, question) == {"travel.md", "salaries.md"}
        document = await client.call_tool(
            "get_document", {"collection": "handbook", "document_id": salaries}
        )
        assert document.structured_content is not None
        assert "March" in document.structured_content["text"]
    admin = {"Authorization": f"Bearer {server['env']['RAG_API_KEY']}"}
    async with httpx.AsyncClient(base_url=server["env"]["RAG_API_URL"], headers=admin) as http:
        params = {"key": "hr", "action": "document.read"}
        audit = (await http.get("/v1/audit", params=params)).json()
    assert [(e["collection"], e["target"]) for e in audit] == [("handbook", salaries)]
    # A delegate key reads for the end user it names, as over /v1.
    async with connected(server, server["keys"]["bot"]) as client:
        assert await _sources(client, question) == {"travel.md"}
    async with connected(server, server["keys"]["bot"], **{"X-On-Behalf-Of": "bob"}) as client:
        assert await _sources(client, question) == {"travel.md", "launch.md"}
        read = await client.read_resource(f"rag://handbook/documents/{launch}")
        assert "Falcon" in str(read.contents[0])


async def test_stdio_serves_the_same_tools_with_the_environment_key(
    server: dict[str, Any],
) -> None:
    env = server["env"]
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "cli.main", "mcp"],
        env={"RAG_API_URL": env["RAG_API_URL"], "RAG_API_KEY": server["keys"]["reader"]},
        cwd=ROOT,
    )
    async with Client(params) as client:
        assert {t.name for t in (await client.list_tools()).tools} == TOOLS
        assert await _sources(client, "Who approves travel?") == {"travel.md"}
        listed = await client.call_tool("list_collections", {})
        assert listed.structured_content is not None
        assert {c["name"] for c in listed.structured_content["result"]} == {"handbook", "other"}
        refused = await client.call_tool("search", {"collection": "nowhere", "question": "x"})
        assert refused.is_error and "collection 'nowhere' not found" in _text(refused)


def test_the_mcp_server_leaves_the_root_logger_alone() -> None:
    """The SDK's server configures logging itself (a rich handler at INFO on the root logger);
    an application that mounts ours keeps its own, configured or not."""
    code = (
        "import logging; from api.mcp import build_server, calling_url; "
        "build_server(calling_url('http://127.0.0.1:9', None)); "
        "print(logging.getLogger().handlers, logging.getLevelName(logging.getLogger().level))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert shown.strip() == "[] WARNING"
