"""Benchmark: "my tasks" and the agreement page for a signatory with 50 open cases, 50 concurrent clients.

Run: `python -m bench.pages [sqlite|postgres] [requests per client]`. Serves the app with uvicorn (one
process) on a fresh database, signs 50 browsers in, and has each fetch both pages in turn over real HTTP.
PostgreSQL uses VUOSIKELLO_TEST_PG_URL (its tables are dropped and re-created). BENCH_PATHS=/healthz,/signin
measures other paths instead (e.g. the framework's own cost); BENCH_CLIENTS=1 gives the unloaded time. The
clients run in a second process.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import date

import httpx
from sqlalchemy import text
from sqlmodel import Session

from api.context import build_context
from api.schema import metadata
from api.web.config import WebConfig
from api.web.sessions import start_session
from engine.clock import ManualClock
from engine.db import make_database
from engine.directory import DEFAULT_ORGANISATIONS, import_organisations
from engine.settings import Settings
from tests.conftest import START
from tests.support.builders import create_agreement, make_user
from tests.web.live import live_server
from workflows.agreement.models import PartySignatory

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "50"))
OPEN_CASES = 50


def _database(kind: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    url = os.environ.get("VUOSIKELLO_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    db = make_database(url)
    metadata().drop_all(db.engine)
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    db.dispose()
    return url


def load(base: str, cookies: list[str], paths: list[str], rounds: int) -> tuple[dict[str, list[float]], list[str],
                                                                                float]:
    """Have one thread per cookie fetch the pages in turn; return the timings, the errors and the wall time."""
    timings: dict[str, list[float]] = {p: [] for p in paths}
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(cookies))

    def client(cookie: str) -> None:
        with httpx.Client(base_url=base, cookies={"vk_session": cookie}, timeout=60) as http:
            barrier.wait()
            for _ in range(rounds):
                for path in paths:
                    started = time.perf_counter()
                    r = http.get(path)
                    elapsed = time.perf_counter() - started
                    with lock:
                        timings[path].append(elapsed)
                        if r.status_code != 200:
                            errors.append(f"{path}: {r.status_code}")

    threads = [threading.Thread(target=client, args=(c,)) for c in cookies]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return timings, errors, time.perf_counter() - started


def main(kind: str = "sqlite", rounds: int = 10) -> None:
    url = _database(kind)
    db = make_database(url, pool_size=60)
    metadata().create_all(db.engine)
    clock = ManualClock(START)
    ctx = build_context(Settings(environment="test", database_url=url, base_url="http://testserver",
                                 scheduler_enabled=False), clock=clock, db=db)
    with Session(db.engine) as session:
        import_organisations(session, DEFAULT_ORGANISATIONS, clock.now())
        session.commit()
    me = make_user(ctx, org_key="wellbeing_county:08", name="Hyvinvointialuejohtaja")
    first = create_agreement(ctx, parties=25, deadline=date(2026, 6, 19))  # a Pirkanmaa-sized agreement page
    with Session(db.engine) as session:
        session.add(PartySignatory(party_case_id=first.id + 1, person_id=me.id))
        session.commit()
    for i in range(OPEN_CASES - 1):  # 49 more open cases for the same county
        fx = create_agreement(ctx, parties=3, deadline=date(2026, 4, 1 + i % 28), coordinator=first.coordinator)
        with Session(db.engine) as session:
            session.add(PartySignatory(party_case_id=fx.id + 1, person_id=me.id))
            session.commit()
    cookies = [ctx.engine.run(lambda uow: start_session(uow.session, WebConfig(cookie_secure=False), me.id, "link",
                                                        uow.now)) for _ in range(CLIENTS)]
    paths = [p for p in os.environ.get("BENCH_PATHS", "").split(",") if p] or ["/tasks", f"/agreements/{first.id}"]
    with live_server(ctx) as base:
        # the clients run in another process, so that they do not compete with the server for the GIL
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            timings, errors, wall = pool.apply(load, (base, cookies, paths, rounds))
    total = sum(len(v) for v in timings.values())
    print(f"{kind}: {CLIENTS} clients x {rounds} rounds, {total} requests in {wall:.1f} s "
          f"({total / wall:.0f} req/s), errors: {len(errors)}")
    for path, values in timings.items():
        values.sort()
        p95 = values[int(len(values) * 0.95) - 1]
        print(f"  {path:18} n={len(values):4}  p50 {statistics.median(values) * 1000:6.0f} ms  "
              f"p95 {p95 * 1000:6.0f} ms  max {values[-1] * 1000:6.0f} ms")
    db.dispose()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "sqlite", int(sys.argv[2]) if len(sys.argv) > 2 else 10)
