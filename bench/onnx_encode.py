"""The ONNX encoder (rag.embedding.onnx) against torch for the packaged MiniLM (issue 19).

Exports the model into a scratch cache (fp32 and dynamic int8 per channel, as the service does at
first use), then encodes the same SciFact abstracts with torch's `SentenceTransformer.encode`
(the baseline, measured in the same run, interleaved) and with `OnnxEmbedder`, in batches of 32
and one small document (3 chunks) at a time. Prints chunks/s, the speed ratio to torch and the
lowest cosine between the two vectors of a text.

    .venv/bin/python bench/onnx_encode.py [--docs 256] [--rounds 2]

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import _common as c

c.prepare_env()

import numpy as np  # noqa: E402

from rag.embedding import packaged_model_path  # noqa: E402
from rag.embedding.onnx import OnnxEmbedder, exported_model  # noqa: E402

BATCH = 32


def seconds(encode: Callable[[list[str]], object], texts: list[str], per_call: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(texts), per_call):
        encode(texts[i : i + per_call])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer

    lines = (c.SCIFACT / "corpus.jsonl").read_text().splitlines()[: args.docs]
    texts = [json.loads(line)["text"] for line in lines]
    torch_model = SentenceTransformer(packaged_model_path(), device="cpu")

    def torch_encode(batch: list[str]) -> np.ndarray:
        return np.asarray(torch_model.encode(batch, batch_size=BATCH, normalize_embeddings=True))

    with tempfile.TemporaryDirectory() as scratch:
        cache = Path(scratch)
        encoders = {}
        for quantize in ("none", "int8"):
            start = time.perf_counter()
            onnx_file = exported_model(Path(packaged_model_path()), cache, quantize)
            took, size = time.perf_counter() - start, onnx_file.stat().st_size / 2**20
            print(f"export {quantize}: {took:.1f} s (a subprocess), {size:.0f} MB")
            encoders[quantize] = OnnxEmbedder(cache_dir=cache, quantize=quantize).encode
        reference = torch_encode(texts)
        for encode in encoders.values():
            encode(texts[:BATCH])  # warm
        print(f"{len(texts)} SciFact abstracts, {args.rounds} rounds, interleaved with torch:")
        for name, encode in encoders.items():
            cosine = float((reference * encode(texts)).sum(axis=1).min())
            for per_call in (BATCH, 3):
                ratios, rates = [], []
                for _ in range(args.rounds):
                    base = seconds(torch_encode, texts, per_call)
                    mine = seconds(encode, texts, per_call)
                    ratios.append(base / mine)
                    rates.append((len(texts) / mine, len(texts) / base))
                ours, torch_rate = rates[-1]
                print(
                    f"  onnx {name:<5} {per_call:>2} per call: {ours:6.1f}/s  "
                    f"torch {torch_rate:6.1f}/s  speed ×{min(ratios):.2f}–{max(ratios):.2f}  "
                    f"min cosine {cosine:.4f}"
                )


if __name__ == "__main__":
    main()
