"""A worker whose lease ran out while it worked (a long GC pause, a frozen VM) must not write
when it wakes up: the worker that took the document over owns it. Exactly once, either way."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from rag.collections import IncomingFile
from rag.db.tables import JobItemRow, utcnow
from rag.factory import Runtime, build_runtime
from rag.ingestion import Ingestor
from rag.job_items import Outcome
from rag.models import Element
from rag.parsing import parse_file
from tests.conftest import make_settings


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = build_runtime(make_settings(tmp_path, worker={"parse_isolated": False}))
    rt.catalog.create_collection("lease", "", rt.embedder.dimension)
    yield rt
    rt.close()


def _submit(rt: Runtime, tmp_path: Path) -> tuple[str, str]:
    data = (
        "# Lockers\n\n" + "Lockers on floor three are assigned by the front desk. " * 40
    ).encode()
    staged = tmp_path / "staged.md"
    staged.write_bytes(data)
    incoming = IncomingFile(staged, "lockers.md", len(data), hashlib.sha256(data).hexdigest())
    (item,) = rt.jobs.submit("lease", [incoming]).to_dispatch
    return item


def test_a_worker_that_lost_its_lease_stops_without_writing(
    runtime: Runtime, tmp_path: Path
) -> None:
    job_id, document_id = _submit(runtime, tmp_path)
    second: list[Outcome] = []

    def parse_while_losing_the_lease(path: Path, filename: str) -> list[Element]:
        with runtime.db.session() as session:  # this worker froze past its lease...
            item = session.get(JobItemRow, (job_id, document_id))
            assert item is not None
            item.heartbeat_at = utcnow() - timedelta(minutes=10)
        second.append(runtime.ingestor.ingest(job_id, document_id))  # ...another took over
        return parse_file(path, filename=filename)

    r = runtime
    first = Ingestor(
        r.catalog, parse_while_losing_the_lease, r.chunker, r.embedder, r.sparse, r.store
    ).ingest(job_id, document_id)
    assert first.status == "gone" and first.error == "taken over"
    (taken,) = second
    assert taken.status == "done" and taken.chunks > 0
    with runtime.db.session() as session:
        item = session.get(JobItemRow, (job_id, document_id))
        assert item is not None and item.status == "done" and item.attempts == 2
    assert runtime.store.count("lease", document_id) == taken.chunks


def test_a_second_delivery_while_the_lease_is_fresh_does_nothing(
    runtime: Runtime, tmp_path: Path
) -> None:
    job_id, document_id = _submit(runtime, tmp_path)
    during: list[Outcome] = []

    def parse_and_get_redelivered(path: Path, filename: str) -> list[Element]:
        during.append(runtime.ingestor.ingest(job_id, document_id))
        return parse_file(path, filename=filename)

    r = runtime
    done = Ingestor(
        r.catalog, parse_and_get_redelivered, r.chunker, r.embedder, r.sparse, r.store
    ).ingest(job_id, document_id)
    assert [o.status for o in during] == ["busy"]
    assert done.status == "done" and runtime.store.count("lease", document_id) == done.chunks
    assert runtime.ingestor.ingest(job_id, document_id).status == "done"  # finished: no-op
