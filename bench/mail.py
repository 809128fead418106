"""Reminder mail throughput: reminders rendered into the outbox and delivered, beside a bare aiosmtplib loop.

An aiosmtpd sink runs in its own process (as a relay would) and only counts what it accepts. In one run:
1. render: `--count` reminder timers fall due, one sweep queues them and the mail job's first step renders each
   (party_reminder in fi/sv/en, its .ics, a sign-in link) in the outbox, as the scheduler does;
2. the same messages are built once into their wire bytes (multipart/alternative + .ics, as delivered);
3. then `--rounds` rounds, the order within a round alternating from round to round:
   - bare: one aiosmtplib connection sending those prebuilt bytes in a loop (`sendmail`): the transport alone;
   - deliver: `Delivery.deliver_due` sending the whole outbox as the scheduler's leader does (claim, build each
     message, send over `--connections` pooled connections, record `sent` by group commit); the outbox is put
     back to `pending` after each round;
   - bare pool (`--bare-pool`): the prebuilt bytes over as many connections as the delivery uses, for reference.
The ratio is the median of the per-round ratios deliver / bare (not best against best); the goal is >= 0.5x,
the stretch goal >= 1,000 msg/s. Load averages are recorded at start and end. PostgreSQL only through
VUOSIKELLO_BENCH_PG_URL (a database of its own: the benchmark drops and recreates every table in it).

    .venv/bin/python -m bench.mail [--count 2000] [--rounds 5] [--connections 4] [--db sqlite|postgresql|both]
        [--bare-pool] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.common import ROOT, fresh_postgres, fresh_sqlite, machine_facts, print_facts
from bench.timers import BENCH_YAML

CASES = 1000
Prebuilt = list[tuple[str, list[str], bytes]]  # envelope sender, recipients, DATA bytes


def _sink(port: int) -> None:
    """Run an SMTP server that accepts and counts everything until stdin closes; print the count."""
    from aiosmtpd.controller import Controller

    class Counter:
        accepted = 0

        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            Counter.accepted += 1
            return "250 OK"

    controller = Controller(Counter(), hostname="127.0.0.1", port=port, server_hostname="sink.invalid")
    controller.start()
    print("ready", flush=True)
    sys.stdin.read()
    controller.stop()
    print(Counter.accepted, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prebuild(ctx) -> Prebuilt:  # type: ignore[no-untyped-def]
    """The outbox's messages as the bare loop sends them: built once, before any clock starts."""
    from sqlalchemy import select

    from engine.models import OutboxMessage
    from notifications import delivery
    from notifications.mime import to_bytes
    from notifications.smtp import _envelope

    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    with ctx.db.read_session() as session:
        rows = session.execute(select(table).order_by(table.c.id)).all()
    built = []
    for row in rows:
        message = delivery.to_message(row, ctx.settings.mail_from, ctx.settings.mail_domain)
        sender, recipients = _envelope(message)
        built.append((sender, recipients, to_bytes(message)))  # what the outbox sends (also in an older tree)
    return built


async def _bare(port: int, messages: Prebuilt, connections: int = 1) -> float:
    """Send prebuilt messages over `connections` aiosmtplib connections; return messages per second."""
    import aiosmtplib

    clients = [aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, local_hostname="bench.invalid")
               for _ in range(connections)]
    await asyncio.gather(*(client.connect() for client in clients))
    queue = list(reversed(messages))

    async def loop(client: aiosmtplib.SMTP) -> None:
        while queue:
            sender, recipients, data = queue.pop()
            await client.sendmail(sender, recipients, data)

    start = time.perf_counter()
    await asyncio.gather(*(loop(client) for client in clients))
    elapsed = time.perf_counter() - start
    await asyncio.gather(*(client.quit() for client in clients))
    return len(messages) / elapsed


def _setup(url: str, count: int, port: int, definitions: Path, connections: int = 4):  # type: ignore[no-untyped-def]
    """Build a service context whose mail goes to the sink; create coordinators, cases and due reminder timers."""
    from sqlalchemy import insert

    from api.context import build_context
    from engine.actors import SYSTEM
    from engine.models import Person, Timer
    from engine.settings import Settings

    ctx = build_context(Settings(environment="test", database_url=url, smtp_host="127.0.0.1", smtp_port=port,
                                 scheduler_enabled=False, base_url="https://vuosikello.example.fi"))
    if hasattr(ctx.delivery, "connections"):  # an older tree (bench.ab --base) sends over one connection
        ctx.delivery.connections = connections
    ctx.registry.load_dir(definitions)
    now = datetime.now(UTC)
    deadline = (now + timedelta(days=10)).date()
    with ctx.db.write_engine.begin() as conn:
        conn.execute(insert(Person.__table__), [  # type: ignore[attr-defined]
            dict(name=f"Koordinaattori {i}", email=f"coordinator{i}@example.fi", language=("fi", "sv", "en")[i % 3],
                 roles="coordinator", active=True, digest=False, created_at=now) for i in range(100)])
    cases = ctx.engine.run(lambda uow: [uow.create_case(
        "bench_deadline", actor=SYSTEM, title=f"Pirkanmaan puitesopimus {i}", deadline=deadline,
        coordinator_id=i % 100 + 1).id for i in range(CASES)])
    with ctx.db.write_engine.begin() as conn:
        conn.execute(insert(Timer.__table__), [  # type: ignore[attr-defined]
            dict(case_id=cases[i % CASES], state="open", armed_seq=1, kind="reminder", name=f"r{i}", due_at=now,
                 deadline=deadline, offset="-P7D", trigger=None, roles="coordinator", template="party_reminder",
                 dedupe_key=f"bench:{i}", status="pending", created_at=now) for i in range(count)])
    return ctx


