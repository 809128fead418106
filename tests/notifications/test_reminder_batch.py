"""Reminder emails queued per sweep batch: a kill -9 in the middle of a batch, a failing recipient, coalescing.

The sweep collects the emails of a batch's reminder timers and queues them together at the end of the batch's
savepoint (`notifications.reminders._BatchMails`: one key check, one recipient read, one insert per batch). These
tests hold it to what one queue per reminder promised: every reminder timer fires once and leaves one email per
recipient however the process dies and whoever leads next, one recipient that cannot be mailed fails its own timer
only, reminders that fell due together are coalesced per person and deadline, a digest reader's stay held, and
every email is rendered in its reader's language.

`python -m tests.notifications.test_reminder_batch` is the service process the kill test starts: the scheduler of
a real service which (with VK_STALL_INSERT set) stops right after the outbox insert of its second sweep batch,
inside that batch's open transaction, after telling the test so on stdout, until the test kills it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlmodel import Session

from engine.models import OutboxMessage, Person, Timer
from notifications.digest import send_digests
from tests.support.builders import make_user, render_mail
from tests.support.service_process import (
    READY_TIMEOUT,
    ROOT,
    create_probe_cases,
    insert_timers,
    log_tail,
    write_probe_definition,
)
from tests.support.waiting import wait_until

BATCH = 200  # TimerSweep's default batch
DEADLINE = date(2026, 6, 19)


def reminder(case_id: int, name: str, due_at: datetime, offset: str = "-P7D") -> dict[str, Any]:
    """Return a pending reminder timer row mailing the case's coordinator."""
    return dict(case_id=case_id, kind="reminder", name=name, due_at=due_at, template="party_reminder",
                roles="coordinator", offset=offset, deadline=DEADLINE,
                dedupe_key=f"test:{case_id}:{name}:{offset}")


def timer_statuses(db: Any) -> dict[str, str]:
    """Return each timer's status by name."""
    with Session(db.engine) as s:
        return dict(s.execute(select(Timer.name, Timer.status)).all())  # type: ignore[arg-type]


def mails_by_timer(db: Any) -> Counter[int]:
    """Return how many outbox rows each timer left."""
    with Session(db.engine) as s:
        return Counter(s.execute(select(OutboxMessage.timer_id).where(OutboxMessage.timer_id.is_not(None)))
                       .scalars())  # type: ignore[union-attr]


def coordinators(ctx: Any, languages: tuple[str, ...] = ("fi", "sv", "en")) -> dict[int, str]:
    """Make one coordinator per language; return their ids with their languages."""
    return {make_user(ctx, roles="coordinator", language=lang).id: lang for lang in languages}


def assert_rendered_in_their_language(db: Any, languages: dict[int, str]) -> None:
    """Every reminder email was rendered once, in its reader's language (the subjects differ by language)."""
    with Session(db.engine) as s:
        rows = s.execute(select(OutboxMessage.person_id, OutboxMessage.language, OutboxMessage.subject,
                                OutboxMessage.status, OutboxMessage.render_context)
                         .where(OutboxMessage.timer_id.is_not(None))).all()
    assert rows
    subjects: dict[str, set[str]] = {}
    for person_id, language, subject, status, render_context in rows:
        assert language == languages[person_id]
        assert status != "queued" and render_context is None and subject
        subjects.setdefault(language, set()).add(subject.split(":")[0])
    seen = [next(iter(v)) for v in subjects.values()]
    assert len(set(seen)) == len(seen), subjects  # fi, sv and en subjects are not the same words


# -- in one process ------------------------------------------------------------------------------------------------


def test_a_recipient_that_cannot_be_mailed_fails_its_own_reminder_only(ctx, tmp_path) -> None:
    ctx.registry.load_dir(write_probe_definition(tmp_path / "definitions"))
    people = coordinators(ctx)
    broken = make_user(ctx, roles="coordinator", language="fi").id
    cases = create_probe_cases(ctx, coordinators=list(people), deadline=DEADLINE, count=250)
    (bad_case, _), = create_probe_cases(ctx, coordinators=[broken], deadline=DEADLINE, count=1)
    with Session(ctx.db.write_engine) as s:  # the email address is gone: queueing this reader's email raises
        s.execute(update(Person).where(Person.id == broken).values(email=""))  # type: ignore[arg-type]
        s.commit()
    now = ctx.clock.now()
    rows = [reminder(c, f"r{i:03d}", now + timedelta(minutes=1, seconds=i)) for i, (c, _) in enumerate(cases)]
    rows.append(reminder(bad_case, "bad", now + timedelta(minutes=1, seconds=100, milliseconds=500)))  # batch 1
    insert_timers(ctx, rows)
    ctx.clock.advance(timedelta(hours=1))
    assert ctx.run_timers() == 251
    got = timer_statuses(ctx.db)
    assert got.pop("bad") == "failed"
    assert set(got.values()) == {"fired"} and len(got) == 250
    with Session(ctx.db.engine) as s:
        note = s.execute(select(Timer.note).where(Timer.name == "bad")).scalar_one()
        ids = dict(s.execute(select(Timer.name, Timer.id)).all())  # type: ignore[arg-type]
    assert "no recipient" in (note or "")
    by_timer = mails_by_timer(ctx.db)
    assert by_timer == {ids[n]: 1 for n in got}  # one email per fired reminder, none for the failed one
    assert render_mail(ctx) == 250  # the mail job's first step
    assert_rendered_in_their_language(ctx.db, people)
    assert ctx.run_timers() == 0 and mails_by_timer(ctx.db) == by_timer  # nothing fires or queues twice


