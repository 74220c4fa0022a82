"""The metadata database on SQLite and on PostgreSQL: the same assertions on both."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.collections import Catalog, IncomingFile
from rag.db.session import open_database
from rag.errors import ConflictError, InvalidInput, NotFoundError, UnsupportedDocument
from rag.jobs import Jobs
from tests.conftest import make_settings


class _NullStore:
    """Only the catalog is under test here; vectors are covered by test_store and e2e tests."""

    def ensure_collection(self, collection: str, dimension: int) -> None: ...
    def drop_collection(self, collection: str) -> None: ...
    def index_fields(self, collection: str, fields: object) -> None: ...
    def set_access(self, collection: str, document_id: str, access: list[str]) -> None: ...
    def delete_document(
        self, collection: str, document_id: str, *, before_version: int | None = None
    ) -> None: ...


@pytest.fixture
def catalog(database_url: str, tmp_path: Path) -> Iterator[Catalog]:
    from sqlalchemy import text

    db = open_database(database_url)
    with db.session() as session:  # PostgreSQL's database is shared by the session: start empty
        for table in ("job_items", "jobs", "documents", "collections"):
            session.execute(text(f"DELETE FROM {table}"))
    settings = make_settings(tmp_path)
    yield Catalog(db, _NullStore(), settings.uploads_dir, embedding_model="test-model")  # type: ignore[arg-type]
    db.dispose()


def _file(tmp_path: Path, name: str, content: bytes) -> IncomingFile:
    path = tmp_path / f"staged-{hashlib.md5(content + name.encode()).hexdigest()}"
    path.write_bytes(content)
    return IncomingFile(
        path=path, filename=name, size=len(content), sha256=hashlib.sha256(content).hexdigest()
    )


def test_collections_lifecycle(catalog: Catalog) -> None:
    catalog.create_collection("handbook", "HR docs", 384)
    with pytest.raises(ConflictError):
        catalog.create_collection("handbook", "", 384)
    for bad in ("Bad Name!", "x\n"):  # `$` alone would match before the final newline
        with pytest.raises(InvalidInput, match="invalid collection name"):
            catalog.create_collection(bad, "", 384)
    assert [c.name for c in catalog.list_collections()] == ["handbook"]
    catalog.delete_collection("handbook")
    with pytest.raises(NotFoundError):
        catalog.get_collection("handbook")


def test_submit_records_outbox_and_skips_unchanged(catalog: Catalog, tmp_path: Path) -> None:
    catalog.create_collection("c", "", 384)
    jobs = Jobs(catalog)
    first = jobs.submit("c", [_file(tmp_path, "a.md", b"# A"), _file(tmp_path, "b.txt", b"B")])
    assert first.job.status == "queued" and len(first.to_dispatch) == 2
    assert sorted(jobs.undispatched()) == sorted(first.to_dispatch)
    jobs.mark_dispatched(first.to_dispatch)
    assert jobs.undispatched() == []

    again = jobs.submit("c", [_file(tmp_path, "a.md", b"# A")])  # same content, still queued
    assert again.to_dispatch == [] and again.job.counts["skipped"] == 1
    assert again.job.status == "succeeded"

    changed = jobs.submit("c", [_file(tmp_path, "a.md", b"# A, edited")])
    assert len(changed.to_dispatch) == 1
    doc = catalog.get_document("c", changed.to_dispatch[0][1])
    assert doc.version == 2 and doc.status == "queued"
    assert len(catalog.list_documents("c")) == 2


def test_submit_refuses_unsupported_types_before_writing(catalog: Catalog, tmp_path: Path) -> None:
    catalog.create_collection("c", "", 384)
    jobs = Jobs(catalog)
    with pytest.raises(UnsupportedDocument, match=r"\.pdf"):
        jobs.submit("c", [_file(tmp_path, "a.md", b"x"), _file(tmp_path, "tool.exe", b"MZ")])
    assert catalog.list_documents("c") == []
    with pytest.raises(NotFoundError):
        jobs.submit("missing", [_file(tmp_path, "a.md", b"x")])


def test_metadata_types_are_learnt_and_widened_across_submissions(
    catalog: Catalog, tmp_path: Path
) -> None:
    catalog.create_collection("c", "", 384)
    jobs = Jobs(catalog)
    first = _file(tmp_path, "a.md", b"# A")
    first.metadata = {"year": 2020, "team": "hr"}
    jobs.submit("c", [first])
    assert catalog.metadata_fields("c") == {"year": "integer", "team": "keyword"}
    second = _file(tmp_path, "b.md", b"# B")
    second.metadata = {"year": 2020.5}  # no new key, but a wider type
    jobs.submit("c", [second])
    assert catalog.metadata_fields("c") == {"year": "float", "team": "keyword"}


def test_a_metadata_field_shows_only_to_readers_of_a_document_carrying_it(
    catalog: Catalog, tmp_path: Path
) -> None:
    catalog.create_collection("c", "", 384)
    jobs = Jobs(catalog)
    public, pay = _file(tmp_path, "public.md", b"# P"), _file(tmp_path, "pay.md", b"# Pay")
    public.metadata, pay.metadata = {"team": "ops"}, {"salary_band": "B", "team": "hr"}
    pay.access = ["group:hr"]
    jobs.submit("c", [public, pay])
    everyone, hr = ["*"], ["*", "group:hr"]
    assert catalog.metadata_fields("c", everyone) == {"team": "keyword"}
    assert catalog.get_collection("c", everyone).metadata_fields == {"team": "keyword"}
    assert catalog.list_collections(access=everyone)[0].metadata_fields == {"team": "keyword"}
    assert set(catalog.metadata_fields("c", hr)) == {"team", "salary_band"}
    assert set(catalog.metadata_fields("c")) == {"team", "salary_band"}  # unrestricted

    pay_id = next(d.id for d in catalog.list_documents("c") if d.source == "pay.md")
    catalog.set_access("c", pay_id, ["*"])  # published: its fields with it
    assert set(catalog.metadata_fields("c", everyone)) == {"team", "salary_band"}
    catalog.set_access("c", pay_id, ["group:hr"])  # and restricted again
    assert set(catalog.metadata_fields("c", everyone)) == {"team"}
    catalog.delete_document("c", pay_id)  # fields are never forgotten: admins see all
    assert set(catalog.metadata_fields("c")) == {"team", "salary_band"}


def test_a_collection_of_another_embedder_is_refused_with_what_to_do(
    catalog: Catalog, tmp_path: Path
) -> None:
    catalog.create_collection("old", "", 384)
    catalog.embedding_model = "another-embedder"  # the service was upgraded to another model
    with pytest.raises(ConflictError, match="test-model.*another-embedder.*new collection"):
        catalog.metadata_fields("old")
    with pytest.raises(ConflictError, match="embedded with test-model"):
        Jobs(catalog).submit("old", [_file(tmp_path, "a.md", b"# A")])
    catalog.delete_collection("old")  # what can still be done: delete it


def test_the_same_embedder_at_another_precision_is_accepted(catalog: Catalog) -> None:
    catalog.create_collection("fp32", "", 384)
    catalog.embedding_model = "test-model#int8"
    assert catalog.metadata_fields("fp32") == {}
    catalog.create_collection("int8", "", 384)
    catalog.embedding_model = "test-model"
    assert catalog.metadata_fields("int8") == {}
