"""Persisted transitions per second through the engine against raw SQL doing the same writes, SQLite and PostgreSQL.

Each side runs one transaction per transition: lock and read the case, update its state, version and hash head,
insert the hash-chained event, commit. The engine side is `Engine.run(lambda uow: uow.fire(...))` on cases of a
one-state loop definition (`touch`: open -> open, one integer payload field); the baseline is raw sqlite3 (WAL,
synchronous=NORMAL, BEGIN IMMEDIATE, as the engine configures it) or raw psycopg (SELECT ... FOR UPDATE). Rounds
alternate between the two sides, on the same kind of database, and the best round of each is compared.

    .venv/bin/python -m bench.transitions [--count 3000] [--rounds 5] [--no-postgres] [--profile | --ablate]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import (
    PG_URL,
    fresh_postgres,
    fresh_sqlite,
    load_average,
    loop_registry,
    machine_facts,
    print_facts,
)
from bench.raw_loop import create_cases, raw_postgres, raw_sqlite
from engine.clock import SystemClock
from engine.db import Database
from engine.service import Engine

CASES = 1000
def through_engine(engine: Engine, ids: list[int]) -> Callable[[int], None]:
    """Return a runner firing `touch` through the engine, one transaction each."""
    counter = iter(range(10**9))

    def run(count: int) -> None:
        for _ in range(count):
            n = next(counter)
            cid = ids[n % len(ids)]
            engine.run(lambda uow: uow.fire(cid, "touch", payload={"n": n}))

    return run


def compare(name: str, baseline: Callable[[int], None], engine_run: Callable[[int], None], count: int,
            rounds: int) -> dict[str, float]:
    """Alternate rounds of the two runners; print and return the best rates and their ratio.

    Wall-clock rates are the goal's measure. On SQLite, where all the work happens in this process, rates from
    CPU time (time.process_time) are printed too: they barely move when other processes share the machine.
    """
    baseline(200)
    engine_run(200)  # warm up: caches, prepared statements, the WAL
    wall: dict[str, list[float]] = {"raw": [], "engine": []}
    cpu: dict[str, list[float]] = {"raw": [], "engine": []}
    for _ in range(rounds):
        for side, runner in (("raw", baseline), ("engine", engine_run)):
            w0, c0 = time.perf_counter(), time.process_time()
            runner(count)
            wall[side].append(count / (time.perf_counter() - w0))
            cpu[side].append(count / max(time.process_time() - c0, 1e-9))
    base, eng = max(wall["raw"]), max(wall["engine"])
    result = {"raw": base, "engine": eng, "ratio": eng / base,
              "raw_cpu": max(cpu["raw"]), "engine_cpu": max(cpu["engine"])}
    result["ratio_cpu"] = result["engine_cpu"] / result["raw_cpu"]
    print(f"  {name:<10} raw {base:7.0f}/s   engine {eng:7.0f}/s   ratio {eng / base:.2f}x"
          f"   rounds raw {[round(r) for r in wall['raw']]} engine {[round(r) for r in wall['engine']]}")
    if name == "sqlite":
        print(f"  {'':<10} by CPU time: raw {result['raw_cpu']:7.0f}/s   engine {result['engine_cpu']:7.0f}/s   "
              f"ratio {result['ratio_cpu']:.2f}x")
    return result


def bench_sqlite(workdir: Path, count: int, rounds: int) -> dict[str, float]:
    """Compare on two identical SQLite files."""
    registry = loop_registry()
    engine_db = fresh_sqlite(workdir / "engine.db")
    raw_db = fresh_sqlite(workdir / "raw.db")
    engine = Engine(engine_db, registry, SystemClock())
    ids = create_cases(engine, CASES)
    raw_ids = create_cases(Engine(raw_db, registry, SystemClock()), CASES)
    raw_db.dispose()
    result = compare("sqlite", raw_sqlite(workdir / "raw.db", raw_ids), through_engine(engine, ids), count, rounds)
    engine_db.dispose()
    return result


def bench_postgres(url: str, count: int, rounds: int) -> dict[str, float] | None:
    """Compare on one PostgreSQL database, on two disjoint sets of cases."""
    db = fresh_postgres(url)
    if db is None:
        return None
    engine = Engine(db, loop_registry(), SystemClock())
    ids = create_cases(engine, CASES)
    raw_ids = create_cases(engine, CASES)
    result = compare("postgresql", raw_postgres(url, raw_ids), through_engine(engine, ids), count, rounds)
    db.dispose()
    return result


def profile_engine(workdir: Path, count: int, db: Database | None = None) -> None:
    """Print the engine's hot path on SQLite, by cumulative and own time."""
    db = db or fresh_sqlite(workdir / "profile.db")
    engine = Engine(db, loop_registry(), SystemClock())
    run = through_engine(engine, create_cases(engine, CASES))
    run(200)
    profiler = cProfile.Profile()
    profiler.runcall(run, count)
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("cumulative").print_stats(35)
    stats.sort_stats("tottime").print_stats(25)
    db.dispose()


