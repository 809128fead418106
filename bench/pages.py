"""Benchmark: "my tasks" of a signatory with 50 open cases and the 25-party agreement page, 50 concurrent clients.

Merged into `bench.http` (same servers, same load generator, same bare one-row endpoint, alternating rounds and
median per-round ratios); this runs only its two page targets:

    .venv/bin/python -m bench.pages [--duration 4] [--rounds 5] [--clients 50] [--workers 1] [--json FILE]

Goal (issue 11): each page at least 0.1x the bare endpoint on one worker, the first request after a start as fast
as later ones. SQLite only: the benchmarks reach PostgreSQL only through VUOSIKELLO_BENCH_PG_URL, never the tests'.
"""

from __future__ import annotations

import sys
from typing import Any

from bench import http


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run bench.http's page targets."""
    return http.main(["--only", "pages", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
