"""E-mail messages: .eml (MIME, read with the standard library) and Outlook .msg (python-oxmsg).

A message is read twice, for two different jobs: at intake (`rag.sources.emails`) for its headers,
which become the document's metadata and title, and for its attachments, each staged as a
document of its own; at parse time (`partition`) for its body alone, the plain text part when
there is one, else the HTML one read as an .html upload would be. Both go through `read_message`,
so they agree on what the body and the attachments are.

A staged file has no extension, so the two formats are told apart by content: a .msg is an OLE2
compound file, an .eml is text.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import EmailMessage, MIMEPart
from email.utils import getaddresses
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rag.errors import UnreadableDocument
from rag.models import Element, ElementKind

if TYPE_CHECKING:
    from oxmsg import Message as OutlookMessageT
    from oxmsg.attachment import Attachment as OutlookAttachmentT
    from oxmsg.storage import Storage as OutlookStorageT

_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@dataclass
class Attachment:
    name: str  # as the sender named it (unsafe: a path, control characters) or ""
    content_type: str
    data: bytes
    refused: str | None = None  # why it cannot be indexed, known while reading the message


@dataclass
class Message:
    subject: str | None = None
    sender: str | None = None
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    date: str | None = None  # ISO 8601
    text: str | None = None  # the plain text body, if any
    html: str | None = None  # the HTML body, if any
    attachments: list[Attachment] = field(default_factory=list)
    kind: str = "eml"  # or "msg": an attached message is staged with this extension

    def headers(self) -> dict[str, Any]:
        """The headers a document's metadata gets: from, to, cc, date, subject (when present)."""
        found = {"from": self.sender, "to": self.to, "cc": self.cc, "date": self.date}
        found["subject"] = self.subject
        return {k: v for k, v in found.items() if v}


def partition(path: Path) -> list[Element]:
    """The body (plain text preferred, else HTML); the subject alone when there is no body."""
    from rag.parsing import _convert, _partition_text, partition_html

    message = read_message(path)
    elements: list[Element] = []
    if message.text and message.text.strip():
        elements = _convert(_partition_text("text", message.text))
    elif message.html and message.html.strip():
        elements = partition_html(message.html)
    if not elements and message.subject:  # only attachments: the message still has a document
        elements = [Element(kind=ElementKind.TITLE, text=message.subject, heading_level=1)]
    return elements


def read_message(path: Path) -> Message:
    """Read an .eml or .msg; `UnreadableDocument` if it is neither."""
    with path.open("rb") as f:
        is_msg = f.read(len(_OLE2_MAGIC)) == _OLE2_MAGIC
    return _read_msg(path) if is_msg else _read_eml(path.read_bytes())


# -- .eml -------------------------------------------------------------------------------------


def _read_eml(data: bytes) -> Message:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    if not isinstance(parsed, EmailMessage) or not (parsed.keys() or parsed.is_multipart()):
        raise UnreadableDocument("not an e-mail message (no headers)")
    return _from_mime(parsed)


def _from_mime(msg: EmailMessage) -> Message:
    message = Message(
        subject=_header(msg, "subject"),
        sender=_header(msg, "from"),
        to=_addresses(msg, "to"),
        cc=_addresses(msg, "cc"),
        date=_date(msg),
    )
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    message.text = _text(plain) if plain is not None else None
    message.html = _text(html) if html is not None else None
    bodies = {id(part) for part in (plain, html) if part is not None}
    for part in _leaves(msg):
        if id(part) in bodies or not _is_attachment(part):
            continue
        message.attachments.append(_attachment(part))
    return message


def _header(msg: MIMEPart, name: str) -> str | None:
    try:
        value = msg[name]
    except Exception:  # a header the parser chokes on is as good as absent
        return None
    text = " ".join(str(value).split()) if value is not None else ""
    return text or None


def _addresses(msg: MIMEPart, name: str) -> list[str]:
    raw = [str(v) for v in msg.get_all(name, [])]
    found = [_address(n, a) for n, a in getaddresses(raw) if a or n]
    return found or ([text] if (text := _header(msg, name)) else [])


def _address(name: str, addr: str) -> str:
    return f"{name} <{addr}>" if name and addr else addr or name


def _date(msg: MIMEPart) -> str | None:
    try:
        value = msg["date"]
        stamp = getattr(value, "datetime", None)
    except Exception:
        return None
    return stamp.isoformat() if stamp is not None else None


