"""The sha256 of a file, read in blocks: what checks a packaged model and an ONNX export."""

from __future__ import annotations

import hashlib
from pathlib import Path

_BLOCK = 8 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()
