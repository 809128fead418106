"""Run every benchmark in turn (transitions, memory, HTTP) and print a summary against their goals.

    VUOSIKELLO_BENCH_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/vk_bench \\
        .venv/bin/python -m bench.run_all [--quick] [--no-postgres] [--json results.json]

The PostgreSQL database named by VUOSIKELLO_BENCH_PG_URL is emptied and refilled: give it one of its own.
`--all` also runs the other benchmarks in this folder (timers, mail, pages, annual clock), each with its defaults.
Benchmarks are not tests: they measure, print and never fail the build. Run them on a quiet machine; the
machine facts printed first (including the load average) belong with any number quoted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import http, memory, transitions
from bench.common import PG_URL, ROOT, machine_facts, print_facts

OTHERS = ["timers", "mail", "pages", "bench_annual_clock"]  # the other benchmarks here, run with --all


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the three benchmarks; print the goals and, with --json, write every figure to a file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test, not for quoting)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--all", action="store_true", help="also run the other benchmarks in bench/")
    args = parser.parse_args(argv)
    pg = [] if args.no_postgres else ["--pg-url", args.pg_url]
    facts = machine_facts(None if args.no_postgres else args.pg_url)
    print("machine")
    print_facts(facts)
    started = time.perf_counter()
    results: dict[str, Any] = {"facts": facts}
    print()
    quick = {"transitions": ["--count", "1000", "--rounds", "3"], "memory": ["--cases", "10000", "--fires", "500"]}
    results["transitions"] = transitions.main(
        ["--no-facts"] + (quick["transitions"] if args.quick else []) + (["--no-postgres"] if args.no_postgres else pg))
    print()
    results["memory"] = memory.main(
        (quick["memory"] if args.quick else []) + ([] if args.no_postgres else ["--postgres", *pg]))
    print()
    results["http"] = http.main(["--duration", "3", "--rounds", "1"] if args.quick else [])
    print(f"\nsummary ({time.perf_counter() - started:.0f} s)")
    for db, r in results["transitions"].items():
        if r:
            print(f"  transitions {db:<10} {r['engine']:7.0f}/s = {r['ratio']:.2f}x raw (goal >= 0.5x)")
    for db, r in results["memory"].items():
        print(f"  memory      {db:<10} {r['growth_mb']:+6.1f} MB over {r['fires']} load+fire (goal < 50 MB); "
              f"{r['cases_attached']} cases attached to the Machine")
    h = results["http"]
    ratio = h["GET agreement (25)"]["rps"] / h["bare def"]["rps"]
    print(f"  http        {h['GET agreement (25)']['rps']:7.0f} req/s = {ratio:.2f}x the bare def endpoint "
          f"(goal >= 0.3x), p95 {h['GET agreement (25)']['p95_ms']:.1f} ms")
    if args.all:
        for name in OTHERS:
            if (ROOT / "bench" / f"{name}.py").exists():
                extra = ["--no-postgres"] if name == "timers" and args.no_postgres else []
                print(f"\n== bench.{name}")
                results[name] = subprocess.run([sys.executable, "-m", f"bench.{name}", *extra], cwd=ROOT,
                                               check=False).returncode
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
