"""Helpers shared by the benchmark scripts in this folder (not a test module).

Call `prepare_env()` before importing anything from `api`, `ingest` or `rag`: the module-level
Celery app in `ingest.celery_app` reads its queue from the settings at import time.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI

    from rag.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "docs"
SCIFACT = ROOT.parent / "shared" / "data" / "scifact"
RUN_ID = uuid.uuid4().hex[:8]
QUEUE = f"rag-bench-{RUN_ID}"


def prepare_env() -> str:
    """Offline models, no telemetry, and a Celery queue of our own. Returns the queue name."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["RAG_WORKER__QUEUE"] = QUEUE
    if str(ROOT) not in sys.path:  # run as `python bench/x.py` from anywhere
        sys.path.insert(0, str(ROOT))
    return QUEUE


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}-{RUN_ID}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def bench_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Scratch data folder, SQLite, embedded worker on our own queue, our own collection prefix."""
    from rag.config import Settings, WorkerSettings

    overrides.setdefault("database_url", f"sqlite:///{data_dir / 'rag.db'}")
    worker = WorkerSettings(embedded=True, queue=QUEUE)
    settings = Settings(data_dir=data_dir, worker=worker, **overrides)
    settings.qdrant.collection_prefix = f"bench{RUN_ID}_"
    return settings


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The real app with its lifespan (runtime, in-process worker, relay), and a client for it."""
    import httpx

    from api.main import create_app
    from rag.logs import configure_logging

    # Logged as `rag serve` logs (INFO, text), into a file: formatting costs what it costs there.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log_file = (settings.data_dir / "serve.log").open("a", encoding="utf-8")
    configure_logging(settings.log_level, settings.observability.log_format, stream=log_file)
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            key = app.state.runtime.keys.create(f"bench-{uuid.uuid4().hex[:8]}", ["admin"]).key
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://bench.test",
                timeout=600,
                headers={"Authorization": f"Bearer {key}"},
            ) as client:
                yield app, client
    finally:
        drop_queue_keys(settings.broker_url)
        log_file.close()


def drop_queue_keys(broker_url: str) -> None:
    """Remove the Redis keys Celery/kombu left for our queue (the name is unique to this run)."""
    try:
        import redis

        conn = redis.Redis.from_url(broker_url)
        keys = list(conn.scan_iter(match=f"*{QUEUE}*"))
        if keys:
            conn.delete(*keys)
        conn.close()
    except Exception as exc:  # cleanup only: say so, never fail the run for it
        print(f"(could not clean Redis keys for {QUEUE}: {exc})", file=sys.stderr)


async def wait_for_jobs(
    client: httpx.AsyncClient, job_ids: Sequence[str], poll_s: float = 0.2, timeout_s: float = 3600
) -> list[dict[str, Any]]:
    """Wait for each job in turn (they run roughly in order), polling one job at a time."""
    import anyio

    jobs = []
    with anyio.fail_after(timeout_s):
        for job_id in job_ids:
            while True:
                response = await client.get(f"/v1/jobs/{job_id}", params={"documents_limit": 0})
                job: dict[str, Any] = response.json()
                if job["status"] not in ("queued", "running"):
                    jobs.append(job)
                    break
                await anyio.sleep(poll_s)
    return jobs


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def batched(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def within_budget(items: Sequence[Any], budget_s: float, minimum: int) -> Iterator[Any]:
    """Yield items in order; after `minimum` of them, stop once `budget_s` seconds have passed."""
    deadline = time.perf_counter() + budget_s
    for n, item in enumerate(items):
        if n >= minimum and time.perf_counter() > deadline:
            return
        yield item


def summary_ms(samples_s: Iterable[float]) -> str:
    """p50 / p95 / mean of timings given in seconds, printed in milliseconds."""
    import numpy as np

    ms = np.asarray(list(samples_s), dtype=float) * 1000
    if ms.size == 0:
        return "n/a"
    p50, p95 = np.percentile(ms, [50, 95])
    return f"p50 {p50:7.1f}  p95 {p95:7.1f}  mean {ms.mean():7.1f} ms  (n={ms.size})"


class Stopwatch:
    """`with sw("stage"):` adds the block's wall time to `sw.totals["stage"]`."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self._stage = ""
        self._start = 0.0

    def __call__(self, stage: str) -> Stopwatch:
        self._stage = stage
        return self

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        elapsed = time.perf_counter() - self._start
        self.totals[self._stage] = self.totals.get(self._stage, 0.0) + elapsed


def rss_mib(pid: int | str = "self") -> float:
    """A process's resident memory now (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# A catalog whose one model is the extractive answerer (no LLM): a bench of our own overhead.
EXTRACTIVE_CATALOG = """
default_policy = "quick"

[models.extractive]
backend = "extractive"

[policies.quick]
models = ["extractive"]
"""


def header(title: str) -> None:
    print(f"\n== {title} ==", flush=True)
