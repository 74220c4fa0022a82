"""The LlamaIndex adapters against a real `rag serve` process: what a LlamaIndex application sees
is what the service enforces (a key's groups, an end user's through a delegate key), answers
arrive verified with their citations as nodes, and errors are one exception with our message."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from llama_index.core.base.response.schema import Response
from llama_index.core.schema import NodeWithScore
from llama_index.core.tools import RetrieverTool

from api.schemas import QueryRequest
from rag.integrations.llama_index import (
    RagApiError,
    RagQueryEngine,
    RagRetriever,
    SearchOptions,
)
from tests.e2e.serve import auth_headers, free_port, serve_env, start_server, stop_server

pytestmark = pytest.mark.slow
COLLECTION = "handbook"
DOCUMENTS = [
    {
        "source": "travel.md",
        "title": "Travel policy",
        "text": "# Travel policy\n\n## Approvals\n\nTravel that costs more than 2,000 EUR must be "
        "approved by the finance director before anything is booked.",
    },
    {
        "source": "incidents.md",
        "title": "Incident response",
        "text": "# Incident response\n\n## Acknowledgement times\n\nA severity 1 incident must "
        "be acknowledged within 15 minutes, at any hour of the day.",
    },
    {
        "source": "salaries.md",
        "title": "Salary bands",
        "text": "# Salary bands\n\n## Engineering\n\nThe salary band of a senior engineer is "
        "90,000 to 120,000 EUR a year.",
        "allowed_groups": ["hr"],
    },
]
SALARY = "What is the salary band of a senior engineer?"
INCIDENT = "How quickly must a severity 1 incident be acknowledged?"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A server with the documents ingested, and keys: `admin`, `query` (no groups: not hr) and
    `bot` (a delegate query key, acting for alice of hr)."""
    env = serve_env(
        tmp_path_factory.mktemp("llama_index"), RAG_AUTH__USER_GROUPS='{"alice": ["hr"]}'
    )
    proc = start_server(env)
    try:
        with httpx.Client(base_url=env["RAG_API_URL"], headers=auth_headers(env)) as http:
            assert http.post("/v1/collections", json={"name": COLLECTION}).status_code == 201
            job = http.post(
                f"/v1/collections/{COLLECTION}/documents/text", json={"documents": DOCUMENTS}
            )
            assert job.status_code == 202, job.text
            assert _wait_for_job(http, job.json()["id"])["status"] == "succeeded"
            keys = {"admin": env["RAG_API_KEY"]}
            for name, extra in (("query", {}), ("bot", {"delegate": True})):
                body = {"name": name, "scopes": ["query"], **extra}
                keys[name] = http.post("/v1/keys", json=body).json()["key"]
        yield {"url": env["RAG_API_URL"], **keys}
    finally:
        stop_server(proc)


