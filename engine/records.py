"""The records a transition hands around: the locked case row and what one fired trigger did.

Plain data, importing nothing of the engine's machinery, so that the registry (which stores the hooks that receive
them) and the service (which makes them) can both name them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from engine.actors import Actor


@dataclass
class CaseRow:
    """A locked case as the unit of work sees it; writes go through the unit of work."""

    id: int
    workflow: str
    workflow_version: int
    state: str
    version: int
    parent_id: int | None
    organisation_id: int | None
    coordinator_id: int | None
    title: str
    deadline: date | None
    data: dict[str, Any]
    event_count: int
    head_hash: str


@dataclass
class TransitionRecord:
    """What one fired trigger did; handed to listeners inside the transaction."""

    case: CaseRow
    trigger: str
    event_name: str
    from_state: str | None
    to_state: str
    actor: Actor
    payload: dict[str, Any]
    event_id: int
    seq: int
    at: datetime
    document_hash: str | None

    @property
    def changed_state(self) -> bool:
        """Tell whether the state actually changed (not an internal transition)."""
        return self.from_state != self.to_state
