"""Timer sweep batches: a kill -9 in the middle of a batch, one case failing inside a batch, deferred cancels.

The sweep fires up to 200 due timers in one transaction; the cancels of their transitions run together at the end
of the batch. These tests hold it to what the schedule promises: every timer fires exactly once however the
process dies, one case's failure neither loses nor doubles the others, and a deferred cancel cancels exactly what
the transition left (never the timers that same transition armed).

`python -m tests.engine.test_timer_batches` is the service process the kill test starts: the scheduler of a real
service, plus the guard of the probe workflow, which (with VK_STALL_CASE set) stops in the middle of a batch at
that case, after telling the test so on stdout, until the test kills it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import Session

from engine.models import Event, Timer
from tests.support.builders import make_user
from tests.support.service_process import READY_TIMEOUT, ROOT, insert_timers, log_tail
from tests.support.waiting import wait_until

BATCH = 200  # TimerSweep's default batch
PROBE_YAML = """
name: batch_probe
version: 1
title: {fi: Erätapaus, sv: Satsärende, en: Batch probe}
initial: open
states:
  open:
    description: Open; the deadline timers a test inserts fire here.
  waiting:
    description: Left open; a follow-up deadline a day later is armed here.
    timers:
      - kind: deadline
        name: follow_up
        at: relative
        after: P1D
        trigger: close
  closed:
    description: Closed; nothing more happens.
    final: true
transitions:
  - trigger: ping
    source: open
    roles: [system]
    event: Pinged
    conditions: [probe_guard]
  - trigger: wait
    source: open
    dest: waiting
    roles: [system]
    event: Waited
    conditions: [probe_guard]
  - trigger: close
    source: [open, waiting]
    dest: closed
    roles: [system]
    event: Closed
    conditions: [probe_guard]
"""


def write_probe(folder: Path) -> Path:
    """Write the probe definition into a folder (created) and return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "batch_probe.yaml").write_text(PROBE_YAML, encoding="utf-8")
    return folder


def create_cases(ctx: Any, count: int) -> list[int]:
    """Create `count` probe cases in `open`; return their ids."""
    from engine.actors import SYSTEM

    coordinator = make_user(ctx, roles="coordinator").id
    ids: list[int] = ctx.engine.run(lambda uow: [
        uow.create_case("batch_probe", actor=SYSTEM, title=f"Erä {i}", coordinator_id=coordinator).id
        for i in range(count)])
    return ids


def deadline(case_id: int, name: str, trigger: str, due_at: datetime) -> dict[str, Any]:
    """Return a pending deadline timer row that fires `trigger` on a case."""
    return dict(case_id=case_id, kind="deadline", name=name, trigger=trigger, due_at=due_at)


def statuses(db: Any) -> dict[str, str]:
    """Return each timer's status by name."""
    with Session(db.engine) as s:
        return dict(s.execute(select(Timer.name, Timer.status)).all())  # type: ignore[arg-type]


def events(db: Any, name: str) -> Counter[int]:
    """Return how many events of a name each case has."""
    with Session(db.engine) as s:
        return Counter(s.execute(select(Event.case_id).where(Event.name == name)).scalars())


def assert_chains_intact(db: Any) -> int:
    """Re-hash every case's event chain (the batch's state writes and events may be sent together); return events."""
    from engine.audit import Scope, verify_chains

    with db.engine.connect() as conn:
        _cases, n_events, problems = verify_chains(conn, Scope())
    assert problems == []
    return n_events


# -- one case failing inside a batch ------------------------------------------------------------------------------


