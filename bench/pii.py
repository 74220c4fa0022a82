"""PII masking overhead: one routed query with 5 passages, masking on vs off, same run.

The closed model is OpenAI's SDK against the local wire-protocol stub (no network); "off" is
the policy with `pii = "allow"` on a model allowed to see the data, "on" the same model below
the data's sensitivity under `pii = "mask"`. Cold: every query's passages are new text (no
detection cache); warm: the same 5 passages again (the detector caches per text).

    .venv/bin/python -m bench.pii [--queries 40]
"""

from __future__ import annotations

import argparse
import statistics
import time

from pydantic import SecretStr

from rag.generation.model_catalog import parse_catalog, resolve_secrets
from rag.generation.router import Router, RouteRequest
from rag.models import GroundedPrompt, Passage
from rag.privacy.pii import PiiDetector
from tests.stubs.openai_stub import OpenAIVendor
from tests.stubs.server import StubServer

GPT = "gpt-4o-mini-2024-07-18"
PASSAGE = (
    "Maria Garcia leads the platform team since March {i}. Reach her at maria{i}@corp.example "
    "or +44 20 7946 {i:04d}. The fleet controller reconciles desired state every 15 minutes on "
    "each edge node, and its rollout is staged region by region. Invoices go to "
    "GB82 WEST 1234 5698 7654 32. The on-call rotation changes every Monday at 09:00 UTC, and "
    "incidents are reviewed on Thursdays with the whole team present. "
)


def prompt(i: int) -> GroundedPrompt:
    return GroundedPrompt(
        question=f"Who leads the platform team and how do I reach them ({i})?",
        passages=[Passage(marker=p + 1, text=PASSAGE.format(i=i * 5 + p) * 2) for p in range(5)],
        max_tokens=64,
    )


def pct(xs: list[float], q: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=40)
    n = parser.parse_args().queries
    stub = StubServer(OpenAIVendor(), model=GPT).start()
    api = {"backend": "openai", "model": GPT, "base_url": f"{stub.url}/v1", "api_key_env": "K"}
    catalog = parse_catalog(
        {
            "models": {"gpt": api},
            "policies": {
                "off": {"sensitivity": "internal", "pii": "allow"},
                "on": {"sensitivity": "private", "pii": "mask"},
            },
            "default_policy": "off",
            "extractive": False,
        }
    )
    router = Router(
        catalog, api_keys=resolve_secrets(catalog, lambda _: SecretStr("k")), pii=PiiDetector()
    )
    router.generate(prompt(-1), RouteRequest(policy="on"))  # load spaCy and Presidio
    results: dict[str, list[float]] = {"off": [], "on (cold)": [], "on (warm)": []}
    for i in range(n):  # interleaved, so both see the same machine load
        for label, policy, which in (
            ("off", "off", i),
            ("on (cold)", "on", 1000 + i),
            ("on (warm)", "on", -1),
        ):
            start = time.perf_counter()
            router.generate(prompt(which), RouteRequest(policy=policy))
            results[label].append((time.perf_counter() - start) * 1000)
    stub.stop()
    chars = sum(len(p.text) for p in prompt(0).passages)
    print(f"{n} queries, 5 passages ({chars} characters), closed-API stub")
    off = statistics.median(results["off"])
    for label, xs in results.items():
        p50 = statistics.median(xs)
        print(f"{label:10s} p50 {p50:7.1f} ms  p95 {pct(xs, 0.95):7.1f} ms  +{p50 - off:6.1f} ms")


if __name__ == "__main__":
    main()
