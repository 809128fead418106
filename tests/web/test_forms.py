"""Coordinators' forms: a nomination request and a cycle from forms, the annual survey; CSRF on every new form."""

from __future__ import annotations

from datetime import timedelta

from fastapi.routing import APIRoute
from sqlalchemy import func, select
from sqlmodel import Session

from engine.models import Case, Event, OutboxMessage, StoredDefinition
from notifications.template_store import EmailTemplate
from tests.support.builders import make_user
from tests.web.scenario import build, set_language
from tests.web.support import csrf_of, sign_in, web_client
from tests.web.test_csrf import web_routes
from workflows.annual_clock.models import CalendarFeed
from workflows.cycle.models import SurveyAnswer

NOMINATION = {"group": "Alueiden kehittämisen lainvalmisteluryhmä", "requester_name": "Valtiovarainministeriö",
              "requester_email": "kirjaamo@vm.example", "requester_language": "sv", "seats": "2", "deputies": "1",
              "term_start": "1.6.2026", "term_end": "31.5.2027", "deadline": "15.4.2026"}
PART2_MODULES = ("admin", "simulation", "email_templates", "dashboards", "clock", "nominations", "cycles", "survey")


def test_a_coordinator_creates_a_nomination_request_from_the_form(ctx) -> None:
    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator")
    signatory = make_user(ctx, org_key="municipality:536")  # Nokia: not asked
    with web_client(ctx) as client:
        sign_in(client, ctx, coordinator.id)
        for lang, title in (("sv", "Ny begäran om att utse representanter"), ("en", "New request for nominations"),
                            ("fi", "Uusi nimeämispyyntö")):
            set_language(ctx, coordinator.id, lang)
            page = client.get("/nominations/new")
            assert page.status_code == 200 and f"<h1>{title}</h1>" in page.text
        token = csrf_of(page.text)
        empty = client.post("/nominations/new", data={"csrf_token": token})
        assert empty.status_code == 422
        for field in ("group", "requester_name", "requester_email", "term_start", "term_end", "deadline",
                      "organisations"):
            assert f'href="#{field}"' in empty.text, field
        wrong = client.post("/nominations/new", data={
            "csrf_token": token, **NOMINATION, "requester_email": "not-an-address", "deadline": "2.6.2026",
            "organisations": "regional_council:06\nEi Tällaista"})
        assert wrong.status_code == 422
        assert "Rivi 2: organisaatiota ”Ei Tällaista” ei löydy" in wrong.text
        assert "Ehdotusten määräajan on oltava ennen toimikauden alkua" in wrong.text
        created = client.post("/nominations/new", data={
            "csrf_token": token, **NOMINATION, "all_councils": "1", "region": "06",
            "region_kinds": ["wellbeing_county"], "organisations": "Tampere"})
        assert created.status_code == 303, created.text
        page = client.get(created.headers["location"]).text
        assert "Nimeämispyyntö on lähetetty 20 organisaatiolle" in page  # 18 councils, the county, Tampere
        assert "Pirkanmaan hyvinvointialue" in page and "Ehdotuksia pyydetty" in page
        sign_in(client, ctx, signatory.id)
        assert client.get("/nominations/new").status_code == 403
        nomination_id = int(created.headers["location"].split("/")[2].split("?")[0])
        assert client.get(f"/nominations/{nomination_id}").status_code == 404  # not asked: not visible
    with Session(ctx.db.engine) as session:
        case = session.get(Case, nomination_id)
        assert case.data["requester"]["language"] == "sv" and len(case.data["seats"]) == 2
        assert session.execute(select(func.count()).where(Case.parent_id == nomination_id)).scalar() == 20


def test_a_coordinator_creates_a_cycle_and_follows_its_measures(ctx) -> None:
    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator")
    with web_client(ctx) as client:
        sign_in(client, ctx, coordinator.id)
        page = client.get("/cycles/new").text
        assert 'value="2027"' in page  # the next year the schedule would create
        assert "Suunnittelukokous" in page and "to 15.10.2026" in page  # the 2027 cycle's planning meeting
        token = csrf_of(page)
        assert client.post("/cycles/new", data={"csrf_token": token, "year": "kaksi"}).status_code == 422
        created = client.post("/cycles/new", data={"csrf_token": token, "year": "2026"})
        assert created.status_code == 303
        cycle = client.get(created.headers["location"]).text
        assert "<h1>Vuosiseuranta 2026</h1>" in cycle and "Vuoden 2026 seuranta on luotu" in cycle
        assert "Toimenpiteitä ei ole vielä sovittu" in cycle and "ke 15.10.2025" in cycle
        twice = client.post("/cycles/new", data={"csrf_token": token, "year": "2026"})
        assert twice.status_code == 422 and "Vuoden 2026 seuranta on jo olemassa" in twice.text
        signatory = make_user(ctx, org_key="municipality:837")
        sign_in(client, ctx, signatory.id)
        assert client.get("/cycles/new").status_code == 403
        assert client.post("/cycles/new", data={"csrf_token": csrf_of(client.get("/tasks").text),
                                                "year": "2028"}).status_code == 403