def test_catch_up_in_a_batch_is_coalesced_per_person_and_deadline_and_a_digest_reader_is_held(ctx, tmp_path) -> None:
    ctx.registry.load_dir(write_probe_definition(tmp_path / "definitions"))
    people = coordinators(ctx, ("fi", "sv"))
    digest_reader = make_user(ctx, roles="coordinator", language="sv").id
    with Session(ctx.db.write_engine) as s:
        s.execute(update(Person).where(Person.id == digest_reader).values(digest=True))  # type: ignore[arg-type]
        s.commit()
    cases = create_probe_cases(ctx, coordinators=[*people, digest_reader], deadline=DEADLINE, count=300)
    now = ctx.clock.now()
    # every case: three reminders of one arming that all fell due during a downtime (the -P14D, -P7D and -P1D of
    # one deadline), spread over two batches; only the latest may mail
    rows = []
    for i, (c, _) in enumerate(cases):
        for k, offset in enumerate(("-P14D", "-P7D", "-P1D")):
            rows.append(reminder(c, "party", now + timedelta(minutes=1 + k, seconds=i), offset))
    insert_timers(ctx, rows)
    ctx.clock.advance(timedelta(hours=1))
    assert ctx.sweep.run_due() == 900
    render_mail(ctx)  # as the mail job does before it sends
    with Session(ctx.db.engine) as s:
        got = Counter(s.execute(select(Timer.offset, Timer.status)).all())  # type: ignore[arg-type]
        mails = s.execute(select(OutboxMessage.case_id, OutboxMessage.person_id, OutboxMessage.status,
                                 OutboxMessage.dedupe_key)).all()
    assert got == {("-P14D", "coalesced"): 300, ("-P7D", "coalesced"): 300, ("-P1D", "fired"): 300}
    assert Counter(m.case_id for m in mails) == {c: 1 for c, _ in cases}  # one email per person and deadline
    assert all(m.dedupe_key.endswith(f"-P1D:{m.person_id}") for m in mails)
    held = {m.person_id for m in mails if m.status == "held"}
    assert held == {digest_reader}  # the digest reader's are held for the digest, the others' sendable
    assert_rendered_in_their_language(ctx.db, {**people, digest_reader: "sv"})
    assert ctx.run_timers() == 0 and send_digests(ctx.engine) == 1  # the digest reader's one digest of the day
    with Session(ctx.db.engine) as s:
        digested = Counter(s.execute(select(OutboxMessage.status).where(OutboxMessage.person_id == digest_reader))
                           .scalars())
    assert digested == {"digested": 100, "queued": 1} or digested == {"digested": 100, "pending": 1}, digested


def test_the_sweep_renders_nothing_and_the_mail_job_renders_each_email_once_before_it_sends(ctx, tmp_path) -> None:
    ctx.registry.load_dir(write_probe_definition(tmp_path / "definitions"))
    people = coordinators(ctx)
    cases = create_probe_cases(ctx, coordinators=list(people), deadline=DEADLINE, count=250)
    now = ctx.clock.now()
    rows = [reminder(c, f"r{i:03d}", now + timedelta(minutes=1, milliseconds=100 * i))
            for i, (c, _) in enumerate(cases)]
    rows.append(dict(case_id=cases[0][0], kind="deadline", name="late", trigger="ping",
                     due_at=now + timedelta(minutes=2)))
    insert_timers(ctx, rows)
    ctx.clock.advance(timedelta(minutes=10))
    assert ctx.sweep.run_due() == 251  # the two batches of reminders and the deadline behind them
    with Session(ctx.db.engine) as s:
        queued = s.execute(select(OutboxMessage.status, OutboxMessage.subject)).all()
    # what the sweep wrote, the 250 reminders and the deadline's notice: data, no text
    assert len(queued) == 251 and set(queued) == {("queued", "")}
    assert ctx.delivery.deliver_due_sync() == 251  # the mail job: rendered, then sent (captured here)
    assert ctx.delivery.deliver_due_sync() == 0
    by_timer = mails_by_timer(ctx.db)
    assert len(by_timer) == 250 and set(by_timer.values()) == {1}  # one email per reminder
    assert_rendered_in_their_language(ctx.db, people)
    with Session(ctx.db.engine) as s:
        assert set(s.execute(select(OutboxMessage.status)).scalars()) == {"captured"}


# -- kill -9 in the middle of a batch ---------------------------------------------------------------------------

