"""A/B: run one benchmark in a baseline source tree and in the current one, alternately, and compare.

Each round runs the benchmark once in each tree, as a fresh process with its cwd and PYTHONPATH set to that tree
(so each tree's own `bench/` and product code are measured, with the same interpreter and venv); the order
alternates per round (base, new / new, base / ...) so that both sides see the same drift in machine load. From each
run's output it parses the named metrics (regular expressions, first group a number) and prints, per metric, each
round's ratio current/baseline and the median of those ratios, the house rule for a loaded shared machine.
For throughput metrics (marked "higher") a ratio above 1 means the current tree is faster; for latencies ("lower")
a ratio below 1 means it is faster. The load average before each run is printed too.

    git worktree add /tmp/vk-base <commit>
    .venv/bin/python -m bench.ab --base /tmp/vk-base --rounds 5 --preset transitions -- --count 1000 --rounds 1
    .venv/bin/python -m bench.ab --base /tmp/vk-base --preset http -- --duration 3 --rounds 1
    .venv/bin/python -m bench.ab --base /tmp/vk-base --preset pages -- sqlite 3
    .venv/bin/python -m bench.ab --base /tmp/vk-base --module bench.transitions \\
        --metric 'sqlite_engine=sqlite\\s+raw\\s+[\\d,]+/s\\s+engine\\s+([\\d,.]+)/s' -- --no-postgres
    .venv/bin/python -m bench.ab --base /tmp/vk-base --rounds 7 --script bench/render_cpu.py \\
        --metric 'render µs:lower=per render\\s+([\\d.]+) µs'

Everything after `--` goes to the benchmark. `--json FILE` writes every run's numbers. Benchmarks are not tests:
this prints and never fails on a slow result (it exits non-zero only when a run fails or a metric is missing).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NUM = r"([\d,]+(?:\.\d+)?)"

# preset -> (module, {metric: (direction, regex)}, regexes every run's output must match)
PRESETS: dict[str, tuple[str, dict[str, tuple[str, str]], list[str]]] = {
    "transitions": ("bench.transitions", {
        "sqlite engine/s": ("higher", rf"sqlite\s+raw\s+[\d,]+/s\s+engine\s+{NUM}/s"),
        "sqlite engine/s by CPU": ("higher", rf"by CPU time: raw\s+[\d,]+/s\s+engine\s+{NUM}/s"),
        "sqlite raw/s (control)": ("higher", rf"sqlite\s+raw\s+{NUM}/s"),
        "postgresql engine/s": ("higher", rf"postgresql\s+raw\s+[\d,]+/s\s+engine\s+{NUM}/s"),
        "postgresql raw/s (control)": ("higher", rf"postgresql\s+raw\s+{NUM}/s"),
    }, []),
    "http": ("bench.http", {
        "GET agreement req/s": ("higher", rf"GET agreement \(25\)\s+{NUM} req/s"),
        "GET agreement p50 ms": ("lower", rf"GET agreement \(25\)\s+[\d,]+ req/s\s+p50\s+{NUM} ms"),
        "bare def req/s (control)": ("higher", rf"bare def\s+{NUM} req/s"),
        "agreement server CPU": ("higher", rf"GET agreement \(25\).*CPU server\s+{NUM}"),
    }, [r"GET agreement \(25\).*errors 0\b"]),
    "pages": ("bench.pages", {
        "pages req/s": ("higher", rf"requests in [\d.]+ s \({NUM} req/s\)"),
        "/tasks p50 ms": ("lower", rf"/tasks\s+n=\s*\d+\s+p50\s+{NUM} ms"),
        "/agreements/<id> p50 ms": ("lower", rf"/agreements/\d+\s+n=\s*\d+\s+p50\s+{NUM} ms"),
    }, [r"errors: 0\b"]),
}


# preset -> {derived metric: (direction, function of the run's parsed values)}, computed after parsing
DERIVED: dict[str, dict[str, tuple[str, Callable[[dict[str, float]], float]]]] = {
    "transitions": {
        "sqlite engine/raw in-run": ("higher", lambda v: v["sqlite engine/s"] / v["sqlite raw/s (control)"]),
        "postgresql engine/raw in-run": ("higher",
                                         lambda v: v["postgresql engine/s"] / v["postgresql raw/s (control)"]),
    },
    "http": {
        "agreement/bare def in-run": ("higher", lambda v: v["GET agreement req/s"] / v["bare def req/s (control)"]),
        # server CPU (cores busy) / requests per second: the steadiest figure when other processes share the CPU
        "agreement server CPU ms/request": ("lower",
                                            lambda v: 1000 * v["agreement server CPU"] / v["GET agreement req/s"]),
    },
}


def run_once(tree: Path, module: str, args: list[str], timeout: float) -> tuple[str, float, float]:
    """Run `python -m module args` in `tree`; return its stdout, the wall time and the 1-minute load before it.

    A `module` that is a path to a `.py` file (`--script`) is run as that file in each tree: one driver for both,
    measuring each tree's product code (for a benchmark the baseline tree does not have).
    """
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    load = os.getloadavg()[0]
    started = time.perf_counter()
    command = [str(Path(module).resolve())] if module.endswith(".py") else ["-m", module]
    proc = subprocess.run([sys.executable, *command, *args], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"{module} failed in {tree} (exit {proc.returncode})")
    return proc.stdout, wall, load


def parse(output: str, metrics: dict[str, tuple[str, str]], checks: list[str], tree: Path) -> dict[str, float]:
    """Return each metric's number from one run's output; stop when one is missing or a check fails."""
    for check in checks:
        if not re.search(check, output):
            sys.stderr.write(output[-3000:])
            raise SystemExit(f"check {check!r} failed for the run in {tree}")
    values: dict[str, float] = {}
    for name, (_, pattern) in metrics.items():
        match = re.search(pattern, output)
        if match is None:
            sys.stderr.write(output[-3000:])
            raise SystemExit(f"metric {name!r} ({pattern}) not found in the output of the run in {tree}")
        values[name] = float(match.group(1).replace(",", ""))
    return values


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Alternate the two trees for --rounds rounds; print per-round ratios and their medians."""
    argv = sys.argv[1:] if argv is None else argv
    bench_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, bench_args = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the baseline source tree (e.g. a git worktree)")
    parser.add_argument("--new", type=Path, default=ROOT, help="the tree under test (default: this one)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--preset", choices=sorted(PRESETS))
    parser.add_argument("--module", help="benchmark module, e.g. bench.transitions (default: the preset's)")
    parser.add_argument("--script", help="a benchmark file run in both trees instead of a module, e.g. "
                                         "bench/render_cpu.py (it imports the product from PYTHONPATH)")
    parser.add_argument("--metric", action="append", default=[], metavar="NAME[:lower]=REGEX",
                        help="a metric to parse (first group); ':lower' when smaller is better")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run")
    parser.add_argument("--json", type=Path, help="write every run's numbers here")
    args = parser.parse_args(argv)

    module, metrics, checks = PRESETS[args.preset] if args.preset else ("", {}, [])
    metrics = dict(metrics)
    for spec in args.metric:
        name, _, pattern = spec.partition("=")
        name, _, direction = name.partition(":")
        metrics[name] = ("lower" if direction == "lower" else "higher", pattern)
    derived = DERIVED.get(args.preset or "", {})
    module = args.script or args.module or module
    if not module or not metrics:
        parser.error("give --preset, or --module and at least one --metric")

    trees = {"base": args.base.resolve(), "new": args.new.resolve()}
    print(f"A/B {module} {' '.join(bench_args)}: {args.rounds} rounds, base {trees['base']}, new {trees['new']}")
    shown = {**{name: spec[0] for name, spec in metrics.items()}, **{name: d for name, (d, _) in derived.items()}}
    runs: list[dict[str, Any]] = []
    for i in range(args.rounds):
        order = ("base", "new") if i % 2 == 0 else ("new", "base")
        row: dict[str, Any] = {"round": i + 1, "order": order}
        for side in order:
            output, wall, load = run_once(trees[side], module, bench_args, args.timeout)
            values = parse(output, metrics, checks, trees[side])
            values.update({name: fn(values) for name, (_, fn) in derived.items()})
            row[side] = {"values": values, "wall_s": wall, "load": load}
        runs.append(row)
        print(f"  round {i + 1} ({order[0]} first; load {row[order[0]]['load']:.2f} / {row[order[1]]['load']:.2f})")
        for name in shown:
            b, n = row["base"]["values"][name], row["new"]["values"][name]
            print(f"    {name:<32} base {b:10.2f}  new {n:10.2f}  new/base {n / b if b else float('nan'):.3f}")

    summary: dict[str, Any] = {}
    print(f"\nmedian of the per-round ratios new/base ({args.rounds} rounds)")
    for name, direction in shown.items():
        ratios = [r["new"]["values"][name] / r["base"]["values"][name] for r in runs if r["base"]["values"][name]]
        med = statistics.median(ratios)
        faster = (med > 1) if direction == "higher" else (med < 1)
        summary[name] = {"direction": direction, "ratios": ratios, "median": med}
        verdict = "about equal" if abs(med - 1) < 0.02 else ("new faster" if faster else "new SLOWER")
        print(f"  {name:<32} {med:6.3f}  ({direction} is better; {verdict})  rounds "
              f"{', '.join(f'{r:.3f}' for r in ratios)}")
    loads = [r[s]["load"] for r in runs for s in ("base", "new")]
    print(f"  load average (1 min) before the runs: {min(loads):.2f} .. {max(loads):.2f}, "
          f"median {statistics.median(loads):.2f}")
    result = {"module": module, "args": bench_args, "trees": {k: str(v) for k, v in trees.items()}, "runs": runs,
              "summary": summary}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
