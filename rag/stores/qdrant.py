"""Qdrant through `qdrant-client`: a server with QDRANT_URL, or its Python local mode as the
embedded store when `qdrant.embedded_engine` is "local" (the default embedded engine is edge).

Both modes run the same code. Each of our collections is its own Qdrant collection (hard
isolation), with a named dense vector and a named sparse vector carrying Qdrant's IDF modifier.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from rag.access import ACCESS_KEY
from rag.config import Fusion, RetrievalMode
from rag.errors import BackendError, BackendUnavailable, NotFoundError
from rag.filters import Condition, FieldType, Scalar, storage_key
from rag.models import Chunk, ScoredChunk, SparseVector
from rag.stores._qdrant_common import (
    DENSE,
    INDEXED,
    LOCKED_HINT,
    SPARSE,
    Bounds,
    chunk_payload,
    document_conditions,
    lower,
    payload_chunk,
    readable_document,
    reading_order,
    scored_chunk,
)

_SCHEMA = {
    "keyword": qm.PayloadSchemaType.KEYWORD,
    "integer": qm.PayloadSchemaType.INTEGER,
    "float": qm.PayloadSchemaType.FLOAT,
    "datetime": qm.PayloadSchemaType.DATETIME,
    "bool": qm.PayloadSchemaType.BOOL,
}
_FUSION = {"rrf": qm.Fusion.RRF, "dbsf": qm.Fusion.DBSF}
_SCROLL_PAGE = 256  # points per scroll call when reading a whole document


@contextmanager
def _mapped_errors(what: str) -> Iterator[None]:
    """Turn qdrant-client's exceptions into ours, in one place."""
    try:
        yield
    except UnexpectedResponse as exc:
        if exc.status_code == 404:
            raise NotFoundError(f"Qdrant: {what}: not found") from exc
        retryable = exc.status_code is not None and (
            exc.status_code >= 500 or exc.status_code == 429
        )
        raise BackendError(
            f"Qdrant: {what} failed with HTTP {exc.status_code}",
            backend="qdrant",
            retryable=retryable,
        ) from exc
    except (ResponseHandlingException, ConnectionError, TimeoutError) as exc:
        raise BackendUnavailable(
            f"Qdrant is unreachable ({what}): {exc}", backend="qdrant"
        ) from exc


