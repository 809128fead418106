"""Cost of one transition on a random case among 100,000 against among 1,000: SQLite (pragmas compared) and PostgreSQL.

Run through `python -m bench.transitions --scale`; the counted twin is bench/scale_counts.py.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import fresh_sqlite, load_average, loop_registry
from bench.raw_loop import create_cases, raw_sqlite
from engine.clock import SystemClock
from engine.db import Database
from engine.service import Engine


def _per_transition(runner: Callable[[int], None], count: int, cpu: list[float] | None = None) -> float:
    """Return the wall µs per transition; append the process's CPU µs per transition to `cpu` when given."""
    t0, c0 = time.perf_counter(), time.process_time()
    runner(count)
    if cpu is not None:
        cpu.append((time.process_time() - c0) / count * 1e6)
    return (time.perf_counter() - t0) / count * 1e6


def random_touches(engine: Engine, ids: list[int], seed: int) -> Callable[[int], None]:
    """Return a runner firing `touch` on cases drawn at random (uniformly) from `ids`, one transaction each."""
    pick = random.Random(seed)
    counter = iter(range(10**9))

    def run(count: int) -> None:
        for _ in range(count):
            n, cid = next(counter), pick.choice(ids)
            engine.run(lambda uow: uow.fire(cid, "touch", payload={"n": n}))

    return run


def bench_scale(workdir: Path, small: int, large: int, count: int, rounds: int) -> dict[str, Any]:
    """Cost of one transition on a random case among `large` cases against among `small`, on SQLite.

    Four times: with the engine's settings but SQLite checkpointing inside the commit (its default), with
    SQLite's default page cache and no memory map, with a 16 MB cache and a 256 MB map, and with the engine's
    settings (engine.db SQLITE_CACHE_KIB, SQLITE_MMAP_BYTES, SQLITE_CHECKPOINT_SECONDS: checkpoints from a
    thread); and once the same writes in bare sqlite3 (`raw_sqlite`, cases in a random order, checkpoints in the
    commit as SQLite does by default), the floor: how
    much more SQLite itself costs with more cases. Each variant gets two fresh files;
    rounds alternate between them and the ratio is the median of the per-round ratios (µs per transition,
    large / small).
    """
    import engine.db as engine_db

    chosen = (engine_db.SQLITE_CACHE_KIB, engine_db.SQLITE_MMAP_BYTES, engine_db.SQLITE_CHECKPOINT_SECONDS)
    out: dict[str, Any] = {"small_cases": small, "large_cases": large, "count": count, "rounds": rounds,
                           "load_start": load_average()}
    # (page cache KiB, memory map bytes, checkpoint thread interval: 0 = SQLite's own, inside the commit)
    for label, (cache, mmap, checkpoints) in (
            ("sqlite_checkpoint_in_commit", (*chosen[:2], 0)),
            ("sqlite_default_pragmas", (0, 0, chosen[2])),
            ("sqlite_cache_16mb_mmap", (16384, 256 * 2**20, chosen[2])),
            ("raw_sqlite3", (*chosen[:2], 0)),  # the floor: the same writes in bare sqlite3, SQLite checkpointing
            ("sqlite", chosen)):
        engine_db.SQLITE_CACHE_KIB, engine_db.SQLITE_MMAP_BYTES, engine_db.SQLITE_CHECKPOINT_SECONDS = (
            cache, mmap, checkpoints)
        try:
            sides = {}
            for name, cases in (("small", small), ("large", large)):
                db = fresh_sqlite(workdir / f"scale-{label}-{name}.db")
                eng = Engine(db, loop_registry(), SystemClock())
                ids = create_cases(eng, cases)
                if label == "raw_sqlite3":  # in a random order, as the engine's side draws its cases
                    random.Random(cases).shuffle(ids)
                    sides[name] = (db, raw_sqlite(workdir / f"scale-{label}-{name}.db", ids))
                else:
                    sides[name] = (db, random_touches(eng, ids, seed=cases))
            for _db, runner in sides.values():
                runner(200)  # warm up
            micros: dict[str, list[float]] = {"small": [], "large": []}
            cpu: dict[str, list[float]] = {"small": [], "large": []}
            for i in range(rounds):
                for name in (("small", "large") if i % 2 == 0 else ("large", "small")):
                    micros[name].append(_per_transition(sides[name][1], count, cpu[name]))
            ratios = [lg / sm for lg, sm in zip(micros["large"], micros["small"], strict=True)]
            cpu_ratios = [lg / sm for lg, sm in zip(cpu["large"], cpu["small"], strict=True)]
            size_mb = (workdir / f"scale-{label}-large.db").stat().st_size / 2**20
            for db, _runner in sides.values():
                db.dispose()
        finally:
            engine_db.SQLITE_CACHE_KIB, engine_db.SQLITE_MMAP_BYTES, engine_db.SQLITE_CHECKPOINT_SECONDS = chosen
        out[label] = {"cache_kib": cache, "mmap_bytes": mmap, "checkpoint_seconds": checkpoints,
                      "ratio": statistics.median(ratios),
                      "ratio_rounds": [round(r, 3) for r in ratios],
                      "us_small": statistics.median(micros["small"]), "us_large": statistics.median(micros["large"]),
                      # CPU time of the process (SQLite's own work and its system calls included): on a machine
                      # others share, this ratio is the steadier one; the wall ratio above is the goal's
                      "cpu_ratio": statistics.median(cpu_ratios), "cpu_ratio_rounds": [round(r, 3) for r in cpu_ratios],
                      "cpu_us_small": statistics.median(cpu["small"]), "cpu_us_large": statistics.median(cpu["large"]),
                      "large_file_mb": round(size_mb, 1)}
        r = out[label]
        print(f"  {label:<23} {large:,} vs {small:,} cases: {r['us_large']:.0f} vs {r['us_small']:.0f} µs per "
              f"transition = {r['ratio']:.2f}x (median of {rounds} rounds {r['ratio_rounds']}; goal <= 1.1x; "
              f"file {size_mb:.0f} MB; cache_size {cache or 'default'} KiB, mmap_size {mmap}, checkpoints "
              f"{f'every {checkpoints:g} s in a thread' if checkpoints else 'in the commit'}); CPU "
              f"{r['cpu_us_large']:.0f} vs {r['cpu_us_small']:.0f} µs = {r['cpu_ratio']:.2f}x")
    out["load_end"] = load_average()
    return out


