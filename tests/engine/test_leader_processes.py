"""Leadership: real service processes on PostgreSQL with the leader killed or frozen; claims of a lost leader."""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlmodel import Session

from engine.audit import verify_all
from engine.calendar import HELSINKI
from engine.models import Event, OutboxMessage, Timer
from engine.scheduler import LOCK_KEY, Leadership, LostLeadership, Scheduler
from notifications import delivery
from tests.support.builders import create_agreement, make_user, render_mail
from tests.support.service_process import (
    ServiceProcess,
    create_probe_cases,
    insert_timers,
    log_tail,
    write_probe_definition,
)
from tests.support.smtp_server import RecordingHandler, SmtpTestServer
from tests.support.waiting import wait_until, wait_while_progressing

on_postgres = pytest.mark.parametrize("database", [pytest.param("postgres", marks=pytest.mark.postgres)],
                                      indirect=True)

TIMERS = 1000
FROZEN_TIMERS = 300
CASES = 100
# Each step has its own bound, not the test as a whole (a total-time bound fails on a loaded machine without naming
# the slow step): a started service is ready within READY_TIMEOUT (service_process.py), a new leader takes over
# within TAKEOVER_LIMIT, and the survivors' work (firing timers, sending mail) never stands still for STALL_LIMIT.
TAKEOVER_LIMIT = 30.0
STALL_LIMIT = 60.0


def _lease(db) -> tuple[int, int] | None:
    """Return (epoch, leader pid) from the lease row, or None before anyone led."""
    with db.engine.connect() as conn:
        row = conn.execute(text("SELECT epoch, holder FROM scheduler_lease WHERE name='main'")).first()
    return (int(row[0]), int(row[1].rsplit(":", 1)[1])) if row else None


def _wait_for_leader(db, services: dict[int, ServiceProcess], *, newer_than: int, timeout: float) -> tuple[int, int]:
    """Wait until one of `services` leads with an epoch above `newer_than`; return (epoch, pid)."""
    def new_lease() -> tuple[int, int] | None:
        lease = _lease(db)
        return lease if lease and lease[0] > newer_than and lease[1] in services else None

    return wait_until(new_lease, within=timeout, poll=0.05, seen=lambda: f"lease (epoch, pid) {_lease(db)}",
                      what=f"one of {sorted(services)} leads with an epoch above {newer_than}")


def _wait_for_all_done(db, count: int, about: str, log: Path) -> None:
    """Wait until every timer fired and every email was sent; fail if that work stands still for STALL_LIMIT."""
    wait_while_progressing(lambda: _progress(db), lambda p: p == (0, count, 0), stall=STALL_LIMIT,
                           what=f"all {count} timers fired and sent, (pending timers, outbox rows, unsent) ({about})",
                           seen=lambda: f"lease (epoch, pid) {_lease(db)}\nunsent {_unsent(db)}\n{log_tail(log)}")


def _unsent(db) -> list[tuple]:
    """The outbox rows not sent yet, with what says why: status, attempts, next attempt, claim, last error."""
    o = OutboxMessage
    with Session(db.engine) as s:
        rows = s.execute(select(o.id, o.status, o.attempts, o.next_attempt_at, o.claimed_at, o.last_error)
                         .where(o.status != "sent").order_by(o.id).limit(10)).all()
    return [tuple(r) for r in rows]


def _progress(db) -> tuple[int, int, int]:
    """Return (timers still pending, outbox rows, outbox rows not yet sent)."""
    with Session(db.engine) as s:
        pending = s.execute(select(func.count()).select_from(Timer).where(Timer.status == "pending")).scalar()
        unsent = s.execute(select(func.count()).select_from(OutboxMessage)
                           .where(OutboxMessage.status != "sent")).scalar()
        queued = s.execute(select(func.count()).select_from(OutboxMessage)).scalar()
    return int(pending or 0), int(queued or 0), int(unsent or 0)


def _setup(ctx, tmp_path: Path, spread: timedelta, count: int) -> Path:
    """Probe cases with `count` deadline timers firing `ping` (an event and an email each) over `spread`."""
    definitions = write_probe_definition(tmp_path / "definitions")
    ctx.registry.load_dir(definitions)
    coordinators = [make_user(ctx, roles="coordinator", language=("fi", "sv", "en")[i % 3]).id for i in range(20)]
    deadline = (datetime.now(UTC) + timedelta(days=30)).astimezone(HELSINKI).date()
    cases = create_probe_cases(ctx, coordinators=coordinators, deadline=deadline, count=CASES)
    first_due = datetime.now(UTC) + timedelta(seconds=2)
    insert_timers(ctx, [dict(case_id=cases[i % CASES][0], kind="deadline", name=f"leader{i:04d}", trigger="ping",
                             due_at=first_due + spread * i / count) for i in range(count)])
    return definitions


