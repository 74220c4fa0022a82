"""Archives (zip, tar, tar.gz): one member at a time, limits counted on real bytes."""

from __future__ import annotations

import contextlib
import gzip
import io
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from rag.collections import IncomingFile
from rag.errors import InvalidInput
from rag.models import Rejection
from rag.parsing import detect_format
from rag.sources.common import Refused, Staged, reason_for, size_text
from rag.staging import stage

_RATIO_FLOOR = 1 << 20
_HEADER_SLACK = 1 << 20
_ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")
_CORRUPT = (
    zipfile.BadZipFile,
    tarfile.TarError,
    gzip.BadGzipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
)
_REFUSALS: dict[object, str | None] = {  # tar member types and zip (Unix) file modes
    **dict.fromkeys([*tarfile.REGULAR_TYPES, tarfile.DIRTYPE]),
    **dict.fromkeys([stat.S_IFREG, stat.S_IFDIR]),
    tarfile.SYMTYPE: "is a symbolic link",
    stat.S_IFLNK: "is a symbolic link",
    tarfile.LNKTYPE: "is a hard link",
    **dict.fromkeys([tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE], "is a device or fifo"),
    **dict.fromkeys([stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO], "is a device or fifo"),
}


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 10_000
    max_member_bytes: int = 50 * 2**20
    max_total_bytes: int = 2 * 2**30
    max_ratio: float = 100.0  # uncompressed / compressed, per member and for the whole archive


class _Stop(Refused):
    """An archive-wide limit was hit: this member and every later one are refused."""


# -- archives ---------------------------------------------------------------------------------


def is_archive(filename: str) -> bool:
    return filename.lower().endswith(_ARCHIVE_SUFFIXES)


@dataclass
class _Member:
    name: str
    is_dir: bool
    refusal: str | None  # why a member that is neither a file nor a folder is refused
    size: int  # as the header claims
    packed: int | None  # compressed size (zip only)
    open: Callable[[], IO[bytes]]


def _zip_members(zf: zipfile.ZipFile) -> Iterator[_Member]:
    for info in zf.infolist():
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip was not made on Unix
        refusal = _REFUSALS.get(kind, "is not a regular file") if kind else None
        if refusal is None and info.flag_bits & 0x1:
            refusal = "is encrypted"
        opener = partial(zf.open, info)
        yield _Member(
            info.filename, info.is_dir(), refusal, info.file_size, info.compress_size, opener
        )


def _tar_members(tf: tarfile.TarFile, job: _Extraction) -> Iterator[_Member]:
    while (m := tf.next()) is not None:
        tf.members.clear()  # type: ignore[attr-defined]  # stream mode never looks back
        job.header_end = m.offset_data + m.size + _HEADER_SLACK
        refusal = _REFUSALS.get(m.type, "is not a regular file")
        yield _Member(m.name, m.isdir(), refusal, m.size, None, partial(_tar_open, tf, m))


def _open_tar(archive: Path, job: _Extraction, stack: contextlib.ExitStack) -> tarfile.TarFile:
    """A tar (gzipped or not) in stream mode, over a stream that `job` counts."""
    raw: io.BufferedIOBase = stack.enter_context(archive.open("rb"))
    gzipped = raw.read(2) == b"\x1f\x8b"
    raw.seek(0)
    if gzipped:
        raw = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
    job.header_end = _HEADER_SLACK
    stream = cast(IO[bytes], _TarStream(raw, job))
    return stack.enter_context(tarfile.open(fileobj=stream, mode="r|"))


class _TarStream:
    """The decompressed tar stream, counted. tarfile reads a pax or long-name header whole, so a
    header claiming gigabytes would otherwise be read into memory before any member is seen."""

    def __init__(self, raw: io.BufferedIOBase, job: _Extraction) -> None:
        self.raw, self.job = raw, job

    def read(self, n: int = -1) -> bytes:
        block = self.raw.read(n)
        self.job.expand(len(block))
        return block


def _tar_open(tf: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    if (f := tf.extractfile(member)) is None:
        raise Refused("is not a regular file")
    return f


def _member_path(raw: str) -> str | None:
    """The member's normalized relative path; None to skip it silently; `Refused` if unsafe."""
    if "\\" in raw or re.match(r"[A-Za-z]:", raw):
        raise Refused(f"path has a drive letter or backslash ({raw})")
    if raw.startswith("/"):
        raise Refused(f"absolute path ({raw})")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise Refused(f"path escapes the archive ({raw})")
    if not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts):
        return None
    return "/".join(parts)


