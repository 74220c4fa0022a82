"""Export a sentence-transformers BERT model to ONNX, offline, from its own weights.

Run as a subprocess by `rag.embedding.onnx` so the serving process never imports torch:

    python -m rag.embedding.onnx_export MODEL_DIR TARGET.onnx [--int8]

The graph maps (input_ids, attention_mask, token_type_ids) to the last hidden state; pooling and
normalisation stay in numpy, where they cost nothing. torch's legacy exporter (opset 17) is used:
the dynamo one needs onnxscript and is slower to run. `--int8` quantises the weights dynamically,
per channel (per tensor loses more: lowest cosine to fp32 0.897 against 0.990 on SciFact).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "last_hidden_state"
OPSET = 17


def export(model_dir: Path, target: Path, *, int8: bool = False) -> None:
    import torch
    from transformers import AutoModel

    # Eager attention exports as plain MatMul/Softmax, which ONNX Runtime runs 1.4x faster on
    # CPU than the graph traced from SDPA (and which int8 then quantises: 1.8x torch).
    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()

    class Hidden(torch.nn.Module):
        # Keyword arguments: BertModel's positional ones changed between transformers versions.
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: object, attention_mask: object, token_type_ids: object):  # type: ignore[no-untyped-def]
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    ids = torch.ones((2, 8), dtype=torch.long)
    axes = {name: {0: "batch", 1: "seq"} for name in (*INPUTS, OUTPUT)}
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        fp32 = Path(scratch) / "fp32.onnx"
        with torch.no_grad():
            torch.onnx.export(
                Hidden(),
                (ids, ids, torch.zeros_like(ids)),
                str(fp32),
                input_names=list(INPUTS),
                output_names=[OUTPUT],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantized = Path(scratch) / "int8.onnx"
            quantize_dynamic(fp32, quantized, weight_type=QuantType.QInt8, per_channel=True)
            fp32 = quantized
        fp32.replace(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--int8", action="store_true")
    args = parser.parse_args()
    export(args.model_dir, args.target, int8=args.int8)


if __name__ == "__main__":
    main()