# SMTP sessions the outbox sends over side by side: a crash can re-send at most one message per session (the one
# the server accepted before its `sent` was committed; notifications/delivery.py), so that bounds the duplicates
CONNECTIONS = 4


def _env(ctx, smtp: SmtpTestServer, definitions: Path) -> dict[str, str]:
    return {"VUOSIKELLO_DATABASE_URL": ctx.db.url, "VUOSIKELLO_ENVIRONMENT": "test",
            "VUOSIKELLO_SMTP_CONNECTIONS": str(CONNECTIONS),
            "VUOSIKELLO_SMTP_HOST": smtp.hostname, "VUOSIKELLO_SMTP_PORT": str(smtp.port),
            "VUOSIKELLO_SCHEDULER_INTERVAL_SECONDS": "0.5", "VUOSIKELLO_BASE_URL": "http://testserver",
            "VK_EXTRA_DEFINITIONS": str(definitions)}


def _assert_each_timer_fired_once(ctx, received, count: int, allowed_duplicates: int, about: str) -> int:
    with Session(ctx.db.engine) as s:
        timers = s.execute(select(Timer.case_id, Timer.status)).all()
        pings = Counter(s.execute(select(Event.case_id).where(Event.trigger == "ping")).scalars())
        outbox = s.execute(select(OutboxMessage.case_id, OutboxMessage.message_id, OutboxMessage.status)).all()
        _cases, _events, problems = verify_all(s)
    assert Counter(status for _case, status in timers) == {"fired": count}, about
    per_case = Counter(case_id for case_id, _status in timers)
    assert pings == per_case, about  # one Pinged event per timer: a double fire would add one
    assert Counter(case_id for case_id, _mid, _status in outbox) == per_case, about  # and one email per event
    assert {status for _c, _m, status in outbox} == {"sent"}, about
    assert problems == [], about  # the hash chains hold: no two leaders interleaved a case's events
    counts = Counter(m.message["Message-ID"] for m in received)
    assert set(counts) == {mid for _c, mid, _s in outbox}, about  # every email delivered
    duplicates = sum(n - 1 for n in counts.values())
    # only a kill between SMTP acceptance and the commit, per session
    assert duplicates <= allowed_duplicates, f"{about}; {_duplicates_seen(received, counts)}"
    return duplicates


def _leadership_log(log: Path) -> str:
    """The services' log lines about leadership and claims (what a duplicate's story is told by)."""
    words = ("lead", "claim", "terminated", "fence", "epoch", "refused")
    return "\n".join(line for line in log.read_text(errors="replace").splitlines()
                     if any(w in line.lower() for w in words))[-6000:]


def _duplicates_seen(received, counts: Counter) -> str:
    """Each message received more than once: the places in the order of arrival and the SMTP session of each."""
    arrivals: dict[str, list[tuple[int, int]]] = {}
    for place, m in enumerate(received):
        if counts[m.message["Message-ID"]] > 1:
            arrivals.setdefault(m.message["Message-ID"], []).append((place, m.session))
    return f"{len(received)} received; duplicates (place, session): {sorted(arrivals.values())}"


@pytest.mark.slow
@on_postgres
def test_leader_killed_repeatedly_each_timer_fires_once(ctx, tmp_path) -> None:
    seed = int(os.environ.get("VK_CRASH_SEED") or time.time_ns() % 1_000_000)
    rng = random.Random(seed)
    started = time.monotonic()
    definitions = _setup(ctx, tmp_path, spread=timedelta(seconds=20), count=TIMERS)
    kills = rng.randint(3, 4)
    takeovers: list[float] = []
    with SmtpTestServer() as smtp:
        env = _env(ctx, smtp, definitions)
        log = tmp_path / "service.log"
        starting = [ServiceProcess.start(env, log, wait=False) for _ in range(3)]
        services = {s.pid: s for s in starting}
        try:
            for s in starting:
                s.wait_ready()
            epoch, leader = _wait_for_leader(ctx.db, services, newer_than=0, timeout=TAKEOVER_LIMIT)
            for _ in range(kills):
                time.sleep(rng.uniform(0.5, 3.0))  # a random point of the leader's sweep or delivery
                killed_at = time.monotonic()
                services.pop(leader).kill9()
                replacement = ServiceProcess.start(env, log, wait=False)  # keep three processes running
                services[replacement.pid] = replacement
                epoch, leader = _wait_for_leader(ctx.db, services, newer_than=epoch, timeout=TAKEOVER_LIMIT + 5)
                takeovers.append(time.monotonic() - killed_at)
                replacement.wait_ready()
            _wait_for_all_done(ctx.db, TIMERS, f"seed {seed}, {kills} kills", log)
            for s in services.values():
                assert s.terminate() == 0, s.log_tail()
        finally:
            for s in services.values():
                s.stop()
        received = smtp.messages
    about = f"seed {seed}, {kills} kills, takeovers {[round(t, 2) for t in takeovers]} s"
    duplicates = _assert_each_timer_fired_once(ctx, received, TIMERS, kills * CONNECTIONS, about)
    assert max(takeovers) <= TAKEOVER_LIMIT, about
    print(f"\nleader test: {about}; duplicates {duplicates}; {time.monotonic() - started:.1f} s")