def extract_archive(
    archive: Path,
    archive_name: str,
    staging_dir: Path,
    *,
    limits: ArchiveLimits,
    metadata: dict[str, Any] | None = None,
) -> Staged:
    """Stage the archive's members. Only an archive that cannot be opened at all raises."""
    job = _Extraction(archive_name, archive.stat().st_size, staging_dir, limits, metadata or {})
    with contextlib.ExitStack() as stack:
        try:
            if archive_name.lower().endswith(".zip"):
                job.run(_zip_members(stack.enter_context(zipfile.ZipFile(archive))))
            else:
                job.run(_tar_members(_open_tar(archive, job, stack), job))
        except _CORRUPT as exc:
            if not job.staged.files and not job.staged.rejected:
                raise InvalidInput(
                    f"{archive_name} is not a readable zip/tar archive: {exc}"
                ) from exc
            job.staged.rejected.append(
                Rejection(name=archive_name, reason=f"the rest is unreadable ({exc})")
            )
        except _Stop as exc:  # raised by _TarStream while tarfile looked for the next header
            if not job.staged.rejected or job.staged.rejected[-1].reason != str(exc):
                job.staged.rejected.append(
                    Rejection(name=archive_name, reason=f"stopped reading: {exc}")
                )
    return job.staged


class _Extraction:
    """One archive being extracted: its limits, the bytes decompressed so far, the result."""

    def __init__(
        self,
        name: str,
        size: int,
        staging_dir: Path,
        limits: ArchiveLimits,
        metadata: dict[str, Any],
    ) -> None:
        self.name, self.size, self.staging_dir, self.limits = name, size, staging_dir, limits
        self.metadata, self.staged = metadata, Staged([], [])
        self.ratio_cap = max(limits.max_ratio * size, _RATIO_FLOOR)
        self.written = 0  # member bytes, for max_total_bytes
        self.expanded = 0  # the whole decompressed stream, for the archive's ratio
        self.header_end: float | None = None  # tar: where the next header must have ended

    def run(self, members: Iterator[_Member]) -> None:
        seen: set[str] = set()
        stop: str | None = None
        for count, m in enumerate(members, start=1):
            if count > 10 * self.limits.max_members:  # after a stop, members are only listed
                reason = stop or f"more than {10 * self.limits.max_members} entries"
                self.staged.rejected.append(
                    Rejection(name=self.name, reason=f"stopped reading: {reason}")
                )
                return
            try:
                path = _member_path(m.name)
                if path is None or m.is_dir:
                    continue
                if stop:
                    raise _Stop(stop)
                if len(seen) >= self.limits.max_members:
                    raise _Stop(f"archive has more than {self.limits.max_members} files")
                if path in seen:
                    raise Refused("duplicate of an earlier member with the same path")
                seen.add(path)
                self.staged.files.append(self.stage(m, path))
            except _Stop as exc:
                stop = str(exc)
                self.staged.rejected.append(Rejection(name=m.name, reason=stop))
            except (Refused, InvalidInput, *_CORRUPT) as exc:
                self.staged.rejected.append(Rejection(name=m.name, reason=reason_for(exc)))

    def stage(self, m: _Member, path: str) -> IncomingFile:
        limit = self.limits.max_member_bytes
        if m.refusal:
            raise Refused(m.refusal)
        detect_format(path)
        if m.size > limit:
            raise Refused(f"larger than the {size_text(limit)} per-file limit")
        cap = float("inf")
        if m.packed is not None:  # a header may lie: never trust more than the archive's size
            cap = max(self.limits.max_ratio * min(m.packed, self.size), _RATIO_FLOOR)
        with m.open() as raw:
            meter = cast(BinaryIO, _Meter(raw, self, cap))
            return stage(
                meter, path, self.staging_dir, max_bytes=limit, metadata=dict(self.metadata)
            )

    def add(self, n: int) -> None:
        """`n` more bytes of member content (a tar's whole stream is counted by `_TarStream`)."""
        self.written += n
        if self.written > self.limits.max_total_bytes:
            raise _Stop(
                f"archive goes over the {size_text(self.limits.max_total_bytes)} total size limit"
            )
        if self.header_end is None:
            self.expand(n)

    def expand(self, n: int) -> None:
        self.expanded += n
        if self.expanded > self.ratio_cap:
            raise _Stop(f"archive expands more than {self.limits.max_ratio:g}x (zip bomb?)")
        if self.header_end is not None and self.expanded > self.header_end:
            raise _Stop(f"a tar header is larger than {size_text(_HEADER_SLACK)}")


class _Meter:
    """Counts a member's decompressed bytes as `stage` reads them; refuses at the first limit."""

    def __init__(self, raw: IO[bytes], job: _Extraction, member_cap: float) -> None:
        self.raw, self.job, self.member_cap, self.count = raw, job, member_cap, 0

    def read(self, n: int = -1) -> bytes:
        block = self.raw.read(n)
        self.count += len(block)
        limits = self.job.limits
        if self.count > limits.max_member_bytes:
            raise Refused(f"larger than the {size_text(limits.max_member_bytes)} per-file limit")
        if self.count > self.member_cap:
            raise Refused(f"expands more than {limits.max_ratio:g}x (zip bomb?)")
        self.job.add(len(block))
        return block
