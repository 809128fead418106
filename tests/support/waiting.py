"""Waiting on real processes: every wait carries its own bound and, when it passes, says what did not happen.

Tests of spawned services cannot move a clock; they poll the database. A total-time assertion over such a test
(`elapsed < 90`) fails on a loaded machine without saying which step was slow, so each step gets a bound instead:
`wait_until` for one thing to happen, `wait_while_progressing` for long work that may go slowly but must not stall.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T], *, within: float, what: str, seen: Callable[[], object] | None = None,
               poll: float = 0.2) -> T:
    """Poll `check` until it returns something true and return that; fail naming `what` after `within` seconds."""
    end = time.monotonic() + within
    while not (result := check()):
        if time.monotonic() >= end:
            detail = f"; last seen: {seen()}" if seen is not None else ""
            raise AssertionError(f"not within {within:g} s: {what}{detail}")
        time.sleep(poll)
    return result


def wait_while_progressing(progress: Callable[[], T], done: Callable[[T], bool], *, stall: float, what: str,
                           seen: Callable[[], object] | None = None, poll: float = 0.2) -> T:
    """Poll `progress` until `done` holds for it; fail naming `what` once it has not changed for `stall` seconds."""
    last = progress()
    changed = time.monotonic()
    while not done(last):
        time.sleep(poll)
        now = progress()
        if now != last:
            last, changed = now, time.monotonic()
        elif time.monotonic() - changed >= stall:
            detail = f"\n{seen()}" if seen is not None else ""
            raise AssertionError(f"no progress for {stall:g} s (stuck at {last}): {what}{detail}")
    return last