@pytest.mark.slow
@on_postgres
def test_frozen_leader_is_evicted_and_fenced_out(ctx, tmp_path) -> None:
    # A stopped process keeps its database connection, so its advisory lock is not released by a crash:
    # the others terminate it once its heartbeat is 20 s stale, and when it wakes its work is refused.
    started = time.monotonic()
    definitions = _setup(ctx, tmp_path, spread=timedelta(seconds=5), count=FROZEN_TIMERS)
    with SmtpTestServer() as smtp:
        env = _env(ctx, smtp, definitions)
        log = tmp_path / "service.log"
        starting = [ServiceProcess.start(env, log, wait=False) for _ in range(2)]
        services = {s.pid: s for s in starting}
        try:
            for s in starting:
                s.wait_ready()
            epoch, leader = _wait_for_leader(ctx.db, services, newer_than=0, timeout=TAKEOVER_LIMIT)
            time.sleep(1.0)
            os.kill(leader, signal.SIGSTOP)
            frozen_at = time.monotonic()
            epoch, new_leader = _wait_for_leader(ctx.db, services, newer_than=epoch, timeout=TAKEOVER_LIMIT + 5)
            takeover = time.monotonic() - frozen_at
            os.kill(leader, signal.SIGCONT)  # wakes up believing it leads, mid-transaction perhaps
            _wait_for_all_done(ctx.db, FROZEN_TIMERS, f"leader {leader} frozen, {new_leader} took over", log)
            time.sleep(1.5)  # give the woken process its ticks: it must step down, not fire anything
            assert _lease(ctx.db) == (epoch, new_leader)
            for s in services.values():
                assert s.terminate() == 0, s.log_tail()
        finally:
            for s in services.values():
                s.stop()
        received = smtp.messages
    about = f"takeover after freezing {takeover:.1f} s; the services said:\n{_leadership_log(log)}"
    _assert_each_timer_fired_once(ctx, received, FROZEN_TIMERS, CONNECTIONS, about)
    assert 15 <= takeover <= TAKEOVER_LIMIT, about  # evicted for a stale heartbeat (20 s), not before
    print(f"\nfrozen leader: takeover after freezing {takeover:.1f} s; {time.monotonic() - started:.1f} s")


@on_postgres
def test_released_leadership_leaves_no_advisory_lock_behind(ctx) -> None:
    leadership = Leadership(ctx.engine)
    assert leadership.acquire()
    leadership.release()
    with ctx.db.engine.connect() as conn:  # the lock connection went back to this pool: it must not keep the lock
        held = conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype='advisory' AND objid=:k "
                                 "AND database=(SELECT oid FROM pg_database WHERE datname=current_database())"),
                            {"k": LOCK_KEY}).scalar()
    assert held == 0
    other = Leadership(ctx.engine)
    assert other.acquire() and other.epoch == 2
    other.release()


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_on_lead_hooks_run_once_per_epoch_led(ctx) -> None:
    epochs: list[int | None] = []
    scheduler = Scheduler(ctx.engine, [], interval=3600, on_lead=[lambda fence: epochs.append(fence.__self__.epoch)])
    scheduler.leadership.acquire()
    scheduler.tick()
    scheduler.tick()
    scheduler.leadership.release()
    scheduler.leadership.acquire()  # leading again: a new epoch
    scheduler.tick()
    scheduler.shutdown()
    assert epochs == [1, 2]


def test_claims_of_a_crashed_sender_go_to_the_next_leader(smtp_ctx, smtp_server) -> None:
    ctx = smtp_ctx
    create_agreement(ctx, parties=3)  # queues the invitations
    render_mail(ctx)
    now = ctx.clock.now()
    crashed = ctx.delivery._claim(now)  # claimed, then the process died before sending
    assert len(crashed) == 3
    ctx.clock.advance(timedelta(minutes=1))
    assert ctx.delivery.deliver_due_sync() == 0 and smtp_server.messages == []  # claimed rows wait...
    assert ctx.delivery.release_claims() == 3  # ...until a scheduler takes the lead
    assert ctx.delivery.deliver_due_sync() == 3
    assert len(smtp_server.messages) == 3
    # the crashed sender's claim is gone: it may neither keep sending nor overwrite the outcome
    assert not ctx.delivery._still_claimed(crashed[0].id, now)
    ctx.delivery._mark(crashed[0].id, now, status="pending", attempts=9)
    with Session(ctx.db.engine) as s:
        statuses = s.execute(select(OutboxMessage.status, OutboxMessage.attempts)).all()
    assert sorted(statuses) == [("sent", 1)] * 3


