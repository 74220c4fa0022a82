"""One place that turns errors into HTTP: `{"error": {"code", "message"}}`, never a traceback."""

from __future__ import annotations

import logging
import math
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
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


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")  # e.g. `backend`, `tried`, `details`

    code: str = Field(examples=["not_found"])
    message: str = Field(examples=["collection 'handbook' not found"])


class ErrorBody(BaseModel):
    """Every error the service answers, whatever the status."""

    error: ErrorDetail


_DESCRIPTIONS = {
    400: "The request body cannot be read (e.g. malformed multipart)",
    401: "No API key, or not a valid one",
    403: "The key lacks the scope this needs",
    404: "Not found (or in a collection the key may not use)",
    409: "It exists already",
    413: "The request body is over its limit",
    415: "A file type that is not supported",
    422: "The request is not valid",
    429: "A rate limit was reached: see Retry-After",
    502: "The model failed to produce an answer",
    503: "A backend (database, broker, store, model) is unavailable",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses, all with the `ErrorBody` schema."""
    return {s: {"model": ErrorBody, "description": _DESCRIPTIONS[s]} for s in statuses}


# What any /v1 route may answer besides its success.
ERROR_RESPONSES = error_responses(400, 401, 403, 404, 413, 422, 429, 503)


# Under this prefix errors also take OpenAI's shape (`type`, `param`; 400 for an invalid
# request), which its SDKs read: api/openai_compat.py.
OPENAI_PREFIX = "/openai/"
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    429: "rate_limit_error",
}


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    *,
    path: str = "",
    **extra: object,
) -> JSONResponse:
    """The error body; `path` is the request's (its prefix may ask for OpenAI's shape)."""
    error: dict[str, object] = {"code": code, "message": message, **extra}
    if path.startswith(OPENAI_PREFIX):
        status = 400 if status in (415, 422) else status
        kind = "server_error" if status >= 500 else "invalid_request_error"
        error |= {"type": _OPENAI_TYPES.get(status, kind), "param": None}
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def status_of(exc: RagError) -> int:
    return next((s for cls, s in STATUS if isinstance(exc, cls)), 500)


def _rag_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RagError)
    status = status_of(exc)
    headers = None
    extra: dict[str, object] = {}
    if isinstance(exc, RateLimited):
        # Rounded up: a client that waits exactly this long finds a token there.
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
    if isinstance(exc, AllModelsFailed):
        extra["tried"] = [{"model": m, "error": e} for m, e in exc.attempts]
    if isinstance(exc, BackendError):
        extra["backend"] = exc.backend
        log.warning("backend error: %s", exc.message)
    return error_response(status, exc.code, exc.message, headers, path=request.url.path, **extra)


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"field": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
        for e in exc.errors()
    ]
    summary = "; ".join(f"{d['field']}: {d['problem']}" for d in details[:5])
    message = f"invalid request: {summary}"
    return error_response(422, "validation_error", message, path=request.url.path, details=details)


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    headers = getattr(exc, "headers", None)
    return error_response(exc.status_code, code, str(exc.detail), headers, path=request.url.path)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    incident = uuid.uuid4().hex[:12]
    # Starlette calls a sync handler in a worker thread, where the exception is no longer
    # "current": `log.exception` would log "NoneType: None".
    log.error(
        "unhandled error %s on %s %s", incident, request.method, request.url.path, exc_info=exc
    )
    message = f"internal error (incident {incident}); see logs"
    return error_response(500, "internal_error", message, path=request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RagError, _rag_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
