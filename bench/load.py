"""Load test of a real `rag serve` child (API + in-process worker + embedded store) on 127.0.0.1:
concurrent retrieval when idle and while a bulk ingestion job runs, then full answers.

    .venv/bin/python bench/load.py [--clients 8] [--answer-clients 2] [--duration 30]
                                   [--base-docs 50] [--ingest-docs 400] [--port N]
                                   [--json PATH] [--quick]

A base corpus (samples/docs and the first --base-docs SciFact documents) is ingested first, then
three timed phases: "idle" (POST /v1/retrieve), "ingesting" (the same load while a folder job of
--ingest-docs more SciFact documents runs, after a third of a phase of the job alone to compare
its pace; the job is cancelled when the phase ends) and "answers" (POST /v1/query, default
model, samples/qa.jsonl questions). Each client sends its next request once the last one answered
(a closed loop), so QPS is what the service sustained at that concurrency; a request still
running at the deadline is waited for and counted. The key has no rate limit: the service is
measured, not the limiter. --quick: 8 s phases, a small corpus.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common as c

c.prepare_env()  # before any api/ingest/rag import

import httpx  # noqa: E402
import numpy as np  # noqa: E402

COLLECTION = "load"
TARGET_RATIO = 2.0  # retrieval p95 while ingesting / idle p95
ACTIVE = ("queued", "running", "paused")  # job states


@dataclass(frozen=True)
class Load:
    path: str
    questions: list[str]
    timeout_s: float
    server_ms: Callable[[dict[str, Any]], float]  # the time the server says it spent
    outcome: Callable[[dict[str, Any]], str | None] = lambda body: None


@dataclass
class Phase:
    name: str
    clients: int
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    server_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # "HTTP 503", "ReadTimeout", ...
    outcomes: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.errors.total()

    def figures(self) -> dict[str, Any]:
        ms = np.asarray(self.latencies, dtype=float) * 1000
        p50, p95, p99 = np.percentile(ms, [50, 95, 99]) if ms.size else (float("nan"),) * 3
        return {
            "clients": self.clients,
            "requests": self.requests,
            "wall_s": round(self.wall_s, 2),
            "qps": self.requests / self.wall_s if self.wall_s else 0.0,
            "p50_ms": float(p50),
            "p95_ms": float(p95),
            "p99_ms": float(p99),
            "server_p50_ms": float(np.median(self.server_ms)) if self.server_ms else float("nan"),
            "error_rate": self.errors.total() / self.requests if self.requests else 0.0,
            "errors": dict(self.errors),
            "outcomes": dict(self.outcomes),
            **self.extra,
        }

    def print_table(self) -> None:
        f = self.figures()
        print(f"{'clients':>7} {'requests':>8} {'QPS':>7} {'p50 ms':>8} {'p95 ms':>8} ", end="")
        print(f"{'p99 ms':>8} {'server p50':>10} {'errors':>7}")
        print(f"{f['clients']:7d} {f['requests']:8d} {f['qps']:7.2f} {f['p50_ms']:8.0f} ", end="")
        print(f"{f['p95_ms']:8.0f} {f['p99_ms']:8.0f} {f['server_p50_ms']:10.0f} ", end="")
        print(f"{100 * f['error_rate']:6.1f}%")
        for label, counts in (("errors", self.errors), ("outcomes", self.outcomes)):
            if counts:
                print(f"  {label}: " + ", ".join(f"{k} ×{n}" for k, n in counts.most_common()))


async def client(
    http: httpx.AsyncClient, phase: Phase, load: Load, deadline: float, seed: int
) -> None:
    """One closed-loop client; a failed request is counted by kind and never ends the run."""
    rng = random.Random(seed)
    while time.perf_counter() < deadline:
        body = {"collection": COLLECTION, "question": rng.choice(load.questions), "top_k": 5}
        start = time.perf_counter()
        try:
            response = await http.post(load.path, json=body, timeout=load.timeout_s)
            elapsed = time.perf_counter() - start
            if response.status_code != 200:
                phase.errors[f"HTTP {response.status_code}"] += 1
                continue
            answer = response.json()
            phase.server_ms.append(load.server_ms(answer))
            if outcome := load.outcome(answer):
                phase.outcomes[outcome] += 1
            phase.latencies.append(elapsed)
        except Exception as exc:  # the service is under test: whatever it does is a figure
            phase.errors[type(exc).__name__] += 1
            await asyncio.sleep(0.2)  # a refused connection must not spin


async def progress(phase: Phase, start: float, duration: float) -> None:
    """A progress line on stderr: rewritten each second on a terminal, every 5 s otherwise."""
    tty = sys.stderr.isatty()

    def show(final: bool) -> None:
        line = f"  {phase.name}: {time.perf_counter() - start:5.1f}/{duration:.0f} s, "
        line += f"{phase.requests} requests, {phase.errors.total()} errors"
        end = "\n" if final or not tty else ""
        print("\r" + line if tty else line, end=end, file=sys.stderr, flush=True)

    try:
        while True:
            await asyncio.sleep(1 if tty else 5)
            show(final=False)
    finally:
        show(final=True)


async def run_phase(http: httpx.AsyncClient, phase: Phase, load: Load, duration: float) -> Phase:
    start = time.perf_counter()
    ticker = asyncio.create_task(progress(phase, start, duration))
    try:
        clients = (client(http, phase, load, start + duration, i) for i in range(phase.clients))
        await asyncio.gather(*clients)
    finally:
        ticker.cancel()
        with suppress(asyncio.CancelledError):
            await ticker
    phase.wall_s = time.perf_counter() - start
    return phase


async def job(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await http.get(f"/v1/jobs/{job_id}", params={"documents_limit": 0})
    response.raise_for_status()
    info: dict[str, Any] = response.json()
    return info


def in_hand(info: dict[str, Any]) -> int:
    """Documents of the job a worker is parsing or embedding now."""
    return int(info["counts"]["parsing"] + info["counts"]["embedding"])


async def submit_folder(http: httpx.AsyncClient, folder: Path) -> str:
    body = {"collection": COLLECTION, "folder": {"path": str(folder)}}
    response = await http.post("/v1/jobs", json=body)
    response.raise_for_status()
    return str(response.json()["id"])


async def follow(
    http: httpx.AsyncClient, job_id: str, start: float, samples: list[tuple[float, int]]
) -> None:
    """(seconds into the phase, documents done) once a second."""
    while True:
        with suppress(httpx.HTTPError, KeyError, ValueError):
            info = await job(http, job_id)
            samples.append((round(time.perf_counter() - start, 1), info["counts"]["done"]))
        await asyncio.sleep(1)


async def under_ingestion(
    http: httpx.AsyncClient, load: Load, folder: Path, args: argparse.Namespace
) -> Phase:
    """Retrieval load while a bulk job runs; the job is cancelled (and drained) afterwards."""
    job_id = await submit_folder(http, folder)
    t = time.perf_counter()  # start the load once the worker is busy with the job
    while not in_hand(first := await job(http, job_id)) and not first["counts"]["done"]:
        if time.perf_counter() - t > 60:
            raise RuntimeError(f"bulk job {job_id} did not start within 60 s")
        await asyncio.sleep(0.2)
    t = time.perf_counter()
    print(f"bulk job: {first['total']} documents; {args.duration / 3:.0f} s alone first")
    await asyncio.sleep(args.duration / 3)  # the worker's pace without queries, for comparison
    before = await job(http, job_id)
    alone = (before["counts"]["done"] - first["counts"]["done"]) / (time.perf_counter() - t)
    start, samples = time.perf_counter(), list[tuple[float, int]]()
    follower = asyncio.create_task(follow(http, job_id, start, samples))
    try:
        phase = await run_phase(http, Phase("ingesting", args.clients), load, args.duration)
    finally:
        follower.cancel()
    after = await job(http, job_id)
    done = after["counts"]["done"] - before["counts"]["done"]
    phase.extra["ingest"] = {
        "job_status_at_end": after["status"],
        "docs_done": done,
        "docs_per_s": done / phase.wall_s,
        "docs_per_s_alone": alone,
        "failed": after["counts"].get("failed", 0),
        "done_over_time": samples,
    }
    await http.delete(f"/v1/jobs/{job_id}")
    t = time.perf_counter()
    for _ in range(120):  # let the document in hand finish (<= 60 s): answers run idle
        if not in_hand(await job(http, job_id)):
            break
        await asyncio.sleep(0.5)
    print(f"  bulk job cancelled; no document in hand {time.perf_counter() - t:.1f}s later")
    return phase


def memory(pid: int) -> str:
    """The server's resident memory, and its children's (the parser processes)."""
    tasks = Path(f"/proc/{pid}/task").glob("*/children")  # each thread's own children
    children = [child for task in tasks for child in task.read_text().split()]
    kids = sum(c.rss_mib(child) for child in children)
    return f"server RSS {c.rss_mib(pid):,.0f} MiB (+{kids:,.0f} MiB in {len(children)} children)"


async def run(
    args: argparse.Namespace, url: str, key: str, pid: int, base: Path, bulk: Path
) -> None:
    scifact = [q["text"] for q in c.load_jsonl(c.SCIFACT / "queries.jsonl")]
    samples = [q["question"] for q in c.load_jsonl(c.SAMPLES.parent / "qa.jsonl")]
    retrieval = Load("/v1/retrieve", scifact + samples, 60, lambda b: b["retrieval_ms"])
    answering = Load(
        "/v1/query",
        samples,
        300,
        lambda b: b["timings"]["total_ms"],
        lambda b: f"{'answered' if b['answerable'] else 'abstained'} by {b['model'] or 'no model'}",
    )
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=60, trust_env=False
    ) as http:
        (await http.post("/v1/collections", json={"name": COLLECTION})).raise_for_status()
        t = time.perf_counter()
        (base_job,) = await c.wait_for_jobs(http, [await submit_folder(http, base)], 1, 900)
        took = time.perf_counter() - t
        print(f"base corpus: {base_job['total']} documents {base_job['counts']}, ", end="")
        print(f"{base_job['status']} in {took:.1f}s ({base_job['total'] / took:.2f} docs/s)")
        for question in scifact[:3]:  # warm-up, not counted
            body = {"collection": COLLECTION, "question": question}
            (await http.post("/v1/retrieve", json=body)).raise_for_status()

        c.header(f"idle: retrieval, {args.clients} clients, {args.duration:.0f} s")
        idle = await run_phase(http, Phase("idle", args.clients), retrieval, args.duration)
        idle.print_table()
        print(f"  {memory(pid)}")

        c.header(f"under ingestion: retrieval, {args.clients} clients, {args.duration:.0f} s")
        busy = await under_ingestion(http, retrieval, bulk, args)
        busy.print_table()
        print(f"  {memory(pid)}")
        ingest = busy.extra["ingest"]
        print(f"  ingestion: {ingest['docs_done']} documents in {busy.wall_s:.1f}s = ", end="")
        print(
            f"{ingest['docs_per_s']:.2f} docs/s ({ingest['docs_per_s_alone']:.2f} alone); ", end=""
        )
        print(f"job {ingest['job_status_at_end']} at the end")
        if ingest["job_status_at_end"] not in ACTIVE:
            print("  WARNING: the job ended before the phase did; raise --ingest-docs")

        c.header(f"answers: POST /v1/query, {args.answer_clients} clients, {args.duration:.0f} s")
        t = time.perf_counter()
        warm = await http.post("/v1/query", json={"collection": COLLECTION, "question": samples[0]})
        took = time.perf_counter() - t
        print(f"warm-up answer (not counted): HTTP {warm.status_code} in {took:.1f}s")
        answers = await run_phase(
            http, Phase("answers", args.answer_clients), answering, args.duration
        )
        answers.print_table()
        print(f"  {memory(pid)}")

    c.header("summary")
    ratio = busy.figures()["p95_ms"] / idle.figures()["p95_ms"]
    met = ratio <= TARGET_RATIO
    print(f"retrieval p95 under ingestion / idle p95 = {ratio:.2f}x ", end="")
    print(f"(target <= {TARGET_RATIO:g}x: {'met' if met else 'NOT met'})")
    print(f"docs ingested/s during phase 2: {ingest['docs_per_s']:.2f} ", end="")
    print(f"(alone, just before: {ingest['docs_per_s_alone']:.2f})")
    if args.json:
        figures = {
            "config": {k: v for k, v in vars(args).items() if k != "json"},
            "phases": {p.name: p.figures() for p in (idle, busy, answers)},
            "p95_ratio": ratio,
            "p95_ratio_target": TARGET_RATIO,
            "target_met": met,
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        print(f"figures written to {args.json}")


def build_corpus(root: Path, base_docs: int, ingest_docs: int) -> tuple[Path, Path]:
    """base/: samples/docs + the first SciFact documents; bulk/: the next ones (never seen)."""
    spec = importlib.util.spec_from_file_location("bench_ingest", c.ROOT / "bench" / "ingest.py")
    assert spec is not None and spec.loader is not None  # by path: `ingest` is the project's
    bench_ingest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_ingest)
    base, bulk = root / "base", root / "bulk"
    base.mkdir(parents=True)
    bulk.mkdir()
    for path in sorted(c.SAMPLES.iterdir()):
        shutil.copy(path, base)
    docs = bench_ingest.build_scifact_docs(bulk, base_docs + ingest_docs, 150, 300)
    for path in docs[:base_docs]:
        path.rename(base / path.name)
    return base, bulk


@contextmanager
def served(data_dir: Path, port: int | None, corpus: Path) -> Iterator[tuple[str, str, int]]:
    """`rag serve` in its own session (Ctrl-C reaches only us) with an admin key without rate
    limits; yields (url, key, pid). However we leave: SIGTERM, 30 s to stop, then SIGKILL; then the
    warnings and errors it logged, and our queue's Redis keys are removed."""
    from rag.auth import ApiKeys
    from rag.config import Settings
    from rag.db.session import open_database

    port = port or free_port()
    url, database = f"http://127.0.0.1:{port}", f"sqlite:///{data_dir.resolve()}/rag.db"
    db = open_database(database)
    try:
        key = ApiKeys(db).create("bench-load", ["admin"], query_per_minute=0, ingest_per_minute=0)
    finally:
        db.dispose()
    env = {k: v for k, v in os.environ.items() if k not in ("QDRANT_URL", "DATABASE_URL")}
    env |= {
        "RAG_DATA_DIR": str(data_dir),
        "RAG_DATABASE_URL": database,
        "RAG_API__HOST": "127.0.0.1",
        "RAG_API__PORT": str(port),
        "RAG_INGEST__ALLOWED_ROOTS": json.dumps([str(corpus)]),
    }
    log = data_dir / "serve.log"
    with log.open("a") as out:
        cmd = [sys.executable, "-m", "cli.main", "serve"]
        proc = subprocess.Popen(
            cmd, cwd=c.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        t = time.perf_counter()
        wait_ready(proc, url, log)
        print(f"rag serve ready at {url} in {time.perf_counter() - t:.1f}s; queue {c.QUEUE}")
        yield url, key.key, proc.pid
    finally:
        stop(proc)
        summarise_log(log)
        c.drop_queue_keys(Settings().broker_url)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        with suppress(httpx.TransportError):
            if httpx.get(f"{url}/readyz", timeout=10, trust_env=False).status_code == 200:
                return
        time.sleep(0.5)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    raise RuntimeError(f"rag serve did not become ready; the end of its log:\n{tail}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    t = time.perf_counter()
    proc.terminate()  # SIGTERM: uvicorn drains, the worker and the store close
    try:
        code = proc.wait(timeout=30)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        proc.kill()
        code = proc.wait()
        print("rag serve did not stop on SIGTERM: killed", file=sys.stderr)
    # uvicorn re-raises the SIGTERM it caught once it has shut down: -15 is the normal code
    print(f"rag serve stopped in {time.perf_counter() - t:.1f}s (exit code {code})")


def summarise_log(log: Path) -> None:
    """The server's warnings and errors by level and logger, with the first message of each."""
    counts: Counter[str] = Counter()
    first: dict[str, str] = {}
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    for line in lines:
        parts = line.split(maxsplit=3)
        if len(parts) == 4 and parts[1] in ("WARNING", "ERROR", "CRITICAL"):
            kind = f"{parts[1]} {parts[2].rstrip(':')}"
            counts[kind] += 1
            first.setdefault(kind, parts[3][:150])
    tracebacks = sum("Traceback" in line for line in lines)
    clean = any("Finished server process" in line for line in lines)  # uvicorn's last words
    print(f"server log: {len(lines)} lines, {tracebacks} tracebacks, ", end="")
    print("shut down cleanly" if clean else "NO clean shutdown logged", end="")
    print("".join(f"\n  {kind} ×{n}: {first[kind]}" for kind, n in counts.most_common()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="retrieval clients")
    parser.add_argument("--answer-clients", type=int, default=2)
    parser.add_argument("--duration", type=float, help="seconds per phase (30; --quick 8)")
    parser.add_argument("--base-docs", type=int, help="SciFact documents first (50; --quick 10)")
    parser.add_argument("--ingest-docs", type=int, help="bulk job documents (400; --quick 60)")
    parser.add_argument("--port", type=int, help="default: a free one")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--quick", action="store_true", help="8 s phases, a small corpus")
    args = parser.parse_args()
    for name, default, quick in (
        ("duration", 30, 8),
        ("base_docs", 50, 10),
        ("ingest_docs", 400, 60),
    ):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else default)
    started = time.perf_counter()
    try:
        with c.scratch_dir("rag-bench-load") as scratch:
            base, bulk = build_corpus(scratch / "corpus", args.base_docs, args.ingest_docs)
            with served(scratch / "rag", args.port, scratch / "corpus") as (url, key, pid):
                asyncio.run(run(args, url, key, pid, base, bulk))
    except KeyboardInterrupt:
        sys.exit("interrupted (server stopped, scratch folder removed)")
    print(f"\ntotal run time {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
