"""Who may read what: the engine's read rule (`engine.permissions.ReadAccess`), as the routes ask it.

Administrators and coordinators read their cases in full, an organisation its own cases, and the common frame of
its cases (the agreement of its party case, the request of its proposal) as shared facts only. Deny by default.
"""

from __future__ import annotations

from sqlmodel import Session

from engine.actors import Actor
from engine.models import Case
from engine.permissions import (
    ReadAccess,
    case_access,
    full_cases,
    own_addresses,
    owned_cases,
    readable,
    redact_addresses,
    visible_cases,
)

__all__ = ["ReadAccess", "case_access", "full_cases", "own_addresses", "owned_cases", "readable", "readable_case",
           "redact_addresses", "visible_cases"]


def readable_case(session: Session, actor: Actor, case_id: int) -> Case:
    """Return a case the actor may see; unknown and hidden cases are both 404."""
    return readable(session, actor, case_id)[0]
