"""Run `rag serve` (API + in-process worker + embedded store) as a real child process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from rag.auth import ApiKeys
from rag.db.session import open_database

RAG = [sys.executable, "-m", "cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment for a server on `data_dir` and a free port (RAG_* overrides as kwargs),
    with an admin key in RAG_API_KEY (what the CLI sends; `auth_headers` for direct calls)."""
    port = free_port()
    db = open_database(settings.get("RAG_DATABASE_URL", f"sqlite:///{data_dir.resolve()}/rag.db"))
    try:
        key = ApiKeys(db).create(f"tests-{uuid.uuid4().hex[:8]}", ["admin"]).key
    finally:
        db.dispose()
    env = {
        **os.environ,
        "RAG_DATA_DIR": str(data_dir),
        "RAG_API__PORT": str(port),
        "RAG_API_URL": f"http://127.0.0.1:{port}",
        "DATA_DIR": str(data_dir),
        "RAG_API_KEY": key,
        **settings,
    }
    env.pop("QDRANT_URL", None)
    return env


def auth_headers(env: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {env['RAG_API_KEY']}"}


def start_server(env: dict[str, str], timeout_s: float = 180) -> subprocess.Popen[bytes]:
    """Start `rag serve` and wait until /readyz answers; its log goes to DATA_DIR/serve.log."""
    log_path = Path(env["DATA_DIR"]) / "serve.log"
    with log_path.open("a") as log:
        proc = subprocess.Popen([*RAG, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{env['RAG_API_URL']}/readyz", timeout=30).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    proc.kill()
    raise AssertionError("rag serve did not become ready:\n" + log_path.read_text())


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def serving(app: FastAPI, timeout_s: float = 300) -> Iterator[str]:
    """`app` under uvicorn on a free 127.0.0.1 port in a thread (its lifespan runs there), for
    clients that need a socket (sync SDKs, schemathesis): yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, lifespan="on", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        assert not thread.is_alive(), "uvicorn did not stop"
