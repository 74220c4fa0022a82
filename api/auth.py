"""Authentication (middleware: 401 before a byte of the body is read), then per route a scope
check (403), the key's collections (404, as if missing), a rate limit (429) and the audit log.
A browser signed in to the web UI sends its session cookie instead of a key (same checks).

    def handler(caller: QueryCaller) -> ...:   # the principal, its limits, caller.record(...)
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_response, status_of
from rag.audit import AuditLog
from rag.auth import ANONYMOUS, Principal
from rag.auth import Scope as KeyScope
from rag.errors import Forbidden, RagError, RateLimited, Unauthenticated
from rag.factory import Runtime
from rag.ratelimit import RateLimiter
from rag.sessions import SignedIn

log = logging.getLogger("api")
# Our API, its OpenAI-compatible mount and the MCP endpoint: the same keys, the same checks.
PROTECTED = ("/v1/", "/openai/", "/mcp")
ON_BEHALF = "x-on-behalf-of"
SESSION_COOKIE = "rag_session"  # the web UI's sign-in (rag.sessions)
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_bearer = HTTPBearer(
    auto_error=False,
    description="An API key from `rag keys create` (or POST /v1/keys): rag_<id>_<secret>.",
)


class Authenticate:
    """Resolve the caller of every protected request (/v1, /openai, /mcp) into
    `request.state.principal`, or answer 401/403 at once. With `auth.enabled = false` every
    caller is an anonymous admin."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED):
            await self.app(scope, receive, send)
            return
        runtime: Runtime = scope["app"].state.runtime
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            principal = await run_in_threadpool(_principal, runtime, headers, scope["method"])
        except RagError as exc:  # a bad key (401), a user a key may not name (403), db down (503)
            status = status_of(exc)
            log.warning("%s %s refused (%d): %s", scope["method"], scope["path"], status, exc)
            challenge = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            response = error_response(status, exc.code, exc.message, challenge, path=scope["path"])
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def _principal(runtime: Runtime, headers: dict[str, str], method: str) -> Principal:
    auth = runtime.settings.auth
    if not auth.enabled:
        return ANONYMOUS
    if "authorization" not in headers and (token := _session_token(headers)):
        return signed_in(runtime, token, method, headers.get(CSRF_HEADER, "")).principal
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("an API key is required: send 'Authorization: Bearer <key>'")
    principal = runtime.keys.authenticate(token.strip())
    if user := headers.get(ON_BEHALF, "").strip():
        principal = principal.acting_for(user, auth.user_groups)
    return principal


def _session_token(headers: dict[str, str]) -> str | None:
    return cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE) or None


def signed_in(runtime: Runtime, token: str, method: str, csrf: str) -> SignedIn:
    """The web UI's session (the same key, scopes and checks as a Bearer request). A request
    that changes something must also carry the session's CSRF token, which a page of another
    site cannot read (the cookie is SameSite=Strict besides)."""
    session = runtime.sessions.resolve(token)
    if method not in SAFE_METHODS and not hmac.compare_digest(csrf, session.csrf):
        raise Forbidden(f"this browser request lacks the session's {CSRF_HEADER} header")
    return session


@dataclass(frozen=True)
class Caller:
    """The authenticated principal of one request, with the audit log at hand."""

    principal: Principal
    audit_log: AuditLog
    audit_questions: bool

    @property
    def access(self) -> list[str] | None:
        return self.principal.access

    def check_collection(self, name: str) -> None:
        self.principal.check_collection(name)

    def record(self, action: str, *, status: int = 200, **fields: Any) -> None:
        self.audit_log.record_for(self.principal, action, status=status, **fields)


def _rate_limit(request: Request, runtime: Runtime, principal: Principal, kind: str) -> None:
    if principal.key_id is None:
        return
    settings = runtime.settings.auth
    rate = settings.query_rate if kind == "query" else settings.ingest_rate
    override = principal.query_per_minute if kind == "query" else principal.ingest_per_minute
    per_minute = rate.per_minute if override is None else override
    limiter: RateLimiter | None = request.app.state.limiter
    if limiter is None or per_minute <= 0:
        return
    wait = limiter.acquire(f"{principal.key_id}:{kind}", per_minute=per_minute, burst=rate.burst)
    if wait > 0:
        raise RateLimited(
            f"rate limit of {per_minute:g} {kind} requests per minute for key "
            f"{principal.name!r} reached; retry in {wait:.1f} s",
            retry_after_s=wait,
        )


def require(scope: KeyScope, *alternatives: KeyScope, unrestricted: bool = False) -> Any:
    """A dependency: the request's caller, who must hold `scope` or one of the `alternatives`
    (and, for a route under a collection, that collection; with `unrestricted`, no collection
    limit at all); every non-admin route counts against one of the key's rates."""

    def dependency(
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Caller:
        runtime: Runtime = request.app.state.runtime
        principal: Principal = request.state.principal
        try:
            principal.require(scope, *alternatives)
            if unrestricted:
                principal.require_unrestricted()
        except Forbidden:
            runtime.audit.record(
                "denied", key_name=principal.name, status=403, target=request.url.path
            )
            raise
        if collection := request.path_params.get("collection"):
            principal.check_collection(collection)
        # Writes under ingest scope use the ingest bucket; reads and queries the query bucket.
        if scope != "admin":
            writes = scope == "ingest" and request.method != "GET"
            _rate_limit(request, runtime, principal, "ingest" if writes else "query")
        return Caller(principal, runtime.audit, runtime.settings.auth.audit_questions)

    return Depends(dependency)


QueryCaller = Annotated[Caller, require("query")]
# Listing collections: what both asking (query) and uploading (ingest) start from.
ReaderCaller = Annotated[Caller, require("query", "ingest")]
IngestCaller = Annotated[Caller, require("ingest")]
AdminCaller = Annotated[Caller, require("admin")]
# Keys, the audit log, new collections: an admin key not limited to collections.
RootCaller = Annotated[Caller, require("admin", unrestricted=True)]
