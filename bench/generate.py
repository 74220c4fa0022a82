"""Generation speed: the packaged model in process against the same model behind
`llama_cpp.server` (OpenAI-compatible HTTP, streamed), and the router's own overhead.

- Time to first token (TTFT) and decode speed (completion tokens / time after the first token)
  over `--runs` streamed answers to one grounded prompt, after a warm-up answer.
- Router overhead: the same extractive generator called directly and through `Router` (plan,
  breaker, bookkeeping, route record); the extractive is used because it is fast and
  deterministic, so the difference is the router's alone. Target: under 1 ms per request.

    .venv/bin/python bench/generate.py [--runs 5] [--max-tokens 48] [--no-server]

Figures are printed, never asserted; both transports share this machine's cores, so they run
one after the other.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import _common as c

c.prepare_env()  # puts the project on the path


from rag.generation import Done, Generator, TextDelta, collect  # noqa: E402
from rag.generation.extractive import ExtractiveGenerator  # noqa: E402
from rag.generation.llama_cpp import LlamaCppGenerator, packaged_model_path  # noqa: E402
from rag.generation.llama_server import llama_server as run_llama_server  # noqa: E402
from rag.generation.model_catalog import parse_catalog  # noqa: E402
from rag.generation.openai_compat import OpenAICompatGenerator  # noqa: E402
from rag.generation.router import Router, RouteRequest  # noqa: E402
from rag.models import GroundedPrompt, Passage  # noqa: E402

ALIAS = "gemma-3-270m"
PASSAGES = [
    Passage(
        marker=1,
        title="Fleet controller",
        section="Architecture",
        text="The fleet controller is written in Rust for memory safety. It runs on every edge "
        "node and reconciles desired state every 15 minutes.",
    ),
    Passage(
        marker=2,
        title="Operations handbook",
        section="Backups",
        text="Backups are taken nightly at 02:00 UTC and kept for 30 days. Restores must be "
        "approved by the on-call engineer.",
    ),
    Passage(
        marker=3,
        title="Incident response",
        section="Acknowledgement",
        text="A severity 1 incident must be acknowledged within 15 minutes, at any hour.",
    ),
]


@dataclass
class Run:
    ttft_s: float
    total_s: float
    tokens: int

    @property
    def decode_tps(self) -> float:
        after = self.total_s - self.ttft_s
        return (self.tokens - 1) / after if self.tokens > 1 and after > 0 else float("nan")


def timed_stream(generator: Generator, prompt: GroundedPrompt) -> Run:
    start = time.perf_counter()
    first: float | None = None
    deltas = 0
    tokens = 0
    for event in generator.stream(prompt):
        if isinstance(event, TextDelta):
            deltas += 1
            if first is None:
                first = time.perf_counter()
        elif isinstance(event, Done):
            tokens = event.generation.completion_tokens or deltas
    end = time.perf_counter()
    return Run(ttft_s=(first or end) - start, total_s=end - start, tokens=tokens)


def measure(name: str, generator: Generator, prompt: GroundedPrompt, runs: int) -> list[Run]:
    timed_stream(generator, prompt)  # warm-up: loads the model / opens the connection
    results = [timed_stream(generator, prompt) for _ in range(runs)]
    ttft = statistics.median(r.ttft_s for r in results) * 1000
    tps = statistics.median(r.decode_tps for r in results)
    total = statistics.median(r.total_s for r in results) * 1000
    tokens = statistics.median(r.tokens for r in results)
    print(
        f"{name:<24} TTFT p50 {ttft:7.1f} ms   decode {tps:6.1f} tok/s   "
        f"total p50 {total:7.1f} ms   ({tokens:.0f} tokens)"
    )
    return results


@contextmanager
def llama_server(threads: int) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "server.log"
        with run_llama_server(packaged_model_path(), alias=ALIAS, log=log, threads=threads) as url:
            yield url


def router_overhead(prompt: GroundedPrompt, n: int) -> None:
    direct = ExtractiveGenerator()
    catalog = parse_catalog({"models": {"local": {"backend": "llama_cpp"}}})
    router = Router(catalog)
    request = RouteRequest(model="extractive")
    router.generator("extractive")  # built once, as in the service

    def per_call_us(call: object) -> float:
        assert callable(call)
        for _ in range(50):
            call()
        samples = []
        for _ in range(n):
            start = time.perf_counter_ns()
            call()
            samples.append(time.perf_counter_ns() - start)
        return statistics.median(samples) / 1000

    base = per_call_us(lambda: collect(direct.stream(prompt)))
    routed = per_call_us(lambda: router.generate(prompt, request))
    plan = per_call_us(lambda: router.plan(prompt, request))
    default_plan = per_call_us(lambda: router.plan(prompt))
    print(f"extractive direct         p50 {base:8.1f} µs")
    print(f"extractive via Router     p50 {routed:8.1f} µs")
    print(
        f"router overhead           p50 {routed - base:8.1f} µs per request "
        f"({(routed - base) / 1000:.3f} ms; target < 1 ms; ×{routed / base:.2f} of a bare call)"
    )
    print(f"  of which plan()         p50 {plan:8.1f} µs (named model)")
    print(f"  plan(), default policy  p50 {default_plan:8.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-server", action="store_true", help="skip llama_cpp.server")
    parser.add_argument("--overhead-calls", type=int, default=2000)
    args = parser.parse_args()
    prompt = GroundedPrompt(
        # An open question: the small model writes until max_tokens, so decode speed is measurable
        # (a factual one is answered in 1-5 tokens).
        question="Explain how the fleet controller works and why it is written in Rust.",
        passages=PASSAGES,
        max_tokens=args.max_tokens,
    )
    print(
        f"prompt: 3 passages, max_tokens {args.max_tokens}, {args.runs} runs, "
        f"{args.threads} threads"
    )
    local = LlamaCppGenerator(threads=args.threads)
    try:
        in_process = measure("llama.cpp in process", local, prompt, args.runs)
    finally:
        local.close()
    if not args.no_server:
        with llama_server(args.threads) as base_url:
            remote = OpenAICompatGenerator(
                ALIAS, base_url=base_url, api="completions", max_tokens=args.max_tokens
            )
            try:
                served = measure("llama_cpp.server (HTTP)", remote, prompt, args.runs)
            finally:
                remote.close()
        ttft_ratio = statistics.median(r.ttft_s for r in served) / statistics.median(
            r.ttft_s for r in in_process
        )
        tps_ratio = statistics.median(r.decode_tps for r in served) / statistics.median(
            r.decode_tps for r in in_process
        )
        print(f"server / in process: TTFT ×{ttft_ratio:.2f}, decode speed ×{tps_ratio:.2f}")
    router_overhead(prompt, args.overhead_calls)


if __name__ == "__main__":
    main()
