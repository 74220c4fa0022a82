"""Folders: a recursive walk with gitignore-like include/exclude globs."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from rag.errors import InvalidInput
from rag.models import Rejection
from rag.parsing import SUPPORTED_EXTENSIONS
from rag.sources.common import Staged
from rag.sources.manifests import ManifestEntry, stage_manifest

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
        Rejection(name=path.relative_to(root).as_posix(), reason="unsupported file type")
        for path in unsupported
    ]
    prefix = target.relative_to(root).as_posix()
    return staged, "" if prefix == "." else prefix + "/"
