"""Streaming an upload to disk: bounded size, hashed on the way, never whole in memory."""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path
from typing import Any, BinaryIO

from rag.catalog import IncomingFile
from rag.errors import DocumentTooLarge, InvalidInput

_BLOCK = 1 << 20


def safe_source(name: str | None) -> str:
    """A document's source id from an upload's file name: a relative POSIX path, folders kept
    (`rag ingest handbook/` sends `handbook/hr/leave.md`). It names the document; where the file
    is written never depends on it beyond its last component."""
    raw = (name or "").replace("\\", "/").strip()
    raw = re.sub(r"^[A-Za-z]:", "", raw)  # C:\Users\... from some browsers
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        raise InvalidInput(f"invalid file name {name!r}")
    return "/".join(parts)


def check_source(source: str) -> None:
    """A document's source fits its column (1024) and, as a file name, file systems (255 bytes);
    control characters (NUL above all) are refused."""
    if len(source) > 1024 or len(Path(source).name.encode()) > 255:
        raise InvalidInput(
            f"file name too long: {source[:60]!r}... (at most 1024 characters, 255 bytes "
            "for the name after the last '/')"
        )
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in source):
        raise InvalidInput(f"invalid file name {source!r}: control characters")


def stage(
    stream: BinaryIO,
    filename: str,
    staging_dir: Path,
    *,
    max_bytes: int,
    metadata: dict[str, Any] | None = None,
    title: str | None = None,
    access: list[str] | None = None,
) -> IncomingFile:
    staging_dir.mkdir(parents=True, exist_ok=True)
    target = staging_dir / uuid.uuid4().hex
    digest = hashlib.sha256()
    size = 0
    try:
        with target.open("wb") as out:
            while block := stream.read(_BLOCK):
                size += len(block)
                if size > max_bytes:
                    raise DocumentTooLarge(
                        f"{filename} is larger than the {max_bytes / 2**20:.0f} MiB upload "
                        "limit (api.max_upload_mb)"
                    )
                digest.update(block)
                out.write(block)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return IncomingFile(
        path=target,
        filename=filename,
        size=size,
        sha256=digest.hexdigest(),
        metadata=metadata or {},
        title=title,
        access=access,
    )