def _requeue(ctx) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from engine.models import OutboxMessage

    with ctx.db.write_engine.begin() as conn:
        conn.execute(update(OutboxMessage.__table__).values(  # type: ignore[attr-defined]
            status="pending", attempts=0, sent_at=None))


def _timed(what, count: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Run `what()`; return (messages per second by wall clock, client CPU ms per message)."""
    start, used = time.perf_counter(), time.process_time()
    rate = what()
    cpu = (time.process_time() - used) / count * 1000
    return (rate if rate is not None else count / (time.perf_counter() - start)), cpu


def run(url: str, count: int, rounds: int, connections: int, bare_pool: bool) -> dict[str, Any]:
    """Measure one database; return every round's figures and their medians."""
    port = _free_port()
    sink = subprocess.Popen([sys.executable, "-m", "bench.mail", "--sink", str(port)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None and sink.stdin is not None
    assert sink.stdout.readline().strip() == "ready"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bench_deadline.yaml").write_text(BENCH_YAML, encoding="utf-8")
        ctx = _setup(url, count, port, Path(tmp), connections)
    from notifications.deferred import render_queued

    start = time.perf_counter()
    fired = ctx.run_timers()
    rendered = render_queued(ctx.engine)  # the mail job's first step, before it sends
    render_s = time.perf_counter() - start
    assert fired == rendered == count, (fired, rendered)
    messages = _prebuild(ctx)
    def deliver() -> None:
        delivered = ctx.delivery.deliver_due_sync()
        assert delivered == count, delivered

    sides: dict[str, Any] = {"bare": lambda: asyncio.run(_bare(port, messages)), "deliver": deliver}
    if bare_pool:
        sides["bare_pool"] = lambda: asyncio.run(_bare(port, messages, connections))
    figures: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
    for i in range(rounds):
        order = list(sides) if i % 2 == 0 else list(reversed(sides))
        for side in order:
            figures[side].append(_timed(sides[side], count))
            if side == "deliver":
                _requeue(ctx)  # outside the timing
    sink.stdin.close()
    accepted = int(sink.stdout.readline())
    sink.wait()
    with ctx.db.read_session() as session:
        statuses = dict(session.execute(text("select status, count(*) from outbox group by status")).all())
    ctx.db.dispose()
    assert accepted == len(sides) * rounds * count, accepted
    assert statuses == {"pending": count}, statuses
    pooled = getattr(ctx.delivery, "connections", 1)
    rate = {side: [r for r, _ in figures[side]] for side in sides}
    cpu = {side: [c for _, c in figures[side]] for side in sides}
    ratios = [d / b for d, b in zip(rate["deliver"], rate["bare"], strict=True)]
    out: dict[str, Any] = {
        "count": count, "rounds": rounds, "connections": pooled, "render_per_s": count / render_s,
        "per_s": rate, "cpu_ms_per_msg": cpu, "ratios": ratios, "ratio": statistics.median(ratios),
        "deliver_per_s": statistics.median(rate["deliver"]), "bare_per_s": statistics.median(rate["bare"]),
    }
    if bare_pool:
        pool_ratios = [d / b for d, b in zip(rate["deliver"], rate["bare_pool"], strict=True)]
        out.update(pool_ratios=pool_ratios, pool_ratio=statistics.median(pool_ratios),
                   bare_pool_per_s=statistics.median(rate["bare_pool"]))
    labels = {"bare": "bare aiosmtplib loop, 1 connection", "deliver": f"deliver the outbox, {pooled} conn.",
              "bare_pool": f"bare aiosmtplib, {connections} connections"}
    print(f"  render into the outbox {count / render_s:6.0f} msg/s ({render_s:.1f} s)")
    for side in sides:
        print(f"  {labels[side]:<36} median {statistics.median(rate[side]):6.0f} msg/s (rounds: "
              f"{', '.join(f'{r:.0f}' for r in rate[side])}; client CPU median {statistics.median(cpu[side]):.2f} "
              f"ms/msg)")
    print(f"  deliver / bare loop: median {out['ratio']:.2f}x (per round: {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"goal >= 0.5x; stretch >= 1,000 msg/s)")
    if bare_pool:
        print(f"  deliver / bare pool: median {out['pool_ratio']:.2f}x "
              f"(per round: {', '.join(f'{r:.2f}' for r in out['pool_ratios'])})")
    return out


def main() -> None:
    """Parse arguments and run."""
    if len(sys.argv) > 2 and sys.argv[1] == "--sink":
        _sink(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=4, help="the delivery's pooled SMTP connections")
    parser.add_argument("--bare-pool", action="store_true", help="also time the bare loop over as many")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    pg_url = os.environ.get("VUOSIKELLO_BENCH_PG_URL")
    print("machine:")
    facts = machine_facts(pg_url)
    print_facts(facts)
    result: dict[str, Any] = {"command": " ".join(["python -m bench.mail", *sys.argv[1:]]), "facts": facts,
                              "load_start": os.getloadavg(), "results": {}}
    print(f"load average at start: {result['load_start']}")
    for db_name in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
        with tempfile.TemporaryDirectory() as tmp:
            if db_name == "sqlite":
                db = fresh_sqlite(Path(tmp) / "mail.db")
            elif not pg_url:
                print("PostgreSQL: skipped (VUOSIKELLO_BENCH_PG_URL is not set; give it a database of its own)")
                result["results"]["postgresql"] = None
                continue
            else:
                found = fresh_postgres(pg_url)
                if found is None:
                    result["results"]["postgresql"] = None
                    continue
                db = found
            db.dispose()
            print(f"{args.count:,} reminders on {db_name}:")
            result["results"][db_name] = run(db.url, args.count, args.rounds, args.connections, args.bare_pool)
    result["load_end"] = os.getloadavg()
    print(f"load average at end: {result['load_end']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
