"""A real aiosmtpd SMTP server for tests: records every envelope and injects failures on demand."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from types import TracebackType
from typing import Literal, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

Stage = Literal["MAIL", "DATA"]

_DEFAULT_TEXT = {4: "4.3.0 Temporary failure, try again later", 5: "5.7.1 Message rejected"}
_DEFAULT_RCPT_TEXT = {4: "4.2.0 Mailbox temporarily unavailable", 5: "5.1.1 Mailbox unavailable"}
_SERVICE_CLOSING = 421
_SERVER_NAME = "smtp.test.invalid"  # explicit: aiosmtpd otherwise calls socket.getfqdn() per connection
_SHUTDOWN_TIMEOUT = 5.0


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the server accepted (after DATA was answered with 250)."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage
    session: int  # 1-based number of the SMTP session it arrived on


@dataclass(frozen=True)
class _Failure:
    code: int
    text: str

    @property
    def reply(self) -> str:
        """The SMTP reply line."""
        return f"{self.code} {self.text}"


class RecordingHandler:
    """aiosmtpd handler that stores received mail (thread-safe) and answers with injected failures.

    aiosmtpd discovers hooks by the ``handle_`` prefix, so helpers here must not use it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[ReceivedMessage] = []
        self._failures: dict[Stage, deque[_Failure]] = {"MAIL": deque(), "DATA": deque()}
        self._refusals: dict[str, _Failure] = {}
        self._sessions: dict[int, tuple[Session, int]] = {}  # id -> (session kept alive, number)

    # -- test-facing API ---------------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A snapshot of the accepted messages, oldest first."""
        with self._lock:
            return list(self._messages)

    @property
    def session_count(self) -> int:
        """How many SMTP sessions greeted the server with EHLO/HELO."""
        with self._lock:
            return len(self._sessions)

    def fail_next(self, code: int, text: str | None = None, *, times: int = 1, stage: Stage = "DATA") -> None:
        """Answer the next `times` MAIL or end-of-DATA commands with `code`; 421 also drops the session."""
        failure = _Failure(code, text if text is not None else _DEFAULT_TEXT.get(code // 100, "Failure"))
        with self._lock:
            self._failures[stage].extend([failure] * times)

    def refuse_recipient(self, addr: str, code: int = 550, text: str | None = None) -> None:
        """Answer RCPT TO:<addr> with `code` (until clear())."""
        reply = text if text is not None else _DEFAULT_RCPT_TEXT.get(code // 100, "Failure")
        with self._lock:
            self._refusals[addr.lower()] = _Failure(code, reply)

    def clear(self) -> None:
        """Forget received messages, sessions, pending failures and refusals."""
        with self._lock:
            self._messages.clear()
            self._sessions.clear()
            self._refusals.clear()
            for queue in self._failures.values():
                queue.clear()

    # -- aiosmtpd hooks (run on the server thread) --------------------------------------------

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # aiosmtpd leaves this to the hook once a hook exists
        self._note_session(session)
        return responses

    async def handle_HELO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str) -> str:
        session.host_name = hostname
        self._note_session(session)
        return f"250 {server.hostname}"

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        failure = self._pop_failure("MAIL")
        if failure is not None:
            return _reply_and_maybe_close(server, failure)
        envelope.mail_from = address  # with a hook present aiosmtpd does not record it itself
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        with self._lock:
            refusal = self._refusals.get(address.lower())
        if refusal is not None:
            return refusal.reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        failure = self._pop_failure("DATA")
        if failure is not None:
            return _reply_and_maybe_close(server, failure)
        raw = envelope.original_content or b""
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            number = self._sessions[id(session)][1] if id(session) in self._sessions else 0
            self._messages.append(
                ReceivedMessage(str(envelope.mail_from), list(envelope.rcpt_tos), raw, parsed, number)
            )
            queued = len(self._messages)
        return f"250 2.0.0 OK queued as {queued}"

    # -- helpers -------------------------------------------------------------------------------

    def _note_session(self, session: Session) -> None:
        with self._lock:
            if id(session) not in self._sessions:
                self._sessions[id(session)] = (session, len(self._sessions) + 1)

    def _pop_failure(self, stage: Stage) -> _Failure | None:
        with self._lock:
            queue = self._failures[stage]
            return queue.popleft() if queue else None


def _reply_and_maybe_close(server: SMTP, failure: _Failure) -> str:
    """Return the reply; after a 421 close the session like a real server (the reply is flushed first)."""
    if failure.code == _SERVICE_CLOSING and server.transport is not None:
        asyncio.get_running_loop().call_soon(server.transport.close)
    return failure.reply


class _Controller(Controller):
    """Controller that tracks its SMTP protocols and learns the real port when asked for port 0."""

    def __init__(self, handler: RecordingHandler, hostname: str, port: int) -> None:
        super().__init__(handler, hostname=hostname, port=port, server_hostname=_SERVER_NAME)
        self.protocols: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def factory(self) -> SMTP:
        protocol = SMTP(self.handler, loop=self.loop, **self.SMTP_kwargs)
        self.protocols.add(protocol)
        return protocol

    def _trigger_server(self) -> None:
        if self.port == 0 and isinstance(self.server, asyncio.Server):
            self.port = int(self.server.sockets[0].getsockname()[1])
        super()._trigger_server()


class SmtpTestServer:
    """aiosmtpd on 127.0.0.1 in a background thread; stop() and start() again keep the same port."""

    def __init__(self, handler: RecordingHandler | None = None, hostname: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = handler if handler is not None else RecordingHandler()
        self.hostname = hostname
        self.port = port  # 0 until the first start() picks a free port
        self._controller: _Controller | None = None

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._controller is not None

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Shortcut for handler.messages."""
        return self.handler.messages

    def start(self) -> None:
        """Listen (again) on the same port; a fresh Controller each time, as its loop dies with stop()."""
        if self._controller is not None:
            raise RuntimeError("SMTP test server already running")
        controller = _Controller(self.handler, self.hostname, self.port)
        try:
            controller.start()
        except BaseException:
            if not controller.loop.is_closed():
                controller.loop.close()
            raise
        self.port = controller.port
        self._controller = controller

    def stop(self) -> None:
        """Stop listening and drop every open session (clients see the connection closed)."""
        controller, self._controller = self._controller, None
        if controller is None:
            return
        shutdown = asyncio.run_coroutine_threadsafe(_close_sessions(controller), controller.loop)
        shutdown.result(_SHUTDOWN_TIMEOUT)
        controller.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


async def _close_sessions(controller: _Controller) -> None:
    """On the server loop: stop accepting, close every session, wait for their tasks to finish.

    Controller.stop() alone cancels the session tasks and closes the loop in the same breath, which
    can leave transports unclosed (ResourceWarning under filterwarnings=error).
    """
    if controller.server is not None:
        controller.server.close()
    for protocol in list(controller.protocols):
        if protocol.transport is not None:
            protocol.transport.close()
    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    if pending:
        await asyncio.wait(pending, timeout=_SHUTDOWN_TIMEOUT)
