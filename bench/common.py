"""Shared by the benchmarks: database set-up, the one-state loop definition, machine facts, result printing."""

from __future__ import annotations

import os
import platform
import sqlite3
import sys
from pathlib import Path

from sqlalchemy import text

from api.schema import metadata
from engine.db import Database, make_database
from engine.definition import parse_definition
from engine.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
# A database the person running the benchmarks created for them (they drop and recreate every table in it), e.g.
# `createdb -h 127.0.0.1 -U postgres vk_bench_$USER`. There is no default: without it PostgreSQL is skipped, so a
# benchmark never empties a database it did not create (the test database least of all).
PG_URL: str | None = os.environ.get("VUOSIKELLO_BENCH_PG_URL") or None

LOOP_YAML = """
name: bench_loop
version: 1
title: {fi: Kierto, sv: Slinga, en: Loop}
initial: open
states:
  open:
    description: The only state; every trigger returns to it.
transitions:
  - trigger: touch
    source: open
    dest: open
    roles: [system]
    event: Touched
    payload:
      n: {type: integer, required: true}
"""


def loop_registry() -> Registry:
    """Return a registry holding only the one-state loop definition."""
    registry = Registry()
    registry.register(parse_definition(LOOP_YAML, "bench_loop"))
    return registry


def fresh_sqlite(path: Path) -> Database:
    """Create an empty SQLite file with the whole schema."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    db = make_database(f"sqlite:///{path}")
    metadata().create_all(db.engine)
    return db


def fresh_postgres(url: str | None = PG_URL) -> Database | None:
    """Drop and recreate the schema in the benchmark's PostgreSQL database; None when unset or unreachable."""
    if not url:
        print("  PostgreSQL skipped: VUOSIKELLO_BENCH_PG_URL is not set (give the benchmarks a database of their own)")
        return None
    db = make_database(url)
    try:
        with db.engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        print(f"  PostgreSQL unreachable at {url}: {str(exc).splitlines()[0]} -- skipped")
        db.dispose()
        return None
    metadata().drop_all(db.engine)
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    metadata().create_all(db.engine)
    return db


def psycopg_url(url: str) -> str:
    """Turn a SQLAlchemy URL into a libpq one."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def load_average() -> list[float]:
    """Return the 1, 5 and 15 minute load averages (every figure is quoted with them)."""
    return [round(x, 2) for x in os.getloadavg()]


def machine_facts(pg_url: str | None = PG_URL) -> dict[str, str]:
    """Collect the facts a reader needs to compare numbers: CPU, cores, RAM, versions."""
    import psutil

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts = {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "load": "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()),
    }
    if pg_url:
        try:
            import psycopg

            with psycopg.connect(psycopg_url(pg_url), connect_timeout=3) as conn:
                row = conn.execute("show server_version").fetchone()
                facts["postgresql"] = row[0] if row else "?"
        except Exception:  # noqa: BLE001 - unreachable is a fact too
            facts["postgresql"] = "unreachable"
    return facts


def print_facts(facts: dict[str, str]) -> None:
    """Print machine facts as aligned lines."""
    for key, value in facts.items():
        print(f"  {key:<11} {value}")
