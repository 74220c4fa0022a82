from __future__ import annotations

from fastapi import APIRouter, Response

from api.auth import AdminCaller, ReaderCaller, RootCaller
from api.deps import RuntimeDep
from api.errors import error_responses
from api.schemas import CollectionCreate
from rag.models import CollectionInfo

router = APIRouter(prefix="/v1/collections", tags=["collections"])


@router.post(
    "", status_code=201, summary="Create a collection (admin)", responses=error_responses(409)
)
def create_collection(body: CollectionCreate, rt: RuntimeDep, caller: RootCaller) -> CollectionInfo:
    info = rt.catalog.create_collection(body.name, body.description, rt.embedder.dimension)
    caller.record("collection.create", collection=body.name, status=201)
    return info


@router.get("", summary="The collections this key may use")
def list_collections(rt: RuntimeDep, caller: ReaderCaller) -> list[CollectionInfo]:
    return rt.catalog.list_collections(caller.principal.collections, caller.access)


@router.get("/{collection}")
def get_collection(collection: str, rt: RuntimeDep, caller: ReaderCaller) -> CollectionInfo:
    """`document_count` counts the documents this caller may read."""
    return rt.catalog.get_collection(collection, caller.access)


@router.delete("/{collection}", status_code=204, summary="Delete a collection (admin)")
def delete_collection(collection: str, rt: RuntimeDep, caller: AdminCaller) -> Response:
    rt.catalog.delete_collection(collection)
    caller.record("collection.delete", collection=collection, status=204)
    return Response(status_code=204)
