"""`rag`: run the service (`serve`, `worker`) and use it (`ingest`, `query`, `retrieve`, `jobs`)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cli.client import ApiError, Client
from cli.common import DEFAULT_URL, ApiUrl, Collection, console, fail, split_list
from cli.eval import eval_app
from cli.jobs import ingest, jobs_app
from cli.keys import keys_app
from cli.mcp import mcp

if TYPE_CHECKING:
    from rag.config import Settings

app = typer.Typer(
    help="Self-hosted RAG: ingest documents, ask questions, get cited answers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(eval_app, name="eval")
app.add_typer(jobs_app, name="jobs")
app.add_typer(keys_app, name="keys")
app.command()(ingest)
app.command()(mcp)
Filters = Annotated[
    str | None,
    typer.Option(
        "--filter", help='JSON, e.g. \'{"team": ["hr"], "published": {"gte": "2024-01-01"}}\'.'
    ),
]
Mode = Annotated[str | None, typer.Option(help="dense, sparse or hybrid.")]


def _search_body(collection: str, question: str, **options: Any) -> dict[str, Any]:
    raw = options.pop("filters", None)
    body = {"collection": collection, "question": question, **options}
    if raw:
        try:
            body["filters"] = json.loads(raw)
        except json.JSONDecodeError as exc:
            fail(f"--filter is not valid JSON: {exc}")
    return body


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Run the API (and, with the embedded store, the ingestion worker in the same process)."""
    import uvicorn

    from api.main import create_app
    from rag.config import get_settings
    from rag.errors import ConfigError

    settings = get_settings()
    _observe(settings, "api")
    try:
        app = create_app(settings)
    except ConfigError as exc:
        fail(exc.message)
    if settings.embedded_store:
        _check_store_is_free(settings)
    uvicorn.run(
        app,
        host=host or settings.api.host,
        port=port or settings.api.port,
        log_config=None,
        # SIGTERM: no new connections; requests in flight (streams too) get this long to end.
        timeout_graceful_shutdown=settings.api.shutdown_grace_s,
    )


def _check_store_is_free(settings: Settings) -> None:
    """Fail with one line, before the server starts, if another process holds the store."""
    from rag.errors import BackendUnavailable
    from rag.factory import build_store

    store = build_store(settings)
    try:
        store.ping()
    except BackendUnavailable as exc:
        fail(exc.message)
    finally:
        store.close()


def _observe(settings: Settings, role: str) -> None:
    """Logging and tracing for a process we run: `role` names it in traces (rag-api, ...)."""
    from rag.logs import configure_logging
    from rag.tracing import configure_tracing

    obs = settings.observability
    configure_logging(settings.log_level, obs.log_format)
    configure_tracing(obs.otlp_endpoint, f"{obs.service_name}-{role}")


