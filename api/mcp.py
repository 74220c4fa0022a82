"""The service as an MCP server (Model Context Protocol, the official `mcp` SDK): tools and
document resources for assistants.

Every tool is a call to our own REST API with the caller's key, never a shortcut into `rag/`:
scopes, collection limits, document permissions, rate limits and the audit log are exactly
those of /v1, and a refusal comes back as a tool error with /v1's message. The server is built
once over a `Connect` (how to reach /v1 as the caller), and served two ways:

- streamable HTTP at /mcp inside the API (`Endpoint`, stateless, JSON responses): each call goes
  into this same app through `httpx.ASGITransport` (no socket) with the request's own
  `Authorization` and `X-On-Behalf-Of`; the `Authenticate` middleware has already refused a
  request to /mcp without a valid key;
- stdio (`rag mcp`, cli/mcp.py): to RAG_API_URL with RAG_API_KEY, for desktop assistants.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import ON_BEHALF
from api.schemas import DocumentText, RetrieveResponse
from cli.client import error_line
from rag import __version__
from rag.models import Citation, CollectionInfo

# How a tool reaches /v1 as the caller of this MCP request: a client with the base URL and
# the caller's credentials set.
Connect = Callable[[Context], AbstractAsyncContextManager[httpx.AsyncClient]]
TIMEOUT_S = 120.0  # an answer from a local model on a small machine takes a while
FORWARDED = ("authorization", ON_BEHALF)  # the headers that make a caller who they are
INTERNAL_URL = "http://rag.internal"  # /v1 of this very app, reached without a socket
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
INSTRUCTIONS = (
    "Answers from an organization's documents, with citations. Call list_collections to see "
    "which collections you may use; search returns passages (with document ids), ask returns "
    "a checked answer citing its sources, get_document reads one document's text. Documents "
    "you are not allowed to read are never shown: absent is not proof that none exists."
)

CollectionArg = Annotated[str, Field(description="A collection name (see list_collections).")]
QuestionArg = Annotated[str, Field(description="The question, in natural language.")]
TopKArg = Annotated[
    int | None, Field(description="How many passages to retrieve; the service default if unset.")
]
ModelArg = Annotated[
    str | None,
    Field(description="A model of the service's catalog to answer with; its default if unset."),
]
FiltersArg = Annotated[
    dict[str, Any] | None,
    Field(
        description='Conditions on chunk fields or metadata, all of which must hold: {"source": '
        '"handbook.pdf", "team": ["hr", "legal"], "page": {"gte": 2}}.'
    ),
]


class ApiRefused(ToolError):
    """/v1 said no (or could not be reached): its message is what the assistant should read."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Answered(BaseModel):
    answer: str
    cited_answer: str = ""  # with the [n] markers of its citations
    answerable: bool
    citations: list[Citation]
    model: str | None
    reason: str | None


def _new_server() -> MCPServer:
    """The SDK's server calls `logging.basicConfig` (a rich handler on the root logger at
    INFO): an application that mounts ours keeps its own logging, configured or not."""
    root = logging.getLogger()
    placeholder = logging.NullHandler()  # basicConfig leaves a root with a handler alone
    root.addHandler(placeholder)
    try:
        return MCPServer("rag", title="RAG service", version=__version__, instructions=INSTRUCTIONS)
    finally:
        root.removeHandler(placeholder)


