"""One place that turns errors into HTTP: `{"error": {"code", "message"}}`, never a traceback."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.errors import (
    AllModelsFailed,
    BackendError,
    ConflictError,
    DocumentTooLarge,
    Forbidden,
    GenerationError,
    InvalidInput,
    NotFoundError,
    RagError,
    RateLimited,
    Unauthenticated,
    UnsupportedDocument,
)

log = logging.getLogger("api")

# Most specific first: the first match wins.
STATUS: list[tuple[type[RagError], int]] = [
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (UnsupportedDocument, 415),
    (DocumentTooLarge, 413),
    (InvalidInput, 422),
    (RateLimited, 429),
    (GenerationError, 502),
    (BackendError, 503),
]
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: object
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, **extra}}, status_code=status, headers=headers
    )


def status_of(exc: RagError) -> int:
    return next((s for cls, s in STATUS if isinstance(exc, cls)), 500)


def _rag_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RagError)
    status = status_of(exc)
    headers = None
    extra: dict[str, object] = {}
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(max(1, round(exc.retry_after_s)))}
    if isinstance(exc, AllModelsFailed):
        extra["tried"] = [{"model": m, "error": e} for m, e in exc.attempts]
    if isinstance(exc, BackendError):
        extra["backend"] = exc.backend
        log.warning("backend error: %s", exc.message)
    return error_response(status, exc.code, exc.message, headers, **extra)


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"field": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
        for e in exc.errors()
    ]
    summary = "; ".join(f"{d['field']}: {d['problem']}" for d in details[:5])
    return error_response(422, "validation_error", f"invalid request: {summary}", details=details)


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    incident = uuid.uuid4().hex[:12]
    # Starlette calls a sync handler in a worker thread, where the exception is no longer
    # "current": `log.exception` would log "NoneType: None".
    log.error(
        "unhandled error %s on %s %s", incident, request.method, request.url.path, exc_info=exc
    )
    return error_response(500, "internal_error", f"internal error (incident {incident}); see logs")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RagError, _rag_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
