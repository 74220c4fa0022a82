"""The `rag` command against a real `rag serve` process (API + in-process worker + store)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SAMPLES

RAG = [sys.executable, "-m", "cli.main"]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RAG, *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data_dir = tmp_path_factory.mktemp("serve")
    port = _free_port()
    env = {
        **os.environ,
        "RAG_DATA_DIR": str(data_dir),
        "RAG_API__PORT": str(port),
        "RAG_API_URL": f"http://127.0.0.1:{port}",
    }
    env.pop("QDRANT_URL", None)
    log = (data_dir / "serve.log").open("w")
    proc = subprocess.Popen([*RAG, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{env['RAG_API_URL']}/readyz", timeout=30).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, (data_dir / "serve.log").read_text()
            time.sleep(0.5)
        else:
            pytest.fail("rag serve did not become ready:\n" + (data_dir / "serve.log").read_text())
        env["DATA_DIR"] = str(data_dir)
        yield env
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


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
    env = {**server, "RAG_API__PORT": str(_free_port())}
    second = subprocess.run([*RAG, "serve"], env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode != 0
    assert "in use by another process" in second.stdout + second.stderr
    assert "Traceback" not in second.stdout + second.stderr


def test_cli_errors_are_one_line(server: dict[str, str], tmp_path: Path) -> None:
    down = _run("query", "hi", env={**server, "RAG_API_URL": f"http://127.0.0.1:{_free_port()}"})
    assert down.returncode == 1 and "cannot reach the service" in down.stderr
    missing = _run("query", "hi", "-c", "no-such-collection", env=server)
    assert missing.returncode == 1 and "not found" in missing.stderr
    bad_filter = _run("retrieve", "hi", "-c", "cli", "--filter", "{team", env=server)
    assert bad_filter.returncode == 1 and "--filter is not valid JSON" in bad_filter.stderr
    (tmp_path / "tool.exe").write_bytes(b"MZ")
    nothing = _run("ingest", str(tmp_path), env=server)
    assert nothing.returncode == 1 and "unsupported type" in nothing.stderr
