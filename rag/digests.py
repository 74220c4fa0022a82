"""SHA-256 hex digests: of a file, read in blocks (what checks a packaged model and an ONNX
export), and of a secret (what API keys and web UI sessions store instead of it)."""

from __future__ import annotations

import hashlib
from pathlib import Path

_BLOCK = 8 << 20


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()
