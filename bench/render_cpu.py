"""CPU per email render: `notifications.render.render("party_reminder", lang, SAMPLE)` in fi, sv and en, timed by
process CPU time (steadier than wall time on a shared machine). It imports only the product's public render API,
so the same file measures any tree put first on PYTHONPATH (run it through `bench.ab --script`, which does that
for a baseline tree and this one alternately):

    .venv/bin/python bench/render_cpu.py [--renders 3000] [--template party_reminder]
    .venv/bin/python -m bench.ab --base /tmp/vk-base --rounds 7 --script bench/render_cpu.py \\
        --metric 'render µs:lower=per render\\s+([\\d.]+) µs'

Prints the median of five timed batches, after a warm-up (the first render compiles the templates and parses the
catalogues, which a running service does once).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# run as a file, Python puts bench/ first on the path, where bench/transitions.py hides the `transitions` library
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def main() -> None:
    """Time renders of one template in the three languages; print µs per render."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=3000, help="renders per timed batch")
    parser.add_argument("--template", default="party_reminder")
    args = parser.parse_args()
    from notifications.render import render
    from notifications.template_store import SAMPLE

    context: dict[str, Any] = dict(SAMPLE)
    langs = ("fi", "sv", "en")
    for lang in langs * 50:
        render(args.template, lang, context)
    batches = []
    for _ in range(5):
        started = time.process_time()
        for i in range(args.renders):
            render(args.template, langs[i % 3], context)
        batches.append((time.process_time() - started) / args.renders * 1e6)
    print(f"{args.template}: per render {statistics.median(batches):.1f} µs (median of 5 batches of "
          f"{args.renders}; batches {', '.join(f'{b:.1f}' for b in batches)})")


if __name__ == "__main__":
    main()
