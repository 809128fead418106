"""Builds outgoing notification e-mails (MIME structure, headers); the iCalendar attachment is notifications/ics.py."""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.header import Header
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage, Message, MIMEPart
from email.policy import EmailPolicy
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from typing import Any, Literal, TypeVar

from notifications.ics import as_utc, deadline_ics

__all__ = [
    "MailSpec",
    "WireMessage",
    "build_message",
    "build_wire",
    "deadline_ics",
    "message_id",
    "to_bytes",
]


class _CachingHeaderRegistry(HeaderRegistry):
    """HeaderRegistry that builds each header class once instead of on every lookup."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls


_HEADER_FACTORY = _CachingHeaderRegistry()
_LINESEP_SPLITTER = re.compile(r"\n|\r")


@lru_cache(maxsize=4096)
def _parse_header(name: str, value: str) -> BaseHeader:
    """Parse a raw header value once; header objects are immutable, so sharing them is safe."""
    return _HEADER_FACTORY(name, value)


class _FastSmtpPolicy(EmailPolicy):
    """email.policy.SMTP whose header lookups reuse parsed values (the generator re-reads them often)."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name"):
            return value
        return _parse_header(name, "".join(_LINESEP_SPLITTER.split(value)))


_P = TypeVar("_P", bound=MIMEPart)

# Built once: build_message and to_bytes are on a hot path (thousands of messages per run).
# refold_source="none": our raw header values are pre-folded, and the stdlib refolder would split a
# display name into several encoded words, which Python's own parser then reads back with extra spaces.
_POLICY = _FastSmtpPolicy(linesep="\r\n", header_factory=_HEADER_FACTORY, refold_source="none")
_WIRE_POLICIES = {
    (utf8, cte_type): _POLICY.clone(utf8=utf8, cte_type=cte_type)
    for utf8 in (False, True)
    for cte_type in ("7bit", "8bit")
}
_LANGUAGES = frozenset({"fi", "sv", "en"})
_MESSAGE_ID_HEX_CHARS = 32  # 128 bits of the SHA-256 digest
_UNSAFE_HEADER_CHARS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_UNSAFE_FILENAME_CHARS = re.compile(r'["\\]')
_TEXT_TYPES = {
    "plain": 'text/plain; charset="utf-8"',
    "html": 'text/html; charset="utf-8"',
}
_CALENDAR_TYPE = "text/calendar; method=PUBLISH; charset=utf-8"
_UTF8 = "utf-8"
_ASCII = "us-ascii"
_MAX_LINE = 78  # RFC 5322 recommended header line length


@dataclass(frozen=True)
class MailSpec:
    """Everything needed to render one outgoing e-mail; pure data, no I/O."""

    sender: str
    to: list[str]
    subject: str
    text: str
    html: str
    message_key: str
    list_id: str
    domain: str
    ics: bytes | None = None
    ics_filename: str = "deadline.ics"
    cc: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    lang: str = "fi"
    date: datetime | None = None  # None -> now; naive values are taken as UTC


def message_id(key: str, domain: str) -> str:
    """Return a deterministic RFC 5322 Message-ID for a logical message key."""
    return f"<{_digest(key)[:_MESSAGE_ID_HEX_CHARS]}@{domain}>"


