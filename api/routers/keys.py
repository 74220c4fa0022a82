"""API keys (admin): create (the secret is in the response, once), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from api.auth import RootCaller
from api.deps import RuntimeDep
from api.errors import error_responses
from api.schemas import Strict
from rag.auth import ApiKeyInfo, CreatedKey, Scope

router = APIRouter(prefix="/v1/keys", tags=["admin"])


class KeyCreate(Strict):
    name: str = Field(min_length=1, max_length=128)
    scopes: list[Scope] = Field(min_length=1, examples=[["query"]])
    collections: list[str] | None = Field(default=None, description="None: every collection.")
    groups: list[str] = Field(default_factory=list, description="Groups whose documents it reads.")
    delegate: bool = Field(
        default=False, description="May act for an end user named in X-On-Behalf-Of (a bot)."
    )
    query_per_minute: float | None = Field(default=None, ge=0, description="None: the default.")
    ingest_per_minute: float | None = Field(default=None, ge=0)


@router.post(
    "",
    status_code=201,
    summary="Create a key; its secret is shown only here",
    responses=error_responses(409),
)
def create_key(body: KeyCreate, rt: RuntimeDep, caller: RootCaller) -> CreatedKey:
    created = rt.keys.create(**body.model_dump())
    caller.record("key.create", target=created.name, status=201, scopes=created.scopes)
    return created


@router.get("", summary="Every key (never its secret)")
def list_keys(rt: RuntimeDep, _caller: RootCaller) -> list[ApiKeyInfo]:
    return rt.keys.list()


@router.delete("/{key}", summary="Revoke a key, by name or id")
def revoke_key(key: str, rt: RuntimeDep, caller: RootCaller) -> ApiKeyInfo:
    revoked = rt.keys.revoke(key)
    caller.record("key.revoke", target=revoked.name)
    return revoked
