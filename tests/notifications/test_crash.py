"""Crashes and failures: kill -9 of the service while 1,000 reminders fall due; one broken timer in a sweep batch."""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlmodel import Session

from engine.calendar import HELSINKI
from engine.models import OutboxMessage, Timer
from tests.support.builders import make_user
from tests.support.service_process import ServiceProcess, create_probe_cases, insert_timers, write_probe_definition
from tests.support.smtp_server import RecordingHandler, SmtpTestServer
from tests.support.waiting import wait_until, wait_while_progressing

REMINDERS = 1000
CASES = 20
SPREAD = timedelta(seconds=12)  # the reminders fall due over this window after the first start
# Each step has its own bound, not the test as a whole (a total-time bound fails on a loaded machine without naming
# the slow step): a (re)started service is ready within READY_TIMEOUT (service_process.py), and its work (firing
# timers, sending mail) may go slowly but never stands still for STALL_LIMIT, longer than one batch takes even on a
# loaded machine (200 reminders: about 1 s idle, 6 s at a load of 10 on 2 cores).
STALL_LIMIT = 60.0


class QuitRecordingHandler(RecordingHandler):
    """Also records which SMTP sessions ended with QUIT (a killed client never says it)."""

    def __init__(self) -> None:
        super().__init__()
        self.quit_sessions: set[int] = set()

    async def handle_QUIT(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        with self._lock:
            if id(session) in self._sessions:
                self.quit_sessions.add(self._sessions[id(session)][1])
        return "221 Bye"


def _progress(db) -> tuple[int, int, int]:
    """Return (timers still pending, outbox rows, outbox rows not yet sent)."""
    with Session(db.engine) as s:
        pending = len(s.execute(select(Timer.id).where(Timer.status == "pending")).all())
        rows = s.execute(select(OutboxMessage.status)).scalars().all()
    return pending, len(rows), sum(1 for r in rows if r != "sent")


def _await_progress(db, phase: str, service: ServiceProcess, about: str) -> None:
    """Wait until the service fires timers (phase `sweep`) or sends mail (phase `mail`); fail if it stalls."""
    def done() -> int:
        pending, queued, unsent = _progress(db)
        return REMINDERS - pending if phase == "sweep" else queued - unsent

    before = done()
    what = "firing timers" if phase == "sweep" else "sending mail"
    wait_until(lambda: before >= REMINDERS or done() != before,  # no waiting once all is done
               within=STALL_LIMIT, poll=0.05, what=f"service {service.pid} made progress {what} ({about})",
               seen=lambda: f"(pending timers, outbox rows, unsent) {_progress(db)}\n{service.log_tail()}")


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_kill_9_while_1000_reminders_fall_due(ctx, tmp_path) -> None:
    seed = int(os.environ.get("VK_CRASH_SEED") or time.time_ns() % 1_000_000)
    rng = random.Random(seed)
    started = time.monotonic()
    definitions = write_probe_definition(tmp_path / "definitions")
    ctx.registry.load_dir(definitions)
    coordinators = [make_user(ctx, roles="coordinator", language=("fi", "sv", "en")[i % 3]).id for i in range(CASES)]
    deadline = (datetime.now(UTC) + timedelta(days=30)).astimezone(HELSINKI).date()
    cases = create_probe_cases(ctx, coordinators=coordinators, deadline=deadline, count=CASES)
    first_due = datetime.now(UTC) + timedelta(seconds=1)
    insert_timers(ctx, [dict(case_id=cases[i % CASES][0], kind="reminder", name=f"crash{i:04d}", deadline=deadline,
                             offset="-P7D", template="party_reminder", due_at=first_due + SPREAD * i / REMINDERS)
                        for i in range(REMINDERS)])
    handler = QuitRecordingHandler()
    with SmtpTestServer(handler) as smtp:
        env = {"VUOSIKELLO_DATABASE_URL": ctx.db.url, "VUOSIKELLO_ENVIRONMENT": "test",
               "VUOSIKELLO_SMTP_HOST": smtp.hostname, "VUOSIKELLO_SMTP_PORT": str(smtp.port),
               "VUOSIKELLO_SCHEDULER_INTERVAL_SECONDS": "0.2", "VUOSIKELLO_BASE_URL": "http://testserver",
               "VK_EXTRA_DEFINITIONS": str(definitions)}
        log = tmp_path / "service.log"
        kills = rng.randint(3, 5)
        # Each kill waits for the restarted service to make progress in a phase (firing timers, or sending mail,
        # where a kill can fall between the server's acceptance and the commit), then falls at a random moment.
        phases = ["sweep", "mail", *(rng.choice(["sweep", "mail"]) for _ in range(kills - 2))]
        rng.shuffle(phases)
        at_kill: list[tuple[object, ...]] = []
        service = ServiceProcess.start(env, log)
        try:
            for phase in phases:
                _await_progress(ctx.db, phase, service, f"seed {seed}, kill {len(at_kill) + 1} of {kills}")
                time.sleep(rng.uniform(0, 0.5))
                service.kill9()
                at_kill.append((phase, *_progress(ctx.db)))
                service = ServiceProcess.start(env, log)
            wait_while_progressing(lambda: _progress(ctx.db), lambda p: p == (0, REMINDERS, 0), stall=STALL_LIMIT,
                                   what=f"after {kills} kills every reminder fired and sent (seed {seed}, "
                                        f"(phase, pending timers, outbox rows, unsent) at each kill {at_kill})",
                                   seen=service.log_tail)
            assert service.terminate() == 0, service.log_tail()
        finally:
            service.stop()
        received = smtp.messages
    about = f"seed {seed}, {kills} kills, (phase, pending timers, outbox rows, unsent) at each kill: {at_kill}"

    with Session(ctx.db.engine) as s:
        timers = s.execute(select(Timer).where(Timer.name.like("crash%"))).scalars().all()  # type: ignore[attr-defined]
        outbox = s.execute(select(OutboxMessage)).scalars().all()
    assert Counter(t.status for t in timers) == {"fired": REMINDERS}, about
    assert sorted(m.timer_id for m in outbox) == sorted(t.id for t in timers), about  # one email per reminder
    assert {m.status for m in outbox} == {"sent"}, about
    expected = {m.message_id for m in outbox}
    assert len(expected) == REMINDERS, about  # one Message-ID per logical reminder

    counts = Counter(m.message["Message-ID"] for m in received)
    assert set(counts) == expected, about  # every reminder delivered, nothing foreign
    duplicates = {mid: n - 1 for mid, n in counts.items() if n > 1}
    # A duplicate is only allowed where the kill fell between the server's acceptance and the commit of `sent`:
    # its first copy is then the last message of an SMTP session that never said QUIT (the killed one). The
    # killed process had up to `connections` such sessions, each with at most one message in that window.
    cut = {m.session for m in received} - handler.quit_sessions
    last_of_session = {}
    for m in received:
        last_of_session[m.session] = m.message["Message-ID"]
    for mid in duplicates:
        first = next(m for m in received if m.message["Message-ID"] == mid)
        assert first.session in cut and last_of_session[first.session] == mid, about
    connections = ctx.delivery.connections
    assert sum(duplicates.values()) <= kills * connections, about
    assert len(cut) <= kills * connections, about
    print(f"\ncrash test: {about}; duplicates {sum(duplicates.values())}; {time.monotonic() - started:.1f} s")


def _statuses(ctx) -> dict[str, str]:
    with Session(ctx.db.engine) as s:
        return dict(s.execute(select(Timer.name, Timer.status)).all())  # type: ignore[arg-type]


def _probe(ctx, tmp_path, count: int) -> list[int]:
    ctx.registry.load_dir(write_probe_definition(tmp_path / "definitions"))
    coordinator = make_user(ctx, roles="coordinator").id
    return [c for c, _ in create_probe_cases(ctx, coordinators=[coordinator], deadline=date(2026, 4, 30),
                                             count=count)]


def test_a_broken_timer_does_not_stop_its_batch(ctx, tmp_path) -> None:
    cases = _probe(ctx, tmp_path, 4)
    due = ctx.clock.now() + timedelta(minutes=1)
    reminder = dict(kind="reminder", deadline=date(2026, 4, 30), offset="-P7D", due_at=due)
    insert_timers(ctx, [dict(case_id=cases[0], name="good", template="party_reminder", **reminder),
                        dict(case_id=cases[1], name="broken", template="no_such_template", **reminder),
                        dict(case_id=cases[2], name="ping", kind="deadline", trigger="ping", due_at=due),
                        dict(case_id=cases[3], name="refused", kind="deadline", trigger="no_such_trigger", due_at=due)])
    ctx.clock.advance(timedelta(hours=1))
    assert ctx.run_timers() == 4
    assert _statuses(ctx) == {"good": "fired", "broken": "failed", "ping": "fired", "refused": "skipped"}
    with Session(ctx.db.engine) as s:
        queued = s.execute(select(OutboxMessage.case_id, OutboxMessage.template)).all()
        notes = dict(s.execute(select(Timer.name, Timer.note)).all())  # type: ignore[arg-type]
    assert sorted(queued) == [(cases[0], "party_reminder"), (cases[2], "deadline_passed")]
    assert "no_such_template" in notes["broken"] and "no_such_trigger" in notes["refused"]


def test_a_timer_cancelled_earlier_in_its_batch_does_not_fire(ctx, tmp_path) -> None:
    # After downtime the deadline (leaving `open`) and a later reminder armed by `open` are due in one batch:
    # the deadline cancels the reminder, which then must not be sent nor marked fired.
    (case,) = _probe(ctx, tmp_path, 1)
    now = ctx.clock.now()
    insert_timers(ctx, [dict(case_id=case, name="closing", kind="deadline", trigger="close",
                             due_at=now + timedelta(minutes=1)),
                        dict(case_id=case, name="after_deadline", kind="reminder", deadline=date(2026, 4, 30),
                             offset="P1D", template="party_reminder", due_at=now + timedelta(minutes=2))])
    ctx.clock.advance(timedelta(days=2))
    ctx.tick()
    assert _statuses(ctx) == {"closing": "fired", "after_deadline": "cancelled"}
    with Session(ctx.db.engine) as s:
        assert s.execute(select(OutboxMessage.id)).all() == []