def test_directors_answer_the_survey_while_it_is_open_and_everyone_follows_it(ctx) -> None:
    s = build(ctx)
    director = make_user(ctx, org_key="regional_council:06", name="Maakuntajohtaja")
    municipal = make_user(ctx, org_key="municipality:837")
    url = f"/cycles/{s.cycle_id}/survey"
    ratings = {f"rating_{q}": "4" for q in ("cooperation", "advocacy", "information", "meetings")}
    with web_client(ctx) as client:
        sign_in(client, ctx, director.id)
        before = client.get(url).text
        assert "Kysely ei ole nyt avoinna" in before and 'name="rating_advocacy"' not in before
        refused = client.post(url, data={"csrf_token": csrf_of(before), **ratings, "rating_kuntaliitto_support": "5"})
        assert refused.status_code == 409 and "vastauksia otetaan vastaan" in refused.text
        ctx.clock.advance(timedelta(days=250))  # 7.11.2026: the survey is open
        sign_in(client, ctx, director.id)
        page = client.get(url).text
        assert "Vastaat liiton puolesta: Pirkanmaan liitto" in page
        missing = client.post(url, data={"csrf_token": csrf_of(page), **ratings})
        assert missing.status_code == 422 and 'href="#rating_kuntaliitto_support"' in missing.text
        answered = client.post(url, data={"csrf_token": csrf_of(page), **ratings, "rating_kuntaliitto_support": "2",
                                          "comments": "Enemmän yhteisiä kokouksia."})
        assert answered.status_code == 303
        follow = client.get(answered.headers["location"]).text
        assert "Vastanneet maakuntien liitot: 1/18" in follow and "Vastaus on tallennettu" in follow
        assert "<td>2.0</td>" in follow or "<td>2</td>" in follow
        sign_in(client, ctx, s.coordinator.id)
        page = client.get(url).text
        assert 'id="organisation"' in page  # a coordinator answers for any council
        assert client.post(url, data={"csrf_token": csrf_of(page), **ratings,
                                      "rating_kuntaliitto_support": "3"}).status_code == 422
        assert client.post(url, data={"csrf_token": csrf_of(page), **ratings, "rating_kuntaliitto_support": "3",
                                      "organisation": "regional_council:02"}).status_code == 303
        sign_in(client, ctx, municipal.id)
        page = client.get(url).text
        assert "2/18" in page and 'name="rating_advocacy"' not in page  # follows, does not answer
        assert client.post(url, data={"csrf_token": csrf_of(page), **ratings,
                                      "rating_kuntaliitto_support": "3"}).status_code == 403
    with Session(ctx.db.engine) as session:
        rows = session.execute(select(SurveyAnswer.ratings, SurveyAnswer.comments)).all()
        assert sorted(r[0]["kuntaliitto_support"] for r in rows) == [2, 3]


def _counts(ctx) -> tuple[int, ...]:  # type: ignore[no-untyped-def]
    with Session(ctx.db.engine) as session:
        return tuple(int(session.execute(select(func.count()).select_from(m)).scalar_one())
                     for m in (Case, Event, StoredDefinition, EmailTemplate, CalendarFeed, SurveyAnswer)) + (
            int(session.execute(select(func.count()).where(OutboxMessage.status == "dead")).scalar_one()),)


def test_every_new_form_refuses_a_post_without_or_with_a_wrong_csrf_token(ctx) -> None:
    s = build(ctx)
    ctx.clock.advance(timedelta(days=250))  # the survey is open: only the token stands in the way
    with web_client(ctx) as client:
        routes = [r for r in web_routes(client.app.routes)
                  if isinstance(r, APIRoute) and r.endpoint.__module__.rsplit(".", 1)[-1] in PART2_MODULES
                  and "POST" in r.methods]
        assert len(routes) == 14, [r.path for r in routes]  # 4 of them the nomination request's forms
        sign_in(client, ctx, s.admin.id)
        valid = csrf_of(client.get("/tasks").text)
        body = {"source": "x", "year": "2030", "lang": "fi", "subject": "x", "txt": "x", "html": "x",
                "action": "save", "group": "x", "language": "fi", "from_version": "1", "to_version": "1"}
        before = _counts(ctx)
        for route in routes:
            path = (route.path.replace("{name}", "party_reminder" if route.path.startswith("/admin/templates")
                                       else "agreement_party")
                    .replace("{message_id}", str(s.failed_message_id)).replace("{cycle_id}", str(s.cycle_id))
                    .replace("{nomination_id}", str(s.nomination_id)))
            assert client.post(path, data=body).status_code == 403, path
            assert client.post(path, data={**body, "csrf_token": valid[::-1]}).status_code == 403, path
        assert _counts(ctx) == before
        assert client.post("/cycles/new", data={"csrf_token": valid, "year": "2030"}).status_code == 303
        assert _counts(ctx) != before  # the same post with the token goes through


def test_the_nomination_cycle_and_survey_pages_speak_every_language(ctx) -> None:
    s = build(ctx)
    pages = {f"/nominations/{s.nomination_id}": {"fi": "Ehdotukset organisaatioittain",
                                                 "sv": "Förslag per organisation", "en": "Proposals by organisation"},
             "/cycles/new": {"fi": "Uusi vuosiseuranta", "sv": "Ny årlig uppföljning", "en": "New annual follow-up"},
             f"/cycles/{s.cycle_id}": {"fi": "Toimenpiteet tilan mukaan", "sv": "Åtgärder efter läge",
                                       "en": "Measures by status"},
             f"/cycles/{s.cycle_id}/survey": {"fi": "Maakuntajohtajakysely 2026",
                                              "sv": "Enkäten till landskapsdirektörerna 2026",
                                              "en": "Regional directors' survey 2026"}}
    with web_client(ctx) as client:
        sign_in(client, ctx, s.coordinator.id)
        for lang in ("fi", "sv", "en"):
            set_language(ctx, s.coordinator.id, lang)
            for path, words in pages.items():
                r = client.get(path)
                assert r.status_code == 200 and f'<html lang="{lang}">' in r.text, (lang, path)
                assert words[lang] in r.text.replace("&#39;", "'"), (lang, path)
        assert client.get("/nominations/999999").status_code == 404
        assert client.get(f"/cycles/{s.nomination_id}").status_code == 404  # a nomination is not a cycle