def _text(part: MIMEPart) -> str | None:
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, ValueError):  # an unknown or wrong charset
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else None
    return content if isinstance(content, str) else None


def _leaves(msg: MIMEPart) -> list[MIMEPart]:
    """Every non-multipart part, an attached message (message/rfc822) counted as one leaf."""
    leaves: list[MIMEPart] = []
    for part in msg.iter_parts():
        if part.is_multipart() and part.get_content_maintype() == "multipart":
            leaves.extend(_leaves(part))
        else:
            leaves.append(part)
    return leaves


def _is_attachment(part: MIMEPart) -> bool:
    """Named parts, parts marked as attachments, and anything else that is not text; not an
    image the HTML body shows by its Content-ID (a logo in a signature is not a document)."""
    if (
        part.get("Content-ID")
        and not part.is_attachment()
        and part.get_content_maintype() == "image"
    ):
        return False
    return bool(
        part.is_attachment()
        or part.get_filename()
        or part.get_content_maintype() not in ("text", "multipart")
    )


def _attachment(part: MIMEPart) -> Attachment:
    kind = part.get_content_type()
    if kind == "message/rfc822":
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else inner
        data = inner.as_bytes() if isinstance(inner, EmailMessage) else b""
        name = _with_suffix(part.get_filename() or _subject(inner), ".eml")
        return Attachment(name=name, content_type=kind, data=data)
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    return Attachment(name=part.get_filename() or "", content_type=kind, data=data)


def _subject(inner: object) -> str:
    return (_header(inner, "subject") if isinstance(inner, EmailMessage) else None) or "message"


def _with_suffix(name: str, suffix: str) -> str:
    """An attached message's name as a file name its format is known by."""
    return name if name.lower().endswith(suffix) else f"{name}{suffix}"


# -- .msg -------------------------------------------------------------------------------------


def _read_msg(path: Path) -> Message:
    from oxmsg import Message as OutlookMessage
    from oxmsg.domain import constants as c

    try:
        msg = OutlookMessage.load(str(path))
        try:
            message_class = msg.message_class  # the first read of the properties
        except KeyError as exc:  # no property stream: another OLE2 file (a .doc, an .xls)
            raise ValueError("an OLE2 file, but not an Outlook item") from exc
        kind = _outlook_kind(message_class)
    except Exception as exc:
        raise UnreadableDocument(
            f"corrupt or invalid Outlook .msg file ({type(exc).__name__}: {exc})"
        ) from exc
    if kind != "Message":
        raise UnreadableDocument(
            f"an Outlook {kind}, not an e-mail message: only messages are read"
        )
    props = msg.properties
    sent = not (props.int_prop_value(c.PID_MESSAGE_FLAGS) or 0) & _MSGFLAG_UNSENT
    stamp = msg.sent_date if sent else None
    text = props.str_prop_value(c.PID_BODY)
    message = Message(
        subject=_clean(props.str_prop_value(c.PID_SUBJECT)),
        sender=next(iter(_split(_msg_sender(msg))), None),
        to=_split(_msg_recipients(msg, "to", _MAPI_TO)),
        cc=_split(_msg_recipients(msg, "cc", _MAPI_CC)),
        date=stamp.isoformat() if stamp is not None else None,
        text=text,
        html=_msg_html(msg) if not (text or "").strip() else None,
        kind="msg",
    )
    for att in msg.attachments:
        if _embedded_message(att) is not None:
            name = _with_suffix(att.file_name or "message", ".msg")
            message.attachments.append(
                Attachment(name, "application/vnd.ms-outlook", b"", refused=_NESTED_MSG)
            )
        elif att.file_bytes is not None:
            kind = att.mime_type or "application/octet-stream"
            message.attachments.append(Attachment(att.file_name or "", kind, att.file_bytes))
    return message


# python-oxmsg reads an attached message but cannot write it out as a .msg of its own.
_NESTED_MSG = (
    "an Outlook message attached to an Outlook message is not read: save it as a .msg file "
    "and upload it"
)
_MSGFLAG_UNSENT = 0x8  # PidTagMessageFlags: a draft has no send date
_MAPI_TO, _MAPI_CC = 1, 2  # PidTagRecipientType
_EMBEDDED = "__substg1.0_3701000D"  # an attached message's storage (PidTagAttachDataObject)

