"""`rag worker`'s /metrics: what its pool's processes recorded, summed across processes
(prometheus multiprocess mode), and the depth of its queues read from the real broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from tests.e2e.serve import free_port
from tests.prometheus import parse

# A worker in miniature: metrics served by the parent, values recorded in forked children.
WORKER = """
import multiprocessing, os, sys, tempfile
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp()  # as `rag worker` does, first
from ingest.celery_app import celery_app
from ingest.metrics import serve_worker_metrics
from rag import metrics
serve_worker_metrics(celery_app, [sys.argv[2]], int(sys.argv[1]))
def document():
    metrics.observe_document("done", chunks=7, seconds=0.5)
for _ in range(2):
    child = multiprocessing.get_context("fork").Process(target=document)
    child.start()
    child.join()
print("ready", flush=True)
sys.stdin.read()
"""


def test_the_pools_values_are_summed_and_queues_measured() -> None:
    port, queue = free_port(), f"{os.environ['RAG_WORKER__QUEUE']}-metrics"
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(port), queue],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert worker.stdout is not None and worker.stdout.readline() == b"ready\n"
        deadline = time.monotonic() + 10
        while True:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        worker.kill()
        worker.wait()
    samples = parse(body)
    assert samples[("rag_ingest_chunks_total", frozenset())] == 14  # two processes, 7 each
    assert samples[("rag_ingest_documents_total", frozenset({("status", "done")}))] == 2
    assert samples[("rag_queue_depth", frozenset({("queue", queue)}))] == 0


def test_the_cli_sets_the_multiprocess_folder_before_prometheus_is_imported() -> None:
    """`rag worker` sets PROMETHEUS_MULTIPROC_DIR in its body: too late if importing the CLI
    had already imported prometheus_client (its value class is chosen at import)."""
    check = "import sys, cli.main; print('prometheus_client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, check=True)
    assert out.stdout.strip() == b"False"
