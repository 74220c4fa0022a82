"""Sign in and out, and the pages. A page is an HTML shell rendered for the signed-in key (its
navigation shows what the key's scopes allow); its script fetches and changes data through
/v1 as that key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from api.auth import SESSION_COOKIE, signed_in
from api.deps import get_runtime
from rag import __version__
from rag.auth import ANONYMOUS, Principal, Scope
from rag.errors import Forbidden, RagError, Unauthenticated
from rag.factory import Runtime

HERE = Path(__file__).parent
PREFIX = "/ui"
# No inline script or style, nothing from another origin: a passage that smuggled markup into
# a document could not run it even if escaping failed.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
# Each page, its title and the scope its key needs; the navigation lists those it may open.
PAGES: dict[str, tuple[str, Scope]] = {
    "ask": ("Ask", "query"),
    "documents": ("Documents", "ingest"),
    "admin": ("Admin", "admin"),
}
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _viewer(request: Request) -> tuple[Principal, str] | None:
    """The signed-in principal and its CSRF token; None when signed out."""
    runtime = get_runtime(request)
    if not runtime.settings.auth.enabled:
        return ANONYMOUS, ""
    if not (token := request.cookies.get(SESSION_COOKIE)):
        return None
    try:
        session = signed_in(runtime, token, "GET", "")
    except Unauthenticated:
        return None
    return session.principal, session.csrf


def _render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("principal", None)
    response = templates.TemplateResponse(
        request,
        template,
        {"version": __version__, "pages": PAGES, **context},
        status_code=status,
    )
    response.headers.update(HEADERS)
    return response


async def _page(
    request: Request, name: str, template: str | None = None, **context: Any
) -> Response:
    viewer = await run_in_threadpool(_viewer, request)
    if viewer is None:
        return RedirectResponse(f"{PREFIX}/login?next={quote(request.url.path)}", 303)
    principal, csrf = viewer
    title, scope = PAGES[name]
    if not principal.allows(scope):
        message = f"The {title} page needs a key with the {scope!r} scope."
        return _render(
            request,
            "refused.html",
            403,
            principal=principal,
            csrf=csrf,
            title=title,
            message=message,
        )
    return _render(
        request,
        template or f"{name}.html",
        principal=principal,
        csrf=csrf,
        title=title,
        active=name,
        unrestricted=principal.collections is None,
        **context,
    )


def _landing(principal: Principal) -> str:
    name = next((n for n, (_, scope) in PAGES.items() if principal.allows(scope)), "ask")
    return f"{PREFIX}/{name}"


def _safe_next(target: str | None) -> str | None:
    """Only a path of ours: never another site (an open redirect)."""
    if not target or not target.startswith(f"{PREFIX}/") or "\\" in target:
        return None
    if ".." in target.split("?")[0].split("/") or urlsplit(target).netloc:
        return None
    return target


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


@router.get("")
@router.get("/")
async def home(request: Request) -> Response:
    viewer = await run_in_threadpool(_viewer, request)
    target = _landing(viewer[0]) if viewer else f"{PREFIX}/login"
    return RedirectResponse(target, 303)


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    viewer = await run_in_threadpool(_viewer, request)
    if viewer is not None:
        return RedirectResponse(_safe_next(next) or _landing(viewer[0]), 303)
    return _render(request, "login.html", title="Sign in", next=_safe_next(next) or "")


@router.post("/login")
async def login(
    request: Request, key: Annotated[str, Form()] = "", next: Annotated[str, Form()] = ""
) -> Response:
    runtime = get_runtime(request)
    if not _same_origin(request):
        return _render(
            request,
            "login.html",
            403,
            title="Sign in",
            next="",
            error="Sign-in refused: the form was sent from another site.",
        )
    if not runtime.settings.auth.enabled:
        return RedirectResponse(_safe_next(next) or _landing(ANONYMOUS), 303)
    try:
        token, session = await run_in_threadpool(runtime.sessions.open, key)
    except RagError as exc:
        status = 401 if isinstance(exc, Unauthenticated) else 503
        runtime.audit.record("ui.signin", key_name=None, status=status, target=_key_id(key))
        message = "That key is not valid (or was revoked)." if status == 401 else exc.message
        return _render(
            request,
            "login.html",
            status,
            title="Sign in",
            next=_safe_next(next) or "",
            error=message,
        )
    runtime.audit.record_for(session.principal, "ui.signin")
    response = RedirectResponse(_safe_next(next) or _landing(session.principal), 303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(runtime.settings.ui.session_hours * 3600),
        path="/",
        secure=_secure(request, runtime),
        httponly=True,
        samesite="strict",
    )
    return response


def _key_id(presented: str) -> str | None:
    """The public id of a key as presented (rag_<id>_<secret>), to audit a refused sign-in by;
    None when it is not shaped like one (a password pasted by mistake is never recorded)."""
    match = re.fullmatch(r"rag_([0-9a-f]{12})_.+", presented.strip())
    return match.group(1) if match else None


def _secure(request: Request, runtime: Runtime) -> bool:
    if (configured := runtime.settings.ui.secure_cookie) is not None:
        return configured
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded.split(",")[0].strip() == "https"


@router.post("/logout")
async def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    runtime = get_runtime(request)
    if token := request.cookies.get(SESSION_COOKIE):
        try:
            await run_in_threadpool(signed_in, runtime, token, "POST", csrf)
        except Forbidden:
            return _render(
                request,
                "refused.html",
                403,
                title="Sign out",
                message="Sign-out refused: the form was not sent by this site.",
            )
        except Unauthenticated:
            pass
        await run_in_threadpool(runtime.sessions.close, token)
    response = RedirectResponse(f"{PREFIX}/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/ask")
async def ask(request: Request) -> Response:
    return await _page(request, "ask")


@router.get("/documents")
async def documents(request: Request) -> Response:
    return await _page(request, "documents")


@router.get("/jobs/{job_id}")
async def job(request: Request, job_id: str) -> Response:
    return await _page(request, "documents", "job.html", job_id=job_id)


@router.get("/admin")
async def admin(request: Request) -> Response:
    return await _page(request, "admin")


def mount(app: FastAPI) -> None:
    app.include_router(router)
    static = StaticFiles(directory=HERE / "static")
    app.mount(f"{PREFIX}/static", static, name="ui-static")
