"""E-mails at intake: headers become metadata, attachments become documents of their own.

Every submission passes through `expand_emails` (called by `Intake.submit`), whatever its source
(an upload, an archive member, a folder, a manifest). Each .eml or .msg among the staged files
gets its headers as metadata (from, to, cc, date, subject; what the caller gave wins) and its
subject as title, and each attachment is staged as a document whose source is
`<message source>/attachments/<file name>`, with metadata pointing back to the message
(`attached_to`, `email_subject`, `email_from`, `email_date`) and the message's access list: an
attachment is never readable by more people than its message.

An attachment is refused alone, like an archive member: an unsupported type, over the upload size
limit, past `MAX_ATTACHMENTS`, or a name `check_source` refuses. An attached message is expanded
in turn, one level deep; the attachments of a message attached to that one are not indexed, and
the job says so. A message that cannot be read is left as it is: its parse fails with the reason.
"""

from __future__ import annotations

import io
import mimetypes
import unicodedata
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import Any

from rag.collections import IncomingFile
from rag.errors import InvalidInput
from rag.formats.email import Attachment, read_message
from rag.models import Rejection
from rag.parsing import detect_format
from rag.sources.common import Staged, size_text
from rag.staging import stage

EMAIL_SUFFIXES = (".eml", ".msg")
MAX_ATTACHMENTS = 100
MAX_DEPTH = 1  # a message attached to a message is expanded; one attached to that is not
_MAX_NAME_BYTES = 200  # leaves room in the 255-byte name for a "-2" that tells two apart


def is_email(filename: str) -> bool:
    return filename.lower().endswith(EMAIL_SUFFIXES)


def expand_emails(
    files: Sequence[IncomingFile],
    staging_dir: Path,
    *,
    max_bytes: int,
    max_attachments: int = MAX_ATTACHMENTS,
) -> Staged:
    """`files` with each message's headers filled in and its attachments staged after it.
    If anything unexpected fails, the attachments staged so far are removed (not `files`)."""
    expansion = _Expansion(staging_dir, max_bytes, max_attachments)
    try:
        for incoming in files:
            expansion.files.append(incoming)
            if is_email(incoming.filename):
                expansion.expand(incoming, depth=0)
    except BaseException:
        for extra in expansion.files[len(files) :]:
            extra.path.unlink(missing_ok=True)
        raise
    return Staged(expansion.files, expansion.rejected)


class _Expansion:
    def __init__(self, staging_dir: Path, max_bytes: int, max_attachments: int) -> None:
        self.staging_dir, self.max_bytes, self.max_attachments = (
            staging_dir,
            max_bytes,
            max_attachments,
        )
        self.files: list[IncomingFile] = []
        self.rejected: list[Rejection] = []

    def expand(self, incoming: IncomingFile, depth: int) -> None:
        try:
            message = read_message(incoming.path)
        except Exception:  # not readable: parsing it fails later, with the reason
            return
        given = dict(incoming.metadata)
        incoming.metadata = {**message.headers(), **given}
        incoming.title = incoming.title or message.subject
        if not message.attachments:
            return
        source = incoming.filename
        if depth > MAX_DEPTH:
            self.rejected.append(
                Rejection(
                    name=f"{source}/attachments",
                    reason=f"{len(message.attachments)} attachment(s) not indexed: a message "
                    f"attached to a message attached to a message is not expanded",
                )
            )
            return
        link = {
            "attached_to": source,
            "email_subject": message.subject,
            "email_from": message.sender,
            "email_date": message.date,
        }
        metadata = {**given, **{k: v for k, v in link.items() if v}}
        names: set[str] = set()
        for n, attachment in enumerate(message.attachments, start=1):
            if n > self.max_attachments:
                self.rejected.append(
                    Rejection(
                        name=f"{source}/attachments",
                        reason=f"more than {self.max_attachments} attachments: the other "
                        f"{len(message.attachments) - self.max_attachments} were not indexed",
                    )
                )
                return
            name = _unique(safe_name(attachment, n), names)
            path = f"{source}/attachments/{name}"
            try:
                staged = self._stage(attachment, path, metadata, incoming.access)
            except InvalidInput as exc:
                self.rejected.append(Rejection(name=path, reason=exc.message))
                continue
            self.files.append(staged)
            if is_email(name):
                self.expand(staged, depth + 1)

    def _stage(
        self,
        attachment: Attachment,
        path: str,
        metadata: dict[str, Any],
        access: list[str] | None,
    ) -> IncomingFile:
        detect_format(path)  # an unsupported type: `UnsupportedDocument`
        if attachment.refused:
            raise InvalidInput(attachment.refused)
        if len(attachment.data) > self.max_bytes:
            raise InvalidInput(f"larger than the {size_text(self.max_bytes)} per-file limit")
        if not attachment.data:
            raise InvalidInput("empty attachment")
        return stage(
            io.BytesIO(attachment.data),
            path,
            self.staging_dir,
            max_bytes=self.max_bytes,
            metadata=dict(metadata),
            access=list(access) if access is not None else None,
        )


def safe_name(attachment: Attachment, n: int) -> str:
    """The attachment's own file name, without folders, controls or a leading dot; a made-up
    one (`attachment-3.pdf`, the extension from its content type) when it has none."""
    raw = attachment.name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in raw if unicodedata.category(c) not in ("Cc", "Cf"))
    name = " ".join(name.split()).lstrip(". ")
    if not name:
        ext = mimetypes.guess_extension(attachment.content_type) or ".bin"
        return f"attachment-{n}{ext}"
    while len(name.encode()) > _MAX_NAME_BYTES:
        path = PurePath(name)
        name = path.stem[:-1] + path.suffix if len(path.stem) > 1 else name[:-1]
    return name


def _unique(name: str, taken: set[str]) -> str:
    """Two attachments named alike ("image.png" twice) are both kept: "image-2.png"."""
    candidate, n = name, 1
    while candidate.lower() in taken:
        n += 1
        path = PurePath(name)
        candidate = f"{path.stem}-{n}{path.suffix}"
    taken.add(candidate.lower())
    return candidate
