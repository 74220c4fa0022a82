"""SIGKILL the process that runs the worker in the middle of a job, start it again: the job
finishes with every document indexed exactly once (points in Qdrant, rows in the database)."""

from __future__ import annotations

import os
import random
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from rag.config import Settings
from rag.db.tables import DocumentRow, JobItemRow
from rag.factory import build_runtime
from tests.e2e.serve import auth_headers, serve_env, start_server, stop_server

pytestmark = pytest.mark.slow
DOCS = 14
WORDS = (
    "lease", "worker", "queue", "broker", "index", "vector", "chunk", "document", "crash",
)  # fmt: skip


def _document(n: int) -> bytes:
    rng = random.Random(n)
    paragraphs = [
        f"## Part {p}\n\n" + " ".join(rng.choice(WORDS) for _ in range(180)) + f" doc{n}."
        for p in range(12)
    ]
    return (f"# Runbook {n}\n\n" + "\n\n".join(paragraphs)).encode()


def _job(env: dict[str, str], job_id: str) -> dict[str, Any]:
    url = f"{env['RAG_API_URL']}/v1/jobs/{job_id}"
    return dict(httpx.get(url, headers=auth_headers(env), timeout=30).json())


def test_sigkill_mid_job_then_restart_indexes_everything_exactly_once(tmp_path: Path) -> None:
    env = serve_env(
        tmp_path,
        RAG_WORKER__QUEUE=f"rag-crash-{uuid.uuid4().hex[:8]}",
        RAG_WORKER__LEASE_S="5",
        RAG_WORKER__RELAY_INTERVAL_S="1",
        RAG_WORKER__REDISPATCH_AFTER_S="5",
    )
    api = env["RAG_API_URL"]
    proc = start_server(env)
    try:
        auth = auth_headers(env)
        httpx.post(f"{api}/v1/collections", json={"name": "crash"}, headers=auth, timeout=30)
        files = [("files", (f"runbook-{n:02}.md", _document(n))) for n in range(DOCS)]
        job = httpx.post(
            f"{api}/v1/collections/crash/documents", files=files, headers=auth, timeout=60
        ).json()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            counts = _job(env, job["id"])["counts"]
            if counts["done"] >= 2 and counts["parsing"] + counts["embedding"] == 1:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the job never reached the middle: {counts}")
        os.kill(proc.pid, signal.SIGKILL)  # mid-document: no cleanup of any kind
        proc.wait()
        assert counts["done"] < DOCS

        proc = start_server(env)
        deadline = time.monotonic() + 300
        while (finished := _job(env, job["id"]))["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, finished
            time.sleep(0.5)
    finally:
        stop_server(proc)

    assert finished["status"] == "succeeded", finished
    assert finished["counts"]["done"] == DOCS
    assert max(d["attempts"] for d in finished["documents"]) == 2  # the killed one ran again

    runtime = build_runtime(Settings(data_dir=tmp_path))
    try:
        with runtime.db.session() as session:
            assert session.scalar(select(func.count()).select_from(DocumentRow)) == DOCS
            assert session.scalar(select(func.count()).select_from(JobItemRow)) == DOCS
            docs = list(session.scalars(select(DocumentRow)))
        assert {d.status for d in docs} == {"indexed"}
        for doc in docs:  # exactly once: each document's points are its chunks, no more
            assert runtime.store.count("crash", doc.id) == doc.chunk_count > 0, doc.source
        assert runtime.store.count("crash") == sum(d.chunk_count for d in docs)
    finally:
        runtime.close()
