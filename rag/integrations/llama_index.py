"""LlamaIndex adapters: a running service as a `BaseRetriever` and as a `BaseQueryEngine`.

They call the REST API (`POST /v1/retrieve`, `POST /v1/query`) rather than reading the vector
store, so a LlamaIndex application gets what the service enforces: the key's collections and
groups (and an end user's, through a delegate key's `on_behalf_of`), routing to the model its
policy picks, and answers whose every claim was checked against the cited passages. Only httpx
and llama_index.core are imported, so a client needs neither FastAPI nor the server's models.

    retriever = RagRetriever("handbook", top_k=5)          # RAG_API_URL, RAG_API_KEY
    nodes = retriever.retrieve("Who approves travel?")     # NodeWithScore, best first
    response = RagQueryEngine("handbook", policy="private").query("Who approves travel?")
    response.response, response.source_nodes, response.metadata["model"]
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Literal, TypedDict, Unpack

import httpx
from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.response.schema import Response
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload
from llama_index.core.callbacks.base import EventContext
from llama_index.core.prompts.mixin import PromptMixinType
from llama_index.core.schema import (
    NodeRelationship,
    NodeWithScore,
    QueryBundle,
    RelatedNodeInfo,
    TextNode,
)

DEFAULT_URL = "http://127.0.0.1:8000"
# A hit's and a citation's own fields, kept in every node's metadata (over uploaded metadata).
CHUNK_FIELDS = ("document_id", "source", "title", "section", "page")
# What a Response's metadata leaves out of our answer: it is already the text and the nodes.
NOT_METADATA = ("question", "answer", "cited_answer", "citations")


class SearchOptions(TypedDict, total=False):
    """What /v1/retrieve and /v1/query take besides the question, as `rag.retrieval.SearchOptions`
    names them (not imported: that would pull in the server); one left out is the service's
    configured default, never ours."""

    top_k: int
    mode: Literal["dense", "sparse", "hybrid"]
    fusion: Literal["rrf", "dbsf"]
    filters: dict[str, Any]
    max_per_document: int
    mmr_lambda: float
    rerank: bool


class RagApiError(Exception):
    """The service answered an error (`status`, and its body's `code` and `message`), or could
    not be reached (`status` None): one exception whatever went wrong, never an httpx one."""

    def __init__(self, status: int | None, code: str, message: str):
        super().__init__(f"{message} ({status} {code})" if status else message)
        self.status = status
        self.code = code
        self.message = message


class _Endpoint:
    """One collection of one service, asked by one caller with fixed options.

    Each call opens its own httpx client: there is nothing to close, and an async call never
    meets a client bound to another event loop; a call costs a retrieval or an answer, so the
    connection set-up is noise."""

    def __init__(
        self,
        collection: str,
        fields: dict[str, Any],
        base_url: str | None,
        api_key: str | None,
        on_behalf_of: str | None,
        timeout: float,
    ):
        unknown = set(fields) - SearchOptions.__optional_keys__ - {"model", "policy"}
        if unknown:
            raise TypeError(f"unknown search options: {', '.join(sorted(unknown))}")
        self.collection = collection
        self.fields = {name: value for name, value in fields.items() if value is not None}
        self.base_url = (base_url or os.environ.get("RAG_API_URL") or DEFAULT_URL).rstrip("/")
        key = api_key or os.environ.get("RAG_API_KEY")
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        if on_behalf_of:
            self.headers["X-On-Behalf-Of"] = on_behalf_of
        self.timeout = timeout

    def post(self, path: str, question: str) -> dict[str, Any]:
        with self._errors(path), httpx.Client(**self._client_options()) as http:
            return _json(http.post(path, json=self._body(question)))

    async def apost(self, path: str, question: str) -> dict[str, Any]:
        with self._errors(path):
            async with httpx.AsyncClient(**self._client_options()) as http:
                return _json(await http.post(path, json=self._body(question)))

    def _body(self, question: str) -> dict[str, Any]:
        return {"collection": self.collection, "question": question, **self.fields}

    def _client_options(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "headers": self.headers, "timeout": self.timeout}

    @contextmanager
    def _errors(self, path: str) -> Iterator[None]:
        """httpx's transport errors as RagApiError, naming the URL that could not be reached."""
        url = self.base_url + path
        try:
            yield
        except httpx.TimeoutException as exc:
            message = f"no answer from the RAG service at {url} within {self.timeout:g} s"
            raise RagApiError(None, "timeout", message) from exc
        except httpx.TransportError as exc:
            message = f"cannot reach the RAG service at {url} ({exc})"
            raise RagApiError(None, "unreachable", message) from exc


def _json(response: httpx.Response) -> dict[str, Any]:
    """The body of a success; an error's `{"error": {"code", "message"}}` raised as RagApiError
    (a proxy's HTML error page too, by its status and first line)."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code >= 400:
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict) and "message" in error:
            raise RagApiError(response.status_code, str(error.get("code")), str(error["message"]))
        lines = response.text.strip().splitlines()
        message = lines[0][:200] if lines else "no error body"
        raise RagApiError(response.status_code, "http_error", message)
    if not isinstance(data, dict):
        raise RagApiError(response.status_code, "bad_response", "the service did not answer JSON")
    return data


def _node(item: dict[str, Any], text: str, metadata: dict[str, Any]) -> NodeWithScore:
    """A hit or a citation as a scored node whose source document is ours (`ref_doc_id`)."""
    node = TextNode(
        id_=item["chunk_id"],
        text=text,
        metadata={**metadata, **{name: item.get(name) for name in CHUNK_FIELDS}},
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=item["document_id"])},
    )
    return NodeWithScore(node=node, score=item["score"])


def _hit_nodes(body: dict[str, Any]) -> list[NodeWithScore]:
    return [_node(hit, hit["text"], hit.get("metadata") or {}) for hit in body["hits"]]


def _response(answer: dict[str, Any]) -> Response:
    """Our verified answer: its text, its citations as nodes (the supporting snippet, with its
    [n] `marker`), and the rest (model, answerable, reason, route, verification...) as
    metadata."""
    nodes = [_node(c, c["snippet"], {"marker": c["marker"]}) for c in answer["citations"]]
    metadata = {name: value for name, value in answer.items() if name not in NOT_METADATA}
    # With the [n] markers its source nodes carry (older services send no `cited_answer`).
    text = answer.get("cited_answer") or answer["answer"]
    return Response(response=text, source_nodes=nodes, metadata=metadata)


class RagRetriever(BaseRetriever):
    """Chunks of a collection the caller may read, best first (`POST /v1/retrieve`)."""

    def __init__(
        self,
        collection: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        on_behalf_of: str | None = None,
        timeout: float = 60.0,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
        **options: Unpack[SearchOptions],
    ):
        self._endpoint = _Endpoint(
            collection, dict(options), base_url, api_key, on_behalf_of, timeout
        )
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return _hit_nodes(self._endpoint.post("/v1/retrieve", query_bundle.query_str))

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return _hit_nodes(await self._endpoint.apost("/v1/retrieve", query_bundle.query_str))


class RagQueryEngine(BaseQueryEngine):
    """Verified, cited answers from a collection (`POST /v1/query`); `model` or `policy` choose
    the model that answers, as in the API (GET /v1/models lists them)."""

    def __init__(
        self,
        collection: str,
        *,
        model: str | None = None,
        policy: str | dict[str, Any] | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        on_behalf_of: str | None = None,
        timeout: float = 300.0,
        callback_manager: CallbackManager | None = None,
        **options: Unpack[SearchOptions],
    ):
        fields = {**options, "model": model, "policy": policy}
        self._endpoint = _Endpoint(collection, fields, base_url, api_key, on_behalf_of, timeout)
        super().__init__(callback_manager=callback_manager)

    def _query(self, query_bundle: QueryBundle) -> Response:
        with self._query_event(query_bundle) as event:
            response = _response(self._endpoint.post("/v1/query", query_bundle.query_str))
            event.on_end(payload={EventPayload.RESPONSE: response})
        return response

    async def _aquery(self, query_bundle: QueryBundle) -> Response:
        with self._query_event(query_bundle) as event:
            answer = await self._endpoint.apost("/v1/query", query_bundle.query_str)
            response = _response(answer)
            event.on_end(payload={EventPayload.RESPONSE: response})
        return response

    def _query_event(self, query_bundle: QueryBundle) -> AbstractContextManager[EventContext]:
        """The QUERY event LlamaIndex's own engines emit, so callback handlers (token counters,
        debug and tracing handlers) see this engine as they see theirs."""
        payload: dict[str, Any] = {EventPayload.QUERY_STR: query_bundle.query_str}
        return self.callback_manager.event(CBEventType.QUERY, payload=payload)

    def _get_prompt_modules(self) -> PromptMixinType:
        """No prompts to show or change here: the service writes its own, server-side."""
        return {}