CASES = 450  # one reminder each: three batches


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "tests.notifications.test_reminder_batch"], cwd=ROOT,
                                env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=out)


def _wait_line(proc: subprocess.Popen[bytes], prefix: bytes, log: Path, timeout: float) -> bytes:
    assert proc.stdout is not None
    found: list[bytes] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(prefix):
                found.append(line)
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    assert found, f"service {proc.pid} printed no {prefix!r} within {timeout} s:\n{log_tail(log)}"
    return found[0]


def _outbox_count(db: Any) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM outbox")).scalar_one())


@pytest.mark.slow
def test_kill_9_after_a_batch_queued_its_emails_then_every_reminder_mails_exactly_once(ctx, tmp_path) -> None:
    definitions = write_probe_definition(tmp_path / "definitions")
    ctx.registry.load_dir(definitions)
    people = coordinators(ctx)
    cases = create_probe_cases(ctx, coordinators=list(people), deadline=DEADLINE, count=CASES)
    due = datetime.now(UTC) - timedelta(minutes=5)  # all due already when the service starts
    insert_timers(ctx, [reminder(c, f"r{i:04d}", due + timedelta(milliseconds=i)) for i, (c, _) in enumerate(cases)])
    log = tmp_path / "service.log"
    env = {"VUOSIKELLO_DATABASE_URL": ctx.db.url, "VUOSIKELLO_ENVIRONMENT": "test",
           "VUOSIKELLO_SCHEDULER_INTERVAL_SECONDS": "0.2", "VUOSIKELLO_BASE_URL": "http://testserver",
           "VUOSIKELLO_SMTP_HOST": "127.0.0.1", "VUOSIKELLO_SMTP_PORT": "9",  # sending is not what is tested here
           "VK_DEFINITIONS": str(definitions)}

    first = _start({**env, "VK_STALL_INSERT": "2"}, log)
    try:
        _wait_line(first, b"stalled", log, READY_TIMEOUT + 60)
        # stopped right after the second batch's outbox insert, inside its transaction: the first batch (its
        # timers marked, its 200 emails queued) committed, the second's emails are written but not committed
        at_kill = Counter(timer_statuses(ctx.db).values())
        queued_at_kill = _outbox_count(ctx.db)
        first.kill()
    finally:
        first.kill()
        first.wait()
        if first.stdout is not None:
            first.stdout.close()
    assert at_kill == {"fired": BATCH, "pending": CASES - BATCH}, log_tail(log)
    assert queued_at_kill == BATCH
    assert Counter(timer_statuses(ctx.db).values()) == at_kill and _outbox_count(ctx.db) == BATCH  # none of it kept

    second = _start(env, log)  # the next leader
    try:
        _wait_line(second, b"ready", log, READY_TIMEOUT)

        def done() -> bool:
            if Counter(timer_statuses(ctx.db).values()) != {"fired": CASES}:
                return False
            with ctx.db.engine.connect() as conn:
                return not conn.execute(text("SELECT count(*) FROM outbox WHERE status = 'queued'")).scalar_one()

        wait_until(done, within=120, poll=0.2, what="every reminder fired and its email rendered after the restart",
                   seen=lambda: f"{Counter(timer_statuses(ctx.db).values())}\n{log_tail(log)}")
        second.terminate()
        assert second.wait(30) == 0, log_tail(log)
    finally:
        second.kill()
        second.wait()
        if second.stdout is not None:
            second.stdout.close()
    with Session(ctx.db.engine) as s:
        ids = set(s.execute(select(Timer.id)).scalars())
        links = Counter(s.execute(text("SELECT person_id FROM sign_in_link WHERE case_id IS NOT NULL")).scalars())
    assert mails_by_timer(ctx.db) == {i: 1 for i in ids}  # exactly one email per reminder: none lost, none doubled
    assert_rendered_in_their_language(ctx.db, people)
    assert sum(links.values()) == CASES  # one sign-in link per email: none left by the killed batch


def main() -> int:
    """The service process of the kill test: the scheduler, the probe workflow, a stall after an outbox insert."""
    from sqlalchemy import event

    from api.context import build_context
    from engine.settings import Settings

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s {os.getpid()} %(name)s %(levelname)s %(message)s")
    stall = int(os.environ.get("VK_STALL_INSERT") or 0)
    ctx = build_context(Settings())
    ctx.registry.load_dir(Path(os.environ["VK_DEFINITIONS"]))
    inserts = 0

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        nonlocal inserts
        if stall and statement.startswith("INSERT INTO outbox"):
            inserts += 1
            if inserts == stall:
                print(f"stalled {os.getpid()} after outbox insert {inserts}", flush=True)
                while True:  # in the middle of the batch's transaction, until the test kills this process
                    time.sleep(1)

    event.listen(ctx.db.write_engine, "after_cursor_execute", after)
    stop = threading.Event()
    import signal

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ctx.start_scheduler()
    print(f"ready {os.getpid()}", flush=True)
    while not stop.wait(0.2):
        pass
    assert ctx.scheduler is not None
    ctx.scheduler.shutdown()
    ctx.db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
