from __future__ import annotations

from fastapi import APIRouter, Query

from api.deps import RuntimeDep
from rag.models import JobInfo

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("")
def list_jobs(
    rt: RuntimeDep, collection: str | None = None, limit: int = Query(20, ge=1, le=200)
) -> list[JobInfo]:
    return rt.catalog.list_jobs(collection=collection, limit=limit)


@router.get("/{job_id}")
def get_job(job_id: str, rt: RuntimeDep) -> JobInfo:
    return rt.catalog.get_job(job_id)
