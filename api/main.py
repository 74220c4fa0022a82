"""`create_app()`: the FastAPI service. In embedded mode its process also runs the worker."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import Response

from api import mcp, openai_compat, ui
from api.auth import Authenticate
from api.errors import ERROR_RESPONSES, install_error_handlers
from api.limits import BodyLimit
from api.observe import Observe
from api.routers import audit, collections, documents, feedback, health, jobs, keys, models, search
from api.routers.slack import slack_router
from ingest.celery_app import CHAT_TASK, celery_app
from ingest.dispatch import Dispatcher, Relay
from ingest.metrics import QueueDepth
from ingest.worker import InProcessWorker
from rag import __version__, tracing
from rag.config import Settings, get_settings
from rag.errors import RagError
from rag.factory import Runtime, build_runtime, install_runtime, load_models
from rag.intake import Intake
from rag.ratelimit import RateLimiter
from rag.verification.text import warm_up
from slackbot.app import build_bolt, slack_secrets

log = logging.getLogger("api")


def _warm_up(runtime: Runtime) -> None:
    """Load the verifier's word lists and the embedder (exporting it to ONNX the first time,
    a few seconds) now rather than on the first request."""
    warm_up()
    try:
        runtime.embedder.embed_query("warm up")
    except RagError as exc:  # said again, with the same words, to the request that needs it
        log.warning("the embedding model is not ready: %s", exc.message)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # A bad model catalog or a missing API key stops the service here, with one line.
    load_models(settings)
    slack = slack_secrets(settings)  # None: the bot is off; ConfigError: a secret is missing

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = build_runtime(settings)
        install_runtime(runtime)
        threading.Thread(target=_warm_up, args=(runtime,), name="warm-up", daemon=True).start()
        try:
            if upgraded := runtime.catalog.upgrade_store():
                log.warning("%d chunks from before permissions: marked readable by all", upgraded)
        except RagError as exc:  # a Qdrant server down: /readyz says so; retried next start
            log.warning("could not upgrade the vector store now: %s", exc.message)
        dispatcher = Dispatcher(
            celery_app,
            runtime.jobs,
            queue=settings.worker.queue,
            redispatch_after_s=settings.worker.redispatch_after_s,
            lease_s=settings.worker.lease_s,
        )
        worker = socket_mode = None
        if settings.run_embedded_worker:
            runtime.store.ping()  # take the embedded store's lock now, with a clear error if held
            # Slack answers have their own queue, consumed beside ingestion's: an answer waits
            # at most for the document in hand (a separate `rag worker -Q` removes even that).
            queues = settings.queues if slack else [settings.worker.queue]
            worker = InProcessWorker(
                celery_app, queues=queues, concurrency=settings.worker.concurrency
            )
            # On the embedded store this process alone runs work: whatever a previous run left
            # mid-way was orphaned by its exit, so it is sent again now, not after the lease.
            # (With a Qdrant server other workers may be running: their leases decide.)
            if settings.embedded_store and (orphans := runtime.jobs.requeue_orphans(lease_s=0)):
                log.warning("%d document(s) were mid-way when the last run stopped", orphans)
            worker.start()
        relay = Relay(dispatcher, interval_s=settings.worker.relay_interval_s)
        relay.start()
        app.state.runtime, app.state.dispatcher, app.state.worker = runtime, dispatcher, worker
        app.state.intake = Intake(settings, runtime.jobs, dispatcher, runtime.audit)
        app.state.queue_depth = QueueDepth(celery_app, settings.queues)
        if slack is not None and settings.slack.socket_mode:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            socket_mode = SocketModeHandler(app.state.bolt, slack.app_token)
            socket_mode.connect()  # type: ignore[no-untyped-call]
            log.info("slack: connected in Socket Mode")
        redis_url = settings.ratelimit_redis_url  # no Redis (a RabbitMQ broker): no rate limits
        app.state.limiter = RateLimiter(redis_url) if redis_url else None
        if redis_url is None and settings.auth.enabled:
            log.warning("no rate limits: the broker is not Redis and auth.redis_url is unset")
        log.info(
            "ready: store=%s database=%s worker=%s",
            getattr(runtime.store, "location", "?"),
            runtime.db.engine.url.render_as_string(hide_password=True),
            "in-process" if worker else "external",
        )
        try:
            async with mcp_endpoint.running():
                yield
        finally:
            if app.state.limiter is not None:
                app.state.limiter.close()
            relay.stop()
            if socket_mode is not None:
                socket_mode.close()  # type: ignore[no-untyped-call]
            if worker is not None:
                worker.stop(timeout_s=settings.api.shutdown_grace_s)
            install_runtime(None)
            runtime.close()

    app = FastAPI(
        title="RAG service",
        version=__version__,
        summary="Answers grounded in your documents, with citations.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    # Multipart framing adds a little to the files themselves.
    app.add_middleware(
        BodyLimit,
        max_upload_bytes=settings.max_upload_bytes + (1 << 20),
        max_json_bytes=int(settings.api.max_json_mb * 2**20),
    )
    app.add_middleware(Authenticate)  # no key, no body read
    app.add_middleware(Observe)  # outermost: refusals are counted and carry a request id too
    if not settings.auth.enabled:
        log.warning("authentication is OFF (auth.enabled = false): every caller is an admin")
    for module in (health, collections, documents, jobs, search, models, feedback, keys, audit):
        responses = ERROR_RESPONSES if module is not health else None
        app.include_router(module.router, responses=responses)
    app.include_router(openai_compat.router)
    mcp_endpoint = mcp.mount(app)  # /mcp: tools that call /v1 as the caller
    if settings.ui.enabled:
        ui.mount(app)  # /ui: pages whose scripts call /v1 with the browser's session

    if slack is not None:
        app.state.bolt = build_bolt(
            settings,
            slack,
            chat=lambda: app.state.runtime.chat,
            enqueue=lambda turn_id, response_url: celery_app.send_task(
                CHAT_TASK,
                args=[turn_id, response_url],
                kwargs={"trace": tracing.carrier()},
                queue=settings.slack.queue,
            ),
        )
        app.include_router(slack_router(app.state.bolt))
        how = "Socket Mode" if settings.slack.socket_mode else "POST /slack/events"
        log.info("slack bot on (%s): answers on queue %s", how, settings.slack.queue)

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        home = "/ui" if settings.ui.enabled else "/docs"
        return Response(status_code=307, headers={"Location": home})

    return app
