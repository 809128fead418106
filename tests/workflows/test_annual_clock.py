"""The annual clock: the SVG parses and places each item in its month; the iCalendar feed parses and is exact."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, time

import icalendar
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.app import create_app
from engine.calendar import HELSINKI
from tests.support.builders import make_user
from tests.support.recurring import create_nomination
from workflows.annual_clock.items import collect, scope_for
from workflows.annual_clock.svg import C, render_svg
from workflows.cycle import service
from workflows.cycle.schemas import AgreeIn, CycleCreate
from workflows.registers import service as registers
from workflows.registers.schemas import MeetingIn

SVG = "{http://www.w3.org/2000/svg}"


def _setup(ctx):
    coord = make_user(ctx, org_key="association:kuntaliitto", roles="coordinator")
    nid, _ = create_nomination(ctx, coordinator=coord, asked={"organisations": ["regional_council:06",
                                                                                "regional_council:02"]})
    cycle = ctx.engine.run(lambda uow: service.create_cycle(uow, CycleCreate(year=2026), coord.actor)).id
    body = AgreeIn.model_validate({"measures": [
        {"title": "Ilmastotiekartta", "theme": "climate", "responsible": "regional_council:06",
         "due_date": "2026-06-30"},
        {"title": "Viestintäsuunnitelma", "theme": "advocacy", "responsible": "network:viestinta",
         "due_date": "2026-02-27"}]})
    ctx.engine.run(lambda uow: service.agree(uow, cycle, body, coord.actor))
    with Session(ctx.db.write_engine) as s:
        registers.add_meeting(s, MeetingIn(kind="regional_directors", title="Maakuntajohtajakokous",
                                           held_on=date(2026, 12, 10)), coord.actor, ctx.clock.now())
        s.commit()
    return coord, nid, cycle


def _month_of(x: float, y: float, year: int) -> int:
    angle = (math.degrees(math.atan2(y - C, x - C)) + 90) % 360
    day = angle / 360 * (date(year + 1, 1, 1) - date(year, 1, 1)).days
    return date.fromordinal(date(year, 1, 1).toordinal() + int(day)).month


def test_svg_places_each_item_in_its_month(ctx) -> None:
    _coord, nid, _cycle = _setup(ctx)
    ctx.clock.set(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    with ctx.db.read_session() as s:
        items = collect(s, scope_for(s), date(2026, 1, 1), date(2026, 12, 31), ctx.clock.now())
    svg = render_svg(items, 2026, "fi", "verkosto", date(2026, 3, 2))
    root = ET.fromstring(svg)
    assert root.find(f"{SVG}title").text == "Vuosikello 2026: verkosto"
    assert root.find(f"{SVG}desc") is not None
    groups = [g for g in root.iter(f"{SVG}g") if "item" in (g.get("class") or "").split()]
    assert len(groups) == len(items) == 6  # the cycle's planning (2025) and review (2027) fall outside 2026
    for g in groups:
        shape = g.find(f"{SVG}circle") if g.find(f"{SVG}circle") is not None else g.find(f"{SVG}rect")
        if shape.tag.endswith("rect"):
            x, y = float(shape.get("x")) + 7, float(shape.get("y")) + 7
        else:
            x, y = float(shape.get("cx")), float(shape.get("cy"))
        expected = date.fromisoformat(g.get("data-date"))
        expected_month = expected.month if expected.year == 2026 else 1
        assert _month_of(x, y, 2026) == expected_month, g.get("data-uid")
        assert g.find(f"{SVG}title").text
    by_uid = {g.get("data-uid"): g for g in groups}
    assert by_uid[f"case-{nid}-proposals"].get("data-month") == "3"
    # the communication plan was due on Fri 27.2.: now overdue, marked by class, outline and "!"
    overdue = [g for g in groups if "overdue" in g.get("class")]
    assert [g.find(f"{SVG}title").text for g in overdue] == ["pe 27.2.2026: 2. Viestintäsuunnitelma (myöhässä)"]
    assert overdue[0].find(f"{SVG}text").text == "!"
    months = [t.text for t in root.iter(f"{SVG}text") if t.text and t.text[0].isupper()]
    assert months[:2] == ["Tammikuu", "Helmikuu"]


def test_organisation_feed_has_one_event_per_deadline_at_local_end_of_day(ctx) -> None:
    coord, nid, cycle = _setup(ctx)
    member = make_user(ctx, org_key="regional_council:06", name="Maakuntajohtaja")
    client = TestClient(create_app(ctx=ctx))
    r = client.post("/api/v1/calendar/feeds", json={"organisation": "regional_council:06"}, headers=member.headers)
    assert r.status_code == 201, r.text
    url = r.json()["url"]
    assert client.post("/api/v1/calendar/feeds", json={"organisation": "regional_council:02"},
                       headers=member.headers).status_code == 403
    feed = client.get(url.removeprefix("http://testserver"))
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    cal = icalendar.Calendar.from_ical(feed.content)
    events = {str(e["uid"]): e for e in cal.walk("VEVENT")}
    deadlines = [e for e in events.values() if str(e["summary"]).startswith("Määräaika")]
    # council 06's own proposal deadline and measure, plus the network-wide cycle deadline (annual report)
    assert sorted(str(e["summary"]) for e in deadlines) == sorted([
        "Määräaika: Alueiden kehittämisen lainvalmisteluryhmä: Pirkanmaan liitto",
        "Määräaika: 1. Ilmastotiekartta",
        "Määräaika: Vuosiseuranta 2026: toimintakertomus"])
    for e in deadlines:
        start = e["dtstart"].dt
        assert start.time() == time(23, 59, 59) and str(start.tzinfo) == "Europe/Helsinki"
    proposal = next(e for e in deadlines if "Pirkanmaan liitto" in str(e["summary"]))
    assert proposal["dtstart"].dt == datetime(2026, 3, 20, 23, 59, 59, tzinfo=HELSINKI)
    assert proposal["dtstart"].dt.astimezone(UTC) == datetime(2026, 3, 20, 21, 59, 59, tzinfo=UTC)
    measure = next(e for e in deadlines if "Ilmastotiekartta" in str(e["summary"]))
    assert measure["dtstart"].dt.astimezone(UTC) == datetime(2026, 6, 30, 20, 59, 59, tzinfo=UTC)  # EEST
    assert cal.walk("VTIMEZONE") and str(cal.walk("VTIMEZONE")[0]["tzid"]) == "Europe/Helsinki"
    # a second feed for the same organisation retires the first URL
    client.post("/api/v1/calendar/feeds", json={"organisation": "regional_council:06"}, headers=member.headers)
    assert client.get(url.removeprefix("http://testserver")).status_code == 404


def test_wheel_endpoints(ctx) -> None:
    coord, _nid, _cycle = _setup(ctx)
    client = TestClient(create_app(ctx=ctx))
    r = client.get("/api/v1/calendar/wheel.svg?year=2026&organisation=regional_council:06&lang=sv",
                   headers=coord.headers)
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
    assert ET.fromstring(r.content).find(f"{SVG}title").text == "Årsklocka 2026: Pirkanmaan liitto"  # glossary
    network = client.get("/api/v1/calendar/wheel.svg?year=2026&lang=sv", headers=coord.headers)
    assert ET.fromstring(network.content).find(f"{SVG}title").text == "Årsklocka 2026: hela nätverket"
    assert "verkosto" not in network.text
    page = client.get("/api/v1/calendar/wheel.html?year=2026", headers=coord.headers)
    assert page.status_code == 200 and "<ol>" in page.text and "@media print" in page.text
    bad = client.get("/api/v1/calendar/wheel.svg?organisation=regional_council:99", headers=coord.headers)
    assert bad.status_code == 422 and bad.json()["field"] == "organisation"
    items = client.get("/api/v1/calendar/items?year=2026", headers=coord.headers).json()
    assert any(i["process"] == "meeting" and i["start"] == "2026-12-10" for i in items)
