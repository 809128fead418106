"""The registers: meetings held and statements issued, by year."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, status

from api.deps import ActorDep, CtxDep, SessionDep
from api.schemas import ERROR_RESPONSES
from api.unit import UnitOfWorkRoute
from workflows.registers import service
from workflows.registers.schemas import MeetingIn, MeetingRead, StatementIn, StatementRead

router = APIRouter(prefix="/registers", tags=["registers"], responses=ERROR_RESPONSES, route_class=UnitOfWorkRoute)
Year = Annotated[int, Query(ge=2000, le=2100)]


@router.post("/meetings", response_model=MeetingRead, status_code=status.HTTP_201_CREATED)
def add_meeting(session: SessionDep, body: MeetingIn, ctx: CtxDep, actor: ActorDep) -> MeetingRead:
    """Register a meeting (coordinators, administrators)."""
    row = service.add_meeting(session, body, actor, ctx.clock.now())
    session.flush()
    return next(m for m in service.meetings(session, row.held_on, row.held_on) if m.id == row.id)


@router.get("/meetings", response_model=list[MeetingRead])
def list_meetings(session: SessionDep, _actor: ActorDep, year: Year) -> list[MeetingRead]:
    """List a year's meetings."""
    return service.meetings(session, date(year, 1, 1), date(year, 12, 31))


@router.post("/statements", response_model=StatementRead, status_code=status.HTTP_201_CREATED)
def add_statement(session: SessionDep, body: StatementIn, ctx: CtxDep, actor: ActorDep) -> StatementRead:
    """Register a statement (kannanotto)."""
    row = service.add_statement(session, body, actor, ctx.clock.now())
    session.flush()
    return next(s for s in service.statements(session, row.issued_on, row.issued_on) if s.id == row.id)


@router.get("/statements", response_model=list[StatementRead])
def list_statements(session: SessionDep, _actor: ActorDep, year: Year) -> list[StatementRead]:
    """List a year's statements."""
    return service.statements(session, date(year, 1, 1), date(year, 12, 31))