def test_a_case_whose_guard_raises_fails_alone_and_the_others_fire_once(ctx, tmp_path) -> None:
    broken: set[int] = set()

    def probe_guard(fire: Any) -> bool:
        if fire.case.id in broken:
            raise RuntimeError(f"guard broke on case {fire.case.id}")
        return True

    ctx.registry.load_dir(write_probe(tmp_path / "definitions"), {"probe_guard": probe_guard})
    cases = create_cases(ctx, 6)
    broken.add(cases[3])
    now = ctx.clock.now()
    # every case: a deadline due now that leaves `open` (its cancel is deferred to the batch's end) and one days
    # ahead that the leaving cancels; the broken case's deadline falls in the middle of the batch
    rows = [deadline(c, f"wait{i}", "wait", now + timedelta(minutes=1, seconds=i)) for i, c in enumerate(cases)]
    rows += [deadline(c, f"later{i}", "close", now + timedelta(days=5)) for i, c in enumerate(cases)]
    insert_timers(ctx, rows)
    ctx.clock.advance(timedelta(hours=1))
    assert ctx.run_timers() == 6
    got = statuses(ctx.db)
    assert {n: s for n, s in got.items() if n.startswith("wait")} == {
        f"wait{i}": ("failed" if i == 3 else "fired") for i in range(6)}
    # the others' deferred cancels ran; the broken case's was undone with its savepoint, its timers are untouched
    assert {n: s for n, s in got.items() if n.startswith("later")} == {
        f"later{i}": ("pending" if i == 3 else "cancelled") for i in range(6)}
    # the follow-up each transition armed is pending: the deferred cancel did not cancel what its transition armed
    with Session(ctx.db.engine) as s:
        follow = Counter(s.execute(select(Timer.case_id).where(Timer.name == "follow_up",
                                                               Timer.status == "pending")).scalars())
        note = s.execute(select(Timer.note).where(Timer.name == "wait3")).scalar_one()
    assert follow == {c: 1 for i, c in enumerate(cases) if i != 3}
    assert "guard broke" in (note or "")
    assert events(ctx.db, "Waited") == {c: 1 for i, c in enumerate(cases) if i != 3}

    # mended, the broken case is not retried (its timer failed once, recorded); its later deadline still fires once
    broken.clear()
    ctx.clock.advance(timedelta(days=5))
    ctx.run_timers()
    assert statuses(ctx.db)["later3"] == "fired"
    assert events(ctx.db, "Closed") == {c: 1 for c in cases}  # the others closed by their follow-up, case 3 by later3
    assert assert_chains_intact(ctx.db) == 6 + 5 + 6  # created; waited (all but case 3); closed
    assert events(ctx.db, "Waited") == {c: 1 for i, c in enumerate(cases) if i != 3}


def test_a_handler_raising_for_one_case_of_a_full_batch_loses_and_doubles_nothing(ctx, tmp_path) -> None:
    ctx.registry.load_dir(write_probe(tmp_path / "definitions"), {"probe_guard": lambda fire: True})
    cases = create_cases(ctx, 250)
    now = ctx.clock.now()
    rows = [deadline(c, f"ping{i}", "ping", now + timedelta(minutes=1, seconds=i)) for i, c in enumerate(cases)]
    # one timer in the first batch whose handler raises (a kind the sweep has a broken handler for)
    rows.append(dict(case_id=cases[100], kind="escalation", name="bad", template="no_such_template",
                     due_at=now + timedelta(minutes=1, seconds=100, milliseconds=500)))
    insert_timers(ctx, rows)

    def broken_handler(uow: Any, timer: Any, case: Any) -> None:
        uow.fire(case.id, "ping")  # written, then undone with the timer's savepoint
        raise ValueError("handler broke")

    ctx.sweep.handlers["escalation"] = broken_handler
    ctx.clock.advance(timedelta(hours=1))
    assert ctx.run_timers() == 251
    got = statuses(ctx.db)
    assert got.pop("bad") == "failed"
    assert set(got.values()) == {"fired"} and len(got) == 250
    assert events(ctx.db, "Pinged") == {c: 1 for c in cases}  # the broken handler's own ping was undone
    assert assert_chains_intact(ctx.db) == 500  # each case: created, pinged once


def test_a_deferred_cancel_spares_what_its_transition_armed(ctx, tmp_path) -> None:
    from engine import timers

    ctx.registry.load_dir(write_probe(tmp_path / "definitions"), {"probe_guard": lambda fire: True})
    (case,) = create_cases(ctx, 1)
    now = ctx.clock.now()
    insert_timers(ctx, [deadline(case, "wait", "wait", now + timedelta(minutes=1)),
                        deadline(case, "close_later", "close", now + timedelta(days=3))])
    ctx.clock.advance(timedelta(hours=1))
    ctx.run_timers()
    with Session(ctx.db.engine) as s:
        rows = {t.name: (t.status, t.note) for t in s.execute(select(Timer)).scalars()}
    assert rows["wait"] == ("fired", None)
    assert rows["close_later"][0] == "cancelled" and "left open (Waited)" in (rows["close_later"][1] or "")
    assert rows["follow_up"] == ("pending", None)
    # outside a sweep a cancel runs at once, whatever it is given
    ctx.engine.run(lambda uow: timers.cancel(uow, case, "by hand", before_seq=99))
    assert statuses(ctx.db)["follow_up"] == "cancelled"


