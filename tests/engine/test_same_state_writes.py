"""A transition back to the state it left does not set `state` on SQLite (engine.statements, transition_same_state).

SQLite rewrites the entry of every index whose column an UPDATE sets, changed or not: setting `state` to the value
it had dirtied a page of ix_case_workflow_state on every such commit. What the case row holds afterwards must be
exactly what the full statement writes.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from api.schema import metadata
from engine.actors import SYSTEM
from engine.clock import ManualClock
from engine.db import make_database
from engine.definition import parse_definition
from engine.registry import Registry
from engine.service import Engine

YAML = """
name: same_state_probe
version: 1
title: {fi: Silmukka, sv: Slinga, en: Loop}
initial: open
states:
  open:
    description: Open; `touch` returns here.
  closed:
    description: Closed.
    final: true
transitions:
  - trigger: touch
    source: open
    dest: open
    roles: [system]
    event: Touched
  - trigger: close
    source: open
    dest: closed
    roles: [system]
    event: Closed
"""


def _engine(path: Path) -> tuple[Engine, list[str]]:
    db = make_database(f"sqlite:///{path}")
    metadata().create_all(db.engine)
    registry = Registry()
    registry.register(parse_definition(YAML, "same_state_probe"))
    sent: list[str] = []

    @event.listens_for(db.write_engine, "connect")
    def _trace(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.set_trace_callback(sent.append)

    db.write_engine.dispose()  # the connections made before the listener: reconnect with the trace
    return Engine(db, registry, ManualClock(datetime(2026, 12, 4, 9, tzinfo=UTC))), sent


def _case_updates(sent: list[str]) -> list[str]:
    return [s for s in sent if s.lstrip().upper().startswith('UPDATE "CASE"')]


def test_a_transition_to_the_same_state_leaves_the_state_column_and_its_index_alone(tmp_path: Path) -> None:
    eng, sent = _engine(tmp_path / "a.db")
    try:
        cid = eng.run(lambda uow: uow.create_case("same_state_probe", actor=SYSTEM).id)
        before = eng.run(lambda uow: (uow.case(cid).version, uow.case(cid).head_hash))
        wal_before = os.path.getsize(f"{tmp_path / 'a.db'}-wal")
        sent.clear()
        eng.run(lambda uow: uow.fire(cid, "touch"))
        touched = _case_updates(sent)
        assert len(touched) == 1 and "state" not in touched[0].split("WHERE")[0], touched
        after = eng.run(lambda uow: (uow.case(cid).state, uow.case(cid).version, uow.case(cid).head_hash))
        assert after[0] == "open" and after[1] == before[0] + 1 and after[2] != before[1]
        assert os.path.getsize(f"{tmp_path / 'a.db'}-wal") > wal_before  # it was written, not skipped

        sent.clear()
        eng.run(lambda uow: uow.fire(cid, "close"))
        closed = _case_updates(sent)
        assert len(closed) == 1 and "state" in closed[0].split("WHERE")[0], closed
        assert eng.run(lambda uow: uow.case(cid).state) == "closed"
    finally:
        eng.db.dispose()
