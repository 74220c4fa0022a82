"""Run llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`) on a local
port: how the benchmarks and tests reach a real server through the OpenAI wire protocol, and a
quick way to serve a GGUF to other machines (`rag`'s openai_compat backend then talks to it)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from rag.errors import BackendUnavailable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def llama_server(
    model: Path,
    *,
    alias: str,
    log: Path,
    threads: int = 2,
    n_ctx: int = 2048,
    start_timeout_s: float = 120.0,
) -> Iterator[str]:
    """Start the server, wait until it lists its model, yield its base URL (…/v1), stop it.
    A server that exits or does not come up raises `BackendUnavailable` with its log."""
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model),
        "--model_alias", alias, "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(n_ctx), "--n_threads", str(threads), "--seed", "0",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if process.poll() is not None:
                raise BackendUnavailable(
                    f"llama_cpp.server exited {process.returncode}:\n{log.read_text()}",
                    backend="llama_cpp.server",
                )
            try:
                if httpx.get(f"{base_url}/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise BackendUnavailable(
                    f"llama_cpp.server did not start in {start_timeout_s:.0f} s:\n"
                    f"{log.read_text()}",
                    backend="llama_cpp.server",
                )
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
