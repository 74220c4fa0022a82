"""The audit log (admin), newest first."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query

from api.auth import RootCaller
from api.deps import RuntimeDep
from api.schemas import MAX_OFFSET
from rag.audit import AuditEntry

router = APIRouter(prefix="/v1", tags=["admin"])


@router.get("/audit", summary="Who did what: filter by key, action, collection and time")
def audit_log(
    rt: RuntimeDep,
    _caller: RootCaller,
    key: str | None = Query(None, description="Key name."),
    action: str | None = Query(None, examples=["query", "ingest", "key.create"]),
    collection: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> list[AuditEntry]:
    return rt.audit.page(
        key_name=key,
        action=action,
        collection=collection,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
