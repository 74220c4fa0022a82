"""Dense embeddings on ONNX Runtime: the default encoder, without torch in the process.

The sentence-transformers model (the packaged MiniLM unless configured) is exported once, at first
use, by a subprocess (`rag.embedding.onnx_export`) into a cache folder named by a hash of the
model's files and the export recipe, so a changed model gets a new export and an old one is never
used by mistake. Two processes starting together export once (a file lock); the export is
written to a scratch name and renamed, and a sidecar holds its sha256, written last: a file
without a matching sidecar (a crash mid-write, a corrupt disk) is exported again, not loaded.

In fp32 the vectors are those of sentence-transformers (cosine 1.0000 on SciFact, so collections
need no re-indexing); `quantize="int8"` is faster, gives slightly different vectors and so a
different `model_name` (collections embedded with fp32 refuse it with a clear message).
Tokenisation, mean pooling and normalisation follow the model's sentence-transformers config.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rag.digests import sha256_file
from rag.embedding import PACKAGED_MODEL, packaged_model_path
from rag.errors import BackendUnavailable, ConfigError

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

# Part of the cache key: change it when the exported graph would change for the same weights.
RECIPE = "bert-eager-last-hidden-opset17-v2"
MODEL_FILES = ("config.json", "tokenizer.json", "model.safetensors", "pytorch_model.bin")
EXPORT_TIMEOUT_S = 900.0
Quantize = Literal["none", "int8"]


def cache_key(model_dir: Path, quantize: Quantize) -> str:
    """What the export depends on: the model's files, the recipe and the quantisation."""
    digest = hashlib.sha256(f"{RECIPE}:{quantize}".encode())
    for name in MODEL_FILES:
        path = model_dir / name
        if path.is_file():
            digest.update(name.encode())
            digest.update(sha256_file(path).encode())
    return digest.hexdigest()[:20]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _intact(model: Path, sidecar: Path) -> bool:
    try:
        return sidecar.read_text().strip() == sha256_file(model)
    except OSError:
        return False


def exported_model(model_dir: Path, cache_dir: Path, quantize: Quantize = "none") -> Path:
    """The ONNX file for `model_dir`, exported into `cache_dir` first if it is not there intact."""
    folder = cache_dir / cache_key(model_dir, quantize)
    model, sidecar = folder / "model.onnx", folder / "model.onnx.sha256"
    if _intact(model, sidecar):
        return model
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder / ".lock"):
        if _intact(model, sidecar):  # another process exported it while we waited
            return model
        sidecar.unlink(missing_ok=True)
        scratch = folder / f"model.onnx.{os.getpid()}.tmp"
        log.info("exporting the embedding model to ONNX (once): %s -> %s", model_dir, model)
        try:
            _export(model_dir, scratch, quantize)
            scratch.replace(model)
        finally:
            scratch.unlink(missing_ok=True)
        side_scratch = folder / "model.onnx.sha256.tmp"
        side_scratch.write_text(sha256_file(model))
        side_scratch.replace(sidecar)  # last: the export counts only from here
    return model


def _export(model_dir: Path, target: Path, quantize: Quantize) -> None:
    """Run the export in a child process: torch stays out of this one."""
    command = [sys.executable, "-m", "rag.embedding.onnx_export", str(model_dir), str(target)]
    failed = f"exporting {model_dir} to ONNX"
    try:
        done = subprocess.run(
            [*command, *(["--int8"] if quantize == "int8" else [])],
            capture_output=True,
            text=True,
            timeout=EXPORT_TIMEOUT_S,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
    except subprocess.TimeoutExpired as exc:
        raise BackendUnavailable(
            f"{failed} took over {EXPORT_TIMEOUT_S:.0f} s", backend="embedder"
        ) from exc
    if done.returncode != 0 or not target.is_file():
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise BackendUnavailable(
            f"{failed} failed: {tail} (RAG_EMBEDDING__BACKEND=torch encodes without ONNX)",
            backend="embedder",
        )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


class OnnxEmbedder:
    """An `Embedder` on ONNX Runtime; loads (and exports, once) on first use."""

    def __init__(
        self,
        model: str | None = None,
        *,
        cache_dir: Path,
        batch_size: int = 32,
        quantize: Quantize = "none",
        threads: int = 0,
    ):
        self.model_dir = Path(model or packaged_model_path())
        name = PACKAGED_MODEL if model is None else model
        self.model_name = name if quantize == "none" else f"{name}#{quantize}"
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self.quantize: Quantize = quantize
        self.threads = threads
        self._lock = threading.Lock()
        self._session: onnxruntime.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._counter: Tokenizer | None = None
        # Texts embedded for indexing since start: what re-ingesting unchanged files must not add.
        self.documents_embedded = 0

    def _load(self) -> tuple[onnxruntime.InferenceSession, Tokenizer]:
        if self._session is None or self._tokenizer is None:
            with self._lock:
                if self._session is None:
                    self._session, self._tokenizer, self._counter = self._open()
        assert self._session is not None and self._tokenizer is not None
        return self._session, self._tokenizer

    def _open(self) -> tuple[onnxruntime.InferenceSession, Tokenizer, Tokenizer]:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        if not (self.model_dir / "tokenizer.json").is_file():
            raise ConfigError(
                f"embedding model {str(self.model_dir)!r} is not a local sentence-transformers "
                "folder with a tokenizer.json; the ONNX encoder needs one "
                "(RAG_EMBEDDING__BACKEND=torch loads models by name)"
            )
        pooling = _read_json(self.model_dir / "1_Pooling" / "config.json")
        if pooling and not pooling.get("pooling_mode_mean_tokens"):
            raise ConfigError(
                f"embedding model {str(self.model_dir)!r} does not use mean pooling; "
                "set RAG_EMBEDDING__BACKEND=torch for it"
            )
        max_length = int(
            _read_json(self.model_dir / "sentence_bert_config.json").get("max_seq_length", 256)
        )
        onnx_file = exported_model(self.model_dir, self.cache_dir, self.quantize)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        # Idle ONNX threads sleep instead of spinning: the cores they would burn belong to the
        # parser child and the other worker threads between batches.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(
                str(onnx_file), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise BackendUnavailable(
                f"ONNX model {onnx_file} could not be loaded: {exc}", backend="embedder"
            ) from exc
        counter = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        counter.no_truncation()
        counter.no_padding()
        tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(max_length)
        pad_id = tokenizer.token_to_id("[PAD]") or 0
        tokenizer.enable_padding(pad_id=pad_id, pad_token="[PAD]")
        return session, tokenizer, counter

    @cached_property
    def dimension(self) -> int:
        return int(_read_json(self.model_dir / "config.json")["hidden_size"])

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.documents_embedded += len(texts)
        vectors: list[list[float]] = self.encode(texts).tolist()
        return vectors

    def embed_query(self, text: str) -> list[float]:
        vector: list[float] = self.encode([text])[0].tolist()
        return vector

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, one row per text; batches sorted by length to pad as little as can be."""
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        order = np.argsort([-len(text) for text in texts], kind="stable")
        for start in range(0, len(texts), self.batch_size):
            chosen = order[start : start + self.batch_size]
            out[chosen] = self._batch([texts[i] for i in chosen])
        return out

    def _batch(self, texts: list[str]) -> np.ndarray:
        session, tokenizer = self._load()
        encoded = tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.maximum(norms, 1e-12), dtype=np.float32)

    def tokenize(self, text: str) -> list[str]:
        """Word pieces of `text`, however long: chunking measures whole sections with it."""
        self._load()
        assert self._counter is not None
        return list(self._counter.encode(text, add_special_tokens=False).tokens)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))
