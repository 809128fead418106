"""In Chromium: the annual cycle's pages under axe-core (WCAG 2.1 A and AA) and the keyboard in fi, sv and en,
and three journeys: a network reports from the request in its SMTP inbox, a director answers the survey, the
coordinator closes the year and opens the annual report's PDF.

Screenshots of the Finnish pages go to $VUOSIKELLO_SCREENSHOTS/cycle-*.png when that is set
(`VUOSIKELLO_SCREENSHOTS=docs/screenshots pytest tests/web/test_cycle_browser.py`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlmodel import Session

from tests.web.browser import describe, set_language, signed_in, tab_to, unreachable_by_tab, violations
from tests.web.live import live_server
from tests.web.test_browser import in_thread
from tests.web.test_cycle_pages import Year, year
from workflows.cycle import reports, service
from workflows.cycle.models import CycleReport, Measure, SurveyAnswer
from workflows.cycle.schemas import ReportIn

pytestmark = pytest.mark.browser
SCREENSHOTS = os.environ.get("VUOSIKELLO_SCREENSHOTS")
LANGS = ("fi", "sv", "en")


def _reporting(y: Year) -> None:
    y.ctx.clock.set(datetime(2026, 11, 3, 8, 0, tzinfo=UTC))  # Tue 3.11.2026: reporting and the survey are open
    y.ctx.tick()
    assert y.state() == "reporting"


def _check_pages(page: Page, y: Year, base: str, pages: dict[str, Callable[[], None]], found: dict[str, str],
                 people: list[int]) -> None:
    for lang in LANGS:
        set_language(y.ctx, page.context, base, lang, people)
        for name, open_page in pages.items():
            open_page()
            assert page.locator("html").get_attribute("lang") == lang, name
            assert page.title(), name
            if SCREENSHOTS and lang == "fi":
                Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
                page.screenshot(path=f"{SCREENSHOTS}/cycle-{name}.png", full_page=True)
            problems = violations(page)
            if problems:
                found[f"{lang}/{name}"] = describe(problems)
            if lang == "fi":
                missing = unreachable_by_tab(page)
                if missing:
                    found[f"keyboard {name}"] = "; ".join(missing)


@pytest.mark.slow  # about a minute: 15 pages x 3 languages
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # the pages do not depend on the database
def test_every_cycle_page_in_every_language_passes_axe_and_the_keyboard_reaches_everything(ctx, page: Page) -> None:
    y = year(ctx)
    _reporting(y)
    rid = y.request_of("regional_council:06")
    mid = y.measure_ids()["Ilmastotiekartta"]
    ctx.engine.run(lambda uow: reports.submit_report(uow, y.cycle_id, "regional_council:06", ReportIn.model_validate(
        {"summary": "Ilmastotiekartta hyväksyttiin maakuntahallituksessa.",
         "measures": [{"measure_id": mid, "status": "done", "note": "Hyväksytty 14.9.2026"}]}), y.staff06.actor))
    people = [y.admin.id, y.coordinator.id, y.staff06.id, y.director06.id, y.director02.id]
    url = f"/cycles/{y.cycle_id}"
    found: dict[str, str] = {}
    with live_server(ctx) as base:
        def visit(who: int, path: str) -> None:
            lang = lang_of(page, base)
            signed_in(page.context, ctx, base, who)
            page.context.add_cookies([{"name": "vk_lang", "value": lang, "url": base}])
            page.goto(base + path)

        def submit(who: int, path: str, button: str) -> Callable[[], None]:
            return lambda: (visit(who, path), page.locator(button).first.click())

        coordinator, staff = y.coordinator.id, y.staff06.id
        _check_pages(page, y, base, {
            "year": lambda: visit(coordinator, url),
            "request-errors": submit(coordinator, url, "form[action$='/requests'] button"),
            "measure-new": lambda: visit(coordinator, f"{url}/measures/new"),
            "measure-errors": submit(coordinator, f"{url}/measures/new", "form[action$='/measures'] button"),
            "measure": lambda: visit(coordinator, f"{url}/measures/{mid}"),
            "report": lambda: visit(staff, f"{url}/reports/{rid}"),
            "report-errors": lambda: (visit(staff, f"{url}/reports/{rid}"), page.locator("#summary").fill(""),
                                      page.locator("form[action$='/report'] button").click()),
            "report-earlier": lambda: visit(staff, f"{url}/reports/{rid}?version=1"),
            "report-forbidden": lambda: visit(y.director02.id, f"{url}/reports/{rid}"),
            "tasks": lambda: visit(staff, "/tasks"),
            "survey": lambda: visit(y.director06.id, f"{url}/survey"),
            "survey-window": lambda: visit(y.admin.id, f"{url}/survey"),
        }, found, people)
        with Session(ctx.db.engine) as s:  # the error pages wrote nothing: one version of the report
            assert len(s.execute(select(CycleReport)).scalars().all()) == 1
        ctx.clock.set(datetime(2027, 1, 16, 8, 0, tzinfo=UTC))  # the report window has closed: the review
        ctx.tick()
        assert y.state() == "review"
        _check_pages(page, y, base, {
            "review": lambda: visit(coordinator, url),
            "close-errors": submit(coordinator, url, "form[action$='/close'] button"),
        }, found, people)
        next_id, _digest = ctx.engine.run(lambda uow: service.close(uow, y.cycle_id, "Lisää tukea ilmastotyöhön.",
                                                                    y.coordinator.actor))
        _check_pages(page, y, base, {
            "annual-report": lambda: visit(coordinator, f"{url}/report"),
            "next-year": lambda: visit(coordinator, f"/cycles/{next_id}"),
        }, found, people)
    assert not found, "\n".join(f"{k}: {v}" for k, v in found.items())


def lang_of(page: Page, base: str) -> str:
    """Return the language cookie the test set on the browser."""
    return next((c["value"] for c in page.context.cookies(base) if c["name"] == "vk_lang"), "fi")


def test_a_network_reports_from_the_request_in_its_inbox_by_keyboard(smtp_ctx, smtp_server, page: Page) -> None:
    ctx = smtp_ctx
    y = year(ctx)
    ctx.clock.set(datetime(2026, 10, 30, 22, 0, tzinfo=UTC))  # reporting opens as Fri 30.10.2026 ends
    in_thread(ctx.tick)
    in_thread(ctx.tick)  # the requests' mail leaves after the transition's commit
    mail = next(m for m in smtp_server.messages if y.alke.person.email in m.rcpt_tos)
    text = mail.message.get_body(preferencelist=("plain",)).get_content()
    path = re.search(r"https?://[^/\s]+(/cases/\d+)", text).group(1)  # type: ignore[union-attr]
    rid = y.request_of("network:alke")
    assert path == f"/cases/{rid}"
    mid = y.measure_ids()["Kehittämisen vuosikello"]
    with live_server(ctx) as base:
        page.goto(base + path)  # not signed in: the sign-in page, which mails a link
        expect(page.locator("h1")).to_have_text("Kirjaudu sisään")
        tab_to(page, "#link-email")
        page.keyboard.type(y.alke.person.email)
        page.keyboard.press("Enter")
        expect(page.locator("[role=status]")).to_be_visible()
        in_thread(ctx.tick)
        link_mail = next(m for m in reversed(smtp_server.messages) if y.alke.person.email in m.rcpt_tos)
        body = link_mail.message.get_body(preferencelist=("plain",)).get_content()
        link = re.search(r"https?://[^/\s]+(/link/[A-Za-z0-9_-]+)", body).group(1)  # type: ignore[union-attr]
        page.goto(base + link)
        tab_to(page, "form[action^='/link/'] button")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/tasks$"))
        tab_to(page, f"a[href='/cycles/{y.cycle_id}/reports/{rid}']")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(rf"/cycles/{y.cycle_id}/reports/{rid}$"))
        expect(page.locator("h1")).to_have_text("Raportti 2026: Aluekehitysverkosto (alke)")
        tab_to(page, "#summary")
        page.keyboard.type("Kehittämisen vuosikello on otettu käyttöön kaikissa liitoissa.")
        tab_to(page, f"#status_{mid}")
        page.locator(f"#status_{mid}").select_option("done")  # a select is chosen with the arrow keys or this
        tab_to(page, f"#note_{mid}")
        page.keyboard.type("Käytössä syyskuusta.")
        tab_to(page, "form[action$='/report'] button[type=submit]")
        page.keyboard.press("Enter")
        expect(page.locator("[role=status]")).to_contain_text("Raportti on tallennettu uutena versiona.")
        expect(page.locator("main")).to_contain_text("Kehittämisen vuosikello on otettu käyttöön")
    with Session(ctx.db.engine) as s:
        stored = s.execute(select(CycleReport)).scalars().one()
        assert (stored.request_case_id, stored.author_id, stored.version) == (rid, y.alke.id, 1)
        assert s.get(Measure, mid).status == "done"  # type: ignore[union-attr]


def test_a_director_answers_the_survey_from_the_tasks_page(ctx, page: Page) -> None:
    y = year(ctx)
    _reporting(y)
    with live_server(ctx) as base:
        signed_in(page.context, ctx, base, y.director06.id)
        page.goto(f"{base}/tasks")
        page.get_by_role("link", name="Vastaa maakuntajohtajakyselyyn 2026").click()
        expect(page.locator("h1")).to_have_text("Maakuntajohtajakysely 2026")
        page.locator("form[action$='/survey'] button[type=submit]").click()  # nothing chosen: every rating named
        expect(page.locator(".error-summary")).to_contain_text("Valitse arvio 1–5.")
        for question, rating in (("cooperation", 4), ("advocacy", 5), ("information", 3), ("meetings", 4),
                                 ("kuntaliitto_support", 2)):
            page.locator(f"label[for='rating_{question}-{rating}']").click()
        page.get_by_label("Palaute Kuntaliitolle").fill("Kokoukset olivat hyödyllisiä.")
        page.locator("form[action$='/survey'] button[type=submit]").click()
        expect(page.locator("[role=status]")).to_contain_text("Vastaus on tallennettu.")
    with Session(ctx.db.engine) as s:
        answer = s.execute(select(SurveyAnswer)).scalars().one()
        assert answer.ratings["kuntaliitto_support"] == 2 and answer.comments == "Kokoukset olivat hyödyllisiä."
        assert answer.respondent_id == y.director06.id


def test_the_coordinator_closes_the_year_and_opens_the_report_pdf(ctx, page: Page) -> None:
    y = year(ctx)
    ctx.clock.set(datetime(2027, 1, 16, 8, 0, tzinfo=UTC))  # the year has run: the report window closed
    ctx.tick()  # reporting opened (its due timer), then
    ctx.tick()  # closed (the timer the opening armed)
    assert y.state() == "review"
    with live_server(ctx) as base:
        signed_in(page.context, ctx, base, y.coordinator.id)
        page.goto(f"{base}/cycles/{y.cycle_id}")
        expect(page.locator(".facts")).to_contain_text("Seuranta")
        page.get_by_role("button", name="Päätä vuosi ja laadi toimintakertomus").click()
        expect(page.locator(".error-summary")).to_be_visible()  # the feedback is required
        page.get_by_label("Palaute Kuntaliitolle").fill("Ilmastotyöhön tarvitaan lisää yhteistä tukea.")
        page.get_by_role("button", name="Päätä vuosi ja laadi toimintakertomus").click()
        page.wait_for_url(re.compile(rf"/cycles/{y.cycle_id}/report\?notice=closed$"))
        expect(page.locator("[role=status]")).to_contain_text("Vuoden 2026 seuranta on päätetty")
        expect(page.locator("main")).to_contain_text("Siirretty vuodelle 2027")
        pdf_link = page.get_by_role("link", name="Lataa toimintakertomus (PDF)")
        href = pdf_link.get_attribute("href")
        assert href == f"/api/v1/cycles/{y.cycle_id}/report.pdf?lang=fi"
        response = page.context.request.get(base + href)  # the browser's own session
        assert response.status == 200 and response.headers["content-type"] == "application/pdf"
        assert response.body().startswith(b"%PDF-")
        page.get_by_role("link", name="Avaa toimintakertomus (HTML)").click()
        expect(page.locator("h1")).to_have_text("Toimintakertomus 2026")
        expect(page.locator("body")).to_contain_text("Pirkanmaan liitto")
        expect(page.locator("body")).not_to_contain_text("regional_council:06")
    assert y.state() == "closed"
