"""Owns SMTP delivery: one reused aiosmtplib connection, failure classification and retry backoff."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from functools import lru_cache
from types import TracebackType
from typing import Self

import aiosmtplib
from aiosmtplib.email import extract_recipients, extract_sender, parse_address

from notifications.mime import WireMessage, to_bytes

__all__ = [
    "RETRY_WINDOW",
    "DeliveryError",
    "DeliveryResult",
    "Outgoing",
    "PermanentDeliveryError",
    "SmtpConfig",
    "SmtpSender",
    "TemporaryDeliveryError",
    "backoff_delay",
]

RETRY_WINDOW = timedelta(hours=24)
Outgoing = EmailMessage | WireMessage  # a message to build per connection, or one serialised once
BeforeData = Callable[[], Awaitable[None]]
_SERVICE_CLOSING = 421  # RFC 5321: the server is closing the transmission channel


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to reach the outgoing SMTP relay."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    use_tls: bool = False  # implicit TLS (SMTPS, usually port 465)
    start_tls: bool = False  # require STARTTLS; False never upgrades, even if offered
    timeout: float = 10.0
    validate_certs: bool = True
    local_hostname: str | None = None  # EHLO name; None -> socket.getfqdn()
    connections: int = 4  # sessions the outbox delivery opens side by side (SmtpSender itself is one)

    def __post_init__(self) -> None:
        if self.use_tls and self.start_tls:
            raise ValueError("use_tls (implicit TLS) and start_tls are mutually exclusive")


@dataclass(frozen=True)
class DeliveryResult:
    """Outcome of a message the relay accepted for at least one recipient."""

    accepted: list[str]
    refused: dict[str, str] = field(default_factory=dict)  # recipient -> "550 5.1.1 ..." reply
    response: str = ""  # the relay's reply to DATA (often carries its queue id)

    @property
    def temporarily_refused(self) -> list[str]:
        """Refused recipients whose 4xx reply means a later retry may succeed."""
        return [rcpt for rcpt, reply in self.refused.items() if reply.startswith("4")]


class DeliveryError(Exception):
    """A message was not delivered; `code` is the SMTP reply code when the server gave one."""

    def __init__(self, message: str, *, code: int | None = None, refused: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.refused: dict[str, str] = dict(refused or {})


class TemporaryDeliveryError(DeliveryError):
    """Delivery may succeed later: connection problems, timeouts, 4xx replies."""


class PermanentDeliveryError(DeliveryError):
    """Retrying the same message will not help: 5xx for the whole message or every recipient."""


def backoff_delay(
    attempt: int,
    *,
    base: float = 30.0,
    cap: float = 3600.0,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number `attempt` (0-based): exponential backoff, full jitter."""
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    ceiling = cap if attempt >= 64 else min(cap, base * 2.0**attempt)  # 2**64 * base always > cap
    return rng() * ceiling


def _reply(code: int, text: str) -> str:
    """Format an SMTP reply as one line: '550 5.1.1 User unknown'."""
    return f"{code} {' '.join(text.split())}"


def _by_code(code: int, text: str, *, what: str) -> DeliveryError:
    """4xx -> temporary, 5xx -> permanent; anything else is unexpected and treated as temporary."""
    message = f"{what}: {_reply(code, text)}"
    if 500 <= code < 600:
        return PermanentDeliveryError(message, code=code)
    return TemporaryDeliveryError(message, code=code)


def _all_refused(refused: dict[str, tuple[int, str]]) -> DeliveryError:
    """Every recipient was refused: temporary if any refusal was 4xx, else permanent."""
    replies = {rcpt: _reply(code, text) for rcpt, (code, text) in refused.items()}
    message = "all recipients refused: " + "; ".join(f"{r}: {t}" for r, t in replies.items())
    temporary = [code for code, _ in refused.values() if not 500 <= code < 600]
    if temporary:
        return TemporaryDeliveryError(message, code=temporary[0], refused=replies)
    first_code = next(iter(refused.values()))[0]
    return PermanentDeliveryError(message, code=first_code, refused=replies)


