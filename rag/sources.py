"""Where a bulk ingestion job's files come from: an archive, a JSONL manifest or a folder.

Each source becomes `Staged`: files streamed into the staging folder under uuid names, plus one
`Rejected` with a short reason per item refused; a bad item never stops the others. The rules:

- Archives (zip, tar, tar.gz) are read one member at a time, never with `extractall`; a member's
  source id is its normalized POSIX path inside the archive. Absolute paths, `..`, drive letters,
  backslashes, links and special files are rejected; folders, hidden files and `__MACOSX/` are
  skipped without a word.
- Zip bombs: sizes are counted on the bytes actually decompressed, not on what headers claim. A
  member over `max_member_bytes` or `max_ratio` is rejected; going over `max_total_bytes`,
  `max_members` or the whole-archive ratio stops extraction and rejects the rest. Ratios are only
  checked past 1 MiB of output (a small, repetitive text is not a bomb), and tar members are not
  compressed one by one, so a tar only has the whole-stream ratio; a tar header (pax, long name)
  over 1 MiB stops it too, as tarfile would read it whole into memory.
- Manifest paths must resolve, symlinks followed, inside an allowed root. URLs must be http(s) on
  an allowed host, and each of at most 3 redirects is checked again. The host allow-list trusts
  DNS: it names hosts, not addresses.
- Folder walks skip hidden files and folders, do not enter symlinked folders and keep a symlinked
  file only if it points inside the folder.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO, cast
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from rag.catalog import IncomingFile
from rag.errors import DocumentTooLarge, InvalidInput
from rag.parsing import SUPPORTED_EXTENSIONS, detect_format
from rag.staging import stage

_RATIO_FLOOR = 1 << 20
_HEADER_SLACK = 1 << 20
_MAX_REDIRECTS = 3
_ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")
_CONTENT_TYPES = {
    "text/html": ".html",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/csv": ".csv",
}
_FIELDS = frozenset({"path", "url", "id", "metadata", "title"})
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


@dataclass
class Rejected:
    name: str  # the member path / manifest line / file path as the user wrote it
    reason: str  # one short human sentence


@dataclass
class Staged:
    files: list[IncomingFile]  # IncomingFile.filename is the document's source id
    rejected: list[Rejected]


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 10_000
    max_member_bytes: int = 50 * 2**20
    max_total_bytes: int = 2 * 2**30
    max_ratio: float = 100.0  # uncompressed / compressed, per member and for the whole archive


@dataclass
class ManifestEntry:
    line: int
    path: str | None
    url: str | None
    source_id: str  # "id" if given, else the path or url
    metadata: dict[str, Any]
    title: str | None


class _Refused(Exception):
    """This one item is refused; the message is the reason shown to the user."""


class _Stop(_Refused):
    """An archive-wide limit was hit: this member and every later one are refused."""


def _size(n: float) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n:.0f} bytes"


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
        raise _Refused("is not a regular file")
    return f


def _member_path(raw: str) -> str | None:
    """The member's normalized relative path; None to skip it silently; `_Refused` if unsafe."""
    if "\\" in raw or re.match(r"[A-Za-z]:", raw):
        raise _Refused(f"path has a drive letter or backslash ({raw})")
    if raw.startswith("/"):
        raise _Refused(f"absolute path ({raw})")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _Refused(f"path escapes the archive ({raw})")
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
            job.staged.rejected.append(Rejected(archive_name, f"the rest is unreadable ({exc})"))
        except _Stop as exc:  # raised by _TarStream while tarfile looked for the next header
            if not job.staged.rejected or job.staged.rejected[-1].reason != str(exc):
                job.staged.rejected.append(Rejected(archive_name, f"stopped reading: {exc}"))
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
                self.staged.rejected.append(Rejected(self.name, f"stopped reading: {reason}"))
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
                    raise _Refused("duplicate of an earlier member with the same path")
                seen.add(path)
                self.staged.files.append(self.stage(m, path))
            except _Stop as exc:
                stop = str(exc)
                self.staged.rejected.append(Rejected(m.name, stop))
            except (_Refused, InvalidInput, *_CORRUPT) as exc:
                self.staged.rejected.append(Rejected(m.name, _reason(exc)))

    def stage(self, m: _Member, path: str) -> IncomingFile:
        limit = self.limits.max_member_bytes
        if m.refusal:
            raise _Refused(m.refusal)
        detect_format(path)
        if m.size > limit:
            raise _Refused(f"larger than the {_size(limit)} per-file limit")
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
                f"archive goes over the {_size(self.limits.max_total_bytes)} total size limit"
            )
        if self.header_end is None:
            self.expand(n)

    def expand(self, n: int) -> None:
        self.expanded += n
        if self.expanded > self.ratio_cap:
            raise _Stop(f"archive expands more than {self.limits.max_ratio:g}x (zip bomb?)")
        if self.header_end is not None and self.expanded > self.header_end:
            raise _Stop(f"a tar header is larger than {_size(_HEADER_SLACK)}")


