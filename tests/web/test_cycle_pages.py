"""The annual cycle's pages: planning, report requests (flagged when nobody receives them), the report form,
the survey's window, closing with the annual report and the carry-over; who may do what; CSRF on every form.

Real parts: a SQLite file (and PostgreSQL where marked by the `database` fixture), the whole app through a
test client, the sign-in link a mail would carry. Time moves through the manual clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, select
from sqlmodel import Session

from api.context import AppContext
from engine.models import Case, Event, OutboxMessage
from tests.support.builders import User, make_user
from tests.support.pdf import pdf_text
from tests.web.scenario import set_language
from tests.web.support import csrf_of, sign_in, web_client
from tests.web.test_csrf import web_routes
from workflows.cycle import reports, service
from workflows.cycle.models import CycleReport, Measure, SurveyAnswer
from workflows.cycle.schemas import AgreeIn, CycleCreate

MODULES = ("cycle_plan", "cycle_reports", "survey")


@dataclass
class Year:
    """A 2026 cycle with its people: who runs it, another coordinator, councils' staff, a network's member."""

    ctx: AppContext
    cycle_id: int
    admin: User
    coordinator: User
    other_coordinator: User
    director06: User
    staff06: User
    director02: User
    alke: User

    def measure_ids(self) -> dict[str, int]:
        with Session(self.ctx.db.engine) as s:
            return {m.title: m.id or 0 for m in s.execute(select(Measure).where(
                Measure.cycle_id == self.cycle_id)).scalars()}

    def count(self, model: type) -> int:
        with Session(self.ctx.db.engine) as s:
            return int(s.execute(select(func.count()).select_from(model)).scalar_one())

    def state(self, case_id: int | None = None) -> str:
        with Session(self.ctx.db.engine) as s:
            case = s.get(Case, case_id or self.cycle_id)
            assert case is not None
            return case.state

    def request_of(self, responsible: str) -> int:
        with Session(self.ctx.db.engine) as s:
            for c in s.execute(select(Case).where(Case.parent_id == self.cycle_id)).scalars():
                if c.data.get("responsible") == responsible:
                    return c.id or 0
        raise AssertionError(f"no request for {responsible}")


def year(ctx: AppContext, *, agreed: bool = True) -> Year:
    admin = make_user(ctx, roles="admin", name="Pää Käyttäjä")
    coordinator = make_user(ctx, org_key="association:kuntaliitto", roles="coordinator", name="Kaisa Koordinaattori")
    other = make_user(ctx, org_key="regional_council:06", roles="coordinator", name="Toinen Koordinaattori")
    director06 = make_user(ctx, org_key="regional_council:06", name="Maakuntajohtaja Pirkanmaa")
    staff06 = make_user(ctx, org_key="regional_council:06", roles="", name="Suunnittelija Pirkanmaa")
    director02 = make_user(ctx, org_key="regional_council:02", name="Maakuntajohtaja Varsinais-Suomi")
    alke = make_user(ctx, org_key="regional_council:13", roles="", name="Alke-sihteeri")
    ctx.engine.run(lambda uow: reports.add_network_member(uow, "alke", alke.id, admin.actor))
    case = ctx.engine.run(lambda uow: service.create_cycle(uow, CycleCreate(year=2026), coordinator.actor))
    if agreed:
        body = AgreeIn.model_validate({"measures": [
            {"title": "Ilmastotiekartta", "theme": "climate", "responsible": "regional_council:06",
             "due_date": "2026-06-30"},
            {"title": "Maakuntien toimintamalli", "theme": "operating_model", "responsible": "regional_council:06",
             "due_date": "2027-03-31"},
            {"title": "Kehittämisen vuosikello", "theme": "contract_based_cooperation", "responsible": "network:alke",
             "due_date": "2026-09-30"}]})
        ctx.engine.run(lambda uow: service.agree(uow, case.id, body, coordinator.actor))
    return Year(ctx, case.id, admin, coordinator, other, director06, staff06, director02, alke)


def test_the_coordinator_plans_measures_with_errors_in_the_persons_language(ctx) -> None:
    y = year(ctx, agreed=False)
    url = f"/cycles/{y.cycle_id}"
    with web_client(ctx) as client:
        sign_in(client, ctx, y.coordinator.id)
        page = client.get(url).text
        assert f'href="{url}/measures/new"' in page and "Vahvista sovitut toimenpiteet" not in page  # none yet
        form = client.get(f"{url}/measures/new")
        assert form.status_code == 200 and "<h1>Uusi toimenpide</h1>" in form.text
        token = csrf_of(form.text)
        empty = client.post(f"{url}/measures", data={"csrf_token": token})
        assert empty.status_code == 422
        for name in ("title", "theme", "responsible", "due_date"):
            assert f'href="#{name}"' in empty.text, name
        assert "Valitse teema." in empty.text and "Valitse vastuutaho luettelosta." in empty.text
        typed = {"csrf_token": token, "title": "Ilmastotiekartta", "theme": "climate",
                 "responsible": "regional_council:06", "due_date": "31.2.2026"}
        bad = client.post(f"{url}/measures", data=typed)
        assert bad.status_code == 422 and 'value="Ilmastotiekartta"' in bad.text and 'value="31.2.2026"' in bad.text
        assert 'aria-invalid="true"' in bad.text
        set_language(ctx, y.coordinator.id, "sv")
        swedish = client.post(f"{url}/measures", data={**typed, "theme": "tourism", "due_date": "2031-01-01"})
        assert swedish.status_code == 422 and "Välj ett tema." in swedish.text
        assert 'value="2031-01-01"' in swedish.text
        far = client.post(f"{url}/measures", data={**typed, "due_date": "2031-01-01"})
        assert far.status_code == 422 and 'href="#due_date"' in far.text and "Uppgifterna godtogs inte" in far.text
        set_language(ctx, y.coordinator.id, "fi")
        assert y.count(Measure) == 0
        added = client.post(f"{url}/measures", data={**typed, "due_date": "30.6.2026", "version": "1"})
        assert added.status_code == 303, added.text
        again = client.post(f"{url}/measures", data={**typed, "due_date": "30.6.2026", "version": "1"})
        assert again.status_code == 409 and "Lataa sivu uudelleen" in again.text  # a double submit: one measure
        assert y.count(Measure) == 1
        mid = y.measure_ids()["Ilmastotiekartta"]
        page = client.get(f"{url}/measures/{mid}").text
        edited = client.post(f"{url}/measures", data={"csrf_token": token, "measure": str(mid), "title":
                                                      "Ilmastotyön tiekartta", "theme": "climate",
                                                      "responsible": "network:alke", "due_date": "30.9.2026"})
        assert edited.status_code == 303 and "Poista toimenpide suunnitelmasta" in page
        cycle = client.get(url).text
        assert "Ilmastotyön tiekartta" in cycle and "Aluekehitysverkosto (alke)<" in cycle
        assert ">network:alke" not in cycle
        assert "Vahvista sovitut toimenpiteet" in cycle  # the engine now lets the plan be agreed
        version = re.search(r'name="trigger" value="agree">\s*<input type="hidden" name="version" value="(\d+)"',
                            cycle).group(1)  # type: ignore[union-attr]
        step = {"csrf_token": token, "trigger": "agree", "version": version}
        assert client.post(f"{url}/step", data=step).status_code == 303
        assert y.state() == "in_progress"  # 2026 has begun: agreeing starts the year
        events = y.count(Event)
        twice = client.post(f"{url}/step", data=step)
        assert twice.status_code == 409 and y.count(Event) == events
        gone = client.post(f"{url}/measures", data={"csrf_token": token, "measure": str(mid), "action": "remove"})
        assert gone.status_code == 409 and "merkitse se luovutuksi" in gone.text and y.count(Measure) == 1


def test_only_who_runs_the_cycle_plans_it_and_others_write_nothing(ctx) -> None:
    y = year(ctx)
    url = f"/cycles/{y.cycle_id}"
    alke_mid = y.measure_ids()["Kehittämisen vuosikello"]  # neither person works for the network
    with web_client(ctx) as client:
        for who in (y.other_coordinator, y.director02):
            sign_in(client, ctx, who.id)
            token = csrf_of(client.get("/tasks").text)
            before = (y.count(Measure), y.count(Event), y.count(Case))
            assert "/measures/new" not in client.get(url).text
            assert client.get(f"{url}/measures/new").status_code == 403
            assert client.get(f"{url}/measures/{alke_mid}").status_code == 403
            posts = {f"{url}/measures": {"title": "Uusi", "theme": "climate", "responsible": "network:alke",
                                         "due_date": "30.9.2026"},
                     f"{url}/notes": {"measure": str(alke_mid), "status": "done", "text": "Valmis"},
                     f"{url}/requests": {"responsible": "network:alsu", "deadline": "15.1.2027"},
                     f"{url}/close": {"feedback": "Kiitos"},
                     f"{url}/survey/window": {"survey_opens": "1.11.2026", "survey_closes": "30.11.2026"}}
            for path, body in posts.items():
                r = client.post(path, data={"csrf_token": token, **body})
                assert r.status_code == 403, (who.person.name, path, r.status_code)
                assert "<h1>" in r.text and 'lang="fi"' in r.text
            assert (y.count(Measure), y.count(Event), y.count(Case)) == before
        # the measure's own council notes on it; a note of the future is refused naming the field
        sign_in(client, ctx, y.staff06.id)
        mid = y.measure_ids()["Ilmastotiekartta"]
        page = client.get(f"{url}/measures/{mid}")
        assert page.status_code == 200 and "Uusi tilannemerkintä" in page.text
        assert "Muokkaa toimenpidettä" not in page.text
        token = csrf_of(page.text)
        future = client.post(f"{url}/notes", data={"csrf_token": token, "measure": str(mid), "status": "ongoing",
                                                   "text": "Aloitettu", "noted_on": "1.1.2030"})
        assert future.status_code == 422 and 'href="#note-noted_on"' in future.text
        assert "Päivä ei voi olla tulevaisuudessa." in future.text and 'value="1.1.2030"' in future.text
        ok = client.post(f"{url}/notes", data={"csrf_token": token, "measure": str(mid), "status": "ongoing",
                                               "text": "Aloitettu"})
        assert ok.status_code == 303
        assert "Aloitettu" in client.get(f"{url}/measures/{mid}").text
        r = client.post(f"{url}/notes", data={"csrf_token": token, "measure": str(alke_mid), "status": "done",
                                              "text": "Ei meidän"})
        assert r.status_code == 403


def _to_reporting(y: Year) -> None:
    y.ctx.clock.set(datetime(2026, 10, 30, 22, 0, tzinfo=UTC))  # reporting opens as Fri 30.10.2026 ends
    y.ctx.tick()
    assert y.state() == "reporting"


def test_a_request_nobody_receives_is_flagged_on_the_page_and_in_the_api(ctx) -> None:
    y = year(ctx)
    url = f"/cycles/{y.cycle_id}"
    with web_client(ctx) as client:
        sign_in(client, ctx, y.coordinator.id)
        page = client.get(url).text
        token = csrf_of(page)
        version = re.search(r'action="/cycles/\d+/requests".*?name="version" value="(\d+)"', page, re.S).group(1)  # type: ignore[union-attr]
        empty = client.post(f"{url}/requests", data={"csrf_token": token})
        assert empty.status_code == 422 and 'href="#request-responsible"' in empty.text
        assert 'href="#request-deadline"' in empty.text
        past = client.post(f"{url}/requests", data={"csrf_token": token, "responsible": "network:alsu",
                                                    "deadline": "1.1.2026"})
        assert past.status_code == 422 and 'value="1.1.2026"' in past.text
        r = client.post(f"{url}/requests", data={"csrf_token": token, "responsible": "network:alsu",
                                                 "deadline": "15.1.2027", "version": version})
        assert r.status_code == 303 and "notice=requested_unreachable" in r.headers["location"]
        page = client.get(r.headers["location"]).text
        assert "Raportointipyyntöä ei saanut kukaan" in page and "Alueidenkäytön verkosto (alsu)" in page
        twice = client.post(f"{url}/requests", data={"csrf_token": token, "responsible": "network:alsu",
                                                     "deadline": "15.1.2027", "version": version})
        assert twice.status_code == 409
        with Session(ctx.db.engine) as s:  # sent twice: one request
            assert s.execute(select(func.count()).where(Case.parent_id == y.cycle_id)).scalar_one() == 1
        r = client.post(f"{url}/requests", data={"csrf_token": token, "responsible": "regional_council:06",
                                                 "deadline": "15.1.2027"})
        assert r.status_code == 303 and "notice=requested&" not in r.headers["location"]
        assert "notice=requested#" in r.headers["location"]
    api = client.app
    from fastapi.testclient import TestClient

    with TestClient(api) as rest:
        created = rest.post(f"/api/v1/cycles/{y.cycle_id}/reports", headers=y.coordinator.headers,
                            json={"responsible": "network:viestinta", "deadline": "2027-01-15"})
        assert created.status_code == 201, created.text
        flags = {r["responsible"]: (r["unreachable"], r["recipients"]) for r in created.json()["report_requests"]}
        assert flags == {"network:alsu": (True, 0), "regional_council:06": (False, 2),
                         "network:viestinta": (True, 0)}
        refused = rest.post(f"/api/v1/cycles/{y.cycle_id}/reports", headers=y.other_coordinator.headers,
                            json={"responsible": "network:alke", "deadline": "2027-01-15"})
        assert refused.status_code == 403
    with Session(ctx.db.engine) as s:
        to = s.execute(select(OutboxMessage.to_address).where(
            OutboxMessage.template == "cycle_report_requested")).scalars().all()
    assert sorted(to) == sorted([y.director06.person.email, y.other_coordinator.person.email])


def test_a_council_reports_in_versions_and_another_council_gets_403_with_nothing_written(ctx) -> None:
    y = year(ctx)
    _to_reporting(y)
    rid = y.request_of("regional_council:06")
    ids = y.measure_ids()
    page_url = f"/cycles/{y.cycle_id}/reports/{rid}"
    with web_client(ctx) as client:
        sign_in(client, ctx, y.director02.id)
        token = csrf_of(client.get("/tasks").text)
        for lang, words in (("fi", "Tämän raportin kirjoittaa verkosto tai liitto itse"),
                            ("sv", "Den här rapporten skrivs av nätverket eller förbundet självt")):
            set_language(ctx, y.director02.id, lang)
            r = client.get(page_url)
            assert r.status_code == 403 and words in r.text and f'lang="{lang}"' in r.text
        assert client.get(f"/cases/{rid}").status_code == 303  # the mail's link leads to the page, which refuses
        r = client.post(f"/cycles/{y.cycle_id}/report", data={"csrf_token": token, "request": str(rid),
                                                               "summary": "Väärä liitto", "replaces": "0"})
        assert r.status_code == 403 and y.count(CycleReport) == 0

        assert sign_in(client, ctx, y.staff06.id, rid) == f"/cases/{rid}"
        landed = client.get(f"/cases/{rid}")
        assert landed.status_code == 303 and landed.headers["location"] == page_url
        page = client.get(page_url)
        assert page.status_code == 200 and "Raportti 2026: Pirkanmaan liitto" in page.text
        assert "regional_council:06" not in page.text and "Kirjoita raportti" in page.text
        token = csrf_of(page.text)
        mid = ids["Ilmastotiekartta"]
        empty = client.post(f"/cycles/{y.cycle_id}/report", data={
            "csrf_token": token, "request": str(rid), "replaces": "0", f"status_{mid}": "done"})
        assert empty.status_code == 422 and 'href="#summary"' in empty.text and f'href="#note_{mid}"' in empty.text
        assert "Toimenpiteen 1 kuvaus" in empty.text
        set_language(ctx, y.staff06.id, "sv")
        sv = client.post(f"/cycles/{y.cycle_id}/report", data={
            "csrf_token": token, "request": str(rid), "replaces": "0", "summary": "Året", f"note_{mid}": "Klart"})
        assert sv.status_code == 422 and "Välj ett läge." in sv.text and ">Klart</textarea>" in sv.text
        set_language(ctx, y.staff06.id, "fi")
        body = {"csrf_token": token, "request": str(rid), "replaces": "0", "summary": "Ensimmäinen versio",
                f"status_{mid}": "done", f"note_{mid}": "Tiekartta hyväksytty"}
        assert client.post(f"/cycles/{y.cycle_id}/report", data=body).status_code == 303
        twice = client.post(f"/cycles/{y.cycle_id}/report", data=body)
        assert twice.status_code == 409 and "Raportti on jo tallennettu (nyt versio 1)" in twice.text
        assert y.count(CycleReport) == 1
        second = {**body, "replaces": "1", "summary": "Toinen versio"}
        assert client.post(f"/cycles/{y.cycle_id}/report", data=second).status_code == 303
        page = client.get(page_url).text
        assert "Toinen versio" in page and "versio 2" in page and "versio 1" in page
        earlier = client.get(f"{page_url}?version=1").text
        assert "Ensimmäinen versio" in earlier and "aiempi versio" in earlier
        with Session(ctx.db.engine) as s:
            assert s.get(Measure, mid).status == "done"  # type: ignore[union-attr]
        tasks = client.get("/tasks").text
        assert f'href="{page_url}"' in tasks and "Raportoi: Pirkanmaan liitto (2026)" in tasks


def test_the_admin_sets_the_survey_window_and_a_director_answers_once(ctx) -> None:
    y = year(ctx)
    url = f"/cycles/{y.cycle_id}/survey"
    with web_client(ctx) as client:
        sign_in(client, ctx, y.admin.id)
        page = client.get(url).text
        assert "Kyselyn vastausaika" in page
        token = csrf_of(page)
        bad = client.post(f"{url}/window", data={"csrf_token": token, "survey_opens": "10.3.2026",
                                                 "survey_closes": "1.3.2026"})
        assert bad.status_code == 422 and 'href="#survey_closes"' in bad.text and 'value="1.3.2026"' in bad.text
        assert "Sulkeutumispäivän on oltava aukeamispäivänä tai sen jälkeen." in bad.text
        set_language(ctx, y.admin.id, "sv")
        sv = client.post(f"{url}/window", data={"csrf_token": token, "survey_opens": "2.3.2026",
                                                "survey_closes": "kolmas"})
        assert sv.status_code == 422 and 'href="#survey_closes"' in sv.text and 'value="kolmas"' in sv.text
        ok = client.post(f"{url}/window", data={"csrf_token": token, "survey_opens": "2.3.2026",
                                                "survey_closes": "31.3.2026"})
        assert ok.status_code == 303
        sign_in(client, ctx, y.coordinator.id)
        assert "Kyselyn vastausaika" not in client.get(url).text  # set by administrators only
        sign_in(client, ctx, y.director06.id)
        tasks = client.get("/tasks").text
        assert f'href="{url}"' in tasks and "Vastaa maakuntajohtajakyselyyn 2026" in tasks
        page = client.get(url).text
        token = csrf_of(page)
        replaces = re.search(r'name="replaces" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
        answer = {"csrf_token": token, "replaces": replaces, "rating_cooperation": "4", "rating_advocacy": "5",
                  "rating_information": "3", "rating_meetings": "4", "rating_kuntaliitto_support": "4",
                  "comments": "Hyvä vuosi."}
        assert client.post(url, data=answer).status_code == 303
        twice = client.post(url, data=answer)
        assert twice.status_code == 409 and "Vastaus on jo tallennettu" in twice.text
        assert y.count(SurveyAnswer) == 1


def test_closing_the_year_gives_the_annual_report_and_carries_over_to_both_years(ctx) -> None:
    y = year(ctx)
    _to_reporting(y)
    rid = y.request_of("regional_council:06")
    mid = y.measure_ids()["Ilmastotiekartta"]
    with web_client(ctx) as client:
        sign_in(client, ctx, y.staff06.id)
        token = csrf_of(client.get(f"/cycles/{y.cycle_id}/reports/{rid}").text)
        assert client.post(f"/cycles/{y.cycle_id}/report", data={
            "csrf_token": token, "request": str(rid), "replaces": "0", "summary": "Pirkanmaan vuosi",
            f"status_{mid}": "done", f"note_{mid}": "Valmis"}).status_code == 303
        ctx.clock.set(datetime(2027, 1, 15, 22, 0, tzinfo=UTC))  # the report window has closed
        ctx.tick()
        assert y.state() == "review"
        sign_in(client, ctx, y.other_coordinator.id)
        token = csrf_of(client.get("/tasks").text)
        assert client.post(f"/cycles/{y.cycle_id}/close", data={"csrf_token": token,
                                                                 "feedback": "Ei minun"}).status_code == 403
        assert y.state() == "review"
        sign_in(client, ctx, y.coordinator.id)
        page = client.get(f"/cycles/{y.cycle_id}").text
        assert "Päätä vuosi ja laadi toimintakertomus" in page and "Pirkanmaan vuosi" in page
        token = csrf_of(page)
        empty = client.post(f"/cycles/{y.cycle_id}/close", data={"csrf_token": token, "feedback": "  "})
        assert empty.status_code == 422 and 'href="#close-feedback"' in empty.text and y.state() == "review"
        r = client.post(f"/cycles/{y.cycle_id}/close", data={"csrf_token": token,
                                                              "feedback": "Lisää tukea ilmastotyöhön."})
        assert r.status_code == 303 and r.headers["location"] == f"/cycles/{y.cycle_id}/report?notice=closed"
        assert client.post(f"/cycles/{y.cycle_id}/close", data={"csrf_token": token,
                                                                 "feedback": "Uudestaan"}).status_code == 409
        report = client.get(r.headers["location"]).text
        assert "Toimintakertomus 2026" in report and "Pirkanmaan liitto" in report and "Pirkanmaan vuosi" in report
        assert "regional_council:06" not in report and "network:alke" not in report
        assert "Siirretty vuodelle 2027" in report and "Maakuntien toimintamalli" in report
        html = client.get(f"/api/v1/cycles/{y.cycle_id}/report.html?lang=sv")
        assert html.status_code == 200 and "Pirkanmaa" in html.text and "Pirkanmaan vuosi" in html.text
        assert "regional_council:06" not in html.text and "network:alke" not in html.text
        assert "Nätverket för regionutveckling (alke)" in html.text
        pdf = client.get(f"/api/v1/cycles/{y.cycle_id}/report.pdf?lang=fi")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
        text = pdf_text(pdf.content)  # the organisations by name, with their ä and ö, in the PDF's own text
        assert "Toimintakertomus 2026" in text and "Pirkanmaan liitto" in text and "Pirkanmaan vuosi" in text
        assert "regional_council:06" not in text and "network:alke" not in text
        with Session(ctx.db.engine) as s:
            next_id = s.execute(select(Measure.cycle_id).where(Measure.carried_from_id.is_not(None))  # type: ignore[union-attr]
                                ).scalars().first()
        assert next_id is not None
        old = client.get(f"/cycles/{y.cycle_id}").text
        new = client.get(f"/cycles/{next_id}").text
        assert "Siirretty vuodelle 2027" in old and "Lisää tukea ilmastotyöhön." in old
        assert "Siirretty vuodesta 2026 (nro 2)" in new and "Maakuntien toimintamalli" in new


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_every_new_cycle_form_refuses_a_post_without_or_with_a_wrong_csrf_token(ctx) -> None:
    y = year(ctx)
    _to_reporting(y)
    with web_client(ctx) as client:
        routes = [r for r in web_routes(client.app.routes)
                  if isinstance(r, APIRoute) and r.endpoint.__module__.rsplit(".", 1)[-1] in MODULES
                  and "POST" in r.methods]
        assert {r.path for r in routes} == {
            "/cycles/{cycle_id}/step", "/cycles/{cycle_id}/measures", "/cycles/{cycle_id}/notes",
            "/cycles/{cycle_id}/requests", "/cycles/{cycle_id}/report", "/cycles/{cycle_id}/close",
            "/cycles/{cycle_id}/survey/window", "/cycles/{cycle_id}/survey"}
        sign_in(client, ctx, y.admin.id)
        valid = csrf_of(client.get(f"/cycles/{y.cycle_id}").text)
        body = {"trigger": "close_reporting", "title": "Uusi toimenpide", "theme": "climate",
                "responsible": "network:alsu", "due_date": "30.9.2026", "deadline": "15.1.2027",
                "measure": str(y.measure_ids()["Ilmastotiekartta"]), "status": "done", "text": "x",
                "request": str(y.request_of("regional_council:06")), "summary": "x", "feedback": "x",
                "survey_opens": "2.3.2026", "survey_closes": "31.3.2026", "organisation": "regional_council:06"}
        counts = (y.count(Measure), y.count(Event), y.count(CycleReport), y.count(SurveyAnswer), y.count(Case))
        for route in routes:
            path = route.path.replace("{cycle_id}", str(y.cycle_id))
            assert client.post(path, data=body).status_code == 403, path
            assert client.post(path, data={**body, "csrf_token": valid[::-1]}).status_code == 403, path
        assert (y.count(Measure), y.count(Event), y.count(CycleReport), y.count(SurveyAnswer),
                y.count(Case)) == counts
        new = {k: v for k, v in body.items() if k != "measure"}
        assert client.post(f"/cycles/{y.cycle_id}/measures", data={**new, "csrf_token": valid}).status_code == 303
        assert y.count(Measure) == counts[0] + 1  # the same post with the token goes through