class QdrantStore:
    def __init__(
        self,
        *,
        url: str | None = None,
        api_key: str | None = None,
        path: Path | None = None,
        prefix: str = "rag_",
        timeout_s: float = 10.0,
    ):
        if url is None and path is None:
            raise ValueError("QdrantStore needs a server url or an embedded path")
        self._url, self._api_key, self._path = url, api_key, path
        self._prefix = prefix
        self._timeout = timeout_s
        self._client: QdrantClient | None = None
        self._init_lock = threading.Lock()
        # The local engine is plain Python state: serialise access to it. A server needs no lock.
        self._op_lock: threading.Lock | None = threading.Lock() if url is None else None

    @property
    def location(self) -> str:
        return self._url or f"embedded:{self._path}"

    @property
    def client(self) -> QdrantClient:
        if self._client is None:
            with self._init_lock:
                if self._client is None:
                    self._client = self._connect()
        return self._client

    def _connect(self) -> QdrantClient:
        if self._url:
            return QdrantClient(url=self._url, api_key=self._api_key, timeout=int(self._timeout))
        assert self._path is not None
        self._path.mkdir(parents=True, exist_ok=True)
        try:
            return QdrantClient(path=str(self._path))
        except RuntimeError as exc:
            if "already accessed" in str(exc):
                raise BackendUnavailable(
                    LOCKED_HINT.format(path=self._path), backend="qdrant"
                ) from exc
            raise

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _name(self, collection: str) -> str:
        return f"{self._prefix}{collection}"

    @contextmanager
    def _call(self, what: str) -> Iterator[QdrantClient]:
        client = self.client
        with self._op_lock or nullcontext(), _mapped_errors(what):
            yield client

    # VectorStore ------------------------------------------------------------------------

    def ping(self) -> None:
        with self._call("list collections") as client:
            client.get_collections()

    def ensure_collection(self, collection: str, dimension: int) -> None:
        name = self._name(collection)
        with self._call(f"create collection {collection}") as client:
            if client.collection_exists(name):
                return
            client.create_collection(
                name,
                vectors_config={
                    DENSE: qm.VectorParams(size=dimension, distance=qm.Distance.COSINE)
                },
                sparse_vectors_config={SPARSE: qm.SparseVectorParams(modifier=qm.Modifier.IDF)},
            )
        self.index_fields(collection, INDEXED, storage_keys=True)

    def index_fields(
        self, collection: str, fields: Mapping[str, FieldType], *, storage_keys: bool = False
    ) -> None:
        if not self._url:  # payload indexes only matter (and only exist) on a server
            return
        with self._call(f"index fields of {collection}") as client:
            for field_name, kind in fields.items():
                client.create_payload_index(
                    self._name(collection),
                    field_name if storage_keys else storage_key(field_name),
                    field_schema=_SCHEMA[kind],
                )

    def drop_collection(self, collection: str) -> None:
        with self._call(f"drop collection {collection}") as client:
            client.delete_collection(self._name(collection))

    def upsert(
        self,
        chunks: Sequence[Chunk],
        dense: Sequence[Sequence[float]],
        sparse: Sequence[SparseVector],
    ) -> None:
        if not chunks:
            return
        points = [
            qm.PointStruct(
                id=chunk.id,
                vector={
                    DENSE: list(vector),
                    SPARSE: qm.SparseVector(indices=sv.indices, values=sv.values),
                },
                payload=chunk_payload(chunk),
            )
            for chunk, vector, sv in zip(chunks, dense, sparse, strict=True)
        ]
        with self._call(f"upsert into {chunks[0].collection}") as client:
            client.upsert(self._name(chunks[0].collection), points=points, wait=True)

    def delete_document(
        self, collection: str, document_id: str, *, before_version: int | None = None
    ) -> None:
        conditions = lower(document_conditions(document_id, before_version), _Dialect())
        with self._call(f"delete from {collection}") as client:
            if not client.collection_exists(self._name(collection)):
                return
            client.delete(
                self._name(collection),
                points_selector=qm.FilterSelector(filter=qm.Filter(must=conditions)),
                wait=True,
            )

    def upgrade(self, collection: str) -> int:
        legacy = qm.Filter(must=[qm.IsEmptyCondition(is_empty=qm.PayloadField(key=ACCESS_KEY))])
        with self._call(f"upgrade {collection}") as client:
            if not client.collection_exists(self._name(collection)):
                return 0
        self.index_fields(collection, INDEXED, storage_keys=True)
        with self._call(f"upgrade {collection}") as client:
            found = client.count(self._name(collection), count_filter=legacy, exact=True).count
            if found:
                client.set_payload(
                    self._name(collection), payload={ACCESS_KEY: ["*"]}, points=legacy, wait=True
                )
        return found

    def set_access(self, collection: str, document_id: str, access: Sequence[str]) -> None:
        with self._call(f"set access in {collection}") as client:
            if not client.collection_exists(self._name(collection)):
                return
            client.set_payload(
                self._name(collection),
                payload={ACCESS_KEY: list(access)},
                points=qm.Filter(must=lower(document_conditions(document_id), _Dialect())),
                wait=True,
            )

    def count(self, collection: str, document_id: str | None = None) -> int:
        flt = _to_filter(document_conditions(document_id)) if document_id else None
        with self._call(f"count {collection}") as client:
            if not client.collection_exists(self._name(collection)):
                return 0
            return client.count(self._name(collection), count_filter=flt, exact=True).count

    def document_chunks(
        self, collection: str, document_id: str, *, access: Sequence[str] | None
    ) -> list[Chunk]:
        flt = _to_filter(readable_document(document_id, access))
        chunks: list[Chunk] = []
        offset: Any = None
        with self._call(f"read a document of {collection}") as client:
            if not client.collection_exists(self._name(collection)):
                return []
            while True:
                records, offset = client.scroll(
                    self._name(collection),
                    scroll_filter=flt,
                    limit=_SCROLL_PAGE,
                    offset=offset,
                    with_payload=True,
                    with_vectors=False,
                )
                chunks += [payload_chunk(r.id, r.payload) for r in records]
                if offset is None:
                    return reading_order(chunks)

    def search(
        self,
        collection: str,
        *,
        dense: Sequence[float],
        sparse: SparseVector,
        mode: RetrievalMode,
        limit: int,
        filters: Sequence[Condition] = (),
        fusion: Fusion = "rrf",
    ) -> list[ScoredChunk]:
        flt = _to_filter(filters)
        sparse_query = qm.SparseVector(indices=sparse.indices, values=sparse.values)
        kwargs: dict[str, Any]
        if mode == "dense":
            kwargs = {"query": list(dense), "using": DENSE}
        elif mode == "sparse":
            kwargs = {"query": sparse_query, "using": SPARSE}
        else:
            depth = max(limit * 4, 20)
            kwargs = {
                "prefetch": [
                    qm.Prefetch(query=list(dense), using=DENSE, limit=depth, filter=flt),
                    qm.Prefetch(query=sparse_query, using=SPARSE, limit=depth, filter=flt),
                ],
                "query": qm.FusionQuery(fusion=_FUSION[fusion]),
            }
        with self._call(f"search {collection}") as client:
            if not client.collection_exists(self._name(collection)):
                return []
            result = client.query_points(
                self._name(collection),
                limit=limit,
                query_filter=flt,
                with_payload=True,
                with_vectors=[DENSE],
                **kwargs,
            )
        return [scored_chunk(p.id, p.score, p.payload, p.vector, dense) for p in result.points]


class _Dialect:
    """Our filter conditions in qdrant-client's models."""

    def match(self, key: str, value: Scalar) -> qm.Condition:
        return qm.FieldCondition(key=key, match=qm.MatchValue(value=value))  # type: ignore[arg-type]

    def match_any(self, key: str, values: list[Any]) -> qm.Condition:
        return qm.FieldCondition(key=key, match=qm.MatchAny(any=values))

    def range(self, key: str, bounds: Bounds, *, is_datetime: bool) -> qm.Condition:
        if is_datetime:
            return qm.FieldCondition(key=key, range=qm.DatetimeRange(**bounds))  # type: ignore[arg-type]
        return qm.FieldCondition(key=key, range=qm.Range(**bounds))  # type: ignore[arg-type]

    def any_of(self, conditions: list[Any]) -> qm.Condition:
        return qm.Filter(should=conditions)


def _to_filter(filters: Sequence[Condition]) -> qm.Filter | None:
    return qm.Filter(must=lower(filters, _Dialect())) if filters else None
