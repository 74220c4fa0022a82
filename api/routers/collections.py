from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import RuntimeDep
from api.schemas import CollectionCreate
from rag.models import CollectionInfo

router = APIRouter(prefix="/v1/collections", tags=["collections"])


@router.post("", status_code=201)
def create_collection(body: CollectionCreate, rt: RuntimeDep) -> CollectionInfo:
    return rt.catalog.create_collection(body.name, body.description, rt.embedder.dimension)


@router.get("")
def list_collections(rt: RuntimeDep) -> list[CollectionInfo]:
    return rt.catalog.list_collections()


@router.get("/{collection}")
def get_collection(collection: str, rt: RuntimeDep) -> CollectionInfo:
    return rt.catalog.get_collection(collection)


@router.delete("/{collection}", status_code=204)
def delete_collection(collection: str, rt: RuntimeDep) -> Response:
    rt.catalog.delete_collection(collection)
    return Response(status_code=204)