def bench_scale_postgres(url: str, small: int, large: int, count: int, rounds: int) -> dict[str, Any] | None:
    """The same comparison on PostgreSQL: the two sides in two schemas of the benchmark's own database.

    The schemas (`bench_scale_small`, `bench_scale_large`) are created here and dropped at the end. Only wall time
    is compared: most of the work is the server's, which the bench process's CPU time does not see.
    """
    from sqlalchemy import text

    from api.schema import metadata
    from bench.common import fresh_postgres
    from engine.db import make_database

    admin = fresh_postgres(url)
    if admin is None:
        return None
    schemas = {"small": "bench_scale_small", "large": "bench_scale_large"}
    sides: dict[str, tuple[Database, Callable[[int], None]]] = {}
    try:
        for name, cases in (("small", small), ("large", large)):
            with admin.engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schemas[name]} CASCADE"))
                conn.execute(text(f"CREATE SCHEMA {schemas[name]}"))
            sep = "&" if "?" in url else "?"
            db = make_database(f"{url}{sep}options=-csearch_path%3D{schemas[name]}")
            metadata().create_all(db.engine)
            eng = Engine(db, loop_registry(), SystemClock())
            ids = create_cases(eng, cases)
            with db.engine.begin() as conn:
                conn.execute(text("ANALYZE"))
            sides[name] = (db, random_touches(eng, ids, seed=cases))
        for _db, runner in sides.values():
            runner(200)
        micros: dict[str, list[float]] = {"small": [], "large": []}
        for i in range(rounds):
            for name in (("small", "large") if i % 2 == 0 else ("large", "small")):
                micros[name].append(_per_transition(sides[name][1], count))
        ratios = [lg / sm for lg, sm in zip(micros["large"], micros["small"], strict=True)]
    finally:
        for db, _runner in sides.values():
            db.dispose()
        with admin.engine.begin() as conn:
            for schema in schemas.values():
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()
    out = {"ratio": statistics.median(ratios), "ratio_rounds": [round(r, 3) for r in ratios],
           "us_small": statistics.median(micros["small"]), "us_large": statistics.median(micros["large"])}
    print(f"  postgresql              {large:,} vs {small:,} cases: {out['us_large']:.0f} vs {out['us_small']:.0f} µs "
          f"per transition = {out['ratio']:.2f}x (median of {rounds} rounds {out['ratio_rounds']}; goal <= 1.1x)")
    return out
