"""JSONL manifests of server paths (inside allowed roots) and URLs (allowed hosts)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, cast
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from rag.access import document_access
from rag.errors import DocumentTooLarge, InvalidInput
from rag.models import Rejection
from rag.parsing import SUPPORTED_EXTENSIONS, detect_format
from rag.sources.common import Refused, Staged, reason_for, size_text
from rag.staging import stage

_MAX_REDIRECTS = 3
_CONTENT_TYPES = {
    "text/html": ".html",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/csv": ".csv",
}
_FIELDS = frozenset({"path", "url", "id", "metadata", "title", "allowed_groups", "allowed_users"})


@dataclass
class ManifestEntry:
    line: int
    path: str | None
    url: str | None
    source_id: str  # "id" if given, else the path or url
    metadata: dict[str, Any]
    title: str | None
    access: list[str] | None = None  # None: the job's


# -- manifests --------------------------------------------------------------------------------


def parse_manifest(lines: Iterable[str]) -> tuple[list[ManifestEntry], list[Rejection]]:
    """JSONL entries; a `null` field counts as absent. Duplicate source ids: the first one wins."""
    entries: list[ManifestEntry] = []
    rejected: list[Rejection] = []
    first: dict[str, int] = {}
    for n, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            entry = _entry(n, text.lstrip("\ufeff"))
            if entry.source_id in first:
                raise Refused(f"duplicate id (first on line {first[entry.source_id]})")
        except Refused as exc:
            rejected.append(Rejection(name=f"line {n}", reason=str(exc)))
            continue
        first[entry.source_id] = n
        entries.append(entry)
    return entries, rejected


def _entry(n: int, text: str) -> ManifestEntry:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Refused(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise Refused("expected a JSON object")
    if unknown := sorted(set(obj) - _FIELDS):
        raise Refused(f"unknown field(s): {', '.join(unknown)}")
    obj = {k: v for k, v in obj.items() if v is not None}
    if ("path" in obj) == ("url" in obj):
        raise Refused('give exactly one of "path" or "url"')
    for key in ("path", "url", "id", "title"):
        if key in obj and not (isinstance(obj[key], str) and obj[key].strip()):
            raise Refused(f'"{key}" must be a non-empty string')
    if not isinstance(obj.get("metadata", {}), dict):
        raise Refused('"metadata" must be a JSON object')
    path, url = obj.get("path"), obj.get("url")
    source_id = str(obj.get("id") or path or url)
    groups, users = obj.get("allowed_groups", []), obj.get("allowed_users", [])
    if not all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in (groups, users)):
        raise Refused('"allowed_groups" and "allowed_users" must be lists of names')
    try:
        access = document_access(groups, users) if groups or users else None
    except InvalidInput as exc:
        raise Refused(exc.message) from None
    return ManifestEntry(
        n, path, url, source_id, dict(obj.get("metadata", {})), obj.get("title"), access
    )


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
                        raise Refused(f"another entry already has the file name {name!r}")
                    file = stage(
                        stream,
                        name,
                        staging_dir,
                        max_bytes=max_bytes,
                        metadata=entry.metadata,
                        title=entry.title,
                        access=entry.access,
                    )
            except (Refused, InvalidInput, httpx.HTTPError, httpx.InvalidURL) as exc:
                too_large = f"larger than the {size_text(max_bytes)} limit"
                reason = too_large if isinstance(exc, DocumentTooLarge) else reason_for(exc)
                staged.rejected.append(Rejection(name=entry.source_id, reason=reason))
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
        raise Refused("local paths are disabled; set RAG_INGEST__ALLOWED_ROOTS to allow folders")
    try:  # an absolute entry.path replaces the root
        path = (roots[0] / entry.path).resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a NUL byte
        raise Refused(f"invalid path ({exc})") from None
    if not any(path.is_relative_to(root) for root in roots):
        raise Refused("path is outside the allowed folders")
    if not path.is_file():
        raise Refused("is a folder, not a file" if path.is_dir() else "file not found")
    fmt = detect_format(path.name)
    try:  # the file may have been swapped since resolve(): no link, and a fifo must not block
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise Refused(f"cannot read the file ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Refused("not a regular file")
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
        raise Refused(f"invalid URL ({url})") from None
    if parts.scheme not in ("http", "https"):
        raise Refused(f"only http and https URLs can be fetched ({url})")
    if not hosts:
        raise Refused("URLs are disabled; set RAG_INGEST__ALLOWED_URL_HOSTS to allow hosts")
    if not _host_allowed(host, hosts):
        what = "redirected to a host" if redirected else "host"
        raise Refused(f"{what} not in the allowed hosts ({host})")


def _url_name(url: str, content_type: str) -> str:
    name = re.sub(r"[\x00-\x1f\\/]", "_", unquote(PurePosixPath(urlsplit(url).path).name))
    name = name or "index"
    if PurePosixPath(name).suffix.lower() in SUPPORTED_EXTENSIONS:
        return name
    mime = content_type.split(";")[0].strip().lower()
    if mime in _CONTENT_TYPES:
        return name + _CONTENT_TYPES[mime]
    raise Refused(f"unsupported file type ({mime or 'no Content-Type'} at {url})")


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
                raise Refused(f"HTTP {response.status_code} {response.reason_phrase}".strip())
            name = _url_name(url, response.headers.get("content-type", ""))
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise DocumentTooLarge(name)
            yield (
                cast(BinaryIO, _Chunks(response.iter_bytes())),
                _filename(detect_format(name), entry.source_id, name),
            )
            return
    raise Refused(f"more than {_MAX_REDIRECTS} redirects")


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
