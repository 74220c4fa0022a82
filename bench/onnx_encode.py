"""ONNX Runtime against torch for the packaged MiniLM: same vectors? faster? (issue 19)

Exports the packaged all-MiniLM-L6-v2 offline (torch's legacy exporter, opset 17) into a scratch
folder, optionally quantises it to dynamic int8 (per tensor and per channel), then encodes the
same SciFact abstracts with `SentenceTransformer.encode` (the baseline, measured in the same run)
and with ONNX Runtime (the package's `tokenizer.json`, mean pooling and normalisation in numpy,
batches sorted by length as sentence-transformers does). Prints seconds, the speed ratio to
torch and the lowest cosine between the two vectors of a text.

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

from rag.embedding.sentence_transformers import packaged_model_path  # noqa: E402

BATCH = 32
INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


def export(model_dir: Path, target: Path) -> None:
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(model_dir).eval()

    class Hidden(torch.nn.Module):  # keyword arguments: BertModel's positional ones moved
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self, input_ids: object, attention_mask: object, token_type_ids: object
        ) -> object:
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    ids = torch.ones((2, 8), dtype=torch.long)
    axes = {name: {0: "batch", 1: "seq"} for name in [*INPUTS, "last_hidden_state"]}
    with torch.no_grad():
        torch.onnx.export(
            Hidden(),
            (ids, ids, torch.zeros_like(ids)),
            str(target),
            input_names=INPUTS,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )


def onnx_encoder(model_file: Path, model_dir: Path) -> Callable[[list[str]], np.ndarray]:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(256)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])

    def batch(texts: list[str]) -> np.ndarray:
        encoded = tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    def encode(texts: list[str]) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), 384), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            chosen = order[start : start + BATCH]
            out[chosen] = batch([texts[i] for i in chosen])
        return out

    return encode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import SentenceTransformer

    lines = (c.SCIFACT / "corpus.jsonl").read_text().splitlines()[: args.docs]
    texts = [json.loads(line)["text"] for line in lines]
    model_dir = Path(packaged_model_path())
    torch_model = SentenceTransformer(str(model_dir), device="cpu")

    def torch_encode(batch: list[str]) -> np.ndarray:
        return np.asarray(torch_model.encode(batch, batch_size=BATCH, normalize_embeddings=True))

    with tempfile.TemporaryDirectory() as scratch:
        fp32 = Path(scratch) / "minilm.onnx"
        start = time.perf_counter()
        export(model_dir, fp32)
        print(f"export: {time.perf_counter() - start:.1f} s, {fp32.stat().st_size / 2**20:.0f} MB")
        variants = {"onnx fp32": fp32}
        for name, per_channel in (("onnx int8", False), ("onnx int8 per-channel", True)):
            target = Path(scratch) / f"{name.replace(' ', '-')}.onnx"
            quantize_dynamic(fp32, target, weight_type=QuantType.QInt8, per_channel=per_channel)
            variants[name] = target
        encoders = {name: onnx_encoder(path, model_dir) for name, path in variants.items()}
        reference = torch_encode(texts)
        for encode in encoders.values():
            encode(texts[:BATCH])  # warm
        print(f"{len(texts)} SciFact abstracts, batch {BATCH}, {args.rounds} rounds (interleaved):")
        for name, encode in encoders.items():
            ratios = []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                torch_encode(texts)
                t1 = time.perf_counter()
                vectors = encode(texts)
                t2 = time.perf_counter()
                ratios.append((t1 - t0) / (t2 - t1))
            cosine = float((reference * vectors).sum(axis=1).min())
            print(
                f"  {name:<24} {t2 - t1:6.2f} s  torch {t1 - t0:6.2f} s  "
                f"speed ×{min(ratios):.2f}–{max(ratios):.2f}  min cosine {cosine:.4f}"
            )


if __name__ == "__main__":
    main()
