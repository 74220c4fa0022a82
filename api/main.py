"""`create_app()`: the FastAPI service. In embedded mode its process also runs the worker."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import Authenticate
from api.errors import ERROR_RESPONSES, error_response, install_error_handlers
from api.routers import audit, collections, documents, health, jobs, keys, models, search
from ingest.celery_app import celery_app
from ingest.dispatch import Dispatcher, Relay
from ingest.worker import InProcessWorker
from rag import __version__
from rag.config import Settings, get_settings
from rag.errors import RagError
from rag.factory import build_runtime, install_runtime, load_models
from rag.ratelimit import RateLimiter

log = logging.getLogger("api")


class BodyLimit:
    """Refuse a request whose declared body is over its limit before reading any of it: uploads
    (multipart) have one limit, every other body (JSON) a smaller one."""

    def __init__(self, app: ASGIApp, max_upload_bytes: int, max_json_bytes: int):
        self.app = app
        self.max_upload_bytes, self.max_json_bytes = max_upload_bytes, max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            length = headers.get(b"content-length")
            upload = headers.get(b"content-type", b"").startswith(b"multipart/")
            limit, setting = (
                (self.max_upload_bytes, "api.max_upload_mb")
                if upload
                else (self.max_json_bytes, "api.max_json_mb")
            )
            if length is not None and length.isdigit() and int(length) > limit:
                response = error_response(
                    413,
                    "payload_too_large",
                    f"request body is over the {limit / 2**20:.0f} MiB limit ({setting})",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # A bad model catalog or a missing API key stops the service here, with one line.
    load_models(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = build_runtime(settings)
        install_runtime(runtime)
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
        worker = None
        if settings.run_embedded_worker:
            runtime.store.ping()  # take the embedded store's lock now, with a clear error if held
            worker = InProcessWorker(
                celery_app, queue=settings.worker.queue, concurrency=settings.worker.concurrency
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
            yield
        finally:
            if app.state.limiter is not None:
                app.state.limiter.close()
            relay.stop()
            if worker is not None:
                worker.stop()
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
    app.add_middleware(Authenticate)  # outermost: no key, no body read
    if not settings.auth.enabled:
        log.warning("authentication is OFF (auth.enabled = false): every caller is an admin")
    for module in (health, collections, documents, jobs, search, models, keys, audit):
        responses = ERROR_RESPONSES if module is not health else None
        app.include_router(module.router, responses=responses)

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return Response(status_code=307, headers={"Location": "/docs"})

    return app
