"""The `rag` command against a real `rag serve` process (API + in-process worker + store)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SAMPLES
from tests.e2e.serve import RAG, auth_headers, free_port, serve_env, start_server, stop_server

pytestmark = pytest.mark.slow


def _run(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RAG, *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    env = serve_env(tmp_path_factory.mktemp("serve"))
    proc = start_server(env)
    try:
        yield env
    finally:
        stop_server(proc)


def test_ingest_then_query(server: dict[str, str]) -> None:
    ingest = _run(
        "ingest",
        str(SAMPLES / "incident-response.html"),
        str(SAMPLES / "release-notes.txt"),
        "-c",
        "cli",
        env=server,
    )
    assert ingest.returncode == 0, ingest.stderr
    assert "2 done" in ingest.stdout
    query = _run(
        "query", "How quickly must a severity 1 incident be acknowledged?", "-c", "cli", env=server
    )
    assert query.returncode == 0, query.stderr
    assert "incident-response.html" in query.stdout and "model:" in query.stdout
    streamed = _run(
        "query", "How quickly must a severity 1 incident be acknowledged?", "-c", "cli",
        "--stream", "--model", "extractive", "--filter", '{"source": "incident-response.html"}',
        env=server,
    )  # fmt: skip
    assert streamed.returncode == 0, streamed.stderr
    assert "15 minutes" in streamed.stdout and "via extractive" in streamed.stdout
    filtered = _run(
        "retrieve", "severity", "-c", "cli", "--filter", '{"source": "release-notes.txt"}',
        env=server,
    )  # fmt: skip
    assert filtered.returncode == 0 and "incident-response" not in filtered.stdout
    unknown = _run("query", "severity", "-c", "cli", "--model", "gpt-9", "--stream", env=server)
    assert unknown.returncode == 1 and "gpt-9" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    jobs = _run("jobs", env=server)
    assert jobs.returncode == 0 and "succeeded" in jobs.stdout


def test_a_second_process_cannot_open_the_embedded_store(server: dict[str, str]) -> None:
    worker = _run("worker", env=server, timeout=60)
    assert worker.returncode == 1
    assert "QDRANT_URL" in worker.stderr
    env = {**server, "RAG_API__PORT": str(free_port())}
    second = subprocess.run([*RAG, "serve"], env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode != 0
    assert "in use by another process" in second.stdout + second.stderr
    assert "Traceback" not in second.stdout + second.stderr


def test_cli_errors_are_one_line(server: dict[str, str], tmp_path: Path) -> None:
    down = _run("query", "hi", env={**server, "RAG_API_URL": f"http://127.0.0.1:{free_port()}"})
    assert down.returncode == 1 and "cannot reach the service" in down.stderr
    missing = _run("query", "hi", "-c", "no-such-collection", env=server)
    assert missing.returncode == 1 and "not found" in missing.stderr
    bad_filter = _run("retrieve", "hi", "-c", "cli", "--filter", "{team", env=server)
    assert bad_filter.returncode == 1 and "--filter is not valid JSON" in bad_filter.stderr
    (tmp_path / "tool.exe").write_bytes(b"MZ")
    nothing = _run("ingest", str(tmp_path), env=server)
    assert nothing.returncode == 1 and "unsupported type" in nothing.stderr


def test_ingest_a_folder_as_one_job_incrementally_and_prune(
    server: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "kb"
    (folder / "sub").mkdir(parents=True)
    for n in range(3):
        (folder / "sub" / f"k{n}.md").write_text(f"# Room {n}\n\nRoom {n} is free on Fridays.")
    (folder / "notes.log").write_text("not a document")
    first = _run("ingest", str(folder), "-c", "kb", "--exclude", "sub/k2.md", env=server)
    assert first.returncode == 0, first.stderr
    assert "2 done" in first.stdout and "notes.log (unsupported type)" in first.stderr
    assert first.stdout.count("job ") == 1  # one job for the whole folder
    again = _run("ingest", str(folder), "-c", "kb", env=server)
    assert "1 done, 2 skipped" in again.stdout, again.stdout  # only the new file is indexed
    (folder / "sub" / "k0.md").unlink()
    pruned = _run("ingest", str(folder), "-c", "kb", "--prune", env=server)
    assert pruned.returncode == 0, pruned.stderr
    assert "pruned 1 document" in pruned.stdout and "2 skipped" in pruned.stdout
    url = f"{server['RAG_API_URL']}/v1/collections/kb/documents"
    documents = httpx.get(url, headers=auth_headers(server)).json()
    assert sorted(d["source"] for d in documents) == ["kb/sub/k1.md", "kb/sub/k2.md"]
    dead = _run("jobs", "dead-letter", "-c", "kb", env=server)
    assert dead.returncode == 0 and "kb/sub" not in dead.stdout


def test_keys_from_the_cli_work_at_once_and_are_audited(server: dict[str, str]) -> None:
    created = _run("keys", "create", "--name", "cli-reader", "--scopes", "query", "-q", env=server)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    as_reader = {**server, "RAG_API_KEY": key}
    assert _run("collections", env=as_reader).returncode == 0
    listed = _run("keys", "list", env=server)
    assert "cli-reader" in listed.stdout and key.split("_", 2)[2] not in listed.stdout
    assert _run("keys", "revoke", "cli-reader", env=server).returncode == 0
    time.sleep(6)  # other processes trust a verified key for auth.key_cache_s (5 s)
    refused = _run("collections", env=as_reader)
    assert refused.returncode == 1 and "401" in refused.stderr and "RAG_API_KEY" in refused.stderr
    url = f"{server['RAG_API_URL']}/v1/audit"
    audit = httpx.get(url, params={"limit": 20}, headers=auth_headers(server)).json()
    actions = {(e["action"], e["target"]) for e in audit if (e["user"] or "").startswith("cli:")}
    assert {("key.create", "cli-reader"), ("key.revoke", "cli-reader")} <= actions
