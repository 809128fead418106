"""iCalendar feeds of the annual clock: deadlines at 23:59:59 Helsinki, meetings and windows as all-day events."""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta

import icalendar
from sqlalchemy import select, update
from sqlmodel import Session, col

from engine.actors import Actor
from engine.calendar import END_OF_DAY, HELSINKI
from engine.directory import hash_token
from engine.errors import InvalidInput, NotFound, NotPermitted
from engine.i18n import translate as engine_text
from engine.models import Organisation, Person
from engine.permissions import organisation_reader
from engine.registry import Registry
from workflows.annual_clock.items import Item, Scope, collect, scope_for
from workflows.annual_clock.models import CalendarFeed
from workflows.i18n import translate

FEED_PREFIX = "vkcal_"


def _event(item: Item, lang: str, stamp: datetime, domain: str) -> icalendar.Event:
    ev = icalendar.Event()
    ev.add("uid", f"{item.uid}@{domain}")
    ev.add("dtstamp", stamp)
    ev.add("summary", engine_text(lang, f"calendar.{item.kind}", title=item.title_in(lang)))
    if item.kind == "deadline":
        ev.add("dtstart", datetime.combine(item.start, END_OF_DAY, tzinfo=HELSINKI))
    else:
        ev.add("dtstart", item.start)
        ev.add("dtend", item.end + timedelta(days=1))
    ev.add("categories", [item.process])
    if item.overdue:
        ev.add("status", "CONFIRMED")
        ev.add("description", engine_text(lang, "calendar.overdue"))
    return ev


def render_ics(items: list[Item], name: str, lang: str, stamp: datetime, domain: str = "vuosikello.local") -> bytes:
    """Render items as an iCalendar with one event each and the Helsinki time zone."""
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Vuosikello//annual clock//FI")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", "Europe/Helsinki")
    for item in items:
        cal.add_component(_event(item, lang, stamp, domain))
    cal.add_missing_timezones()
    ical: bytes = cal.to_ical()  # icalendar leaves to_ical unannotated
    return ical


def create_feed(session: Session, actor: Actor, now: datetime, *, person_id: int | None = None,
                organisation_key: str | None = None, language: str = "fi") -> tuple[CalendarFeed, str]:
    """Issue a feed secret for a person or an organisation; the owner's earlier secret stops working."""
    if (person_id is None) == (organisation_key is None):
        raise InvalidInput("person_id", "give either person_id or organisation")
    org_id = None
    if person_id is not None:
        if session.get(Person, person_id) is None:
            raise InvalidInput("person_id", f"no person with id {person_id}")
        if person_id != actor.person_id and not actor.is_admin:
            raise NotPermitted("you may create a calendar feed only for yourself")
        owner = col(CalendarFeed.person_id) == person_id
    else:
        org_id = session.execute(select(col(Organisation.id)).where(col(Organisation.key) == organisation_key)).scalar()
        if org_id is None:
            raise InvalidInput("organisation", f"unknown organisation {organisation_key!r} (use kind:code)")
        if org_id != actor.organisation_id and not actor.is_admin:
            raise NotPermitted("you may create a feed only for your own organisation")
        owner = col(CalendarFeed.organisation_id) == org_id
    session.execute(update(CalendarFeed).where(owner, col(CalendarFeed.revoked_at).is_(None))
                    .values(revoked_at=now))
    token = FEED_PREFIX + secrets.token_urlsafe(32)
    feed = CalendarFeed(person_id=person_id, organisation_id=org_id, token_hash=hash_token(token),
                        language=language, created_by=actor.person_id, created_at=now)
    session.add(feed)
    session.flush()
    return feed, token


def feed_for(session: Session, token: str) -> CalendarFeed:
    """Return the active feed a secret opens, or raise NotFound (unknown and revoked look the same)."""
    feed = session.scalars(select(CalendarFeed).where(col(CalendarFeed.token_hash) == hash_token(token),
                                                      col(CalendarFeed.revoked_at).is_(None))).first()
    if feed is None:
        raise NotFound("no such calendar feed")
    return feed


def feed_items(session: Session, feed: CalendarFeed, now: datetime,
               registry: Registry | None = None) -> tuple[list[Item], str]:
    """Return a feed's items (last year, this year and next) and its calendar name.

    A person's feed lists what that person may open; an organisation's what any member of it may open.
    """
    year = now.astimezone(HELSINKI).year
    if feed.person_id is not None:
        person = session.get(Person, feed.person_id)
        if person is None or not person.active:
            raise NotFound("no such calendar feed")
        scope: Scope = scope_for(session, person_id=person.id, organisation_id=person.organisation_id)
        viewer = Actor(person_id=person.id, name=person.name, roles=person.role_set,
                       organisation_id=person.organisation_id)
        name = translate(feed.language, "clock.feed_name", name=person.name)
    else:
        scope = scope_for(session, organisation_id=feed.organisation_id)
        viewer = organisation_reader(feed.organisation_id)
        org = session.get(Organisation, feed.organisation_id)
        org_name = ((org.name_sv or org.name_fi) if feed.language == "sv" else org.name_fi) if org else ""
        name = translate(feed.language, "clock.feed_name", name=org_name)
    return collect(session, scope, date(year - 1, 1, 1), date(year + 1, 12, 31), now, registry, viewer=viewer), name
