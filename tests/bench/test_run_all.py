"""`python -m bench.run_all --quick --no-postgres` runs every benchmark, writes one JSON and the docs table.

A smoke test of the harness, not of the figures: the quick counts are too small to quote. It writes to a
temporary markdown file (never docs/benchmarks.md) and checks that the hand-written part below the generated
one is kept, and that a second run replaces the generated part instead of adding another.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from bench.run_all import BEGIN, END

ROOT = Path(__file__).resolve().parents[2]
HISTORY = "## Earlier figures\n\nHand-written history that must stay.\n"


@pytest.mark.slow
def test_run_all_quick_writes_every_benchmarks_figures_and_the_table(tmp_path: Path) -> None:
    docs, out = tmp_path / "benchmarks.md", tmp_path / "results.json"
    docs.write_text("# Benchmarks\n\n" + HISTORY, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "VUOSIKELLO_BENCH_PG_URL"}
    only = ["http", "transitions", "transitions_scale", "no_such_bench"]
    cmd = [sys.executable, "-m", "bench.run_all", "--quick", "--no-postgres", "--json", str(out), "--docs",
           str(docs), "--only", *only]
    for _ in range(2):
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["quick"] is True and results["postgres"] is False
    assert {"cpu", "cores", "ram", "python", "sqlite", "load"} <= set(results["facts"])
    benches = results["benchmarks"]
    assert set(benches) == {"http", "transitions", "transitions_scale"}  # an unknown name is not a benchmark
    for name, rec in benches.items():
        assert rec["status"] == "ok", (name, rec.get("output_tail"))
        assert len(rec["load_start"]) == 3 and len(rec["load_end"]) == 3
        assert rec["command"].startswith("python -m bench.")
    http = benches["http"]["figures"]
    for target in ("api_agreement", "page_tasks", "page_agreement"):
        s = http["summary"][target]
        assert len(s["ratio_rounds"]) == http["rounds"] and s["ratio"] > 0 and s["p95_ms_median"] > 0
        first = http["first_request"][target]
        assert first["first_ms"] > 0 and first["after_pause_median_ms"] > 0
        # --quick: two starts; each start's ratio its own first over its own later ones, the figure their median
        assert first["starts"] == len(first["per_start"]) == 2
        for start in first["per_start"]:
            assert abs(start["first_over_after_pause"] - start["first_ms"] / start["after_pause_median_ms"]) < 0.05
        assert first["first_over_after_pause"] == round(statistics.median(
            s["first_over_after_pause"] for s in first["per_start"]), 2)
    bare = http["first_request_bare"]
    assert bare["first_ms"] > 0 and bare["after_pause_median_ms"] > 0 and bare["starts"] == 2
    assert http["summary"]["bare"]["rps_median"] > 0
    scale = benches["transitions_scale"]["figures"]
    assert scale["sqlite"]["ratio"] > 0 and scale["sqlite_default_pragmas"]["ratio"] > 0
    assert benches["transitions"]["figures"]["sqlite"]["ratio"] > 0
    text = docs.read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert text.index(BEGIN) < text.index(END) < text.index(HISTORY)
    assert "| `GET /api/v1/agreements/{id}` (25 parties), 50 clients, one worker |" in text
    assert "cost per transition with 100,000 cases vs 1,000" in text


def test_a_missing_or_failing_benchmark_is_recorded_and_the_rest_still_run(tmp_path: Path) -> None:
    from bench import run_all

    missing = run_all.run_one("nothing", ["bench.no_such_bench"], postgres=False, timeout=30)
    assert missing["status"] == "missing" and len(missing["load_end"]) == 3
    failing = run_all.run_one("bad", ["bench.transitions", "--no-such-flag"], postgres=False, timeout=60)
    assert failing["status"] == "failed" and failing["returncode"] != 0 and "--no-such-flag" in failing["output_tail"]
    results = {"benchmarks": {"http": failing, "transitions": missing}}
    lines = run_all.table(results)
    assert any("**failed** (exit 2)" in line for line in lines) and any("**missing**" in line for line in lines)
