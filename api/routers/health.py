from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.deps import IntakeDep, RuntimeDep
from api.schemas import Check, Readiness
from rag import metrics
from rag.errors import RagError
from rag.logs import redact

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _check(probe: Callable[[], object]) -> Check:
    try:
        probe()
    except RagError as exc:
        return Check(ok=False, detail=redact(exc.message))
    except Exception as exc:  # a readiness probe reports, it never raises
        return Check(ok=False, detail=redact(f"{type(exc).__name__}: {exc}"))
    return Check(ok=True)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def prometheus(request: Request) -> Response:
    body, content_type = metrics.exposition([request.app.state.queue_depth])
    return Response(body, media_type=content_type)


@router.get("/readyz", summary="Broker, store, database, models (and in-process worker) reachable")
def readyz(request: Request, rt: RuntimeDep, intake: IntakeDep) -> JSONResponse:
    checks = {
        "database": _check(rt.db.ping),
        "broker": _check(intake.ready),
        "store": _check(rt.store.ping),
        "embedder": _check(lambda: rt.embedder.dimension),
        "generator": _check(rt.generator.ping),
    }
    worker = request.app.state.worker
    if worker is not None:
        checks["worker"] = Check(
            ok=worker.alive, detail="" if worker.alive else "worker thread died"
        )
    body = Readiness(ready=all(c.ok for c in checks.values()), checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)
