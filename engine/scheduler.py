"""APScheduler 3 wakes the engine every second; only the leader sweeps. The database rows are the schedule.

SQLite: one scheduler per database file, held by an OS file lock (released when the process dies); a second one
refuses to start. PostgreSQL: several processes may run; a session advisory lock (scoped to its database, so
several Vuosikello databases share a server) elects the leader, a lease row carries a fencing epoch bumped at each
takeover, and followers terminate a leader whose heartbeat is 20 s stale, so a new leader takes over within 30 s.
Claims use FOR UPDATE SKIP LOCKED, so even two leaders never double-fire.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import configure_mappers

from engine.db import rowcount
from engine.errors import EngineError
from engine.service import Engine, UnitOfWork

log = logging.getLogger("vuosikello.scheduler")
LOCK_KEY = 0x76_6B_5F_73  # "vk_s"
STALE_AFTER = timedelta(seconds=20)
Job = Callable[[Callable[[UnitOfWork], None]], Any]


class SchedulerLocked(RuntimeError):
    """Another scheduler already runs on this database."""


class LostLeadership(EngineError):
    """This process is no longer the leader; its work is refused."""

    status_code = 409


class Leadership:
    """Who may sweep: a file lock on SQLite, an advisory lock plus fenced lease on PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.epoch: int | None = None
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self._file: IO[str] | None = None
        self._conn: Connection | None = None

    @property
    def is_leader(self) -> bool:
        """Tell whether this process currently leads."""
        return self.epoch is not None

    def acquire(self) -> bool:
        """Try to become the leader; return whether this process leads now."""
        if self.is_leader:
            return self._still_leader()
        return self._acquire_file() if self.engine.db.is_sqlite else self._acquire_pg()

    def _acquire_file(self) -> bool:
        path = Path(self.engine.db.engine.url.database or "vuosikello.db").resolve()
        handle = open(f"{path}.scheduler.lock", "a+", encoding="utf-8")  # noqa: SIM115 - held for the process
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise SchedulerLocked(f"another scheduler already runs on {path}") from None
        self._file = handle
        self.epoch = self._bump_epoch()
        return True

    def _acquire_pg(self) -> bool:
        conn = self.engine.db.engine.connect()
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar()
        conn.commit()
        if not got:
            self._evict_stale_leader(conn)
            conn.close()
            return False
        self._conn = conn
        try:
            self.epoch = self._bump_epoch()
        except BaseException:
            self.release()  # never keep the lock without an epoch: nobody could lead until eviction
            raise
        log.info("scheduler leadership taken by %s (epoch %s)", self.holder, self.epoch)
        return True

    def _evict_stale_leader(self, conn: Connection) -> None:
        now = self.engine.clock.now()
        beat = conn.execute(text("SELECT heartbeat_at FROM scheduler_lease WHERE name='main'")).scalar()
        if beat is not None and now - beat.replace(tzinfo=now.tzinfo) > STALE_AFTER:
            # The lock's session and every open transaction of the stale leader: each fenced transaction holds
            # the lease row, and a frozen one would block the new leader's epoch bump for as long as it sleeps.
            # Only this database's backends: an advisory lock belongs to the database it was taken in (its lock tag
            # carries the database's OID, so one key serves every Vuosikello database on a server without clashing),
            # but pg_locks lists the locks of every database, hence the filter on l.database.
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM (SELECT DISTINCT l.pid FROM pg_locks l "
                "LEFT JOIN pg_class c ON c.oid = l.relation WHERE l.granted AND l.pid <> pg_backend_pid() "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND ((l.locktype = 'advisory' AND l.classid = 0 AND l.objid = :k) OR (l.locktype = 'relation' "
                "AND c.relname = 'scheduler_lease' AND l.mode = 'RowExclusiveLock'))) AS stale"), {"k": LOCK_KEY})
            log.warning("terminated a scheduler leader whose heartbeat was stale since %s", beat)
        conn.commit()

    def _bump_epoch(self) -> int:
        def work(uow: UnitOfWork) -> int:
            s = uow.session
            now = uow.now.replace(tzinfo=None)
            row = s.execute(text("SELECT epoch FROM scheduler_lease WHERE name='main'")).scalar()
            if row is None:
                s.execute(text("INSERT INTO scheduler_lease (name, holder, epoch, heartbeat_at) "
                               "VALUES ('main', :h, 1, :t)"), {"h": self.holder, "t": now})
                return 1
            s.execute(text("UPDATE scheduler_lease SET holder=:h, epoch=epoch+1, heartbeat_at=:t WHERE name='main'"),
                      {"h": self.holder, "t": now})
            return int(row) + 1
        epoch: int = self.engine.run(work)
        return epoch

    def _still_leader(self) -> bool:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1")).scalar()
                self._conn.commit()
            except Exception:  # noqa: BLE001 - a dead lock connection means leadership is gone
                log.warning("scheduler lock connection lost; stepping down")
                self.release()
                return False
        return True

    def fence(self, uow: UnitOfWork) -> None:
        """Refuse the transaction unless this process still holds the newest epoch; renew the heartbeat."""
        # One conditional UPDATE checks and renews at once; its row lock makes a takeover's epoch bump wait
        # until this transaction ends, so no work commits under an epoch that has already moved on.
        renewed = rowcount(uow.session.execute(
            text("UPDATE scheduler_lease SET heartbeat_at=:t WHERE name='main' AND epoch=:e"),
            {"t": uow.now.replace(tzinfo=None), "e": self.epoch}))
        if renewed != 1:
            current = uow.session.execute(text("SELECT epoch FROM scheduler_lease WHERE name='main'")).scalar()
            self.epoch = None
            raise LostLeadership(f"scheduler epoch moved to {current}")

    def release(self) -> None:
        """Give up leadership."""
        self.epoch = None
        if self._conn is not None:
            try:  # a session-level advisory lock outlives close(): the pool would keep it held
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                self._conn.commit()
            except Exception:  # noqa: BLE001 - a dead connection holds no lock; drop it from the pool
                self._conn.invalidate()
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - the connection may already be dead
                log.debug("closing the lock connection failed", exc_info=True)
            self._conn = None
        if self._file is not None:
            self._file.close()
            self._file = None


class Scheduler:
    """Runs the sweeps every `interval` seconds in a background thread, only while leading."""

    def __init__(self, engine: Engine, jobs: list[Job], interval: float = 1.0,
                 on_lead: list[Job] | None = None) -> None:
        self.leadership = Leadership(engine)
        self.jobs = jobs
        self.on_lead = on_lead or []  # run once per epoch this process leads, before its jobs (crash recovery)
        self.interval = interval
        self._aps: BackgroundScheduler | None = None
        self._led_epoch: int | None = None

    def start(self) -> None:
        """Start ticking; on SQLite raise SchedulerLocked if another scheduler holds the file."""
        self.leadership.acquire()
        # The ORM configures its mappers at their first use: 0.3-0.75 s that the first sweep after a start (a burst
        # of timers that fell due during the downtime) would otherwise spend before firing anything.
        configure_mappers()
        # Nothing of the business lives in APScheduler: one in-memory interval job that never misfires away.
        self._aps = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1,
                                                      "misfire_grace_time": None})
        self._aps.add_job(self.tick, "interval", seconds=self.interval, id="sweep")
        self._aps.start()

    def tick(self) -> int:
        """Run every job once if leading; return how much work was done."""
        try:
            if not self.leadership.acquire():
                return 0
            if self._led_epoch != self.leadership.epoch:
                for hook in self.on_lead:
                    hook(self.leadership.fence)
                self._led_epoch = self.leadership.epoch
            return sum(int(job(self.leadership.fence) or 0) for job in self.jobs)
        except LostLeadership:
            log.warning("lost scheduler leadership")
            return 0
        except Exception:  # noqa: BLE001 - the scheduler thread must survive a failing sweep
            log.exception("scheduler sweep failed")
            return 0

    def shutdown(self) -> None:
        """Stop ticking and release leadership."""
        if self._aps is not None:
            self._aps.shutdown(wait=True)
            self._aps = None
        self.leadership.release()