def _wait_for_job(http: httpx.Client, job_id: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job: dict[str, Any] = http.get(f"/v1/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout_s} s")


def _retriever(service: dict[str, str], key: str = "query", **options: Any) -> RagRetriever:
    return RagRetriever(COLLECTION, base_url=service["url"], api_key=service[key], **options)


def _sources(nodes: list[NodeWithScore]) -> list[str]:
    return [n.node.metadata["source"] for n in nodes]


def test_the_options_are_the_apis() -> None:
    """The adapters take exactly the API's search options, so none is silently dropped (what
    to search and the conversation are the engine's own: its collection, one question)."""
    request = {"collection", "collections", "question", "history", "stream", "stream_mode"}
    assert (
        set(SearchOptions.__optional_keys__) | {"model", "policy"}
        == set(QueryRequest.model_fields) - request
    )
    with pytest.raises(TypeError, match="topk"):
        RagRetriever(COLLECTION, topk=3)  # type: ignore[call-arg]


def test_the_retriever_returns_scored_nodes_the_key_may_read(service: dict[str, str]) -> None:
    nodes = _retriever(service, top_k=5).retrieve(INCIDENT)
    assert nodes and _sources(nodes)[0] == "incidents.md"
    best = nodes[0]
    assert best.node.metadata | {"document_id": "x"} == {
        "document_id": "x",
        "source": "incidents.md",
        "title": "Incident response",
        "section": "Incident response > Acknowledgement times",
        "page": None,
    }, best.node.metadata
    assert "15 minutes" in best.node.get_content()
    assert best.node.ref_doc_id == best.node.metadata["document_id"]
    scores = [n.score for n in nodes]
    assert all(s is not None for s in scores) and scores == sorted(scores, reverse=True)

    # salaries.md is hr's: never found by a key without the group, found for an hr user.
    assert "salaries.md" not in _sources(_retriever(service, top_k=10).retrieve(SALARY))
    as_alice = _retriever(service, "bot", on_behalf_of="alice", top_k=1).retrieve(SALARY)
    assert _sources(as_alice) == ["salaries.md"]
    assert _sources(_retriever(service, "admin", mode="sparse").retrieve(SALARY))[0] == (
        "salaries.md"
    )


def test_aretrieve_is_the_same(service: dict[str, str]) -> None:
    retriever = _retriever(service, top_k=5)
    sync, concurrent = retriever.retrieve(INCIDENT), asyncio.run(_twice(retriever))
    for nodes in concurrent:
        assert [(n.node.node_id, n.node.metadata) for n in nodes] == [
            (n.node.node_id, n.node.metadata) for n in sync
        ]
        assert [n.score for n in nodes] == pytest.approx([n.score for n in sync])


async def _twice(retriever: RagRetriever) -> list[list[NodeWithScore]]:
    return list(await asyncio.gather(retriever.aretrieve(INCIDENT), retriever.aretrieve(INCIDENT)))


def test_the_query_engine_answers_with_verified_citations(service: dict[str, str]) -> None:
    engine = RagQueryEngine(COLLECTION, base_url=service["url"], api_key=service["query"])
    response = engine.query(INCIDENT)
    assert isinstance(response, Response)
    assert response.metadata is not None
    assert response.metadata["answerable"] is True, response.metadata
    assert "15" in str(response), response
    assert response.metadata["model"] and response.metadata["route"]["model"]
    assert response.metadata["verification"]["claims"]
    assert response.source_nodes
    cited = response.source_nodes[0]
    assert cited.node.metadata["source"] == "incidents.md"
    assert cited.node.metadata["marker"] == 1 and cited.score is not None
    assert "15 minutes" in cited.node.get_content()

    # A question the documents do not answer: said so, with no model call and no sources.
    unanswered = asyncio.run(engine.aquery("What is the capital city of Australia?"))
    assert isinstance(unanswered, Response) and unanswered.metadata is not None
    assert unanswered.metadata["answerable"] is False and unanswered.metadata["reason"]
    assert unanswered.source_nodes == []


def test_errors_are_one_exception_with_the_services_message(service: dict[str, str]) -> None:
    with pytest.raises(RagApiError) as missing:
        RagRetriever("nope", base_url=service["url"], api_key=service["query"]).retrieve("x")
    assert missing.value.status == 404 and missing.value.code == "not_found"
    assert missing.value.message == "collection 'nope' not found"

    engine = RagQueryEngine(COLLECTION, base_url=service["url"], api_key="rag_wrong_key")
    with pytest.raises(RagApiError) as unauthenticated:
        engine.query(INCIDENT)
    assert unauthenticated.value.status == 401

    with pytest.raises(RagApiError, match="body.mode: Input should be .dense."):  # our 422
        _retriever(service, mode="bogus").retrieve(INCIDENT)  # type: ignore[arg-type]

    down = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RagApiError) as unreachable:
        asyncio.run(RagRetriever(COLLECTION, base_url=down).aretrieve("x"))
    assert unreachable.value.status is None and f"{down}/v1/retrieve" in str(unreachable.value)


def test_it_composes_with_llama_index(service: dict[str, str]) -> None:
    """An agent's tool over the service: LlamaIndex calls the retriever, no LLM involved."""
    tool = RetrieverTool.from_defaults(
        _retriever(service, top_k=2), name="handbook", description="Company policies."
    )
    output = tool.call(INCIDENT)
    assert "15 minutes" in output.content and "source: incidents.md" in output.content
    assert _sources(output.raw_output)[0] == "incidents.md"


def test_nothing_server_side_is_imported() -> None:
    """The adapters are for client applications: no FastAPI, Celery or torch comes with them."""
    code = (
        "import sys, rag.integrations.llama_index as m\n"
        "print(sorted({'fastapi', 'celery', 'torch', 'api'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
