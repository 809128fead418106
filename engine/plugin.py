"""What one workflow adds to the engine, as one value: definitions with guards, hooks, trigger handlers, tables.

The hooks receive the unit of work as their first argument. It is typed `Any` here on purpose: `engine.service`
(which defines `UnitOfWork`) imports the registry, so naming it here would make the two modules import each other.
The hooks themselves annotate it as `UnitOfWork`; only the stored callables are loose about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from engine.actors import Actor
from engine.audit import AuditCheck
from engine.machine import Guard
from engine.records import CaseRow, TransitionRecord


class Listener(Protocol):
    """React to a transition inside its transaction (fire more triggers, move deadlines, queue mail)."""

    def __call__(self, uow: Any, record: TransitionRecord, /) -> None: ...


class Resolver(Protocol):
    """Tell who a role (party, coordinator, ...) means on a case, as person ids."""

    def __call__(self, uow: Any, case: CaseRow, role: str, /) -> list[int]: ...


class TriggerHandler(Protocol):
    """Fire a trigger through the workflow's own service: (uow, case id, actor, payload, expected version)."""

    def __call__(self, uow: Any, case_id: int, actor: Actor, payload: dict[str, Any],
                 expected_version: int | None, /) -> Any: ...


@dataclass(frozen=True)
class WorkflowPlugin:
    """Everything one process folder under workflows/ gives the registry; `Registry.install` wires it.

    definitions  folder of `*.yaml` definitions -> the guards their conditions name
    listeners    workflow name -> listeners called only for that workflow's cases (a plugin may listen to another
                 workflow's cases, as reviews do to agreements)
    child_listeners  parent workflow name -> the listener its children's transitions are handed to
    recipients   workflow name -> who its roles mean
    triggers     (workflow, trigger) -> the service function `POST /cases/{id}/triggers/{trigger}` goes through
    tables       the SQLModel table classes the plugin owns (for the metadata and Alembic)
    audit_checks what `vuosikello audit verify` checks of the plugin's records against the events that recorded them
    """

    name: str
    definitions: Mapping[Path, Mapping[str, Guard]] = field(default_factory=dict)
    listeners: Mapping[str, tuple[Listener, ...]] = field(default_factory=dict)
    child_listeners: Mapping[str, Listener] = field(default_factory=dict)
    recipients: Mapping[str, Resolver] = field(default_factory=dict)
    triggers: Mapping[tuple[str, str], TriggerHandler] = field(default_factory=dict)
    tables: tuple[type, ...] = ()
    audit_checks: tuple[AuditCheck, ...] = ()
