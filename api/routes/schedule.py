"""What will happen and what was sent: upcoming timers, the outbox, a case's timeline, and captured mail."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy import func, or_, select, update
from sqlmodel import Session, col

from api.access import ReadAccess, case_access, own_addresses, owned_cases, readable, redact_addresses
from api.deps import ActorDep, AdminDep, CtxDep, SessionDep, current_actor
from api.schemas import ERROR_RESPONSES, Page
from api.unit import UnitOfWorkRoute
from engine.errors import Conflict, NotFound, NotPermitted, Unauthenticated
from engine.models import Case, Event, OutboxMessage, Timer, timer_pending

router = APIRouter(tags=["schedule"], responses=ERROR_RESPONSES, route_class=UnitOfWorkRoute)
pages = APIRouter(include_in_schema=False, route_class=UnitOfWorkRoute)
TimerStatus = Literal["pending", "fired", "cancelled", "coalesced", "skipped", "failed"]
# queued: written by its transition with what its template is given, not rendered yet (the mail job renders it)
OutboxStatus = Literal["queued", "pending", "sending", "sent", "captured", "failed", "dead", "held", "digested"]


class TimerRead(BaseModel):
    """A scheduled deadline, reminder or escalation."""

    id: int
    case_id: int
    kind: str
    name: str
    state: str
    due_at: datetime
    deadline: str | None
    offset: str | None
    trigger: str | None
    to: list[str]
    template: str | None
    status: str
    note: str | None
    fired_at: datetime | None


class OutboxRead(BaseModel):
    """A queued or sent email (without its body)."""

    id: int
    case_id: int | None
    person_id: int | None
    template: str
    language: str
    to: str
    cc: list[str]
    subject: str
    message_id: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    refused: dict[str, str]
    created_at: datetime
    sent_at: datetime | None


class TimelineEntry(BaseModel):
    """One line of a case's timeline: something that happened or is scheduled."""

    at: datetime
    kind: Literal["event", "timer", "email"]
    what: str
    status: str
    detail: dict[str, Any]


def timer_read(t: Timer) -> TimerRead:
    """Shape a timer for the API."""
    return TimerRead(id=t.id or 0, case_id=t.case_id, kind=t.kind, name=t.name, state=t.state, due_at=t.due_at,
                     deadline=t.deadline.isoformat() if t.deadline else None, offset=t.offset, trigger=t.trigger,
                     to=[r for r in t.roles.split(",") if r], template=t.template, status=t.status, note=t.note,
                     fired_at=t.fired_at)


def outbox_read(m: OutboxMessage) -> OutboxRead:
    """Shape an outbox row for the API."""
    return OutboxRead(id=m.id or 0, case_id=m.case_id, person_id=m.person_id, template=m.template,
                      language=m.language, to=m.to_address, cc=m.cc, subject=m.subject, message_id=m.message_id,
                      status=m.status, attempts=m.attempts, next_attempt_at=m.next_attempt_at,
                      last_error=m.last_error, refused=m.refused, created_at=m.created_at, sent_at=m.sent_at)


@router.get("/timers", response_model=Page[TimerRead])
def list_timers(session: SessionDep, actor: ActorDep, case_id: int | None = None,
                status: TimerStatus | None = "pending", kind: Annotated[str | None, Query(max_length=20)] = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 100,
                offset: Annotated[int, Query(ge=0)] = 0) -> Page[TimerRead]:
    """List timers of your own organisation's cases and the cases you coordinate, soonest first."""
    stmt = select(Timer).join(Case, col(Case.id) == col(Timer.case_id)).where(owned_cases(actor))
    if case_id is not None:
        stmt = stmt.where(col(Timer.case_id) == case_id)
    if status == "pending":
        stmt = stmt.where(timer_pending())  # ix_timer_pending_due, soonest first
    elif status is not None:
        stmt = stmt.where(col(Timer.status) == status)
    if kind:
        stmt = stmt.where(col(Timer.kind) == kind)
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = session.execute(stmt.order_by(col(Timer.due_at), col(Timer.id)).limit(limit).offset(offset)).scalars()
    return Page[TimerRead](items=[timer_read(t) for t in rows], total=total, limit=limit, offset=offset)


@router.get("/outbox", response_model=Page[OutboxRead])
def list_outbox(session: SessionDep, actor: ActorDep, case_id: int | None = None, person_id: int | None = None,
                status: OutboxStatus | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 100,
                offset: Annotated[int, Query(ge=0)] = 0) -> Page[OutboxRead]:
    """List emails: administrators see all, others only mail addressed to themselves."""
    stmt = select(OutboxMessage)
    if not actor.is_admin:
        stmt = stmt.where(col(OutboxMessage.person_id) == actor.person_id)
    if case_id is not None:
        stmt = stmt.where(col(OutboxMessage.case_id) == case_id)
    if person_id is not None:
        stmt = stmt.where(col(OutboxMessage.person_id) == person_id)
    if status is not None:
        stmt = stmt.where(col(OutboxMessage.status) == status)
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = session.execute(stmt.order_by(col(OutboxMessage.id).desc()).limit(limit).offset(offset)).scalars()
    return Page[OutboxRead](items=[outbox_read(m) for m in rows], total=total, limit=limit, offset=offset)


def _message(session: Session, message_id: int) -> OutboxMessage:
    row = session.get(OutboxMessage, message_id)
    if row is None:
        raise NotFound(f"no outbox message with id {message_id}")
    return row