# -- kill -9 in the middle of a batch ---------------------------------------------------------------------------

CASES = 120
PER_CASE = 5  # 600 timers: three batches


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "tests.engine.test_timer_batches"], cwd=ROOT,
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


@pytest.mark.slow
def test_kill_9_in_the_middle_of_a_batch_then_every_timer_fires_exactly_once(ctx, tmp_path) -> None:
    ctx.registry.load_dir(write_probe(tmp_path / "definitions"), {"probe_guard": lambda fire: True})
    *cases, stall_case = create_cases(ctx, CASES + 1)
    due = datetime.now(UTC) - timedelta(minutes=5)  # all due already when the service starts
    rows = []
    for k in range(PER_CASE):
        for i, c in enumerate(cases):
            n = k * CASES + i
            rows.append(deadline(c, f"t{n:04d}", "ping", due + timedelta(milliseconds=n)))
    # the stalling case's only timer is the 301st by due time: in the middle of the second batch
    stall_at = BATCH + BATCH // 2
    rows.append(deadline(stall_case, "stall", "ping", due + timedelta(milliseconds=stall_at - 0.5)))
    insert_timers(ctx, rows)
    total = len(rows)
    log = tmp_path / "service.log"
    env = {"VUOSIKELLO_DATABASE_URL": ctx.db.url, "VUOSIKELLO_ENVIRONMENT": "test",
           "VUOSIKELLO_SCHEDULER_INTERVAL_SECONDS": "0.2", "VUOSIKELLO_BASE_URL": "http://testserver",
           "VUOSIKELLO_SMTP_HOST": "127.0.0.1", "VUOSIKELLO_SMTP_PORT": "9",  # mail is not what is tested here
           "VK_BATCH_DEFINITIONS": str(tmp_path / "definitions")}

    first = _start({**env, "VK_STALL_CASE": str(stall_case)}, log)
    try:
        _wait_line(first, b"stalled", log, READY_TIMEOUT + 60)
        # the guard of the stalled case runs inside the second batch's transaction: the first batch committed,
        # the second has fired timers before it in its open transaction
        at_kill = Counter(statuses(ctx.db).values())
        first.kill()
    finally:
        first.kill()
        first.wait()
        if first.stdout is not None:
            first.stdout.close()
    assert at_kill == {"fired": BATCH, "pending": total - BATCH}, log_tail(log)
    after_kill = Counter(statuses(ctx.db).values())
    assert after_kill == at_kill  # nothing of the killed batch committed
    assert sum(events(ctx.db, "Pinged").values()) == BATCH

    second = _start(env, log)
    try:
        _wait_line(second, b"ready", log, READY_TIMEOUT)
        wait_until(lambda: Counter(statuses(ctx.db).values()) == {"fired": total}, within=120,
                   poll=0.2, what="every timer fired after the restart",
                   seen=lambda: f"{Counter(statuses(ctx.db).values())}\n{log_tail(log)}")
        second.terminate()
        assert second.wait(30) == 0, log_tail(log)
    finally:
        second.kill()
        second.wait()
        if second.stdout is not None:
            second.stdout.close()
    # exactly once: one Pinged event per timer, per case as many as it had timers, no timer fired twice
    assert events(ctx.db, "Pinged") == {**{c: PER_CASE for c in cases}, stall_case: 1}
    with Session(ctx.db.engine) as s:
        fired_at = s.execute(select(Timer.fired_at)).scalars().all()
    assert all(f is not None for f in fired_at)
    assert assert_chains_intact(ctx.db) == (CASES + 1) + total


def main() -> int:
    """The service process of the kill test: the scheduler, the probe workflow, a guard that may stall."""
    from api.context import build_context
    from engine.settings import Settings

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s {os.getpid()} %(name)s %(levelname)s %(message)s")
    stall = int(os.environ.get("VK_STALL_CASE") or 0)

    def probe_guard(fire: Any) -> bool:
        if fire.case.id == stall:
            print(f"stalled {os.getpid()} case {stall}", flush=True)
            while True:  # in the middle of the batch's transaction, until the test kills this process
                time.sleep(1)
        return True

    ctx = build_context(Settings())
    ctx.registry.load_dir(Path(os.environ["VK_BATCH_DEFINITIONS"]), {"probe_guard": probe_guard})
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
