"""SIGTERM to a real `rag serve`: the answer being streamed is finished, the document in the
worker's hands is finished (nothing is left half-done), and the process exits cleanly. Its log
is JSON with the request and job ids, and carries neither document text nor keys."""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from rag.db.session import open_database
from rag.db.tables import JobItemRow
from tests.e2e.serve import auth_headers, serve_env, start_server, stop_server
from tests.e2e.test_crash import DOCS, _document, _job

pytestmark = pytest.mark.slow
CANARY = "zebrafish-canary-7731"  # document text: never in the log


def test_sigterm_finishes_the_stream_and_the_document_in_hand(tmp_path: Path) -> None:
    env = serve_env(
        tmp_path,
        RAG_WORKER__QUEUE=f"rag-term-{uuid.uuid4().hex[:8]}",
        RAG_OBSERVABILITY__LOG_FORMAT="json",
    )
    api, auth = env["RAG_API_URL"], auth_headers(env)
    proc = start_server(env)
    try:
        httpx.post(f"{api}/v1/collections", json={"name": "term"}, headers=auth, timeout=30)
        files = [
            ("files", (f"runbook-{n:02}.md", _document(n) + CANARY.encode())) for n in range(DOCS)
        ]
        job = httpx.post(
            f"{api}/v1/collections/term/documents", files=files, headers=auth, timeout=60
        ).json()
        deadline = time.monotonic() + 300
        while (counts := _job(env, job["id"])["counts"])["done"] < 2:
            assert time.monotonic() < deadline, counts
            time.sleep(0.05)
        refused = httpx.get(
            f"{api}/v1/collections", headers={"Authorization": "Bearer nope", "X-Request-ID": "r-7"}
        )
        assert refused.status_code == 401
        body = {"collection": "term", "question": "What does the lease do?", "stream": True}
        events = []
        with httpx.stream("POST", f"{api}/v1/query", json=body, headers=auth, timeout=120) as r:
            lines = r.iter_lines()
            for line in lines:
                if line.startswith("event:"):
                    events.append(line.split(":", 1)[1].strip())
                    break
            proc.send_signal(signal.SIGTERM)  # mid-answer, mid-job
            events += [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("event:")]
        assert events[-1] == "answer", events
        # uvicorn re-raises the signal once it has shut down; its log tells a clean exit.
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        stop_server(proc)

    db = open_database(f"sqlite:///{tmp_path.resolve()}/rag.db")
    try:
        with db.session() as session:
            states = [item.status for item in session.scalars(select(JobItemRow))]
    finally:
        db.dispose()
    assert not {"parsing", "embedding", "failed"} & set(states), states  # finished or not begun
    assert states.count("done") >= 2

    log = (tmp_path / "serve.log").read_text()
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert records[-1]["message"].startswith("Finished server process"), records[-3:]
    assert any(r.get("request_id") == "r-7" and r["level"] == "WARNING" for r in records)
    indexed = [r for r in records if r["message"].startswith("indexed runbook-")]
    assert indexed and all(r["job_id"] == job["id"] and r.get("document_id") for r in indexed)
    assert CANARY not in log and env["RAG_API_KEY"] not in log