@app.command()
def worker(
    queues: Annotated[
        str | None,
        typer.Option(
            "--queues", "-Q", help="Comma-separated queues; default: ingestion and chat answers."
        ),
    ] = None,
) -> None:
    """Run a separate worker for ingestion and chat answers (needs a Qdrant server: QDRANT_URL).
    A worker for one queue only: `-Q rag.chat` answers Slack, `-Q rag.ingest` ingests."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Before anything imports prometheus_client: each pool process writes its values
        # there, and the worker's /metrics sums them.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="rag-metrics-")
    from rag.config import get_settings

    settings = get_settings()
    if settings.embedded_store:
        fail(
            "`rag worker` needs QDRANT_URL: the embedded Qdrant store can only be opened by one "
            "process, and `rag serve` already runs a worker inside it."
        )
    _observe(settings, "worker")
    from ingest.celery_app import celery_app
    from ingest.metrics import serve_worker_metrics

    names = split_list(queues) or settings.queues
    if settings.observability.worker_metrics_port:
        serve_worker_metrics(celery_app, names, settings.observability.worker_metrics_port)
    celery_app.worker_main(
        [
            "worker",
            "-Q",
            ",".join(names),
            "--loglevel",
            settings.log_level,
            "-c",
            str(settings.worker.concurrency),
        ]
    )


@app.command()
def query(
    question: str,
    collection: Collection = "default",
    top_k: Annotated[int | None, typer.Option(help="Passages to retrieve.")] = None,
    mode: Mode = None,
    filters: Filters = None,
    model: Annotated[str | None, typer.Option(help="A catalog model (GET /v1/models).")] = None,
    policy: Annotated[str | None, typer.Option(help="A routing policy by name.")] = None,
    stream: Annotated[
        bool, typer.Option(help="Print the answer as it is written, verified sentences only.")
    ] = False,
    raw: Annotated[
        bool, typer.Option(help="With --stream: the model's unchecked text as it comes.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw response.")] = False,
    api_url: ApiUrl = DEFAULT_URL,
) -> None:
    """Ask a question; print the answer with its citations."""
    body = _search_body(collection, question, top_k=top_k, mode=mode, filters=filters)
    body |= {k: v for k, v in {"model": model, "policy": policy}.items() if v}
    client = Client(api_url)
    try:
        if stream:
            mode = "raw" if raw else "verified"
            answer = _streamed(client, body | {"stream": True, "stream_mode": mode})
        else:
            answer = client.request("POST", "/v1/query", json=body)
    except ApiError as exc:
        fail(str(exc))
    if as_json:
        console.print_json(json.dumps(answer))
        return
    if not stream or answer.get("revised"):
        console.print(f"\n[bold]{answer['answer']}[/bold]\n")
    _print_answer_details(answer)


def _streamed(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    """Text as it comes (verified sentences, or raw tokens); the final answer (whose text
    differs from what was printed when `revised`)."""
    console.print()
    for event, data in client.events("/v1/query", body):
        if event in ("token", "verified"):
            console.print(data["text"], end="", style="bold", highlight=False)
        elif event == "answer":
            console.print("\n")
            if data.get("revised"):
                console.print("revised by verification:", style="dim")
            return dict(data)
        elif event == "error":
            raise ApiError(f"{data['message']} ({data['code']})")
    raise ApiError("the stream ended without an answer")


def _print_answer_details(answer: dict[str, Any]) -> None:
    for c in answer["citations"]:
        where = ", ".join(x for x in (c["section"], f"p. {c['page']}" if c["page"] else None) if x)
        console.print(f"  [{c['marker']}] [cyan]{c['source']}[/cyan] {where}")
        console.print(f"      “{c['snippet'][:240]}”", style="dim", highlight=False)
    t = answer["timings"]
    route = answer.get("route") or {}
    via = f" via {route['model']} ({route['reason']})" if route else ""
    console.print(
        f"\nmodel: {answer['model'] or 'none (not answerable)'}{via} · retrieval "
        f"{t['retrieval_ms']:.0f} ms · generation {t['generation_ms']:.0f} ms",
        style="dim",
    )
    for attempt in route.get("fallbacks", []):
        console.print(f"fell back from {attempt['model']}: {attempt['message']}", style="dim")
    checked = answer.get("verification")
    if checked:
        claims = checked["claims"]
        kept = sum(c["label"] == "supported" for c in claims)
        console.print(
            f"verified by {checked['verifier']} in {checked['latency_ms']:.0f} ms: {kept} of "
            f"{len(claims)} claims supported"
            + (f" ({checked['fallback']})" if checked.get("fallback") else ""),
            style="dim",
        )
        for claim in answer.get("unsupported", []):
            why = claim.get("note") or claim["label"].replace("_", " ")
            console.print(f"  dropped ({why}): {claim['text'][:160]}", style="dim")
    if not answer["answerable"] and answer.get("reason"):
        console.print(f"reason: {answer['reason']}", style="dim")


@app.command()
def retrieve(
    question: str,
    collection: Collection = "default",
    top_k: Annotated[int, typer.Option(help="Chunks to return.")] = 5,
    mode: Mode = None,
    filters: Filters = None,
    api_url: ApiUrl = DEFAULT_URL,
) -> None:
    """Show the chunks a question retrieves: rank score, and cosine similarity to the question."""
    body = _search_body(collection, question, top_k=top_k, mode=mode, filters=filters)
    try:
        result = Client(api_url).request("POST", "/v1/retrieve", json=body)
    except ApiError as exc:
        fail(str(exc))
    table = Table("score", "similarity", "source", "section / page", "text")
    for hit in result["hits"]:
        where = " · ".join(str(x) for x in (hit["section"], hit["page"]) if x)
        similarity = "" if hit["similarity"] is None else f"{hit['similarity']:.3f}"
        table.add_row(f"{hit['score']:.3f}", similarity, hit["source"], where, hit["text"][:120])
    console.print(table)


@app.command()
def collections(api_url: ApiUrl = DEFAULT_URL) -> None:
    """List collections."""
    try:
        listed = Client(api_url).request("GET", "/v1/collections")
    except ApiError as exc:
        fail(str(exc))
    table = Table("name", "documents", "embedding model", "created")
    for c in listed:
        table.add_row(
            c["name"], str(c["document_count"]), c["embedding_model"], c["created_at"][:19]
        )
    console.print(table)


if __name__ == "__main__":
    sys.exit(app())