@on_postgres
def test_a_deposed_leader_may_not_claim_mail(ctx) -> None:
    old, new = Leadership(ctx.engine), Leadership(ctx.engine)
    assert old.acquire()
    old._conn.invalidate()  # its lock connection dies
    old._conn = None
    # the server frees the lock once it has seen the disconnect, which is not instant: a candidate tries again
    # (as the scheduler does every tick) instead of assuming it won at once
    give_up = time.monotonic() + 10
    while not new.acquire():
        assert time.monotonic() < give_up, "the dead connection's advisory lock was never released"
        time.sleep(0.02)
    with pytest.raises(LostLeadership):
        ctx.engine.run(lambda uow: (old.fence(uow), ctx.delivery._claim(ctx.clock.now())))
    assert old.epoch is None
    ctx.engine.run(new.fence)
    new.release()


class OnFirstMessage(RecordingHandler):
    """Accepts mail; once the first message is accepted, runs `then` before answering it: what a new leader does at
    takeover, in the moment the sender's next message is on its way. It blocks the server's loop on purpose: no
    other session's message is accepted (and its `sent` committed) while `then` runs."""

    def __init__(self, then) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.then = then

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        reply = await super().handle_DATA(server, session, envelope)
        if len(self.messages) == 1:
            self.then()
        return reply


@pytest.mark.parametrize("connections", [1, 4])
def test_a_sender_whose_claims_were_taken_stops_sending(database, clock, monkeypatch, connections) -> None:
    from tests.conftest import context_for

    monkeypatch.setattr(delivery, "CLAIM_RECHECK", -1.0)  # check the claim before every message
    holder: list = []
    with SmtpTestServer(OnFirstMessage(lambda: holder[0].delivery.release_claims())) as smtp:
        ctx = context_for(database, clock, smtp_host=smtp.hostname, smtp_port=smtp.port, smtp_timeout=5.0)
        ctx.delivery.connections = connections
        holder.append(ctx)
        create_agreement(ctx, parties=4)  # four invitations
        # the deposed sender stops after the message in flight on each connection; the first one's `sent` commit
        # finds the claim gone, so none of its messages is recorded
        assert ctx.delivery.deliver_due_sync() == 0
        assert ctx.delivery.deliver_due_sync() == 4  # the new leader sends them all
        ids = Counter(m.message["Message-ID"] for m in smtp.messages)
    assert len(ids) == 4  # every one, each with its own Message-ID
    if connections == 1:
        assert sum(ids.values()) == 5  # the one in flight twice, with the same Message-ID
    else:  # at most one in flight per connection, each sent twice with the same Message-ID
        assert 5 <= sum(ids.values()) <= 4 + connections and max(ids.values()) == 2


@on_postgres
def test_a_deposed_sender_stops_before_its_next_message_while_its_claims_still_stand(database, clock,
                                                                                     monkeypatch) -> None:
    from tests.conftest import context_for

    monkeypatch.setattr(delivery, "CLAIM_RECHECK", -1.0)  # check before every message
    holder: list = []

    def depose() -> None:  # another process takes the lease, a moment before its `release_claims`
        with holder[0].db.engine.begin() as conn:
            conn.execute(text("UPDATE scheduler_lease SET epoch = epoch + 1, holder = 'elsewhere:1' "
                              "WHERE name = 'main'"))

    with SmtpTestServer(OnFirstMessage(depose)) as smtp:
        ctx = context_for(database, clock, smtp_host=smtp.hostname, smtp_port=smtp.port, smtp_timeout=5.0)
        ctx.delivery.connections = 1
        holder.append(ctx)
        leader = Leadership(ctx.engine)
        assert leader.acquire()
        try:
            create_agreement(ctx, parties=4)  # four invitations
            render_mail(ctx)
            # the first message is recorded (its claim stood); before the second the lease has moved on
            assert ctx.delivery.deliver_due_sync(fence=leader.fence) == 1
            assert leader.epoch is None  # it knows it was deposed
            assert len(smtp.messages) == 1
            with Session(ctx.db.engine) as s:
                assert Counter(s.execute(select(OutboxMessage.status)).scalars()) == {"sent": 1, "sending": 3}
            assert ctx.delivery.release_claims() == 3  # the new leader takes them over
            assert ctx.delivery.deliver_due_sync() == 3
        finally:
            leader.release()
        ids = Counter(m.message["Message-ID"] for m in smtp.messages)
    assert len(ids) == 4 and set(ids.values()) == {1}  # each sent once
