"""The `Generator` role on llama.cpp, by default with the packaged Gemma 3 270M (Q4_K_M) GGUF.

That model is a base model: it answers well when a prompt simply ends in "Answer:", and it
echoes chat-formatted prompts, so "completion" is its format. The packaged instruct models
(`rag.generation.packaged`) answer in their own chat template instead. Any of them may invent
answers, which is why every claim is checked afterwards by `rag.verification`, not trusted here.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import re
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import BackendUnavailable, GenerationError, InvalidInput
from rag.generation import Done, EventStream, TextDelta, TrimmedText, packaged
from rag.generation.prompts import PromptFormat, render_chat_messages, render_completion_prompt
from rag.models import Generation, GroundedPrompt, Passage

if TYPE_CHECKING:
    from llama_cpp import Llama

BACKEND = "llama_cpp"

# A base model keeps writing past its answer: the next blank line or a new "Question:" ends it.
COMPLETION_STOP = ["\n\n", "\n[", "Question:", "Passages:", "End of passages"]

_FINGERPRINT_SPAN = 1 << 20


def packaged_model_path(name: str = packaged.DEFAULT_PACKAGED) -> Path:
    """The packaged GGUF `name`, assembled and verified once (see `rag.generation.packaged`)."""
    return packaged.assemble(name)


class GgufFile:
    """A configured GGUF or a packaged one (by name; Gemma by default), found and named on
    first use: the file's pinned id is derived from its header unless one is configured.
    Thread-safe."""

    def __init__(
        self,
        path: Path | None = None,
        model_id: str | None = None,
        *,
        packaged_name: str | None = None,
    ):
        if path is not None and packaged_name is not None:
            raise ValueError("a GGUF is either a path or a packaged model, not both")
        self._configured = path
        self._packaged = packaged.get(packaged_name or packaged.DEFAULT_PACKAGED)
        self._path: Path | None = None
        self._model_id = model_id
        self._lock = threading.Lock()

    @property
    def packaged_model(self) -> packaged.PackagedModel | None:
        """The packaged model used, or None for a configured path."""
        return None if self._configured is not None else self._packaged

    @property
    def path(self) -> Path:
        with self._lock:
            if self._path is None:
                if self._configured is None:
                    self._path = packaged.assemble(self._packaged.name)
                elif self._configured.is_file():
                    self._path = self._configured
                else:
                    raise BackendUnavailable(
                        f"model file {self._configured} does not exist", backend=BACKEND
                    )
            return self._path

    @property
    def model_id(self) -> str:
        path = self.path
        with self._lock:
            if self._model_id is None:
                model = self.packaged_model
                published = model.sha256 if model else None
                self._model_id = derive_model_id(path, published)
            return self._model_id


def load_llama(path: Path, **params: Any) -> Llama:
    """A `Llama` on `path` (seeded, quiet); load failures are `BackendUnavailable`."""
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise BackendUnavailable("llama-cpp-python is not installed", backend=BACKEND) from exc
    try:
        return Llama(model_path=str(path), seed=0, verbose=False, **params)
    except (ValueError, RuntimeError, OSError) as exc:
        raise BackendUnavailable(
            f"model {path} could not be loaded: {exc}", backend=BACKEND
        ) from exc


def read_gguf_metadata(path: Path, keys: set[str]) -> dict[str, Any]:
    """Scalar and string values of `keys` from a GGUF header, without loading the model.

    The value types are the `gguf` package's (llama.cpp's own Python library); the walk is ours,
    because its `GGUFReader` parses every field and tensor first: 11.8 s for the packaged Gemma
    (a 262k-token vocabulary), against about 0.1 s to skip to the keys wanted here.
    """
    from gguf import GGUF_MAGIC, GGUFReader, GGUFValueType

    sizes = {kind: np.dtype(t).itemsize for kind, t in GGUFReader.gguf_scalar_to_np.items()}
    found: dict[str, Any] = {}
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if len(data) < 24 or struct.unpack_from("<I", data, 0)[0] != GGUF_MAGIC:
            raise ValueError(f"{path} is not a GGUF file")
        (version,) = struct.unpack_from("<I", data, 4)
        if version < 2:
            raise ValueError(f"{path}: GGUF version {version} is not supported")
        (kv_count,) = struct.unpack_from("<Q", data, 16)
        pos = 24

        def string() -> bytes:
            nonlocal pos
            (length,) = struct.unpack_from("<Q", data, pos)
            pos += 8 + length
            return data[pos - length : pos]

        def scalar(kind: GGUFValueType) -> Any:
            nonlocal pos
            value = np.frombuffer(data, GGUFReader.gguf_scalar_to_np[kind], 1, pos)[0].item()
            pos += sizes[kind]
            return value

        for _ in range(kv_count):
            key = string().decode("utf-8", "replace")
            (raw_kind,) = struct.unpack_from("<I", data, pos)
            pos += 4
            kind = GGUFValueType(raw_kind)
            if kind is GGUFValueType.STRING:
                value: Any = string().decode("utf-8", "replace")
            elif kind is GGUFValueType.ARRAY:
                item_kind, count = struct.unpack_from("<IQ", data, pos)
                pos += 12
                if item_kind == GGUFValueType.STRING:
                    for _ in range(count):
                        string()
                else:
                    pos += sizes[GGUFValueType(item_kind)] * count
                continue
            else:
                value = scalar(kind)
            if key in keys:
                found[key] = value
    return found


def quantisation(file_type: int) -> str:
    """llama.cpp's name of a `general.file_type`, e.g. 15 → Q4_K_M (from the `gguf` package)."""
    from gguf import LlamaFileType

    try:
        return LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
    except ValueError:
        return f"ftype{file_type}"


