"""The overview page: the annual clock inline with its items listed beside it, and the calendar subscription.

Also links to the annual survey while it is open.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Form, Query, Request
from markupsafe import Markup
from sqlalchemy import select
from sqlmodel import Session, col
from starlette.responses import Response

from api.deps import SessionDep
from api.web.board import cycles
from api.web.i18n import translate
from api.web.render import render
from api.web.routing import User, WebUser, today_of, web_router
from engine.calendar import effective_deadline
from engine.errors import InvalidInput
from engine.models import Case
from notifications.render import LANGUAGES
from workflows.annual_clock import ical
from workflows.annual_clock.items import collect, scope_for
from workflows.annual_clock.models import CalendarFeed
from workflows.annual_clock.svg import render_svg

router = web_router()
Year = Annotated[int | None, Query(ge=2000, le=2100)]


def open_surveys(session: Session, today: date) -> list[tuple[int, int, date]]:
    """Return the cycles whose survey window is open today, as (cycle id, year, last day)."""
    ids = [c[0] for c in cycles(session) if c[2] != "closed"]
    out = []
    for case_id, data in session.execute(select(col(Case.id), col(Case.data)).where(col(Case.id).in_(ids))).all():
        opens, closes = (date.fromisoformat(data["milestones"][k]) for k in ("survey_opens", "survey_closes"))
        if opens <= today <= effective_deadline(closes):
            out.append((case_id, int(data["year"]), effective_deadline(closes)))
    return sorted(out, key=lambda c: c[1])


def _page(request: Request, session: Session, user: WebUser, year: int | None, scope: str,
          feed_url: str | None = None) -> Response:
    ctx = request.app.state.ctx
    now, today = ctx.clock.now(), today_of(request)
    year = year or today.year
    network = scope == "network"
    which = scope_for(session) if network else scope_for(session, organisation_id=user.person.organisation_id,
                                                               person_id=user.id)
    items = collect(session, which, date(year, 1, 1), date(year, 12, 31), now, ctx.registry, viewer=user.actor)
    heading = translate(user.lang, "clock.network") if network else user.person.name
    svg = Markup(render_svg(items, year, user.lang, heading, today))  # noqa: S704 - built by us, values escaped
    feed = session.execute(select(CalendarFeed).where(col(CalendarFeed.person_id) == user.id,
                                                      col(CalendarFeed.revoked_at).is_(None))
                           .order_by(col(CalendarFeed.id).desc())).scalars().first()
    return render(request, "overview.html", user.lang, user=user, year=year, network=network, items=items,
                  svg=svg, feed=feed, feed_url=feed_url, surveys=open_surveys(session, today), today=today)


@router.get("/overview")
def overview(request: Request, user: User, session: SessionDep, year: Year = None, scope: str = "mine") -> Response:
    """Show the annual clock of the person's organisation and cases (or the whole network's) for a year."""
    return _page(request, session, user, year, scope)


@router.post("/overview/feed")
def issue_feed(request: Request, user: User, session: SessionDep,
               language: Annotated[str, Form()] = "") -> Response:
    """Issue the person's calendar feed URL (shown once; an earlier URL stops working)."""
    language = language or user.lang
    if language not in LANGUAGES:
        raise InvalidInput("language", f"must be one of {', '.join(LANGUAGES)}")
    ctx = request.app.state.ctx
    _feed, token = ical.create_feed(session, user.actor, ctx.clock.now(), person_id=user.id, language=language)
    session.flush()
    url = f"{ctx.settings.base_url.rstrip('/')}/api/v1/calendar/feeds/{token}.ics"
    return _page(request, session, user, None, "mine", feed_url=url)
