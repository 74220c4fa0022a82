"""Legacy and open office formats (.doc, .rtf, .odt, .ppt, .odp) through LibreOffice.

`unstructured` reads these by shelling out to LibreOffice too, but with the user's own profile:
two conversions at once then share one profile, and the second either waits on its lock or
fails. Here each conversion gets a profile of its own in a temporary folder, runs in a process
group of its own (soffice is a shell script that starts `oosplash`, which starts `soffice.bin`),
and the whole group is killed when it overruns `TIMEOUT_S`. The result (.docx or .pptx) is then
read exactly as an uploaded one would be, so every office format gives the same elements.

LibreOffice picks the import filter from the content, not the name, so the staged file (a uuid,
no extension) is converted as is; a presentation asked for as a text document fails with "no
export filter", which says the file is not what its extension claims.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import Literal

from rag.errors import BackendError, UnreadableDocument
from rag.models import Element

Target = Literal["docx", "pptx"]

# Below the default parse time limit (ingest.parse_timeout_s, 300 s), so that a stuck
# conversion fails with its own reason rather than as a killed parse. A 20-page .doc takes ~2 s.
TIMEOUT_S = 120.0
_CANDIDATES = ("soffice", "libreoffice", "/usr/lib/libreoffice/program/soffice")
_NOT_INSTALLED = (
    "LibreOffice is not installed, which .doc, .rtf, .odt, .ppt and .odp files need; run "
    "`make setup` (as root it installs libreoffice-writer-nogui and libreoffice-impress-nogui)"
)
_KINDS = {"docx": "text document", "pptx": "presentation"}


def partition(path: Path, target: Target = "docx") -> list[Element]:
    """A text document (.doc, .rtf, .odt): converted to .docx, then read as one."""
    from rag.parsing import _convert, _partition_binary

    with tempfile.TemporaryDirectory(prefix="rag-office-") as tmp:
        converted = convert(path, Path(tmp), target)
        return _convert(_partition_binary(target, converted))


def partition_presentation(path: Path) -> list[Element]:
    """A presentation (.ppt, .odp): converted to .pptx, then read as one."""
    return partition(path, "pptx")


def soffice() -> str:
    """The LibreOffice executable; `BackendError` (not the document's fault) when there is none."""
    for name in _CANDIDATES:
        if found := shutil.which(name):
            return found
    raise BackendError(_NOT_INSTALLED, backend="parser")


def convert(path: Path, workdir: Path, target: Target, *, timeout_s: float = TIMEOUT_S) -> Path:
    """Convert `path` into `workdir` (which also holds the private profile); the new file."""
    executable = soffice()
    source = workdir / "document"  # a fixed name: the staged file's name means nothing here
    source.symlink_to(path.resolve())
    out = workdir / "out"
    command = [
        executable,
        f"-env:UserInstallation={(workdir / 'profile').as_uri()}",
        "--headless",
        "--norestore",
        "--nolockcheck",
        "--convert-to",
        target,
        "--outdir",
        str(out),
        str(source),
    ]
    proc = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so that a timeout kills all of it
        cwd=workdir,
    )
    try:
        output, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise UnreadableDocument(
            f"LibreOffice did not finish converting the file in {timeout_s:g} s"
        ) from None
    finally:
        _kill_group(proc)  # oosplash may leave soffice.bin behind, even on success
    result = out / f"document.{target}"
    if proc.returncode == 0 and result.is_file() and result.stat().st_size:
        return result
    raise UnreadableDocument(_reason(output.decode("utf-8", "replace"), target, proc.returncode))


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.returncode is None:
        proc.kill()
        proc.communicate()


def _reason(output: str, target: Target, returncode: int) -> str:
    """LibreOffice's own complaint, in words that make sense to whoever uploaded the file."""
    errors = [m.strip() for m in re.findall(r"^Error:(.*)$", output, flags=re.MULTILINE)]
    if any("no export filter" in e for e in errors):
        return (
            f"LibreOffice cannot read it as a {_KINDS[target]} (it opened as another kind of "
            "file: wrong extension?)"
        )
    if errors:
        return f"corrupt or invalid file (LibreOffice: {errors[0].rstrip('.,')})"
    if returncode < 0:
        return f"LibreOffice crashed converting it (signal {-returncode})"
    return f"LibreOffice could not convert it (exit status {returncode}, no output)"