def gguf_fingerprint(path: Path) -> str:
    """sha256 of the file size and its first and last MiB: cheap, and stable for one file.

    A full sha256 runs at ~1 GB/s here (0.25 s for the 253 MB packaged model, warm cache), which
    is fine for it but not for a multi-GB model on a cold disk, so unpublished files get this
    fingerprint instead. The header and the last tensors differ between any two real quantisations.
    """
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as file:
        digest.update(file.read(_FINGERPRINT_SPAN))
        file.seek(max(size - _FINGERPRINT_SPAN, 0))
        digest.update(file.read(_FINGERPRINT_SPAN))
    return digest.hexdigest()


def derive_model_id(path: Path, published_sha256: str | None = None) -> str:
    """`<general.name>-<quantisation>@<digest>`, e.g. `gemma-3-270m-Q4_K_M@sha256:a5fd3b62c230`.

    The digest is the published sha256 (given, or that of a packaged model whose assembled file
    this is, verified when it was assembled), else a fingerprint of the file.
    """
    try:
        meta = read_gguf_metadata(path, {"general.name", "general.file_type"})
    except (OSError, ValueError, KeyError, struct.error) as exc:
        raise BackendUnavailable(
            f"cannot read GGUF metadata of {path}: {exc}", backend=BACKEND
        ) from exc
    name = str(meta.get("general.name") or path.stem)
    name = re.sub(r"[^A-Za-z0-9._]+", "-", name).strip("-").lower()
    file_type = meta.get("general.file_type")
    quant = quantisation(file_type) if isinstance(file_type, int) else None
    published = published_sha256 or packaged.verified_sha256(path)
    digest = f"sha256:{published[:12]}" if published else f"fp:{gguf_fingerprint(path)[:12]}"
    return f"{name}-{quant}@{digest}" if quant else f"{name}@{digest}"