# Outlook item classes (PidTagMessageClass, case-insensitive prefixes) and what they are called.
_OUTLOOK_KINDS = (
    ("ipm.note.smime.multipartsigned", "MessageSigned"),
    ("ipm.activity", "Journal"),
    ("ipm.appointment", "AppointmentMeeting"),
    ("ipm.contact", "Contact"),
    ("ipm.distlist", "Contact"),
    ("ipm.post", "Post"),
    ("ipm.schedule.meeting.request", "MeetingRequest"),
    ("ipm.schedule.meeting.canceled", "MeetingCancellation"),
    ("ipm.schedule.meeting.notification.forward", "MeetingForwardNotification"),
    ("ipm.schedule.meeting.resp", "MeetingResponse"),
    ("ipm.stickynote", "StickyNote"),
    ("ipm.taskrequest", "TaskRequest"),
    ("ipm.task", "Task"),
    ("ipm.ole.class.{00061055-0000-0000-c000-000000000046}", "MeetingException"),
)


def _outlook_kind(message_class: str) -> str:
    """ "Message" for an e-mail (IPM.Note, a report, a Teams message), else what the item is."""
    lower = message_class.strip().lower()
    if not lower:
        raise ValueError("an OLE2 file but not an Outlook item (no message class)")
    if lower.endswith((".smime", ".smime.multipartsigned")) and lower.startswith("ipm.note"):
        return "MessageSigned"
    if lower.startswith(("ipm.note", "report", "ipm.skypeteams.message")):
        return "Message"
    if lower == "ipm":
        return "MSGFile"
    found = (name for prefix, name in _OUTLOOK_KINDS if lower.startswith(prefix))
    return next(found, f"item of class {message_class.strip()!r}")


def _msg_headers(msg: OutlookMessageT) -> dict[str, str]:
    try:
        return {k.lower(): v for k, v in msg.message_headers.items()}
    except Exception:  # headers the parser chokes on are as good as absent
        return {}


def _decode_rfc2047(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # a malformed encoded word: the text as it is
        return value


def _msg_sender(msg: OutlookMessageT) -> str | None:
    """The From: header when the message kept its headers, else the sender's name and address."""
    from oxmsg.domain import constants as c

    if (header := _msg_headers(msg).get("from")) is not None:
        return _decode_rfc2047(header)
    name = msg.properties.str_prop_value(c.PID_SENDER_NAME)
    address = msg.properties.str_prop_value(c.PID_SENDER_SMTP_ADDRESS)
    return f"{name} <{address}>" if name is not None and address is not None else name or address


def _msg_recipients(msg: OutlookMessageT, header: str, mapi_type: int) -> str | None:
    """The To:/Cc: header when there is one, else the recipients of that type, ";"-separated."""
    from oxmsg.domain import constants as c

    value = _msg_headers(msg).get(header)
    if value:
        return _decode_rfc2047(value).replace(",", ";")
    found = [
        f"{r.name} <{r.email_address}>"
        for r in msg.recipients
        if (r.properties.int_prop_value(c.PID_RECIPIENT_TYPE) or 0) & 0xF == mapi_type
    ]
    return "; ".join(found) or None


def _msg_html(msg: OutlookMessageT) -> str | None:
    from oxmsg.domain import constants as c

    try:
        return msg.html_body
    except (LookupError, UnicodeError):  # an unknown or wrong code page
        return _decode_html(msg.properties.binary_prop_value(c.PID_HTML))


def _embedded_message(att: OutlookAttachmentT) -> OutlookStorageT | None:
    # oxmsg reads an attached message's storage along with the rest, but offers no API for it
    storage = cast("OutlookStorageT", att._storage)
    return next((s for s in storage.storages if s.name == _EMBEDDED), None)


def _clean(value: str | None) -> str | None:
    text = " ".join((value or "").split())
    return text or None


def _split(value: str | None) -> list[str]:
    """Outlook's "a; b" recipients, written as the .eml headers are (no quotes around names)."""
    parts = getaddresses([" ".join(p.split()) for p in (value or "").split(";") if p.strip()])
    return [_address(name, addr) for name, addr in parts if name or addr]


def _decode_html(body: bytes | None) -> str | None:
    if not body:
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("cp1252", "replace")