class _Meter:
    """Counts a member's decompressed bytes as `stage` reads them; refuses at the first limit."""

    def __init__(self, raw: IO[bytes], job: _Extraction, member_cap: float) -> None:
        self.raw, self.job, self.member_cap, self.count = raw, job, member_cap, 0

    def read(self, n: int = -1) -> bytes:
        block = self.raw.read(n)
        self.count += len(block)
        limits = self.job.limits
        if self.count > limits.max_member_bytes:
            raise _Refused(f"larger than the {_size(limits.max_member_bytes)} per-file limit")
        if self.count > self.member_cap:
            raise _Refused(f"expands more than {limits.max_ratio:g}x (zip bomb?)")
        self.job.add(len(block))
        return block


def _reason(exc: Exception) -> str:
    if isinstance(exc, _Refused):
        return str(exc)
    if isinstance(exc, InvalidInput):
        return exc.message
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.HTTPError | httpx.InvalidURL):
        return f"could not fetch the URL ({type(exc).__name__}: {exc})"
    return f"unreadable ({type(exc).__name__}: {exc})"


# -- manifests --------------------------------------------------------------------------------


def parse_manifest(lines: Iterable[str]) -> tuple[list[ManifestEntry], list[Rejected]]:
    """JSONL entries; a `null` field counts as absent. Duplicate source ids: the first one wins."""
    entries: list[ManifestEntry] = []
    rejected: list[Rejected] = []
    first: dict[str, int] = {}
    for n, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            entry = _entry(n, text.lstrip("\ufeff"))
            if entry.source_id in first:
                raise _Refused(f"duplicate id (first on line {first[entry.source_id]})")
        except _Refused as exc:
            rejected.append(Rejected(f"line {n}", str(exc)))
            continue
        first[entry.source_id] = n
        entries.append(entry)
    return entries, rejected


