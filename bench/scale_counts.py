"""Cost per transition at 100,000 cases against 1,000, counted rather than timed.

`bench.transitions --scale` times the same thing, but on a shared 2-core machine its per-round ratios swing by
+-20 %, more than the 10 % the goal allows. This counts what does not depend on the neighbours:

- instructions (valgrind's callgrind, the whole process: the committing thread and the checkpoint thread);
- system calls (strace -f -c): pread64 is a page read from the file or the WAL (a page-cache miss, or the
  checkpoint reading a frame), pwrite64 a WAL frame or a page the checkpoint copies back, fcntl the WAL locks.

Each figure is per transition: two runs of the same child (the same database file copied afresh, the same
random cases, 3,000 warm-up transitions) that differ only in how many transitions they then fire, subtracted,
so start-up and warm-up cancel out. Three sides: `small` (1,000 cases) and `large` (100,000) with the engine's
settings (engine.db SQLITE_CACHE_KIB), and `large_default_cache` with SQLite's 2 MB default.

    .venv/bin/python -m bench.scale_counts [--json FILE] [--no-valgrind]

valgrind and strace are Debian packages (`apt-get install valgrind strace`); a tool that is missing is skipped
and said so. The valgrind part takes about 15 minutes (valgrind runs Python some 50 times slower).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, load_average

WARM = 3000


def child(base: Path, workdir: Path, cases: int, cache_kib: int, transitions: int) -> None:
    """Copy `base`, warm up and fire `transitions` touches on random cases with the given page cache."""
    import engine.db as engine_db
    from bench.common import loop_registry
    from bench.scale import random_touches
    from engine.clock import SystemClock
    from engine.service import Engine

    engine_db.SQLITE_CACHE_KIB = cache_kib
    path = workdir / f"run-{cases}-{cache_kib}-{transitions}-{os.getpid()}.db"
    shutil.copyfile(base, path)
    db = engine_db.make_database(f"sqlite:///{path}")
    run = random_touches(Engine(db, loop_registry(), SystemClock()), list(range(1, cases + 1)), seed=cases)
    run(WARM)
    run(transitions)
    db.dispose()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def build(workdir: Path, cases: int) -> Path:
    """Create a database of `cases` loop cases, checkpointed into its file; return its path."""
    import sqlite3

    from bench.common import fresh_sqlite, loop_registry
    from bench.raw_loop import create_cases
    from engine.clock import SystemClock
    from engine.service import Engine

    path = workdir / f"base-{cases}.db"
    db = fresh_sqlite(path)
    create_cases(Engine(db, loop_registry(), SystemClock()), cases)
    db.dispose()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def _child_argv(base: Path, workdir: Path, cases: int, cache_kib: int, transitions: int) -> list[str]:
    return [sys.executable, "-m", "bench.scale_counts", "--child", str(base), str(workdir), str(cases),
            str(cache_kib), str(transitions)]


def instructions(argv: list[str], out: Path) -> int:
    """Run argv under callgrind; return the instructions it executed (all threads)."""
    proc = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output: {proc.stderr[-500:]}")
    return int(found.group(1))


def syscalls(argv: list[str], out: Path) -> dict[str, int]:
    """Run argv under strace -f -c; return the calls per system call (all threads)."""
    subprocess.run(["strace", "-f", "-c", "-o", str(out), *argv], cwd=ROOT, capture_output=True, check=True)
    counts: dict[str, int] = {}
    for line in out.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[-1].isidentifier() and parts[3].isdigit() and parts[-1] != "total":
            counts[parts[-1]] = int(parts[3])
    return counts


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Count instructions and system calls per transition on the three sides; print and return the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--no-valgrind", action="store_true", help="system calls only (a minute, not eight)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        base, workdir, cases, cache, transitions = args.child
        child(Path(base), Path(workdir), int(cases), int(cache), int(transitions))
        return {}
    import engine.db as engine_db

    chosen = engine_db.SQLITE_CACHE_KIB
    out: dict[str, Any] = {"bench": "scale_counts", "small_cases": args.small, "large_cases": args.large,
                           "cache_kib": chosen, "load_start": load_average()}
    sides = {"small": (args.small, chosen), "large": (args.large, chosen), "large_default_cache": (args.large, 0)}
    tools = {"valgrind": shutil.which("valgrind") is not None and not args.no_valgrind,
             "strace": shutil.which("strace") is not None}
    print(f"per transition, {args.large:,} cases against {args.small:,} (counted, not timed; cache "
          f"{chosen} KiB; tools: {', '.join(k for k, v in tools.items() if v) or 'none'})")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vk-scale-") as tmp:
        workdir = Path(tmp)
        bases = {n: build(workdir, n) for n in {args.small, args.large}}
        for side, (cases, cache) in sides.items():
            figures: dict[str, float] = {}
            if tools["valgrind"]:
                lo, hi = (instructions(_child_argv(bases[cases], workdir, cases, cache, n), workdir / "cg.out")
                          for n in (1000, 3000))
                figures["instructions"] = (hi - lo) / 2000
            if tools["strace"]:
                lo_c, hi_c = (syscalls(_child_argv(bases[cases], workdir, cases, cache, n), workdir / "st.txt")
                              for n in (2000, 8000))
                for name in ("pread64", "pwrite64", "fcntl", "fdatasync"):
                    figures[name] = (hi_c.get(name, 0) - lo_c.get(name, 0)) / 6000
            out[side] = figures
            print(f"  {side:<20} " + "   ".join(f"{k} {v:,.2f}" for k, v in figures.items()), flush=True)
    small = out["small"]
    for side in ("large", "large_default_cache"):
        if "instructions" in small and "instructions" in out[side]:
            out[side]["instructions_ratio"] = out[side]["instructions"] / small["instructions"]
            print(f"  {side}: {out[side]['instructions_ratio']:.3f}x the instructions of {args.small:,} cases")
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["load_end"] = load_average()
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