def ablate(workdir: Path, count: int, rounds: int) -> dict[str, float]:
    """Print the CPU time of one transition on SQLite with parts of the engine's savings undone, one at a time.

    Each variant puts back one cost the hot path avoids: an SQLAlchemy Connection over the transaction (what
    Core statements or a Session need), an ORM Session opened in every transaction, no idle write connections
    (a pool checkout and reset per transaction). Alternating rounds, minimum CPU µs per transition.
    """
    import engine.db as engine_db

    db = fresh_sqlite(workdir / "ablate.db")
    engine = Engine(db, loop_registry(), SystemClock())
    ids = create_cases(engine, CASES)
    counter = iter(range(10**9))

    def variant(extra: Callable[[Any], Any], idle: int = engine_db.IDLE_WRITERS) -> Callable[[int], None]:
        def run(n: int) -> None:
            saved, engine_db.IDLE_WRITERS = engine_db.IDLE_WRITERS, idle
            try:
                for _ in range(n):
                    k = next(counter)
                    engine.run(lambda uow: (extra(uow), uow.fire(ids[k % CASES], "touch", payload={"n": k})))
            finally:
                engine_db.IDLE_WRITERS = saved
        return run

    variants = {
        "raw sqlite3 baseline": raw_sqlite(workdir / "ablate.db", ids),
        "engine as shipped": variant(lambda uow: None),
        "+ SQLAlchemy Connection": variant(lambda uow: uow.conn),
        "+ ORM Session per transaction": variant(lambda uow: uow.session.connection()),
        "- idle write connections": variant(lambda uow: None, idle=0),
    }
    best = {name: float("inf") for name in variants}
    for run in variants.values():
        run(200)
    for _ in range(rounds):
        for name, run in variants.items():
            c0 = time.process_time()
            run(count)
            best[name] = min(best[name], (time.process_time() - c0) / count * 1e6)
    print("CPU µs per transition on SQLite (minimum over the rounds)")
    for name, micros in best.items():
        print(f"  {name:<32} {micros:7.1f} µs")
    db.dispose()
    return best


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the comparison on SQLite and PostgreSQL and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000, help="transitions per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--profile", action="store_true", help="profile the engine on SQLite instead")
    parser.add_argument("--ablate", action="store_true", help="CPU cost of each saving, undone one at a time")
    parser.add_argument("--scale", action="store_true",
                        help="cost per transition with --large cases against --small (SQLite pragmas compared)")
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke test, not for quoting)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--no-facts", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.rounds, args.large = 300, 2, 5_000
    with tempfile.TemporaryDirectory(prefix="vk-bench-") as tmp:
        if args.scale:
            print("cost per transition on a random case: many cases against few (SQLite, then PostgreSQL)")
            from bench.scale import bench_scale, bench_scale_postgres

            scale = bench_scale(Path(tmp), args.small, args.large, args.count, args.rounds)
            if not args.no_postgres:
                pg = bench_scale_postgres(args.pg_url, args.small, args.large, args.count, args.rounds)
                if pg is not None:
                    scale["postgresql"] = pg
                scale["load_end"] = load_average()
            if args.json:
                args.json.write_text(json.dumps({"bench": "transitions_scale", **scale}, indent=2))
            return scale
        if args.profile:
            profile_engine(Path(tmp), args.count)
            return {}
        if args.ablate:
            return ablate(Path(tmp), args.count, args.rounds)
        print("transitions per second (one transaction each; best of the rounds)")
        if not args.no_facts:
            print_facts(machine_facts(None if args.no_postgres else args.pg_url))
        results: dict[str, Any] = {"sqlite": bench_sqlite(Path(tmp), args.count, args.rounds)}
        if not args.no_postgres:
            results["postgresql"] = bench_postgres(args.pg_url, args.count, args.rounds)
    if args.json:
        args.json.write_text(json.dumps({"bench": "transitions", "load_end": load_average(), **results}, indent=2))
    return results


if __name__ == "__main__":
    main()
