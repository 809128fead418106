"""Reminder mail throughput: 10,000 reminders rendered into the outbox and delivered, beside a bare aiosmtplib loop.

An aiosmtpd sink runs in its own process (as a relay would) and only counts what it accepts. In one run:
1. render: `--count` reminder timers fall due and one sweep renders each (party_reminder in fi/sv/en, its .ics,
   a sign-in link) into the outbox, as the scheduler does;
2. then `--rounds` times, alternating: bare, one aiosmtplib connection sending `--count` messages built
   beforehand (the transport alone); deliver, `Delivery.deliver_due` sending the whole outbox over one connection:
   build each MIME message, send it, record `sent` per message (what keeps a crash from sending twice); the
   outbox is put back to `pending` between rounds.
The best round of each side is compared; the goal is delivery at least 0.5x the bare loop.

    .venv/bin/python -m bench.mail [--count 10000] [--rounds 3] [--db sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from bench.common import ROOT, fresh_postgres, fresh_sqlite, machine_facts, print_facts
from bench.timers import BENCH_YAML, PG_URL

CASES = 1000


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


async def _bare(port: int, count: int) -> float:
    """Send `count` prebuilt messages over one aiosmtplib connection; return messages per second."""
    import aiosmtplib

    messages = []  # built before the clock starts: the loop measures the transport alone
    for i in range(count):
        msg = EmailMessage()
        msg["From"] = "Vuosikello <no-reply@vuosikello.local>"
        msg["To"] = f"coordinator{i % 100}@example.fi"
        msg["Subject"] = f"Määräaikamuistutus {i}"
        msg["Message-ID"] = f"<bare-{i}@vuosikello.local>"
        msg.set_content("Muistutus määräajasta.\n" * 20)
        messages.append(msg)
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, local_hostname="bench.invalid")
    await smtp.connect()
    start = time.perf_counter()
    for msg in messages:
        await smtp.send_message(msg)
    elapsed = time.perf_counter() - start
    await smtp.quit()
    return count / elapsed


def _setup(url: str, count: int, port: int, definitions: Path):  # type: ignore[no-untyped-def]
    """Build a service context whose mail goes to the sink; create coordinators, cases and due reminder timers."""
    from sqlalchemy import insert

    from api.context import build_context
    from engine.actors import SYSTEM
    from engine.models import Person, Timer
    from engine.settings import Settings

    ctx = build_context(Settings(environment="test", database_url=url, smtp_host="127.0.0.1", smtp_port=port,
                                 scheduler_enabled=False, base_url="https://vuosikello.example.fi"))
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
        conn.execute(update(OutboxMessage.__table__).values(status="pending", attempts=0))  # type: ignore[attr-defined]


def run(url: str, count: int, rounds: int) -> dict[str, float]:
    """Measure one database; return the rates."""
    port = _free_port()
    sink = subprocess.Popen([sys.executable, "-m", "bench.mail", "--sink", str(port)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None and sink.stdin is not None
    assert sink.stdout.readline().strip() == "ready"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bench_deadline.yaml").write_text(BENCH_YAML, encoding="utf-8")
        ctx = _setup(url, count, port, Path(tmp))
    start = time.perf_counter()
    rendered = ctx.run_timers()
    render_s = time.perf_counter() - start
    assert rendered == count, rendered
    bares, delivers, cpu = [], [], {"bare": [], "deliver": []}
    for _ in range(rounds):
        used = time.process_time()
        bares.append(asyncio.run(_bare(port, count)))
        cpu["bare"].append((time.process_time() - used) / count * 1000)
        start, used = time.perf_counter(), time.process_time()
        delivered = ctx.delivery.deliver_due_sync()
        delivers.append(count / (time.perf_counter() - start))
        cpu["deliver"].append((time.process_time() - used) / count * 1000)
        assert delivered == count, delivered
        _requeue(ctx)
    sink.stdin.close()
    accepted = int(sink.stdout.readline())
    sink.wait()
    ctx.db.dispose()
    assert accepted == 2 * rounds * count, accepted
    bare, deliver = max(bares), max(delivers)
    out = {"bare_per_s": bare, "render_per_s": count / render_s, "deliver_per_s": deliver,
           "end_to_end_per_s": 1 / (1 / (count / render_s) + 1 / deliver), "ratio": deliver / bare}
    print(f"  render into the outbox   {out['render_per_s']:6.0f} msg/s ({render_s:.1f} s)")
    print(f"  bare aiosmtplib loop     {bare:6.0f} msg/s (rounds: {', '.join(f'{r:.0f}' for r in bares)}; "
          f"client CPU {min(cpu['bare']):.2f} ms/msg, message built beforehand)")
    print(f"  deliver the outbox       {deliver:6.0f} msg/s (rounds: {', '.join(f'{r:.0f}' for r in delivers)}; "
          f"client CPU {min(cpu['deliver']):.2f} ms/msg) = {out['ratio']:.2f}x the bare loop")
    print(f"  render + deliver         {out['end_to_end_per_s']:6.0f} msg/s "
          f"= {out['end_to_end_per_s'] / bare:.2f}x the bare loop")
    return out


def main() -> None:
    """Parse arguments and run."""
    if len(sys.argv) > 2 and sys.argv[1] == "--sink":
        _sink(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    print("machine:")
    print_facts(machine_facts(PG_URL if args.db == "postgresql" else None))
    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.db == "sqlite":
            db = fresh_sqlite(Path(tmp) / "mail.db")
        else:
            found = fresh_postgres(PG_URL)
            if found is None:
                return
            db = found
        db.dispose()
        print(f"{args.count:,} reminders on {args.db}:")
        run(db.url, args.count, args.rounds)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
