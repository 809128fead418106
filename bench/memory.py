"""Resident memory while loading 1,000 random cases out of 100,000 and firing a trigger on each.

A child process fills the database (100,000 one-state-loop cases, each with its `Created` event), so this
process starts as a server would: imports done, nothing cached. After one warm-up request it loads each of
1,000 random cases through the ORM (as `GET /cases/{id}` does) and fires `touch` on it through the engine,
sampling RSS (psutil) as it goes. Goal: growth < 50 MB. It then checks that no case stays attached to the
shared transitions Machine: only the one handle per thread that the engine keeps there.

    .venv/bin/python -m bench.memory [--cases 100000] [--fires 1000] [--postgres]
"""

from __future__ import annotations

import argparse
import gc
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import select

from bench.common import PG_URL, fresh_postgres, fresh_sqlite, loop_registry
from engine.actors import SYSTEM
from engine.clock import SystemClock
from engine.db import make_database
from engine.machine import _Handle
from engine.models import Case
from engine.service import Engine

MB = 2**20


def fill(url: str, cases: int) -> None:
    """Create the schema and `cases` loop cases (run in a child process)."""
    db = fresh_sqlite(Path(url.removeprefix("sqlite:///"))) if url.startswith("sqlite") else fresh_postgres(url)
    if db is None:
        sys.exit(2)
    engine = Engine(db, loop_registry(), SystemClock())
    start = time.perf_counter()
    for done in range(0, cases, 1000):
        batch = min(1000, cases - done)
        engine.run(lambda uow, b=batch: [uow.create_case("bench_loop", actor=SYSTEM) for _ in range(b)])
    print(f"  filled {cases} cases in {time.perf_counter() - start:.1f} s")
    db.dispose()


def rss() -> int:
    """Return this process's resident set size in bytes."""
    return int(psutil.Process().memory_info().rss)


def measure(url: str, fires: int, seed: int = 2026) -> dict[str, Any]:
    """Load and fire on `fires` random cases; return RSS figures and what the Machine holds."""
    gc.collect()
    cold = rss()
    db = make_database(url)
    registry = loop_registry()
    engine = Engine(db, registry, SystemClock())
    with db.read_session() as session:
        ids = list(session.execute(select(Case.id)).scalars())
    picks = random.Random(seed).sample(ids, fires)
    del ids

    def one(case_id: int, n: int) -> None:
        with db.read_session() as session:
            case = session.get(Case, case_id)
            assert case is not None and case.state == "open"
        engine.run(lambda uow: uow.fire(case_id, "touch", payload={"n": n}))

    one(picks[0], 0)  # warm-up: pool connection, compiled statements, the thread's machine handle
    gc.collect()
    base = peak = rss()
    start = time.perf_counter()
    for n, case_id in enumerate(picks):
        one(case_id, n)
        if n % 50 == 0:
            peak = max(peak, rss())
    elapsed = time.perf_counter() - start
    gc.collect()
    after = rss()
    peak = max(peak, after)
    machine = registry.machine("bench_loop").machine
    attached = list(machine.models)
    db.dispose()
    return {"cold_mb": cold / MB, "base_mb": base / MB, "after_mb": after / MB, "peak_mb": peak / MB,
            "growth_mb": (after - base) / MB, "growth_from_cold_mb": (after - cold) / MB,
            "fires": fires, "fires_per_s": fires / elapsed, "models_attached": len(attached),
            "cases_attached": sum(not isinstance(m, _Handle) for m in attached)}


def run(url: str, cases: int, fires: int) -> dict[str, Any]:
    """Fill in a child process, measure here, print the figures."""
    child = subprocess.run([sys.executable, "-m", "bench.memory", "--fill", url, "--cases", str(cases)],
                           check=False, capture_output=True, text=True)
    print(child.stdout.rstrip())
    if child.returncode != 0:
        print(child.stderr.rstrip()[-2000:])
        raise SystemExit("filling the database failed")
    result = measure(url, fires)
    verdict = "ok" if result["growth_mb"] < 50 else "OVER the 50 MB goal"
    print(f"  RSS {result['base_mb']:.1f} MB after warm-up -> {result['after_mb']:.1f} MB after {fires} "
          f"load+fire ({result['fires_per_s']:.0f}/s): growth {result['growth_mb']:+.1f} MB ({verdict}); "
          f"peak {result['peak_mb']:.1f} MB; from before connecting {result['growth_from_cold_mb']:+.1f} MB")
    print(f"  transitions Machine: {result['models_attached']} model(s) attached, "
          f"{result['cases_attached']} of them cases")
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the memory benchmark on SQLite (and PostgreSQL with --postgres)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--fires", type=int, default=1000)
    parser.add_argument("--postgres", action="store_true", help="also run on PostgreSQL")
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--fill", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fill:
        fill(args.fill, args.cases)
        return {}
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="vk-bench-") as tmp:
        print(f"memory: {args.cases} cases, load + fire on {args.fires} random ones")
        print(" sqlite")
        results["sqlite"] = run(f"sqlite:///{Path(tmp) / 'memory.db'}", args.cases, args.fires)
    if args.postgres and not args.pg_url:
        print(" postgresql skipped: VUOSIKELLO_BENCH_PG_URL is not set (give the benchmarks a database of their own)")
    elif args.postgres:
        print(" postgresql")
        results["postgresql"] = run(args.pg_url, args.cases, args.fires)
    return results


if __name__ == "__main__":
    main()
