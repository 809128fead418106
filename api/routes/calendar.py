"""The annual clock API: the wheel as SVG or a printable page, the items as JSON, and iCalendar feeds."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlmodel import Session, col

from api.deps import ActorDep, CtxDep, SessionDep
from api.schemas import ERROR_RESPONSES
from api.unit import UnitOfWorkRoute
from engine.actors import Actor
from engine.calendar import HELSINKI
from engine.errors import InvalidInput, NotPermitted
from engine.models import Organisation
from engine.registry import Registry
from workflows.annual_clock import ical
from workflows.annual_clock.items import Item, collect, scope_for
from workflows.annual_clock.svg import render_page, render_svg

router = APIRouter(prefix="/calendar", tags=["calendar"], responses=ERROR_RESPONSES, route_class=UnitOfWorkRoute)
Year = Annotated[int | None, Query(ge=2000, le=2100)]
OrgKey = Annotated[str | None, Query(max_length=80, description="kind:code; omit for the whole network")]
Lang = Annotated[str, Query(pattern="^(fi|sv|en)$")]


class FeedCreate(BaseModel):
    """Whose feed: yourself (person_id) or your organisation (kind:code)."""

    model_config = ConfigDict(extra="forbid")
    person_id: int | None = None
    organisation: str | None = Field(default=None, max_length=80)
    language: str = Field(default="fi", pattern="^(fi|sv|en)$")


class FeedIssued(BaseModel):
    """A feed's URL, shown once: the secret in it is stored only as a hash."""

    url: str
    person_id: int | None
    organisation: str | None


def _items(session: Session, registry: Registry, actor: Actor, now: Any, year: int,
           organisation: str | None) -> tuple[list[Item], str | None]:
    if organisation is None:  # the heading None is the wheel's "whole network", in the wheel's language
        return collect(session, scope_for(session), date(year, 1, 1), date(year, 12, 31), now, registry,
                       viewer=actor), None
    org = session.execute(select(Organisation).where(col(Organisation.key) == organisation)).scalars().first()
    if org is None:
        raise InvalidInput("organisation", f"unknown organisation {organisation!r} (use kind:code)")
    return collect(session, scope_for(session, organisation_key=org.key), date(year, 1, 1), date(year, 12, 31),
                   now, registry, viewer=actor), org.name_fi


@router.get("/items", response_model=list[dict[str, Any]])
def items(ctx: CtxDep, session: SessionDep, actor: ActorDep, year: Year = None,
          organisation: OrgKey = None) -> list[dict[str, Any]]:
    """List the year's deadlines, meetings and windows of the cases you may open (the text beside the wheel)."""
    now = ctx.clock.now()
    found, _ = _items(session, ctx.registry, actor, now, year or now.astimezone(HELSINKI).year, organisation)
    return [{"uid": i.uid, "kind": i.kind, "process": i.process, "title": i.title, "start": i.start,
             "end": i.end, "case_id": i.case_id, "done": i.done, "overdue": i.overdue,
             "due_at": i.due_at} for i in found]


@router.get("/wheel.svg", response_class=Response,
            responses={200: {"content": {"image/svg+xml": {}}, "description": "The wheel of the year"}})
def wheel(ctx: CtxDep, session: SessionDep, actor: ActorDep, year: Year = None, organisation: OrgKey = None,
          lang: Lang = "fi") -> Response:
    """Return the wheel of the year as SVG."""
    now = ctx.clock.now()
    y = year or now.astimezone(HELSINKI).year
    found, heading = _items(session, ctx.registry, actor, now, y, organisation)
    svg = render_svg(found, y, lang, heading, now.astimezone(HELSINKI).date())
    return Response(svg, media_type="image/svg+xml")


@router.get("/wheel.html", response_class=HTMLResponse)
def page(ctx: CtxDep, session: SessionDep, actor: ActorDep, year: Year = None, organisation: OrgKey = None,
         lang: Lang = "fi") -> HTMLResponse:
    """Return a printable page: the wheel and the same items as a list."""
    now = ctx.clock.now()
    y = year or now.astimezone(HELSINKI).year
    found, heading = _items(session, ctx.registry, actor, now, y, organisation)
    return HTMLResponse(render_page(found, y, lang, heading, now.astimezone(HELSINKI).date()))


@router.post("/feeds", response_model=FeedIssued, status_code=status.HTTP_201_CREATED)
def create_feed(session: SessionDep, body: FeedCreate, ctx: CtxDep, actor: ActorDep) -> FeedIssued:
    """Issue a calendar feed URL for yourself or your organisation; an earlier URL stops working."""
    if body.person_id is None and body.organisation is None:
        if actor.person_id is None:
            raise NotPermitted("only a person has a personal feed")
        body = body.model_copy(update={"person_id": actor.person_id})
    _feed, token = ical.create_feed(session, actor, ctx.clock.now(), person_id=body.person_id,
                                    organisation_key=body.organisation, language=body.language)
    session.flush()
    base = ctx.settings.base_url.rstrip("/")
    return FeedIssued(url=f"{base}/api/v1/calendar/feeds/{token}.ics", person_id=body.person_id,
                      organisation=body.organisation)


@router.get("/feeds/{token}.ics", response_class=Response,
            responses={200: {"content": {"text/calendar": {}}, "description": "iCalendar feed"}, 404: {}})
def feed(token: str, ctx: CtxDep, session: SessionDep) -> Response:
    """Return a feed; the secret in the URL is the only credential (calendar clients send no headers)."""
    row = ical.feed_for(session, token)
    now = ctx.clock.now()
    found, name = ical.feed_items(session, row, now, ctx.registry)
    body = ical.render_ics(found, name, row.language, now, ctx.settings.mail_domain)
    return Response(body, media_type="text/calendar; charset=utf-8",
                    headers={"Cache-Control": "private, max-age=900"})
