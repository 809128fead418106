"""A real service process for crash tests: the runner (`python -m tests.support.service_process`) and its handle.

The runner builds an AppContext from VUOSIKELLO_* environment settings (as `vuosikello serve` does), loads the
test-only definitions in VK_EXTRA_DEFINITIONS, starts the scheduler, prints `ready <pid>` and runs until SIGTERM
(a clean shutdown) or SIGKILL (the crash under test). The test side starts it with `ServiceProcess.start`, kills it
with `kill9`, and seeds cases and timer rows with `create_probe_cases` and `insert_timers`.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0  # importing the service takes ~2 s on an idle machine, over 15 s at a load of 10 on 2 cores

# A small workflow: `ping` stays in `open`, records an event and mails the coordinator, so every firing of a
# deadline timer leaves countable traces (an event, an outbox row, a received email) that a double fire would double;
# `close` leaves `open`, which cancels the case's pending timers.
PROBE_YAML = """
name: crash_probe
version: 1
title: {fi: Koetapaus, sv: Provärende, en: Probe case}
initial: open
states:
  open:
    description: Open; the timers a test inserts fire here.
  closed:
    description: Closed; nothing more happens.
    final: true
transitions:
  - trigger: ping
    source: open
    roles: [system]
    event: Pinged
    notify:
      - {to: [coordinator], template: deadline_passed}
  - trigger: close
    source: open
    dest: closed
    roles: [system]
    event: Closed
"""


def write_probe_definition(folder: Path) -> Path:
    """Write the probe workflow definition into a folder (created) and return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "crash_probe.yaml").write_text(PROBE_YAML, encoding="utf-8")
    return folder


def create_probe_cases(ctx: Any, *, coordinators: list[int], deadline: date, count: int) -> list[tuple[int, int]]:
    """Create `count` probe cases, coordinators taken in turn; return (case id, coordinator id) pairs."""
    from engine.actors import SYSTEM

    def work(uow: Any) -> list[tuple[int, int]]:
        out = []
        for i in range(count):
            coordinator = coordinators[i % len(coordinators)]
            case = uow.create_case("crash_probe", actor=SYSTEM, title=f"Koetapaus {i + 1}", deadline=deadline,
                                   coordinator_id=coordinator)
            out.append((case.id, coordinator))
        return out
    cases: list[tuple[int, int]] = ctx.engine.run(work)
    return cases


def insert_timers(ctx: Any, rows: list[dict[str, Any]]) -> None:
    """Insert pending timer rows directly (the schedule is the rows); `rows` need case_id, kind, name, due_at."""
    from engine.models import Timer

    created = ctx.clock.now()
    full = [{"state": "open", "armed_seq": 1, "roles": "coordinator", "status": "pending", "created_at": created,
             "trigger": None, "offset": None, "deadline": None, "template": None,
             "dedupe_key": f"test:{r['case_id']}:{r['name']}", **r} for r in rows]
    with ctx.db.write_engine.begin() as conn:
        conn.execute(insert(Timer.__table__), full)  # type: ignore[attr-defined]


@dataclass
class ServiceProcess:
    """One running service process, seen from the test."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes]

    @classmethod
    def start(cls, env: dict[str, str], log_path: Path, *, wait: bool = True) -> ServiceProcess:
        """Spawn the runner with extra environment; by default wait for its `ready` line."""
        log = open(log_path, "ab")  # noqa: SIM115 - closed by stop()
        proc = subprocess.Popen([sys.executable, "-m", "tests.support.service_process"], cwd=ROOT,
                                env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=log)
        service = cls(proc, log_path, log)
        if wait:
            service.wait_ready()
        return service

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> float:
        """Block until the runner printed `ready`; return how long it took."""
        assert self.proc.stdout is not None
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            readable, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if readable:
                line = self.proc.stdout.readline()
                if line.startswith(b"ready"):
                    return time.monotonic() - started
                if not line:
                    break
        self.stop()
        raise AssertionError(f"service {self.pid} not ready (exit {self.proc.returncode}):\n{self.log_tail()}")

    def kill9(self) -> None:
        """Kill the process with SIGKILL, as a crash would, and reap it."""
        self.proc.kill()
        self.stop()

    def terminate(self, timeout: float = 30.0) -> int:
        """Ask for a clean shutdown (SIGTERM); return the exit code."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.stop()
        return self.proc.returncode

    def stop(self) -> None:
        """Reap the process (killing it if still alive) and close its pipes and log."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        """Return the end of the process's log, for failure messages."""
        return log_tail(self.log_path, lines)


@contextmanager
def reaped(proc: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """Kill a child process and wait for it however the block ends (killing one already gone is harmless), and
    close its stdout."""
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def log_tail(path: Path, lines: int = 40) -> str:
    """Return the end of a log file (several processes may share one), for failure messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def main() -> int:
    """Run the service's scheduler until SIGTERM."""
    from api.context import build_context
    from engine.scheduler import SchedulerLocked
    from engine.settings import Settings

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s {os.getpid()} %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ctx = build_context(Settings())
    extra = os.environ.get("VK_EXTRA_DEFINITIONS")
    if extra:
        ctx.registry.load_dir(Path(extra))
    try:
        ctx.start_scheduler()
    except SchedulerLocked as exc:
        print(f"refused: {exc}", file=sys.stderr, flush=True)
        return 3
    print(f"ready {os.getpid()} {datetime.now().isoformat()}", flush=True)
    while not stop.wait(0.5):
        pass
    assert ctx.scheduler is not None
    ctx.scheduler.shutdown()
    ctx.db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
