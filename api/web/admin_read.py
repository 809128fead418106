"""What the administrators' definition pages read: YAML of a version, versions, timers per state, problems by line.

Problems are placed at their YAML line; a refusal that names only a top-level field gets that field's line.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlmodel import Session, col

from engine.definition import WorkflowDefinition
from engine.errors import DefinitionError, EngineError, InvalidInput
from engine.models import Case, Person, StoredDefinition
from engine.registry import Registry

VERSION_LINE = re.compile(r"^version:\s*\d+\s*$", re.MULTILINE)


@dataclass(frozen=True)
class VersionInfo:
    """One version of a workflow: where it comes from and how many of its cases run on it."""

    version: int
    stored: bool  # written by an administrator (else shipped with the service)
    created_at: datetime | None
    created_by: str | None
    running: int
    total: int
    states: list[str]
    final_states: list[str]


@dataclass(frozen=True)
class TimerRow:
    """One deadline, reminder policy or escalation of a state, as the policy table shows it."""

    state: str
    kind: str
    name: str
    at: str
    after: str | None
    business_days: bool
    offsets: list[str]
    repeat_every: str | None
    repeat_max: int
    to: list[str]
    template: str | None
    trigger: str | None


@dataclass(frozen=True)
class Problem:
    """One problem of a definition, at its line when known."""

    line: int | None
    path: str
    message: str


def definition_source(session: Session, registry: Registry, name: str, version: int) -> str:
    """Return a version's YAML: the shipped file, the stored text, or (failing both) a dump of the definition."""
    definition = registry.machine(name, version).definition
    path = registry.sources.get((name, version))
    if path is not None and path.exists():
        return path.read_text(encoding="utf-8")
    stored = session.execute(select(col(StoredDefinition.source)).where(
        col(StoredDefinition.name) == name, col(StoredDefinition.version) == version)).scalar()
    if stored is not None:
        return str(stored)
    return yaml.safe_dump(definition.model_dump(exclude_defaults=True), allow_unicode=True, sort_keys=False)


def next_source(source: str, version: int) -> str:
    """Return a version's YAML with its `version:` line set to the number the next version must have."""
    return VERSION_LINE.sub(f"version: {version + 1}", source, count=1)


def versions(session: Session, registry: Registry, name: str) -> list[VersionInfo]:
    """Return every version of a workflow, newest first, with its running and total cases."""
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for version, state, n in session.execute(select(col(Case.workflow_version), col(Case.state), func.count()).where(
            col(Case.workflow) == name).group_by(col(Case.workflow_version), col(Case.state))):
        counts[version][state] += n
    stored = {row.version: row for row in session.execute(
        select(StoredDefinition).where(col(StoredDefinition.name) == name)).scalars()}
    authors = dict(session.execute(select(col(Person.id), col(Person.name)).where(
        col(Person.id).in_({r.created_by for r in stored.values() if r.created_by}))).all())
    out = []
    for (n, v), machine in sorted(registry.machines.items(), key=lambda item: -item[0][1]):
        if n != name:
            continue
        d = machine.definition
        row = stored.get(v)
        by_state = counts[v]
        out.append(VersionInfo(v, row is not None, row.created_at if row else None,
                               authors.get(row.created_by) if row and row.created_by else None,
                               sum(c for s, c in by_state.items() if s not in d.final_states),
                               sum(by_state.values()), list(d.states), d.final_states))
    return out


def running_states(session: Session, registry: Registry, name: str, version: int) -> dict[str, int]:
    """Return the states the running cases of a version are in, with how many cases each."""
    final = registry.machine(name, version).definition.final_states
    rows = session.execute(select(col(Case.state), func.count()).where(
        col(Case.workflow) == name, col(Case.workflow_version) == version, col(Case.state).not_in(final))
        .group_by(col(Case.state)).order_by(col(Case.state))).all()
    return {state: n for state, n in rows}


def timer_rows(definition: WorkflowDefinition) -> list[TimerRow]:
    """Return every timer of a definition, state by state."""
    return [TimerRow(state, t.kind, t.name, t.at, t.after, t.business_days, list(t.offsets), t.repeat_every,
                     t.repeat_max, list(t.to), t.template, t.trigger)
            for state, spec in definition.states.items() for t in spec.timers]


def _top_level_line(source: str, key: str) -> int | None:
    match = re.search(rf"^{re.escape(key)}\s*:", source, re.MULTILINE)
    return source.count("\n", 0, match.start()) + 1 if match else None


def problems_of(exc: EngineError, source: str) -> list[Problem]:
    """Turn a refused definition into problems with lines (a top-level field's line when that is all we know)."""
    if isinstance(exc, DefinitionError):
        found = exc.extra.get("lines")
        lines: list[dict[str, Any]] = (
            found if isinstance(found, list) and found else [{"line": None, "path": "(root)", "message": exc.detail}])
        return [Problem(p["line"], p["path"], p["message"]) for p in lines]
    if isinstance(exc, InvalidInput):
        message = exc.detail.removeprefix(f"{exc.field}: ")
        return [Problem(_top_level_line(source, exc.field.split(".")[0]), exc.field, message)]
    return [Problem(None, "(root)", exc.detail)]