def build_server(connect: Connect) -> MCPServer:
    server = _new_server()

    async def call(ctx: Context, method: str, path: str, **kwargs: Any) -> Any:
        async with connect(ctx) as http:
            try:
                response = await http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                where = f"cannot reach the RAG service at {http.base_url}"
                raise ApiRefused(503, f"{where}: {exc}") from exc
        if response.status_code >= 400:
            raise ApiRefused(response.status_code, error_line(response))
        return response.json()

    @server.tool(annotations=READ_ONLY)
    async def search(
        collection: CollectionArg,
        question: QuestionArg,
        ctx: Context,
        top_k: TopKArg = None,
        filters: FiltersArg = None,
    ) -> RetrieveResponse:
        """The passages of a collection that best match a question (hybrid semantic and keyword
        search), with their source, title, section, page, score and document id."""
        body = _search_body(collection, question, top_k=top_k, filters=filters)
        return RetrieveResponse.model_validate(await call(ctx, "POST", "/v1/retrieve", json=body))

    @server.tool(annotations=READ_ONLY)
    async def ask(
        collection: CollectionArg,
        question: QuestionArg,
        ctx: Context,
        top_k: TopKArg = None,
        filters: FiltersArg = None,
        model: ModelArg = None,
    ) -> Annotated[CallToolResult, Answered]:
        """A verified answer to a question from a collection's documents, with numbered
        citations; says so when the documents do not answer it."""
        body = _search_body(collection, question, top_k=top_k, filters=filters, model=model)
        answered = Answered.model_validate(await call(ctx, "POST", "/v1/query", json=body))
        return CallToolResult(
            content=[TextContent(type="text", text=_cited(answered))],
            structured_content=answered.model_dump(mode="json"),
        )

    @server.tool(annotations=READ_ONLY)
    async def list_collections(ctx: Context) -> list[CollectionInfo]:
        """The collections this caller may search, with their document counts and the metadata
        fields their documents can be filtered on."""
        listed = await call(ctx, "GET", "/v1/collections")
        return [CollectionInfo.model_validate(c) for c in listed]

    @server.tool(annotations=READ_ONLY)
    async def get_document(
        collection: CollectionArg,
        document_id: Annotated[str, Field(description="A document id, as search returns it.")],
        ctx: Context,
    ) -> DocumentText:
        """One document's metadata and readable text (the parts this caller may read)."""
        collection, document_id = quote(collection, safe=""), quote(document_id, safe="")
        path = f"/v1/collections/{collection}/documents/{document_id}/text"
        return DocumentText.model_validate(await call(ctx, "GET", path))

    @server.resource(
        "rag://{collection}/documents/{document_id}",
        name="document",
        description="A document's readable text.",
        mime_type="text/markdown",
    )
    async def document(collection: str, document_id: str, ctx: Context) -> str:
        try:
            return str((await get_document(collection, document_id, ctx)).text)
        except ApiRefused as exc:  # a resource read fails as a protocol error, not a tool error
            raise (ResourceNotFoundError if exc.status == 404 else ResourceError)(str(exc)) from exc

    return server


def _search_body(collection: str, question: str, **options: Any) -> dict[str, Any]:
    """The /v1 request body: options left unset take the service's defaults."""
    given = {k: v for k, v in options.items() if v is not None}
    return {"collection": collection, "question": question, **given}


def _cited(answered: Answered) -> str:
    """The answer as a person reads it: the text, then its numbered sources."""
    lines = [answered.cited_answer or answered.answer]
    if not answered.answerable and answered.reason:
        lines.append(f"(not answerable: {answered.reason})")
    if answered.citations:
        lines.append("")
    for c in answered.citations:
        where = ", ".join(x for x in (c.section, f"p. {c.page}" if c.page else None) if x)
        lines.append(f"[{c.marker}] {c.source}" + (f" ({where})" if where else ""))
    return "\n".join(lines)


def calling_app(app: ASGIApp) -> Connect:
    """Reach /v1 of `app` in-process as the caller of the current HTTP request: the same
    middleware and dependencies check the forwarded credentials again, so the tool can do
    nothing the caller could not do with a plain REST call."""

    @asynccontextmanager
    async def connect(ctx: Context) -> AsyncIterator[httpx.AsyncClient]:
        incoming = ctx.headers or {}
        headers = {name: incoming[name] for name in FORWARDED if name in incoming}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url=INTERNAL_URL, headers=headers, timeout=TIMEOUT_S
        ) as client:
            yield client

    return connect


def calling_url(url: str, api_key: str | None) -> Connect:
    """Reach /v1 at `url` with `api_key` (stdio: one process, one caller)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    @asynccontextmanager
    async def connect(_ctx: Context) -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=TIMEOUT_S) as client:
            yield client

    return connect


class Endpoint:
    """The streamable HTTP transport as an ASGI app for the API's /mcp route. Stateless with
    JSON responses: a request is one call, so any API replica can answer it. `running()`
    belongs in the API's lifespan; it starts a new session manager each time, as one can run
    only once."""

    def __init__(self, server: MCPServer):
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.server.session_manager.handle_request(scope, receive, send)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        # The SDK's Host/Origin checks guard unauthenticated local servers against DNS
        # rebinding; /mcp needs a key a browser never sends by itself, and the API is reached
        # under whatever host name it is deployed at.
        open_hosts = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        self.server.streamable_http_app(
            stateless_http=True, json_response=True, transport_security=open_hosts
        )
        async with self.server.session_manager.run():
            yield


def mount(app: FastAPI, path: str = "/mcp") -> Endpoint:
    """Serve the MCP server at `path` of the FastAPI `app`, its tools calling `app` itself."""
    endpoint = Endpoint(build_server(calling_app(app)))
    app.router.routes.append(Route(path, endpoint, include_in_schema=False))
    return endpoint
