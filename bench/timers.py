"""Timers at scale: service start-up beside 100,000 pending timers, resident memory, and lateness of a burst.

The parent fills a fresh database with `--pending` pending timers, `--due` of which fall due within the same second
(T .. T+1 s, T a few seconds after the service starts; the rest are days away), then starts a real service process
(`build_context` + `start_scheduler`, the production scheduler with its default 1 s interval) and waits. The child
reports its start-up (interpreter and imports, build, scheduler start), its RSS, and each burst timer's lateness:
the commit of the transaction that fired it minus its due instant. Kinds: `deadline` timers fire a trigger that
moves their case (open -> overdue: a state write, a hash-chained event, the case's other timers cancelled);
`reminder` timers queue an email each (party_reminder with its .ics; mail is captured, not sent). Lateness counts
until the sweep's commit: the reminders' emails are rendered on delivery, after it.

    .venv/bin/python -m bench.timers [--json FILE] [--pending 100000] [--due 10000] [--kind deadline|reminder|both]
                                     [--no-postgres]

Both kinds by default, each on SQLite and on PostgreSQL; PostgreSQL only in the database `VUOSIKELLO_BENCH_PG_URL`
names (one the person running the benchmark created: every table in it is dropped), skipped with a note when unset.
`--json` writes `{"sqlite": {"deadline": {"p50": .., "p99": .., ...}, "reminder": {...}}, "postgresql": {...},
"load_average": {"start": [1, 5, 15 min], "end": [...]}}`; lateness in seconds.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import ROOT, fresh_postgres, fresh_sqlite, machine_facts, print_facts

# No default: a benchmark never empties a database it was not given (the test database least of all).
PG_URL: str | None = os.environ.get("VUOSIKELLO_BENCH_PG_URL") or None
CASES = 20_000
START_MARGIN = timedelta(seconds=10)  # the burst falls due this long after the child is spawned
BENCH_YAML = """
name: bench_deadline
version: 1
title: {fi: Määräaika, sv: Tidsfrist, en: Deadline}
initial: open
states:
  open:
    description: Waiting for the party; a deadline timer moves it on.
  overdue:
    description: The deadline passed.
transitions:
  - trigger: expire
    source: open
    dest: overdue
    roles: [system]
    event: Expired