@router.get("/outbox/{message_id}", response_model=OutboxRead)
def get_outbox(message_id: int, session: SessionDep, actor: ActorDep) -> OutboxRead:
    """Return one email's delivery state and why it failed, if it did."""
    row = _message(session, message_id)
    if not actor.is_admin and row.person_id != actor.person_id:
        raise NotFound(f"no outbox message with id {message_id}")
    return outbox_read(row)


@router.post("/outbox/{message_id}/retry", response_model=OutboxRead)
def retry_outbox(session: SessionDep, message_id: int, ctx: CtxDep, _admin: AdminDep) -> OutboxRead:
    """Queue a failed or dead email again (admin)."""
    row = _message(session, message_id)
    if row.status not in ("failed", "dead"):
        raise Conflict(f"message {message_id} is {row.status}; only failed or dead messages can be retried")
    session.execute(update(OutboxMessage).where(col(OutboxMessage.id) == message_id).values(
        status="pending", next_attempt_at=ctx.clock.now(), created_at=ctx.clock.now(), claimed_at=None))
    session.flush()
    session.refresh(row)
    return outbox_read(row)


@router.get("/cases/{case_id}/timeline", response_model=list[TimelineEntry])
def timeline(case_id: int, session: SessionDep, actor: ActorDep) -> list[TimelineEntry]:
    """Return what has happened to a case and what is still to come (deadlines, reminders), by date.

    Coordinators and administrators see the case and all its children. Anyone else sees the case's shared events
    and, of its children, only their own organisation's (with its timers and mail); mail to other organisations'
    people is left out and addresses that are not their organisation's are removed from what is shown.
    """
    case, access = readable(session, actor, case_id)
    children = list(session.execute(select(Case).where(col(Case.parent_id) == case_id)).scalars())
    if access == ReadAccess.FULL:
        event_ids = timer_ids = [case_id, *(c.id or 0 for c in children)]
    else:
        own = [c.id or 0 for c in [case, *children] if case_access(session, actor, c) >= ReadAccess.OWN]
        event_ids, timer_ids = sorted({case_id, *own}), own
    keep = own_addresses(session, actor) if access < ReadAccess.FULL else frozenset()

    def shown(value: Any) -> Any:
        return value if access == ReadAccess.FULL else redact_addresses(value, keep)

    entries: list[TimelineEntry] = []
    for e in session.execute(select(Event).where(col(Event.case_id).in_(event_ids))).scalars():
        entries.append(TimelineEntry(at=e.at, kind="event", what=e.name, status="done",
                                     detail={"case_id": e.case_id, "from": e.from_state, "to": e.to_state,
                                             "payload": shown(json.loads(e.payload))}))
    for t in session.execute(select(Timer).where(col(Timer.case_id).in_(timer_ids),
                                                 col(Timer.status) != "cancelled")).scalars():
        entries.append(TimelineEntry(at=t.due_at, kind="timer", what=f"{t.kind}:{t.name}", status=t.status,
                                     detail={"case_id": t.case_id, "offset": t.offset, "trigger": t.trigger}))
    mail = select(OutboxMessage).where(col(OutboxMessage.case_id).in_(event_ids))
    if access < ReadAccess.FULL:  # only mail to the reader's own organisation's people (or the reader)
        mail = mail.where(func.lower(col(OutboxMessage.to_address)).in_(sorted(keep)))
    for m in session.execute(mail).scalars():
        entries.append(TimelineEntry(at=m.sent_at or m.next_attempt_at, kind="email", what=m.subject,
                                     status=m.status, detail={"to": m.to_address, "template": m.template}))
    return sorted(entries, key=lambda x: (x.at, x.kind))


def _mail_allowed(request: Request, ctx: Any, session: Session) -> Response | None:
    """Let only an administrator read the captured mail, and only in development; None when allowed.

    The captured mail holds every sign-in link: open to anyone, it made an anonymous visitor an administrator.
    """
    if ctx.settings.smtp_host or ctx.settings.environment == "production":
        raise NotFound("mail is sent through SMTP, not captured here")
    if ctx.settings.environment != "development":
        raise NotPermitted("the captured-mail page exists only in development")
    try:
        actor = current_actor(request, session, request.headers.get("authorization"))
    except Unauthenticated:  # a browser goes to sign in (the demo prints the administrator's link) and back
        return RedirectResponse(f"/signin?next={request.url.path}", status_code=303)
    if not actor.is_admin:
        raise NotPermitted("the captured mail is shown only to an administrator")
    return None


@pages.get("/mail", include_in_schema=False, response_class=HTMLResponse)
def captured_mail(request: Request, ctx: CtxDep, session: SessionDep,
                  q: Annotated[str | None, Query(max_length=100)] = None) -> Response:
    """Show the mail captured locally (development without SMTP settings; administrators only)."""
    if (refused := _mail_allowed(request, ctx, session)) is not None:
        return refused
    stmt = select(OutboxMessage).order_by(col(OutboxMessage.id).desc()).limit(200)
    if q:
        stmt = stmt.where(or_(col(OutboxMessage.to_address).contains(q), col(OutboxMessage.subject).contains(q)))
    rows = session.execute(stmt).scalars().all()
    env = request.app.state.mail_templates
    return HTMLResponse(env.get_template("mail.html").render(rows=rows, q=q or ""))


@pages.get("/mail/{message_id}", include_in_schema=False, response_class=HTMLResponse)
def captured_message(message_id: int, request: Request, ctx: CtxDep, session: SessionDep) -> Response:
    """Show one captured email with its text and HTML parts (administrators only)."""
    if (refused := _mail_allowed(request, ctx, session)) is not None:
        return refused
    env = request.app.state.mail_templates
    return HTMLResponse(env.get_template("mail_message.html").render(m=_message(session, message_id)))