def _entry(n: int, text: str) -> ManifestEntry:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Refused(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise _Refused("expected a JSON object")
    if unknown := sorted(set(obj) - _FIELDS):
        raise _Refused(f"unknown field(s): {', '.join(unknown)}")
    obj = {k: v for k, v in obj.items() if v is not None}
    if ("path" in obj) == ("url" in obj):
        raise _Refused('give exactly one of "path" or "url"')
    for key in ("path", "url", "id", "title"):
        if key in obj and not (isinstance(obj[key], str) and obj[key].strip()):
            raise _Refused(f'"{key}" must be a non-empty string')
    if not isinstance(obj.get("metadata", {}), dict):
        raise _Refused('"metadata" must be a JSON object')
    path, url = obj.get("path"), obj.get("url")
    source_id = str(obj.get("id") or path or url)
    return ManifestEntry(n, path, url, source_id, dict(obj.get("metadata", {})), obj.get("title"))


def stage_manifest(
    entries: list[ManifestEntry],
    staging_dir: Path,
    *,
    allowed_roots: list[Path],
    allowed_hosts: list[str],
    max_bytes: int,
    timeout_s: float = 30.0,
) -> Staged:
    """Stage each entry; a rejection is named by the entry's source id.

    `IncomingFile.filename` is the source id when its extension gives the same format as the file
    really has; otherwise the path as written (or the resolved file's name), or for a URL the name
    its format was detected from ("report.pdf", or "page.html" from a Content-Type). Two entries
    ending with the same file name: the later one is rejected, since a job needs distinct names.
    """
    roots = [root.resolve() for root in allowed_roots]
    staged = Staged([], [])
    names: set[str] = set()
    with httpx.Client(timeout=timeout_s) as client:
        for entry in entries:
            source = (
                _open_path(entry, roots)
                if entry.url is None
                else _open_url(entry, client, allowed_hosts, max_bytes)
            )
            try:
                with source as (stream, name):
                    if name in names:
                        raise _Refused(f"another entry already has the file name {name!r}")
                    meta, title = entry.metadata, entry.title
                    file = stage(
                        stream, name, staging_dir, max_bytes=max_bytes, metadata=meta, title=title
                    )
            except (_Refused, InvalidInput, httpx.HTTPError, httpx.InvalidURL) as exc:
                too_large = f"larger than the {_size(max_bytes)} limit"
                reason = too_large if isinstance(exc, DocumentTooLarge) else _reason(exc)
                staged.rejected.append(Rejected(entry.source_id, reason))
                continue
            names.add(name)
            staged.files.append(file)
    return staged


def _filename(fmt: str, *candidates: str) -> str:
    """The first candidate whose extension means `fmt` (the last one always does)."""
    for name in candidates:
        if SUPPORTED_EXTENSIONS.get(PurePosixPath(name).suffix.lower()) == fmt:
            return name
    return candidates[-1]


@contextlib.contextmanager
def _open_path(entry: ManifestEntry, roots: list[Path]) -> Iterator[tuple[BinaryIO, str]]:
    assert entry.path is not None
    if not roots:
        raise _Refused("local paths are disabled; set RAG_INGEST__ALLOWED_ROOTS to allow folders")
    try:  # an absolute entry.path replaces the root
        path = (roots[0] / entry.path).resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a NUL byte
        raise _Refused(f"invalid path ({exc})") from None
    if not any(path.is_relative_to(root) for root in roots):
        raise _Refused("path is outside the allowed folders")
    if not path.is_file():
        raise _Refused("is a folder, not a file" if path.is_dir() else "file not found")
    fmt = detect_format(path.name)
    try:  # the file may have been swapped since resolve(): no link, and a fifo must not block
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise _Refused(f"cannot read the file ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _Refused("not a regular file")
        yield stream, _filename(fmt, entry.source_id, entry.path, path.name)


def _host_allowed(host: str, patterns: Iterable[str]) -> bool:
    for pattern in (p.lower().rstrip(".") for p in patterns):
        if host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


def _check_url(url: str, hosts: list[str], redirected: bool) -> None:
    try:
        parts, host = urlsplit(url), (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        raise _Refused(f"invalid URL ({url})") from None
    if parts.scheme not in ("http", "https"):
        raise _Refused(f"only http and https URLs can be fetched ({url})")
    if not hosts:
        raise _Refused("URLs are disabled; set RAG_INGEST__ALLOWED_URL_HOSTS to allow hosts")
    if not _host_allowed(host, hosts):
        what = "redirected to a host" if redirected else "host"
        raise _Refused(f"{what} not in the allowed hosts ({host})")


def _url_name(url: str, content_type: str) -> str:
    name = re.sub(r"[\x00-\x1f\\/]", "_", unquote(PurePosixPath(urlsplit(url).path).name))
    name = name or "index"
    if PurePosixPath(name).suffix.lower() in SUPPORTED_EXTENSIONS:
        return name
    mime = content_type.split(";")[0].strip().lower()
    if mime in _CONTENT_TYPES:
        return name + _CONTENT_TYPES[mime]
    raise _Refused(f"unsupported file type ({mime or 'no Content-Type'} at {url})")


@contextlib.contextmanager
def _open_url(
    entry: ManifestEntry, client: httpx.Client, hosts: list[str], max_bytes: int
) -> Iterator[tuple[BinaryIO, str]]:
    url = entry.url
    assert url is not None
    for hop in range(_MAX_REDIRECTS + 1):
        _check_url(url, hosts, redirected=hop > 0)
        with client.stream("GET", url) as response:  # the client never follows redirects itself
            if response.is_redirect:
                url = urljoin(url, response.headers["location"])
                continue
            if not response.is_success:
                raise _Refused(f"HTTP {response.status_code} {response.reason_phrase}".strip())
            name = _url_name(url, response.headers.get("content-type", ""))
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise DocumentTooLarge(name)
            yield (
                cast(BinaryIO, _Chunks(response.iter_bytes())),
                _filename(detect_format(name), entry.source_id, name),
            )
            return
    raise _Refused(f"more than {_MAX_REDIRECTS} redirects")


class _Chunks:
    """A `read(n)` view of an HTTP body's chunks, so `stage` can stream it to disk."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._buffer = chunks, b""

    def read(self, n: int = -1) -> bytes:
        while not self._buffer:
            if (chunk := next(self._chunks, None)) is None:
                return b""
            self._buffer = chunk
        n = len(self._buffer) if n < 0 else n
        block, self._buffer = self._buffer[:n], self._buffer[n:]
        return block


# -- folders ----------------------------------------------------------------------------------


def walk_folder(
    root: Path, *, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> tuple[list[Path], list[Path]]:
    """(supported, unsupported) files under `root`, sorted; `exclude` wins over `include`.

    Globs are gitignore-like, on the POSIX path relative to `root`, case-sensitive: a pattern
    without "/" matches a file or folder name at any depth ("*.md", "drafts"); one with "/" is
    anchored at `root` ("reports/*.pdf"), `**` spanning folders ("**/*.pdf", "drafts/**"). A
    pattern that matches a folder matches everything inside it. A symlinked file is kept only if
    it points inside `root`.
    """
    if not root.is_dir():
        raise InvalidInput(f"{root} is not a folder")
    inc, exc, real_root = [_glob(p) for p in include], [_glob(p) for p in exclude], root.resolve()
    found: list[Path] = []
    skipped: list[Path] = []
    for folder, dirs, files in os.walk(root):  # symlinked folders are listed, not entered
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            path = Path(folder, name)
            if name.startswith(".") or not path.is_file():
                continue
            if path.is_symlink() and not path.resolve().is_relative_to(real_root):
                continue
            rel = path.relative_to(root).as_posix()
            if (inc and not _matches(rel, inc)) or _matches(rel, exc):
                continue
            (found if path.suffix.lower() in SUPPORTED_EXTENSIONS else skipped).append(path)
    return sorted(found), sorted(skipped)


def _glob(pattern: str) -> tuple[bool, re.Pattern[str]]:
    """(anchored, regex) for one gitignore-like pattern."""
    anchored = "/" in pattern.rstrip("/")
    p, out, i = pattern.strip("/"), [], 0
    while i < len(p):
        if p.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif p.startswith("**", i):
            out.append(".*")
            i += 2
        elif p[i] in "*?":
            out.append("[^/]*" if p[i] == "*" else "[^/]")
            i += 1
        elif p[i] == "[" and (end := p.find("]", i + 2)) > 0:
            body = p[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(p[i]))
            i += 1
    return anchored, re.compile("".join(out))


def _matches(rel: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Does any pattern match the file, or one of the folders it is in?"""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(
        any(rx.fullmatch(c) for c in (prefixes if anchored else parts)) for anchored, rx in patterns
    )


def stage_folder(
    folder: Path,
    staging_dir: Path,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    allowed_roots: list[Path],
    max_bytes: int,
) -> tuple[Staged, str]:
    """A server folder's files, each named by its path relative to the allowed root it is in
    (/data/handbook/hr/leave.md under root /data → "handbook/hr/leave.md"), and the folder's own
    prefix ("handbook/"), which is what pruning removes documents under."""
    roots = [root.resolve() for root in allowed_roots]
    if not roots:
        raise InvalidInput("server folders are disabled; set RAG_INGEST__ALLOWED_ROOTS to allow")
    target = (roots[0] / folder).resolve()
    root = next((r for r in roots if target.is_relative_to(r)), None)
    if root is None:
        raise InvalidInput(f"{folder} is outside the allowed folders (RAG_INGEST__ALLOWED_ROOTS)")
    found, unsupported = walk_folder(target, include=include, exclude=exclude)
    entries = [
        ManifestEntry(n, str(path), None, path.relative_to(root).as_posix(), {}, None)
        for n, path in enumerate(found, 1)
    ]
    staged = stage_manifest(
        entries, staging_dir, allowed_roots=roots, allowed_hosts=[], max_bytes=max_bytes
    )
    staged.rejected += [
        Rejected(path.relative_to(root).as_posix(), "unsupported file type") for path in unsupported
    ]
    prefix = target.relative_to(root).as_posix()
    return staged, "" if prefix == "." else prefix + "/"