"""


def _populate(url: str, kind: str, pending: int, due: int) -> datetime:
    """Create coordinators, CASES cases and `pending` timers, `due` of them in one second; return that second."""
    from sqlalchemy import insert, text

    from engine.actors import SYSTEM
    from engine.clock import SystemClock
    from engine.db import make_database
    from engine.definition import parse_definition
    from engine.models import Person, Timer
    from engine.registry import Registry
    from engine.service import Engine

    db = make_database(url)
    registry = Registry()
    registry.register(parse_definition(BENCH_YAML, "bench_deadline"))
    engine = Engine(db, registry, SystemClock())
    now = datetime.now(UTC)
    deadline = (now + timedelta(days=30)).date()
    with db.write_engine.begin() as conn:
        conn.execute(insert(Person.__table__), [  # type: ignore[attr-defined]
            dict(name=f"Koordinaattori {i}", email=f"coordinator{i}@example.fi", language=("fi", "sv", "en")[i % 3],
                 roles="coordinator", active=True, digest=False, created_at=now) for i in range(100)])
    case_ids: list[int] = []
    for start in range(0, CASES, 2000):
        case_ids += engine.run(lambda uow, s=start: [uow.create_case(
            "bench_deadline", actor=SYSTEM, title=f"Tapaus {s + i}", deadline=deadline,
            coordinator_id=(s + i) % 100 + 1).id for i in range(2000)])

    def row(i: int, at: datetime, spec: dict[str, Any]) -> dict[str, Any]:
        return dict(case_id=case_ids[i % CASES], state="open", armed_seq=1, due_at=at, deadline=deadline,
                    dedupe_key=f"bench:{i}", status="pending", created_at=now, **spec)

    later = [row(i, now + timedelta(days=2, seconds=i), dict(  # the rest of the schedule, days ahead
        kind="reminder", name=f"later{i}", offset="-P1D", template="party_reminder", roles="coordinator"))
        for i in range(due, pending)]
    with db.write_engine.begin() as conn:
        for start in range(0, len(later), 10_000):
            conn.execute(insert(Timer.__table__), later[start:start + 10_000])  # type: ignore[attr-defined]
    burst = datetime.now(UTC) + START_MARGIN  # set last, so the set-up time does not eat into the margin
    spec = (dict(kind="deadline", name="deadline", trigger="expire") if kind == "deadline" else
            dict(kind="reminder", name="burst", offset="-P7D", template="party_reminder", roles="coordinator"))
    burst_rows = [row(i, burst + timedelta(seconds=i / due), {**spec, "name": f"{spec['name']}{i}"})
                  for i in range(due)]  # on distinct cases: i < due <= CASES
    with db.write_engine.begin() as conn:
        conn.execute(insert(Timer.__table__), burst_rows)  # type: ignore[attr-defined]
    if not db.is_sqlite:  # as autovacuum would have: without statistics the planner scans all pending timers
        with db.engine.connect() as conn:  # per cancel (the pending-timer index), about 13 ms a timer here
            conn.execute(text("ANALYZE"))
            conn.commit()
    db.dispose()
    return burst


def _child(url: str, definitions: str, burst_ts: float, due: int) -> None:
    """Run the service's scheduler until the burst has fired; print start-up and lateness as JSON lines."""
    t0 = time.perf_counter()
    import psutil
    from sqlalchemy import func, select

    from api.context import build_context
    from engine.models import Timer
    from engine.settings import Settings

    t1 = time.perf_counter()
    ctx = build_context(Settings(environment="test", database_url=url, scheduler_enabled=True))
    ctx.registry.load_dir(Path(definitions))
    commits: list[tuple[datetime, datetime]] = []  # (transaction time = fired_at, commit instant)
    run = ctx.engine.run

    def timed_run(work: Any) -> Any:
        seen: dict[str, Any] = {}

        def wrapped(uow: Any) -> Any:
            result = work(uow)
            seen["now"] = uow._now
            return result
        result = run(wrapped)
        if seen.get("now") is not None:
            commits.append((seen["now"], datetime.now(UTC)))
        return result
    ctx.engine.run = timed_run  # type: ignore[method-assign]
    t2 = time.perf_counter()
    ctx.start_scheduler()
    t3 = time.perf_counter()
    proc = psutil.Process()
    print(json.dumps({"imports": t1 - t0, "build": t2 - t1, "start": t3 - t2,
                      "rss_mib": proc.memory_info().rss / 2**20}), flush=True)
    burst = datetime.fromtimestamp(burst_ts, UTC)
    window = (Timer.due_at >= burst) & (Timer.due_at < burst + timedelta(seconds=1))
    give_up = time.monotonic() + 900
    while time.monotonic() < give_up:
        time.sleep(0.25)
        with ctx.db.read_session() as s:
            left = s.execute(select(func.count()).select_from(Timer).where(window, Timer.status == "pending")).scalar()
        if left == 0 and datetime.now(UTC) > burst + timedelta(seconds=1):
            break
    assert ctx.scheduler is not None
    ctx.scheduler.shutdown()
    with ctx.db.read_session() as s:
        fired = s.execute(select(Timer.due_at, Timer.fired_at, Timer.status).where(window)).all()
    commits.sort()
    keys = [c[0] for c in commits]
    lateness = []
    for due_at, fired_at, _status in fired:
        k = bisect.bisect_right(keys, fired_at) - 1  # the transaction whose time is this fired_at
        lateness.append((commits[k][1] - due_at).total_seconds())
    lateness.sort()
    statuses: dict[str, int] = {}
    for row in fired:
        statuses[row[2]] = statuses.get(row[2], 0) + 1
    print(json.dumps({"fired": len(fired), "statuses": statuses, "p50": lateness[len(lateness) // 2],
                      "p99": lateness[min(len(lateness) - 1, int(len(lateness) * 0.99))], "max": lateness[-1],
                      "rss_mib_after": proc.memory_info().rss / 2**20}), flush=True)
    ctx.db.dispose()
    sys.stdout.flush()
    os._exit(0)


def measure(label: str, url: str, kind: str, pending: int, due: int) -> dict[str, Any]:
    """Populate, start a service process, and return its start-up and lateness figures."""
    assert due <= CASES, "burst timers need distinct cases"
    t = time.perf_counter()
    burst = _populate(url, kind, pending, due)
    populate_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bench_deadline.yaml").write_text(BENCH_YAML, encoding="utf-8")
        spawned = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "bench.timers", "--child", url, tmp, str(burst.timestamp()),
                                 str(due)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        startup = json.loads(proc.stdout.readline())
        ready_s = time.perf_counter() - spawned
        result = json.loads(proc.stdout.readline())
        proc.wait()
    out = {"db": label, "kind": kind, "pending": pending, "due": due, "populate_s": populate_s,
           "spawn_to_ready_s": ready_s, **startup, **result}
    print(f"  {label:<10} {kind:<8} pending {pending:,} due {due:,}: spawn->ready {ready_s:.2f} s "
          f"(imports {startup['imports']:.2f}, build {startup['build']:.2f}, start {startup['start']:.3f}), "
          f"RSS {startup['rss_mib']:.0f} -> {result['rss_mib_after']:.0f} MiB; lateness p50 {result['p50']:.2f} s "
          f"p99 {result['p99']:.2f} s max {result['max']:.2f} s; {result['statuses']}", flush=True)
    return out


def main() -> None:
    """Parse arguments and run the benchmark on SQLite and PostgreSQL."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--kind", choices=["deadline", "reminder", "both"], default="both")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    kinds = ["deadline", "reminder"] if args.kind == "both" else [args.kind]
    pg_url = None if args.no_postgres else PG_URL
    print("machine:")
    print_facts(machine_facts(pg_url))
    start = [round(x, 2) for x in os.getloadavg()]
    print(f"load average at start: {start}")
    if pg_url is None and not args.no_postgres:
        print("  PostgreSQL skipped: VUOSIKELLO_BENCH_PG_URL is not set (a database created for the benchmark)")
    results: dict[str, Any] = {}
    for kind in kinds:
        with tempfile.TemporaryDirectory() as tmp:
            db = fresh_sqlite(Path(tmp) / "timers.db")
            db.dispose()
            results.setdefault("sqlite", {})[kind] = measure("sqlite", db.url, kind, args.pending, args.due)
        if pg_url is not None:
            pg = fresh_postgres(pg_url)
            if pg is not None:
                pg.dispose()
                results.setdefault("postgresql", {})[kind] = measure("postgresql", pg_url, kind, args.pending,
                                                                     args.due)
    end = [round(x, 2) for x in os.getloadavg()]
    print(f"load average at end: {end}")
    results["load_average"] = {"start": start, "end": end}
    print(json.dumps({db: {k: {"p50": round(v["p50"], 3), "p99": round(v["p99"], 3)} for k, v in kinds_.items()}
                      for db, kinds_ in results.items() if db != "load_average"}))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
