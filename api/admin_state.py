"""Load what administrators stored (definition versions, edited templates) into a process's registry."""

from __future__ import annotations

from sqlalchemy import inspect
from sqlmodel import Session

from api.context import AppContext
from engine.versions import load_stored
from notifications.template_store import load_overrides


def load_admin_state(ctx: AppContext) -> None:
    """Register stored definition versions and template edits (skipped on a database not migrated yet)."""
    tables = set(inspect(ctx.db.engine).get_table_names())
    with Session(ctx.db.engine) as session:
        if "workflow_definition" in tables:
            load_stored(session, ctx.registry)
        if "email_template" in tables:
            load_overrides(session, ctx.registry)