def _classify(exc: Exception) -> DeliveryError:
    """Map an aiosmtplib/socket exception raised during a mail transaction to our error classes."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return _all_refused({err.recipient: (err.code, err.message) for err in exc.recipients})
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return _by_code(exc.code, exc.message, what="MAIL FROM refused")
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return _by_code(exc.code, exc.message, what="message refused")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _by_code(exc.code, exc.message, what="SMTP error")
    if isinstance(exc, aiosmtplib.SMTPNotSupported | ValueError):
        return PermanentDeliveryError(f"message cannot be sent: {exc}")
    return TemporaryDeliveryError(f"{type(exc).__name__}: {exc}")


def _connect_failure(exc: Exception) -> TemporaryDeliveryError:
    """Session set-up failures (connect, greeting, EHLO, TLS, AUTH) are about the relay, not the message."""
    code = exc.code if isinstance(exc, aiosmtplib.SMTPResponseException) else None
    text = exc.message if isinstance(exc, aiosmtplib.SMTPException) else str(exc)
    return TemporaryDeliveryError(f"cannot open SMTP session ({type(exc).__name__}): {text}", code=code)


def _is_stale(exc: Exception) -> bool:
    """True when MAIL FROM failed because a reused connection had already been closed by the server."""
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return True
    return isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code == _SERVICE_CLOSING


def _envelope(message: Outgoing) -> tuple[str, list[str]]:
    """Envelope sender and recipients (To, Cc, Bcc) from the headers, de-duplicated in order."""
    sender: str | None
    try:
        if isinstance(message, WireMessage):
            sender = _address(message.sender)
            recipients = list(dict.fromkeys(_address(r) for r in message.recipients))
        else:
            sender = extract_sender(message)
            recipients = list(dict.fromkeys(parse_address(r) for r in extract_recipients(message)))
    except ValueError as exc:
        raise PermanentDeliveryError(f"invalid address: {exc}") from exc
    if not sender:
        raise PermanentDeliveryError("message has no From/Sender header")
    if not recipients:
        raise PermanentDeliveryError("message has no To/Cc/Bcc recipients")
    return sender, recipients


@lru_cache(maxsize=4096)  # the same people are written to again and again
def _address(header_value: str) -> str:
    """The addr-spec of one address as written in a header ('Name <a@b>' -> 'a@b'); ValueError if unsafe."""
    return parse_address(header_value)


class SmtpSender:
    """Sends messages over one lazily opened, reused SMTP connection (reopened when it drops)."""

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config
        self._smtp: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()
        self._connections_opened = 0

    @property
    def connections_opened(self) -> int:
        """How many SMTP sessions this sender has opened so far."""
        return self._connections_opened

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def send(self, message: Outgoing, *, before_data: BeforeData | None = None) -> DeliveryResult:
        """Deliver one message; raises TemporaryDeliveryError or PermanentDeliveryError.

        `before_data` is awaited after the recipients were accepted and before DATA, while nothing is delivered
        yet: the outbox waits there for the commit of its previous message. If it raises, the connection is
        dropped without DATA (the server discards the envelope) and the exception propagates.
        """
        sender, recipients = _envelope(message)
        async with self._lock:
            try:
                return await self._send_locked(message, sender, recipients, before_data)
            except DeliveryError:
                raise
            except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
                self._discard_if_broken()
                raise _classify(exc) from exc
            except BaseException:  # cancellation, a bug or before_data refusing: the session state is unknown
                self._discard()
                raise

    async def close(self) -> None:
        """Say QUIT (best effort) and close the connection."""
        async with self._lock:
            smtp, self._smtp = self._smtp, None
            if smtp is None:
                return
            try:
                if smtp.is_connected:
                    await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                pass  # the server went away first; nothing left to tell it
            finally:
                smtp.close()

    async def _send_locked(
        self, message: Outgoing, sender: str, recipients: list[str], before_data: BeforeData | None
    ) -> DeliveryResult:
        """One mail transaction, transparently retried once if a reused connection turns out stale."""
        smtp, reused = await self._connection()
        try:
            payload = await self._mail_from(smtp, message, sender, recipients)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPResponseException) as exc:
            if not (reused and _is_stale(exc)):
                raise
            self._discard()  # nothing was transmitted yet, so resending cannot duplicate
            smtp, _ = await self._connection()
            payload = await self._mail_from(smtp, message, sender, recipients)
        accepted, refused = await self._rcpt_to(smtp, recipients)
        if before_data is not None:
            await before_data()
        response = await self._data(smtp, payload)
        replies = {rcpt: _reply(code, text) for rcpt, (code, text) in refused.items()}
        return DeliveryResult(accepted=accepted, refused=replies, response=response)

    async def _connection(self) -> tuple[aiosmtplib.SMTP, bool]:
        """The live connection and whether it was reused; opens a new one when needed."""
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp, True
        self._discard()
        self._smtp = await self._open()
        self._connections_opened += 1
        return self._smtp, False

    async def _open(self) -> aiosmtplib.SMTP:
        """Connect (TLS/STARTTLS/AUTH per config) and greet with EHLO, falling back to HELO."""
        cfg = self._config
        smtp = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            username=cfg.username,
            password=cfg.password,
            local_hostname=cfg.local_hostname,
            use_tls=cfg.use_tls,
            start_tls=cfg.start_tls,  # explicit: aiosmtplib's default (None) upgrades opportunistically
            validate_certs=cfg.validate_certs,
            timeout=cfg.timeout,
        )
        try:
            await smtp.connect()
            await _greet(smtp)
        except (aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            raise _connect_failure(exc) from exc
        except BaseException:
            smtp.close()
            raise
        return smtp

    async def _mail_from(
        self, smtp: aiosmtplib.SMTP, message: Outgoing, sender: str, recipients: list[str]
    ) -> bytes:
        """Serialise for this server's extensions and send MAIL FROM; returns the DATA payload."""
        utf8 = not (sender.isascii() and all(r.isascii() for r in recipients))
        if utf8 and not smtp.supports_extension("smtputf8"):
            raise aiosmtplib.SMTPNotSupported("non-ASCII address, but the server lacks SMTPUTF8")
        eight_bit = smtp.supports_extension("8bitmime")
        if isinstance(message, WireMessage):
            payload = message.data  # ASCII with pre-encoded headers: the same bytes for every server
        else:
            payload = to_bytes(message, utf8=utf8, cte_type="8bit" if eight_bit else "7bit")
        options = [f"SIZE={len(payload)}"] if smtp.supports_extension("size") else []
        if eight_bit and not payload.isascii():
            options.append("BODY=8BITMIME")
        if utf8:
            options.append("SMTPUTF8")
        try:
            await smtp.mail(sender, options=options, encoding="utf-8" if utf8 else "ascii")
        except aiosmtplib.SMTPResponseException as exc:
            await self._after_refusal(smtp, exc.code)
            raise
        return payload

    async def _rcpt_to(
        self, smtp: aiosmtplib.SMTP, recipients: list[str]
    ) -> tuple[list[str], dict[str, tuple[int, str]]]:
        """RCPT TO for each recipient; raises when none was accepted."""
        encoding = "ascii" if all(r.isascii() for r in recipients) else "utf-8"
        accepted: list[str] = []
        refused: dict[str, tuple[int, str]] = {}
        for rcpt in recipients:
            try:
                await smtp.rcpt(rcpt, encoding=encoding)
                accepted.append(rcpt)
            except aiosmtplib.SMTPRecipientRefused as exc:
                if exc.code == _SERVICE_CLOSING:
                    self._discard()
                    raise _by_code(exc.code, exc.message, what="server closed the session at RCPT") from exc
                refused[rcpt] = (exc.code, exc.message)
        if not accepted:
            await self._after_refusal(smtp, None)
            raise _all_refused(refused)
        return accepted, refused

    async def _data(self, smtp: aiosmtplib.SMTP, payload: bytes) -> str:
        """DATA (aiosmtplib dot-stuffs and normalises line endings); returns the server's reply."""
        try:
            response = await smtp.data(payload)
        except aiosmtplib.SMTPResponseException as exc:
            await self._after_refusal(smtp, exc.code)
            raise
        return response.message

    async def _after_refusal(self, smtp: aiosmtplib.SMTP, code: int | None) -> None:
        """Keep the session usable after a refusal: drop it on 421, otherwise RSET the envelope."""
        if code == _SERVICE_CLOSING or not smtp.is_connected:
            self._discard()
            return
        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            self._discard()

    def _discard_if_broken(self) -> None:
        """Forget the connection if aiosmtplib already closed it (timeouts, disconnects)."""
        if self._smtp is not None and not self._smtp.is_connected:
            self._discard()

    def _discard(self) -> None:
        """Close the transport without QUIT and forget it."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()


async def _greet(smtp: aiosmtplib.SMTP) -> None:
    """EHLO unless connect() already did (STARTTLS/AUTH); HELO for servers without ESMTP."""
    if not smtp.is_ehlo_or_helo_needed:
        return
    try:
        await smtp.ehlo()
    except aiosmtplib.SMTPHeloError:
        await smtp.helo()
