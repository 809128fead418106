"""CPU per reminder rendered into the outbox: `count` due reminder timers (fi/sv/en `party_reminder`, .ics, a
sign-in link each) fired by one `ctx.run_timers()` and rendered by the mail job's first step (`render_queued`) on
a fresh SQLite file, timed by process CPU time.

It uses the `bench.mail` set-up of the tree first on PYTHONPATH (`_setup`, `BENCH_YAML`, `fresh_sqlite`), so the
same file measures a baseline tree and this one through `bench.ab --script` (each tree's own engine and bench):

    .venv/bin/python bench/outbox_cpu.py [--count 600]
    .venv/bin/python -m bench.ab --base /tmp/vk-base --rounds 5 --script bench/outbox_cpu.py \\
        --metric 'outbox µs:lower=per message\\s+([\\d.]+) µs' -- --count 600
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

# run as a file, Python puts bench/ first on the path, where bench/transitions.py hides the `transitions` library
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def main() -> None:
    """Fire `count` due reminders into the outbox once; print process CPU µs per message."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=600)
    args = parser.parse_args()
    from bench.common import fresh_sqlite
    from bench.mail import BENCH_YAML, _setup

    with tempfile.TemporaryDirectory() as tmp:
        db = fresh_sqlite(Path(tmp) / "outbox.db")
        db.dispose()
        (Path(tmp) / "bench_deadline.yaml").write_text(BENCH_YAML, encoding="utf-8")
        ctx = _setup(db.url, args.count, 9, Path(tmp))  # port 9: nothing is sent here
        from notifications.deferred import render_queued

        started = time.process_time()
        fired = ctx.run_timers()
        rendered = render_queued(ctx.engine)  # the mail job's first step
        cpu = time.process_time() - started
        assert fired == rendered == args.count, (fired, rendered)
    print(f"{args.count} reminders into the outbox: per message {cpu / args.count * 1e6:.1f} µs CPU")


if __name__ == "__main__":
    main()
