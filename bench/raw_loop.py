"""The loop workflow's cases, and what the engine writes for one `touch` in bare SQL: the transition benchmarks' floor.

`bench.transitions` compares the engine with `raw_sqlite` and `raw_postgres`; `bench.scale` (and its counted twin,
`bench.scale_counts`) creates its cases with `create_cases` and times `raw_sqlite` as what SQLite itself costs with
more cases. Each baseline sends what the engine sends: `touch` returns to the state it left, so on SQLite the
UPDATE leaves `state` out, as the engine's does (engine.statements, `transition_same_state`); on PostgreSQL
both set it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import psycopg_url
from engine.actors import SYSTEM
from engine.service import Engine

SELECT = ('SELECT id, workflow, workflow_version, state, version, parent_id, organisation_id, coordinator_id, '
          'title, deadline, data, event_count, head_hash FROM "case" WHERE id = {p}')
UPDATE = ('UPDATE "case" SET state = {p}, version = {p}, updated_at = {p}, event_count = {p}, head_hash = {p} '
          'WHERE id = {p} AND version = {p}')
# what the engine sends on SQLite for a transition back to the state it left (engine.statements)
UPDATE_SAME_STATE = ('UPDATE "case" SET version = {p}, updated_at = {p}, event_count = {p}, head_hash = {p} '
                     'WHERE id = {p} AND version = {p}')
INSERT = ('INSERT INTO event (case_id, seq, at, actor_id, on_behalf_of_id, trigger, name, from_state, to_state, '
          'payload, document_hash, prev_hash, hash) VALUES ({ps})')


def _sql(template: str, p: str) -> str:
    return template.format(p=p, ps=", ".join([p] * 13))


def create_cases(engine: Engine, count: int) -> list[int]:
    """Create `count` loop cases in batches; return their ids."""
    ids: list[int] = []
    for start in range(0, count, 500):
        batch = min(500, count - start)
        ids += engine.run(lambda uow, b=batch: [uow.create_case("bench_loop", actor=SYSTEM).id for _ in range(b)])
    return ids


def _sealed(row: Any, n: int, now: datetime) -> tuple[int, str, str]:
    """Compute what the engine computes for an event: sequence, payload JSON and chained hash."""
    seq = row[11] + 1
    payload = json.dumps({"n": n}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    body = "\x1f".join([str(row[0]), str(seq), now.isoformat(), "None", "None", "touch", "Touched", "open",
                        "open", payload, "None", row[12]])
    return seq, payload, hashlib.sha256(body.encode()).hexdigest()


def raw_sqlite(path: Path, ids: list[int]) -> Callable[[int], None]:
    """Return a runner doing the engine's writes with bare sqlite3."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000"):
        conn.execute(f"PRAGMA {pragma}")
    select, update, insert = (_sql(t, "?") for t in (SELECT, UPDATE_SAME_STATE, INSERT))
    counter = iter(range(10**9))

    def run(count: int) -> None:
        for _ in range(count):
            n = next(counter)
            cid = ids[n % len(ids)]
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(select, (cid,)).fetchone()
            now = datetime.now(UTC)
            stamp = now.replace(tzinfo=None).isoformat(" ")
            seq, payload, digest = _sealed(row, n, now)
            conn.execute(update, (row[4] + 1, stamp, seq, digest, cid, row[4]))
            conn.execute(insert, (cid, seq, stamp, None, None, "touch", "Touched", "open", "open", payload, None,
                                  row[12], digest))
            conn.execute("COMMIT")

    return run


def raw_postgres(url: str, ids: list[int]) -> Callable[[int], None]:
    """Return a runner doing the engine's writes with bare psycopg."""
    import psycopg

    conn = psycopg.connect(psycopg_url(url))
    select, update, insert = (_sql(t, "%s") for t in (SELECT, UPDATE, INSERT))
    select += " FOR UPDATE"
    counter = iter(range(10**9))

    def run(count: int) -> None:
        for _ in range(count):
            n = next(counter)
            cid = ids[n % len(ids)]
            row = conn.execute(select, (cid,)).fetchone()
            now = datetime.now(UTC)
            seq, payload, digest = _sealed(row, n, now)
            conn.execute(update, ("open", row[4] + 1, now.replace(tzinfo=None), seq, digest, cid, row[4]))
            conn.execute(insert, (cid, seq, now.replace(tzinfo=None), None, None, "touch", "Touched", "open",
                                  "open", payload, None, row[12], digest))
            conn.commit()

    return run
