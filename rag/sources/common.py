"""What every source shares: the staged result, the per-item refusal and its wording."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from rag.collections import IncomingFile
from rag.errors import InvalidInput
from rag.models import Rejection


@dataclass
class Staged:
    files: list[IncomingFile]  # IncomingFile.filename is the document's source id
    rejected: list[Rejection]  # name: member path, manifest line or file as written


class Refused(Exception):
    """This one item is refused; the message is the reason shown to the user."""


def size_text(n: float) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n:.0f} bytes"


def reason_for(exc: Exception) -> str:
    if isinstance(exc, Refused):
        return str(exc)
    if isinstance(exc, InvalidInput):
        return exc.message
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.HTTPError | httpx.InvalidURL):
        return f"could not fetch the URL ({type(exc).__name__}: {exc})"
    return f"unreadable ({type(exc).__name__}: {exc})"