def _digest(key: str) -> str:
    """Hex SHA-256 of a message key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def build_message(spec: MailSpec) -> EmailMessage:
    """Render a MailSpec into multipart/alternative (multipart/mixed when an .ics is attached)."""
    _validate(spec)
    digest = _digest(spec.message_key)
    msg = EmailMessage(policy=_POLICY)
    _set_headers(msg, spec, digest)
    bodies = (_text_part(spec.text, "plain"), _text_part(spec.html, "html"))
    if spec.ics is None:
        _make_multipart(msg, "alternative", digest, bodies)
    else:
        alternative = _make_multipart(MIMEPart(policy=_POLICY), "alternative", digest, bodies)
        _make_multipart(msg, "mixed", digest, (alternative, _calendar_part(spec.ics, spec.ics_filename)))
    return msg


def _validate(spec: MailSpec) -> None:
    """Reject specs that would produce an undeliverable or header-injected message."""
    if not spec.to:
        raise ValueError("MailSpec.to must name at least one recipient")
    if spec.lang not in _LANGUAGES:
        raise ValueError(f"unsupported language {spec.lang!r}; expected one of {sorted(_LANGUAGES)}")
    if not (spec.domain.isascii() and spec.list_id.isascii()):
        raise ValueError("domain and list_id must be ASCII (use the IDNA form)")
    values = [spec.sender, spec.subject, spec.list_id, spec.domain, spec.ics_filename]
    values += spec.to + spec.cc + list(spec.headers) + list(spec.headers.values())
    for value in values:
        if _UNSAFE_HEADER_CHARS.search(value):
            raise ValueError(f"control character in header value {value!r}")
    if _UNSAFE_FILENAME_CHARS.search(spec.ics_filename):
        raise ValueError(f"unsafe attachment file name {spec.ics_filename!r}")


def _value(name: str, value: str) -> tuple[str, str, bool]:
    """A header: short ASCII values verbatim (fast path), others via the header registry."""
    return name, value, value.isascii() and len(name) + 2 + len(value) <= _MAX_LINE


def _put(part: MIMEPart, name: str, value: str) -> None:
    """Set a header as `_value` decides."""
    if _value(name, value)[2]:
        part.set_raw(name, value)
    else:
        part[name] = value


def _text_value(name: str, value: str) -> str:
    """An unstructured header value, pre-folded; non-ASCII text becomes RFC 2047 encoded words."""
    plain = value.isascii() and "=?" not in value  # "=?" would be read back as an encoded word
    if plain and len(name) + 2 + len(value) <= _MAX_LINE:
        return value
    if plain:
        return Header(value, _ASCII, header_name=name).encode(splitchars=" ")
    return _encoded_words(name, value)


_WORD_CHARS = 75 - len("=?utf-8?b??=")  # RFC 2047: an encoded word is at most 75 characters


def _encoded_words(name: str, value: str) -> str:
    """UTF-8 text as base64 encoded words, whole characters in each, folded within 78 characters a line.

    Written by hand: the stdlib's Header.encode for UTF-8 measures the quoted-printable and base64 forms of every
    prefix of the text, which made a Finnish subject cost ~0.2 ms, a sixth of the CPU of delivering a message.
    """
    data = value.encode("utf-8")
    words: list[str] = []
    start = 0
    room = max(4, min(_WORD_CHARS, _MAX_LINE - len(name) - 2 - 12))  # the first word shares its line with the name
    while start < len(data):
        end = min(start + room // 4 * 3, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # never cut a character in two
            end -= 1
        words.append(f"=?utf-8?b?{base64.b64encode(data[start:end]).decode('ascii')}?=")
        start, room = end, _WORD_CHARS
    return "\n ".join(words)


def _addresses(name: str, addresses: list[str]) -> tuple[str, str, bool]:
    """An address-list header, pre-folded, with RFC 2047-encoded non-ASCII display names."""
    encoded = [_encode_address(address) for address in addresses]
    if all(item is not None for item in encoded):
        return name, _fold_list(name, [item for item in encoded if item is not None]), True
    return name, ", ".join(addresses), False  # unusual input: let the full RFC 5322 parser handle it


def _fold_list(name: str, items: list[str]) -> str:
    """Join with ", ", starting a continuation line whenever the current one would pass 78 chars.

    An item is never split, so one with a very long display name may exceed 78 (RFC 5322 allows 998).
    """
    lines = [items[0]]
    width = len(name) + 2 + len(items[0])
    for item in items[1:]:
        if width + 2 + len(item) < _MAX_LINE:
            lines[-1] += f", {item}"
            width += 2 + len(item)
        else:
            lines[-1] += ","
            lines.append(f" {item}")
            width = 1 + len(item)
    return "\n".join(lines)


@lru_cache(maxsize=4096)  # the same people are written to again and again
def _encode_address(address: str) -> str | None:
    """'Name <addr>' as ASCII, or None when the compact path cannot represent it faithfully."""
    if address.isascii():
        return address
    display_name, addr_spec = parseaddr(address)
    if not addr_spec or not addr_spec.isascii():
        return None
    return formataddr((display_name, addr_spec), charset=_UTF8)


def _header_list(spec: MailSpec, digest: str) -> list[tuple[str, str, bool]]:
    """The fixed header set, then the caller's extra headers (which replace same-named ones), in order.

    Each is (name, value, raw): a raw value is pre-folded ASCII, set verbatim; the others go through the header
    registry (build_message) and keep a message off the direct serialiser (build_wire).
    """
    headers = [
        _addresses("From", [spec.sender]),
        _addresses("To", spec.to),
        *([_addresses("Cc", spec.cc)] if spec.cc else []),
        ("Subject", _text_value("Subject", spec.subject), True),
        _value("Message-ID", f"<{digest[:_MESSAGE_ID_HEX_CHARS]}@{spec.domain}>"),
        _value("Date", format_datetime(as_utc(spec.date or datetime.now(UTC)))),
        _value("List-Id", f"<{spec.list_id}>"),
        _value("Content-Language", spec.lang),
        _value("Auto-Submitted", "auto-generated"),
        _value("X-Auto-Response-Suppress", "All"),
        _value("MIME-Version", "1.0"),
    ]
    for name, value in spec.headers.items():
        headers = [h for h in headers if h[0].lower() != name.lower()]
        headers.append(_value(name, value))
    return headers


def _set_headers(msg: EmailMessage, spec: MailSpec, digest: str) -> None:
    """Assign the header set of `_header_list`."""
    for name, value, raw in _header_list(spec, digest):
        if raw:
            msg.set_raw(name, value)
        else:
            msg[name] = value


def _make_multipart(part: _P, subtype: str, digest: str, children: tuple[MIMEPart, ...]) -> _P:
    """Turn `part` into a multipart container with a boundary that cannot occur in QP/base64 bodies."""
    # "=_" never appears at a line start in quoted-printable or base64 output, so no collision check.
    _put(part, "Content-Type", f'multipart/{subtype}; boundary="=_{subtype[0]}{digest[:24]}"')
    for child in children:
        # The stdlib has one attach, Message's, taking any part; typeshed narrows MIMEPart.attach to Self.
        Message.attach(part, child)
    return part


def _text_part(body: str, subtype: str) -> MIMEPart:
    """A UTF-8, quoted-printable text part (7-bit clean: no reliance on 8BITMIME)."""
    part = MIMEPart(policy=_POLICY)
    part.set_raw("Content-Type", _TEXT_TYPES[subtype])
    part.set_raw("Content-Transfer-Encoding", "quoted-printable")
    part.set_payload(binascii.b2a_qp(body.encode("utf-8"), istext=True).decode("ascii"))
    return part


def _calendar_part(ics: bytes, filename: str) -> MIMEPart:
    """The iCalendar attachment, base64 encoded (keeps CRLF line ends byte-exact)."""
    part = MIMEPart(policy=_POLICY)
    part.set_raw("Content-Type", _CALENDAR_TYPE)
    part.set_raw("Content-Transfer-Encoding", "base64")
    if filename.isascii():
        part.set_raw("Content-Disposition", f'attachment; filename="{filename}"')
    else:
        part.add_header("Content-Disposition", "attachment", filename=filename)
    part.set_payload(base64.encodebytes(ics).decode("ascii"))
    return part


@dataclass(frozen=True)
class WireMessage:
    """A message serialised once for SMTP DATA (ASCII, CRLF line ends, no Bcc) with its address headers."""

    sender: str  # the From header's address, as given
    recipients: tuple[str, ...]  # To and Cc, as given
    data: bytes


_NO_WIRE_HEADERS = frozenset({"from", "sender", "to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc"})
_NEWLINES = re.compile(r"\r\n|\r|\n")


def build_wire(spec: MailSpec) -> WireMessage | None:
    """The bytes `to_bytes(build_message(spec))` gives, written directly; None when only the email package can.

    Only for messages whose every header is pre-folded ASCII (ASCII addresses, ASCII attachment name, no extra
    address headers): then the bytes are the same whatever the server offers (7bit or 8BITMIME, SMTPUTF8 or not),
    so one build serves every connection and every retry. Written by hand because the email package's
    EmailMessage + BytesGenerator round trip was a third of the CPU of delivering a message, for a structure that
    is always the same; `tests/notifications/test_mime.py` holds its output byte for byte to the generator's.
    """
    _validate(spec)
    if _NO_WIRE_HEADERS & {name.lower() for name in spec.headers} or not spec.ics_filename.isascii():
        return None
    digest = _digest(spec.message_key)
    headers = _header_list(spec, digest)
    if not all(raw for _, _, raw in headers):
        return None
    alternative = _multipart("alternative", digest, [
        _leaf(_TEXT_TYPES["plain"], "quoted-printable", _qp(spec.text)),
        _leaf(_TEXT_TYPES["html"], "quoted-printable", _qp(spec.html)),
    ])
    if spec.ics is None:
        body = alternative
    else:
        calendar = _leaf(_CALENDAR_TYPE, "base64", base64.encodebytes(spec.ics).decode("ascii"),
                         f'attachment; filename="{spec.ics_filename}"')
        body = _multipart("mixed", digest, [alternative, calendar])
    head = "".join(_header_line(name, value) for name, value, _ in headers)
    return WireMessage(sender=spec.sender, recipients=(*spec.to, *spec.cc), data=(head + body).encode("ascii"))


def _header_line(name: str, value: str) -> str:
    """One header as the generator writes a raw value: its lines joined by CRLF."""
    return f"{name}: " + "\r\n".join(value.splitlines()) + "\r\n"


def _qp(text: str) -> str:
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii")


def _leaf(content_type: str, encoding: str, payload: str, disposition: str | None = None) -> str:
    """A non-multipart part: headers, a blank line, the payload with CRLF line ends."""
    head = f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: {encoding}\r\n"
    if disposition is not None:
        head += f"Content-Disposition: {disposition}\r\n"
    return head + "\r\n" + _NEWLINES.sub("\r\n", payload)


def _multipart(subtype: str, digest: str, children: list[str]) -> str:
    """A multipart part as BytesGenerator writes it (no preamble or epilogue)."""
    boundary = f"=_{subtype[0]}{digest[:24]}"
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'
    inner = f"\r\n--{boundary}\r\n".join(children)
    return f"{head}--{boundary}\r\n{inner}\r\n--{boundary}--\r\n"


def to_bytes(message: EmailMessage, *, utf8: bool = False, cte_type: Literal["7bit", "8bit"] = "8bit") -> bytes:
    """Serialise a message for SMTP DATA: CRLF line ends, Bcc/Resent-Bcc stripped."""
    if "Bcc" in message or "Resent-Bcc" in message:
        message = copy.copy(message)  # Message.__delitem__ rebinds the header list: the original keeps it
        del message["Bcc"]
        del message["Resent-Bcc"]
    buffer = io.BytesIO()
    BytesGenerator(buffer, mangle_from_=False, policy=_WIRE_POLICIES[(utf8, cte_type)]).flatten(message)
    return buffer.getvalue()
