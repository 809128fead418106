"""Cases of every workflow: list, read, history, and firing triggers through the engine."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from sqlalchemy import func, select
from sqlmodel import Session, col

from api.access import ReadAccess, case_access, own_addresses, readable, readable_case, redact_addresses, visible_cases
from api.context import AppContext
from api.deps import ActorDep, CtxDep, ExpectedVersion, SessionDep, WorkDep
from api.schemas import ERROR_RESPONSES, CaseRead, EventRead, Page
from api.unit import UnitOfWorkRoute
from engine.actors import Actor
from engine.calendar import HELSINKI
from engine.models import Case, Event, Organisation
from engine.permissions import permitted_for
from workflows.triggers import dispatch

router = APIRouter(prefix="/cases", tags=["cases"], responses=ERROR_RESPONSES, route_class=UnitOfWorkRoute)


def case_read(ctx: AppContext, session: Session, case: Case, org_keys: dict[int, str] | None = None,
              actor: Actor | None = None) -> CaseRead:
    """Shape a case for the API; read with less than FULL access, its data shows no other organisation's address."""
    data = case.data
    if "@" in json.dumps(data) and case_access(session, actor, case) < ReadAccess.FULL:
        data = redact_addresses(data, own_addresses(session, actor))
    machine = ctx.registry.machine(case.workflow, case.workflow_version)
    today = ctx.clock.now().astimezone(HELSINKI).date()
    final = case.state in machine.definition.final_states
    org_key = None
    if case.organisation_id is not None:
        org_key = (org_keys or {}).get(case.organisation_id)
        if org_key is None:
            org = session.get(Organisation, case.organisation_id)
            org_key = org.key if org else None
    return CaseRead(id=case.id or 0, workflow=case.workflow, workflow_version=case.workflow_version,
                    state=case.state, version=case.version, parent_id=case.parent_id, organisation=org_key,
                    coordinator_id=case.coordinator_id, title=case.title, deadline=case.deadline,
                    overdue=bool(case.deadline and case.deadline < today and not final),
                    allowed_triggers=permitted_for(ctx.registry, session, case, actor), data=data,
                    created_at=case.created_at, updated_at=case.updated_at)


@router.get("", response_model=Page[CaseRead])
def list_cases(ctx: CtxDep, session: SessionDep, actor: ActorDep,
               workflow: Annotated[str | None, Query(max_length=80)] = None,
               state: Annotated[str | None, Query(max_length=80)] = None,
               organisation: Annotated[str | None, Query(max_length=80, description="kind:code")] = None,
               overdue: bool | None = None, parent_id: int | None = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 100,
               offset: Annotated[int, Query(ge=0)] = 0) -> Page[CaseRead]:
    """List the cases you may see, filtered by workflow, state, organisation and overdue."""
    stmt = select(Case).where(visible_cases(actor))
    if workflow:
        ctx.registry.latest_version(workflow)  # 404 naming the known workflows
        stmt = stmt.where(col(Case.workflow) == workflow)
    if state:
        stmt = stmt.where(col(Case.state) == state)
    if parent_id is not None:
        stmt = stmt.where(col(Case.parent_id) == parent_id)
    if organisation:
        org_id = session.execute(select(col(Organisation.id)).where(col(Organisation.key) == organisation)).scalar()
        stmt = stmt.where(col(Case.organisation_id) == (org_id or -1))
    if overdue is not None:
        today: date = ctx.clock.now().astimezone(HELSINKI).date()
        finals = sorted({s for d in ctx.registry.machines.values() for s in d.definition.final_states})
        is_overdue = col(Case.deadline).is_not(None) & (col(Case.deadline) < today) & col(Case.state).not_in(finals)
        stmt = stmt.where(is_overdue if overdue else ~is_overdue)
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    cases = session.execute(stmt.order_by(col(Case.id)).limit(limit).offset(offset)).scalars().all()
    keys = dict(session.execute(select(col(Organisation.id), col(Organisation.key)).where(
        col(Organisation.id).in_({c.organisation_id for c in cases if c.organisation_id}))).all())
    return Page[CaseRead](items=[case_read(ctx, session, c, keys, actor) for c in cases], total=total, limit=limit,
                          offset=offset)


@router.get("/{case_id}", response_model=CaseRead)
def get_case(case_id: int, ctx: CtxDep, session: SessionDep, actor: ActorDep) -> CaseRead:
    """Return one case."""
    return case_read(ctx, session, readable_case(session, actor, case_id), actor=actor)


@router.get("/{case_id}/events", response_model=list[EventRead])
def get_events(case_id: int, session: SessionDep, actor: ActorDep) -> list[EventRead]:
    """Return a case's history, oldest first (read as a party of it: no other organisation's addresses)."""
    _case, access = readable(session, actor, case_id)
    keep = own_addresses(session, actor)

    def shown(payload: str) -> Any:
        value = json.loads(payload)
        return value if access == ReadAccess.FULL else redact_addresses(value, keep)
    events = session.execute(select(Event).where(col(Event.case_id) == case_id).order_by(col(Event.seq))).scalars()
    orgs = dict(session.execute(select(col(Organisation.id), col(Organisation.key))).all())
    return [EventRead(id=e.id or 0, seq=e.seq, at=e.at, actor_id=e.actor_id,
                      on_behalf_of=orgs.get(e.on_behalf_of_id) if e.on_behalf_of_id else None, trigger=e.trigger,
                      name=e.name, from_state=e.from_state, to_state=e.to_state, payload=shown(e.payload),
                      document_hash=e.document_hash, hash=e.hash) for e in events]


@router.post("/{case_id}/triggers/{trigger}", response_model=CaseRead)
def fire_trigger(work: WorkDep, case_id: int, trigger: str, ctx: CtxDep, session: SessionDep, actor: ActorDep,
                 expected_version: ExpectedVersion,
                 payload: Annotated[dict[str, Any] | None, Body(description="The trigger's payload")] = None,
                 ) -> CaseRead:
    """Fire a trigger on a case; 409 names the allowed triggers when it is not allowed now."""
    readable_case(session, actor, case_id)
    work.run(lambda uow: dispatch(uow, case_id, trigger, actor, payload or {}, expected_version))
    return case_read(ctx, session, readable_case(session, actor, case_id), actor=actor)
