"""Dashboards, the outbox and the overview: what coordinators and administrators see, in every language."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import Session

from engine.models import OutboxMessage
from tests.support.builders import make_user
from tests.web.scenario import build, set_language
from tests.web.support import csrf_of, sign_in, web_client

TITLES = {"fi": ("Tilannekuva", "Vuosikello 2026"), "sv": ("Lägesbild", "Årsklocka 2026"),
          "en": ("Dashboard", "Annual clock 2026")}


def _section(html: str, heading_id: str) -> str:
    return html.split(f'id="{heading_id}"')[1].split("</section>")[0]


def test_the_dashboard_counts_parties_names_the_overdue_and_groups_measures(ctx) -> None:
    s = build(ctx)
    signer = s.agreement.signatories[s.agreement.keys[0]][0]
    ctx.clock.advance(timedelta(days=120))  # 30.6.2026: past the agreement's deadline 19.6.
    with web_client(ctx) as client:
        sign_in(client, ctx, s.coordinator.id)
        page = client.get("/dashboard").text
        agreements = _section(page, "agreements-heading")
        assert "Pirkanmaan puitesopimus" in agreements and "1 / 3" in agreements
        assert "Pirkanmaan hyvinvointialue" in agreements and "Akaa" in agreements  # the two overdue parties
        nominations = _section(page, "nominations-heading")
        assert "Alueiden kehittämisen lainvalmisteluryhmä" in nominations and "1/2" in nominations
        measures = _section(page, "measures-heading")
        assert "Ei aloitettu: 1" in measures and "Käynnissä: 1" in measures and "Toteutunut: 1" in measures
        assert re.search(r"Sopimuksellisen yhteistyön malli.*?Aluekehitysverkosto \(alke\).*?Määräaika ylittynyt",
                         measures, re.S)  # due 29.5., not started
        for lang, (title, _clock) in TITLES.items():
            set_language(ctx, s.coordinator.id, lang)
            r = client.get(f"/dashboard?cycle={s.cycle_id}")
            assert r.status_code == 200 and f"<h1>{title}</h1>" in r.text
        assert client.get("/admin/outbox").status_code == 403  # the outbox is the administrators'
        sign_in(client, ctx, signer.id)
        assert client.get("/dashboard").status_code == 403


def test_the_outbox_shows_why_a_message_failed_and_sends_it_again(ctx) -> None:
    s = build(ctx)
    with web_client(ctx) as client:
        sign_in(client, ctx, s.admin.id)
        page = client.get("/admin/outbox").text
        failed = _section(page, "failed-heading")
        assert "550 5.1.1 mailbox unavailable" in failed and "Epäonnistui lopullisesti" in failed
        assert f'action="/admin/outbox/{s.failed_message_id}/retry"' in failed
        r = client.post(f"/admin/outbox/{s.failed_message_id}/retry", data={"csrf_token": csrf_of(page)})
        assert r.status_code == 303
        after = client.get(r.headers["location"]).text
        assert f"Viesti {s.failed_message_id} on jonossa" in after
        assert "550 5.1.1" not in _section(after, "failed-heading")
        again = client.post(f"/admin/outbox/{s.failed_message_id}/retry", data={"csrf_token": csrf_of(page)})
        assert again.status_code == 409  # only failed or dead messages are sent again
    with Session(ctx.db.engine) as session:
        assert session.get(OutboxMessage, s.failed_message_id).status == "pending"


def test_the_overview_shows_the_wheel_with_its_list_and_issues_a_calendar_feed(ctx) -> None:
    s = build(ctx)
    signer = s.agreement.signatories[s.agreement.keys[0]][0]
    with web_client(ctx) as client:
        sign_in(client, ctx, signer.id)
        for lang, (_title, clock) in TITLES.items():
            set_language(ctx, signer.id, lang)
            page = client.get("/overview").text
            assert f"<h1>{clock}</h1>" in page and '<svg xmlns="http://www.w3.org/2000/svg"' in page
            assert 'role="img"' in page and page.count('class="item deadline') >= 1
        set_language(ctx, signer.id, "fi")
        page = client.get("/overview").text
        listing = page.split('class="clock-list"')[1].split("</section>")[0]
        assert "Pirkanmaan puitesopimus" in listing and "ma 22.6.2026" in listing  # 19.6. is Midsummer Eve
        assert "Lainvalmisteluryhmä" not in listing  # the signatory's own items, not the whole network's
        network = client.get("/overview?scope=network").text
        # the whole network's wheel, but only of cases the signatory may open: not a request their county was not
        # asked, not the annual cycle of the regional councils (least disclosure, issue 10)
        assert "Pirkanmaan puitesopimus" in network
        assert "Alueiden kehittämisen lainvalmisteluryhmä" not in network and "Vuosiseuranta 2026" not in network
        assert client.get("/overview?year=1999").status_code == 404
        issued = client.post("/overview/feed", data={"csrf_token": csrf_of(page), "language": "sv"})
        assert issued.status_code == 200
        url = re.search(r'id="feed-url" value="([^"]+)"', issued.text).group(1)
        assert url.startswith("http://testserver/api/v1/calendar/feeds/vkcal_")
        feed = client.get(url.removeprefix("http://testserver"))
        assert feed.status_code == 200 and "BEGIN:VCALENDAR" in feed.text and "Tidsfrist" in feed.text
        later = client.get("/overview").text
        assert 'id="feed-url"' not in later and "Sinulla on tilausosoite" in later  # shown once
        client.post("/overview/feed", data={"csrf_token": csrf_of(page)})
        assert client.get(url.removeprefix("http://testserver")).status_code == 404  # the old one stopped


def test_the_survey_link_appears_on_the_overview_while_the_survey_is_open(ctx) -> None:
    s = build(ctx)
    director = make_user(ctx, org_key="regional_council:06", name="Maakuntajohtaja")
    with web_client(ctx) as client:
        sign_in(client, ctx, director.id)
        assert "/survey" not in client.get("/overview").text  # the survey opens 2.11.2026
        ctx.clock.advance(timedelta(days=250))  # 7.11.2026
        sign_in(client, ctx, director.id)  # the session has timed out meanwhile
        page = client.get("/overview").text
        assert f'href="/cycles/{s.cycle_id}/survey"' in page and "ma 30.11.2026" in page
