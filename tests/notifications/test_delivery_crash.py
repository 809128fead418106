"""kill -9 of the delivering process in the middle of a batch: every message arrives, duplicates only in the window.

The outbox holds 600 messages (fi, sv and en). A real service process (its scheduler's leader delivers over the
pooled connections, recording `sent` by group commit) sends them to a real aiosmtpd server. Three times the server,
having stored message number K, holds back its reply to DATA and the test kills the service with SIGKILL right
then: that message is accepted but can never be recorded as sent, and the other connections are in the middle of
their own exchanges and commits. A new service is started after each kill. What must hold in the end:
- every message arrived, each with its own stable Message-ID, in the recipient's language, nothing foreign;
- a message arrived twice only if its first copy was the last message of an SMTP session the killed process
  never closed (QUIT), i.e. the server accepted it and the process died before the commit of `sent`;
- per kill at most one such message per pooled connection (`Delivery.connections`), so at most
  kills x connections duplicates; the held-back messages are among them, each exactly twice;
- a copy sent again is byte for byte the first copy (built from the same row: a receiver deduplicates by
  Message-ID).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select
from sqlmodel import Session

from engine.models import OutboxMessage
from engine.settings import Settings
from notifications.mime import message_id
from tests.support.service_process import ServiceProcess
from tests.support.smtp_server import RecordingHandler, SmtpTestServer
from tests.support.waiting import wait_until, wait_while_progressing

MESSAGES = 600
HOLD_AT = (90, 260, 430)  # the server holds back its reply to these accepted messages, and the service is killed
CONNECTIONS = Settings.model_fields["smtp_connections"].default  # what the service's Delivery uses
STALL_LIMIT = 60.0  # sending may go slowly on a loaded machine but never stands still this long
DOMAIN = "vuosikello.local"  # the service's default mail domain
SUBJECTS = {"fi": "Muistutus: määräaika lähestyy", "sv": "Påminnelse: tidsfristen närmar sig",
            "en": "Reminder: the deadline is near"}


class HoldingHandler(RecordingHandler):
    """Records sessions that said QUIT; after storing message number K in HOLD_AT, holds back the 250 reply."""

    def __init__(self) -> None:
        super().__init__()
        self.quit_sessions: set[int] = set()
        self.held = threading.Event()
        self.held_ids: list[str] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        reply = await super().handle_DATA(server, session, envelope)
        with self._lock:
            count = len(self._messages)
            last = self._messages[-1].message["Message-ID"]
        if count in HOLD_AT:
            self.held_ids.append(last)
            self.held.set()
            await asyncio.sleep(5)  # the client is killed meanwhile: it never reads this reply
        return reply

    async def handle_QUIT(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        with self._lock:
            if id(session) in self._sessions:
                self.quit_sessions.add(self._sessions[id(session)][1])
        return "221 Bye"


def _queue(ctx) -> dict[str, str]:
    """Insert MESSAGES pending outbox rows; return Message-ID -> language."""
    now = datetime.now(UTC)
    rows = []
    for i in range(MESSAGES):
        lang = ("fi", "sv", "en")[i % 3]
        key = f"crash-batch:{i}"
        rows.append(dict(template="party_reminder", language=lang, to_address=f"henkilo{i % 40}@kunta.example",
                         cc=[], subject=f"{SUBJECTS[lang]} ({i})", text=f"{SUBJECTS[lang]}\n{i}\n",
                         html=f"<p>{SUBJECTS[lang]}</p><p>{i}</p>", ics=None, message_id=message_id(key, DOMAIN),
                         list_id=f"case-{i % 7}.{DOMAIN}", dedupe_key=key, status="pending", attempts=0,
                         next_attempt_at=now, refused={}, created_at=now))
    with ctx.db.write_engine.begin() as conn:
        conn.execute(insert(OutboxMessage.__table__), rows)  # type: ignore[attr-defined]
    return {r["message_id"]: r["language"] for r in rows}


def _statuses(db) -> Counter[str]:
    with Session(db.engine) as s:
        return Counter(s.execute(select(OutboxMessage.status)).scalars().all())


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_kill_9_in_the_middle_of_a_batch_loses_nothing_and_doubles_only_the_window(ctx, tmp_path) -> None:
    started = time.monotonic()
    languages = _queue(ctx)
    handler = HoldingHandler()
    at_kill: list[tuple[int, dict[str, int]]] = []
    with SmtpTestServer(handler) as smtp:
        env = {"VUOSIKELLO_DATABASE_URL": ctx.db.url, "VUOSIKELLO_ENVIRONMENT": "test",
               "VUOSIKELLO_SMTP_HOST": smtp.hostname, "VUOSIKELLO_SMTP_PORT": str(smtp.port),
               "VUOSIKELLO_SCHEDULER_INTERVAL_SECONDS": "0.2", "VUOSIKELLO_BASE_URL": "http://testserver"}
        log = tmp_path / "service.log"
        service = ServiceProcess.start(env, log)
        try:
            for hold in HOLD_AT:
                wait_until(handler.held.is_set, within=STALL_LIMIT * 3, poll=0.005,
                           what=f"message {hold} reached the server (service {service.pid})",
                           seen=lambda: f"{len(smtp.messages)} received, {_statuses(ctx.db)}\n{service.log_tail()}")
                service.kill9()
                handler.held.clear()
                at_kill.append((len(smtp.messages), dict(_statuses(ctx.db))))
                service = ServiceProcess.start(env, log)
            wait_while_progressing(lambda: _statuses(ctx.db), lambda c: c == {"sent": MESSAGES}, stall=STALL_LIMIT,
                                   what=f"every message sent after {len(HOLD_AT)} kills ({at_kill})",
                                   seen=service.log_tail)
            assert service.terminate() == 0, service.log_tail()
        finally:
            service.stop()
        received = smtp.messages
    about = f"(received, outbox statuses) at each kill: {at_kill}"

    # each kill fell in the middle of a batch: some rows sent, some claimed (`sending`) and in flight
    for _, statuses in at_kill:
        assert statuses.get("sending", 0) > 0 and 0 < statuses.get("sent", 0) < MESSAGES, about
    # nothing lost, nothing foreign; each message in its recipient's language
    counts = Counter(m.message["Message-ID"] for m in received)
    assert set(counts) == set(languages), about
    for m in received:
        lang = languages[m.message["Message-ID"]]
        assert m.message["Content-Language"] == lang and m.message["Subject"].startswith(SUBJECTS[lang]), about
    # duplicates only in the window: the first copy is the last message of a session that never said QUIT
    cut = {m.session for m in received} - handler.quit_sessions
    last_of_session: dict[int, str] = {}
    for m in received:
        last_of_session[m.session] = m.message["Message-ID"]
    duplicates = {mid: n - 1 for mid, n in counts.items() if n > 1}
    for mid in duplicates:
        copies = [m for m in received if m.message["Message-ID"] == mid]
        for early in copies[:-1]:
            assert early.session in cut and last_of_session[early.session] == mid, (mid, about)
        assert len({m.raw for m in copies}) == 1, (mid, about)  # the same bytes every time
    assert all(counts[mid] == 2 for mid in handler.held_ids), (handler.held_ids, counts, about)
    assert sum(duplicates.values()) <= len(HOLD_AT) * CONNECTIONS, (duplicates, about)
    assert len(cut) <= len(HOLD_AT) * CONNECTIONS, (cut, about)
    print(f"\nbatch crash test: {len(HOLD_AT)} kills, {about}; duplicates {sum(duplicates.values())} "
          f"(held back {len(handler.held_ids)}), cut sessions {len(cut)}; {time.monotonic() - started:.1f} s")
