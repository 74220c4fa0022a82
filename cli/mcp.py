"""`rag mcp`: the MCP server on stdin/stdout, for desktop assistants that start their tools as
processes. It is a client of the REST API like every other command: RAG_API_URL (or --api-url)
and RAG_API_KEY decide what it may do."""

from __future__ import annotations

import os

from cli.common import DEFAULT_URL, ApiUrl


def mcp(api_url: ApiUrl = DEFAULT_URL) -> None:
    """Serve the MCP tools (search, ask, list_collections, get_document) over stdio."""
    from api.mcp import build_server, calling_url
    from rag.logs import configure_logging

    configure_logging("WARNING")  # on stderr: stdout carries the protocol
    build_server(calling_url(api_url, os.environ.get("RAG_API_KEY"))).run("stdio")
