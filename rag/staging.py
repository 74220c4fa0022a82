"""Streaming an upload to disk: bounded size, hashed on the way, never whole in memory."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from pathlib import Path
from typing import Any, BinaryIO

from rag.collections import IncomingFile
from rag.errors import DocumentTooLarge, InvalidInput

_BLOCK = 1 << 20
# Bidirectional marks, embeddings, overrides and isolates.
_BIDI_CONTROLS = frozenset(
    map(chr, [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])
)


def safe_source(name: str | None) -> str:
    """A document's source id from an upload's file name: a relative POSIX path, folders kept
    (`rag ingest handbook/` sends `handbook/hr/leave.md`). It names the document; where the file
    is written never depends on it beyond its last component."""
    raw = (name or "").replace("\\", "/").strip()
    raw = re.sub(r"^[A-Za-z]:", "", raw)  # C:\Users\... from some browsers
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        raise InvalidInput(f"invalid file name {name!r}")
    source = "/".join(parts)
    check_source(source)
    return source


def check_source(source: str) -> None:
    """A document's source fits its column (1024) and, as a file name, file systems (255 bytes).
    Control characters (NUL above all, and the C1 ones) and bidirectional text controls are
    refused: the source is shown in citations, where "invoice" U+202E "fdp.exe" reads as
    "invoiceexe.pdf". `stage` checks it, so that a source (an archive, a folder) can reject one
    file alone rather than have the whole job refused."""
    if len(source) > 1024 or len(Path(source).name.encode()) > 255:
        raise InvalidInput(
            f"file name too long: {source[:60]!r}... (at most 1024 characters, 255 bytes "
            "for the name after the last '/')"
        )
    for ch in source:
        if unicodedata.category(ch) == "Cc":  # C0, DEL and C1
            raise InvalidInput(
                f"invalid file name {source!r}: U+{ord(ch):04X} is a control character"
            )
        if ch in _BIDI_CONTROLS:
            raise InvalidInput(
                f"invalid file name {source!r}: U+{ord(ch):04X} is a bidirectional text "
                "control, which can make a name display as another"
            )


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
    """Stream `stream` into `staging_dir` as the document `filename`, which is checked first
    (`check_source`): every way in (uploads, text, archives, folders, manifests) stages through
    here, and each turns the error into a 422 or the rejection of that one file."""
    check_source(filename)
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