class LlamaCppGenerator:
    """Answers grounded prompts with a local GGUF model; safe to share between threads.

    The model loads on first use so that importing or constructing this costs nothing. One
    llama.cpp context cannot run two evaluations at once, so generation is serialised.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        model_id: str | None = None,
        context_window: int = 2048,
        max_tokens: int = 96,
        temperature: float = 0.0,
        threads: int | None = None,
        prompt_format: PromptFormat | None = None,
        packaged_name: str | None = None,
    ) -> None:
        """`model_path`, or the packaged model `packaged_name` (default: Gemma). The prompt
        format defaults to the packaged model's own (chat for instruct models), else completion.
        """
        if max_tokens >= context_window:
            raise ValueError("max_tokens must be smaller than context_window")
        self._gguf = GgufFile(model_path, model_id, packaged_name=packaged_name)
        model = self._gguf.packaged_model
        prompt_format = prompt_format or (model.prompt_format if model else "completion")
        self.context_window = context_window
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.threads = threads or os.cpu_count() or 1
        self.prompt_format: PromptFormat = prompt_format
        self._llm: Llama | None = None
        self._chat_template: Callable[[list[dict[str, str]]], tuple[str, list[str]]] | None = None
        self._state_lock = threading.Lock()
        self._generate_lock = threading.Lock()

    # Model and identity -------------------------------------------------------------------

    @property
    def model_path(self) -> Path:
        return self._gguf.path

    @property
    def model_id(self) -> str:
        return self._gguf.model_id

    def _model(self) -> Llama:
        with self._state_lock:
            if self._llm is None:
                self._llm = self._load(self._gguf.path)
            return self._llm

    def _load(self, path: Path) -> Llama:
        llm = load_llama(
            path,
            n_ctx=self.context_window,
            n_threads=self.threads,
            n_threads_batch=self.threads,
            use_mlock=False,
        )
        if self.prompt_format == "chat":
            try:
                self._chat_template = self._template_of(llm, path)
            except BackendUnavailable:
                llm.close()
                raise
        return llm

    @staticmethod
    def _template_of(
        llm: Llama, path: Path
    ) -> Callable[[list[dict[str, str]]], tuple[str, list[str]]]:
        """The GGUF's own chat template; guessing another model family's format is worse."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise BackendUnavailable(
                f"model {path} has no chat template; use prompt_format='completion'",
                backend=BACKEND,
            )
        eos = llm.detokenize([llm.token_eos()], special=True).decode("utf-8", "replace")
        bos = llm.detokenize([llm.token_bos()], special=True).decode("utf-8", "replace")
        formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)

        def render(messages: list[dict[str, str]]) -> tuple[str, list[str]]:
            response = formatter(messages=messages)  # type: ignore[arg-type]
            stop = response.stop
            stops = [stop] if isinstance(stop, str) else list(stop or [])
            return response.prompt, stops

        return render

    def ping(self) -> None:
        self._model()

    def close(self) -> None:
        """Free the model now instead of at garbage collection; the next call reloads it."""
        with self._generate_lock, self._state_lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None

    # Generation ---------------------------------------------------------------------------

    def _render(self, prompt: GroundedPrompt) -> tuple[str, list[str]]:
        if self.prompt_format == "chat":
            assert self._chat_template is not None
            return self._chat_template(render_chat_messages(prompt))
        return render_completion_prompt(prompt), list(COMPLETION_STOP)

    def _tokenize(self, llm: Llama, text: str) -> list[int]:
        """Completion prompts are tokenised without parsing special tokens, so document text can
        never become a control token; a chat template's own markers must be parsed."""
        chat = self.prompt_format == "chat"
        return llm.tokenize(text.encode("utf-8"), add_bos=not chat, special=chat)

    def _completion_budget(self, prompt: GroundedPrompt) -> int:
        return max(1, min(prompt.max_tokens, self.max_tokens))

    def fit(self, prompt: GroundedPrompt) -> GroundedPrompt:
        """The prompt with its lowest-ranked passages dropped until it fits the context window.

        Passages are ranked best first, so the last ones go. If even the best passage alone is
        too long it is cut to what fits (and marked with "…") rather than dropped. A question
        that leaves no room for any passage is refused with `InvalidInput`. `generate` does this
        itself; call it first to learn which passages the model will see.
        """
        with self._generate_lock:
            return self._fit(self._model(), prompt)[0]

    def _fit(
        self, llm: Llama, prompt: GroundedPrompt
    ) -> tuple[GroundedPrompt, list[int], list[str]]:
        budget = self.context_window - self._completion_budget(prompt)
        passages = list(prompt.passages)
        while True:
            candidate = prompt.model_copy(update={"passages": passages})
            text, stops = self._render(candidate)
            tokens = self._tokenize(llm, text)
            overflow = len(tokens) - budget
            if overflow <= 0:
                return candidate, tokens, stops
            if len(passages) > 1:
                passages = passages[:-1]
                continue
            shortened = self._shorten(llm, passages[0], overflow) if passages else None
            if shortened is None:
                reserved = self._completion_budget(prompt)
                raise InvalidInput(
                    f"the question leaves no room for any passage in a {self.context_window}-token "
                    f"context with {reserved} tokens reserved for the answer"
                )
            passages = [shortened]

    def _shorten(self, llm: Llama, passage: Passage, overflow: int) -> Passage | None:
        body = llm.tokenize(passage.text.encode("utf-8"), add_bos=False, special=False)
        # Retokenising a cut text can shift a few tokens; the margin avoids another round trip.
        keep = len(body) - overflow - 8
        if keep < 16:  # A few words of a passage are no evidence worth answering from.
            return None
        text = llm.detokenize(body[:keep]).decode("utf-8", "ignore").rstrip() + " …"
        return passage.model_copy(update={"text": text})

    def generate(self, prompt: GroundedPrompt) -> Generation:
        with self._generate_lock:
            llm = self._model()
            model_id = self.model_id
            _, tokens, stops = self._fit(llm, prompt)
            try:
                result: Any = llm.create_completion(
                    tokens,
                    max_tokens=self._completion_budget(prompt),
                    temperature=self.temperature,
                    stop=stops,
                    seed=0,
                )
            except (RuntimeError, ValueError) as exc:
                raise GenerationError(f"llama.cpp failed to generate: {exc}") from exc
        choice = result["choices"][0]
        usage = result.get("usage") or {}
        return Generation(
            text=str(choice["text"]).strip(),
            model=model_id,
            prompt_tokens=int(usage.get("prompt_tokens", len(tokens))),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=choice.get("finish_reason"),
        )

    def stream(self, prompt: GroundedPrompt) -> EventStream:
        """Tokens as llama.cpp samples them. The model stays locked until the stream ends or is
        closed; closing it early stops the sampling loop at the next token."""
        with self._generate_lock:
            llm = self._model()
            model_id = self.model_id
            _, tokens, stops = self._fit(llm, prompt)
            text = TrimmedText()
            raw: list[str] = []
            finish: str | None = None
            try:
                chunks: Iterator[Any] = llm.create_completion(  # type: ignore[assignment]
                    tokens,
                    max_tokens=self._completion_budget(prompt),
                    temperature=self.temperature,
                    stop=stops,
                    seed=0,
                    stream=True,
                )
                try:
                    for chunk in chunks:
                        choice = chunk["choices"][0]
                        raw.append(str(choice["text"]))
                        finish = choice.get("finish_reason") or finish
                        piece = text.push(raw[-1])
                        if piece:
                            yield TextDelta(piece)
                finally:
                    chunks.close()  # type: ignore[attr-defined]
            except (RuntimeError, ValueError) as exc:
                raise GenerationError(f"llama.cpp failed to generate: {exc}") from exc
            # A stream reports no usage; the sampled text re-tokenised is the count.
            sampled = "".join(raw).encode("utf-8")
            completion_tokens = len(llm.tokenize(sampled, add_bos=False, special=False))
        yield Done(
            Generation(
                text=text.text,
                model=model_id,
                prompt_tokens=len(tokens),
                completion_tokens=completion_tokens,
                finish_reason=finish,
            )
        )
