"""Across real `rag serve` processes: one key's rate limit is shared by every API process (the
bucket is in Redis), no secret reaches a log line or /readyz, and body limits hold whatever the
framing."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag.auth import ApiKeys
from rag.db.session import open_database
from tests.e2e.serve import serve_env, start_server, stop_server

pytestmark = pytest.mark.slow
VENDOR_KEY = "sk-proj-LEAKCHECK0123456789abcdefXYZ"
PER_MINUTE, BURST = 30, 4  # a token every 2 s
MAX_JSON_MB, MAX_UPLOAD_MB = 1, 2


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, str]]]:
    """Two API processes on their own embedded stores, sharing one database and Redis."""
    shared = tmp_path_factory.mktemp("shared")
    settings = {
        "RAG_DATABASE_URL": f"sqlite:///{shared / 'rag.db'}",
        "RAG_AUTH__QUERY_RATE__PER_MINUTE": str(PER_MINUTE),
        "RAG_AUTH__QUERY_RATE__BURST": str(BURST),
        "RAG_LOG_LEVEL": "DEBUG",
        "OPENAI_API_KEY": VENDOR_KEY,
        "RAG_API__MAX_JSON_MB": str(MAX_JSON_MB),
        "RAG_API__MAX_UPLOAD_MB": str(MAX_UPLOAD_MB),
    }
    envs = [serve_env(tmp_path_factory.mktemp(f"api{n}"), **settings) for n in range(2)]
    procs = [start_server(env) for env in envs]
    try:
        yield envs
    finally:
        for proc in procs:
            stop_server(proc)


def _key(env: dict[str, str], scopes: list[str]) -> str:
    db = open_database(env["RAG_DATABASE_URL"])
    try:
        return ApiKeys(db).create(f"limited-{time.monotonic_ns()}", scopes).key
    finally:
        db.dispose()


def test_one_keys_rate_is_shared_by_every_api_process(servers: list[dict[str, str]]) -> None:
    # Each process's first /v1/models is slow (the catalog, the scoreboard): made by another
    # key here, so that the burst below is not slow enough for its bucket to refill a token.
    warm = {"Authorization": f"Bearer {_key(servers[0], ['query'])}"}
    for env in servers:
        assert httpx.get(f"{env['RAG_API_URL']}/v1/models", headers=warm).status_code == 200
    key = _key(servers[0], ["query", "ingest"])
    headers = {"Authorization": f"Bearer {key}"}
    urls = itertools.cycle(env["RAG_API_URL"] for env in servers)
    for _ in range(BURST):  # the burst, spread over both processes
        assert httpx.get(f"{next(urls)}/v1/models", headers=headers).status_code == 200
    refused = httpx.get(f"{next(urls)}/v1/models", headers=headers)
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["code"] == "rate_limited" and "30 query requests per minute" in error["message"]
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 60 / PER_MINUTE
    # Writes have a bucket of their own: the exhausted query bucket does not stop them.
    other = f"{next(urls)}/v1/collections/none/documents/text"
    body = {"documents": [{"source": "a.md", "text": "a"}]}
    assert httpx.post(other, json=body, headers=headers).status_code == 404
    time.sleep(wait)
    assert httpx.get(f"{next(urls)}/v1/models", headers=headers).status_code == 200


def test_no_secret_reaches_the_logs_or_readyz(servers: list[dict[str, str]]) -> None:
    env = servers[0]
    api = env["RAG_API_URL"]
    key = _key(env, ["query"])
    wrong = "rag_0123456789ab_" + "s3cr3t" * 7
    for token in (key, wrong, env["RAG_API_KEY"], "not-a-key-at-all-0123456789"):
        httpx.get(f"{api}/v1/models", headers={"Authorization": f"Bearer {token}"})
    body = {"collection": "none", "question": "hello"}
    httpx.post(f"{api}/v1/retrieve", json=body, headers={"Authorization": f"Bearer {key}"})
    readyz = httpx.get(f"{api}/readyz").text
    time.sleep(1)  # let the log lines land
    log = (Path(env["DATA_DIR"]) / "serve.log").read_text()
    assert "refused (401)" in log  # the failed attempts are logged...
    for secret in (key, wrong, env["RAG_API_KEY"], VENDOR_KEY):
        tail = secret.split("_", 2)[-1]  # rag_<id>_<secret>: the secret may hold "_" itself
        assert tail not in log, f"a secret is in the log: {tail[:6]}..."  # ...without secrets
        assert tail not in readyz


def _chunked(body: bytes) -> Iterator[bytes]:
    """`body` as a stream of unknown length: httpx sends it with `Transfer-Encoding: chunked`."""
    for start in range(0, len(body), 64 << 10):
        yield body[start : start + (64 << 10)]


def test_body_limits_hold_for_chunked_bodies(servers: list[dict[str, str]]) -> None:
    env = servers[0]
    api, headers = env["RAG_API_URL"], {"Authorization": f"Bearer {env['RAG_API_KEY']}"}
    big = json.dumps({"collection": "none", "question": "x" * (15 << 20)}).encode()
    response = httpx.post(
        f"{api}/v1/retrieve",
        content=_chunked(big),
        headers={**headers, "Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 413, response.text[:300]
    assert "api.max_json_mb" in response.json()["error"]["message"]

    # Two files, each under the per-file limit, together over the request's: refused as they
    # arrive, not accepted after spooling both.
    assert httpx.post(f"{api}/v1/collections", json={"name": "limits"}, headers=headers).is_success
    part = b"a" * int(MAX_UPLOAD_MB * 0.9 * 2**20)
    boundary = "limitsboundary"
    body = (
        b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            f"Content-Type: text/plain\r\n\r\n".encode()
            + part
            + b"\r\n"
            for name in ("one.txt", "two.txt")
        )
        + f"--{boundary}--\r\n".encode()
    )
    response = httpx.post(
        f"{api}/v1/collections/limits/documents",
        content=_chunked(body),
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=60,
    )
    assert response.status_code == 413, response.text[:300]
    assert "api.max_upload_mb" in response.json()["error"]["message"]
    listed = httpx.get(f"{api}/v1/collections/limits/documents", headers=headers).json()
    assert listed == []
