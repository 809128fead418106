"""In Chromium: the nomination pages pass axe-core (WCAG 2.1 A and AA) in fi, sv and en and are reached by keyboard;
an organisation proposes from the request mail in the SMTP server's inbox; the coordinator decides, sends the
letter and replaces a member. Screenshots (fi) go to $VUOSIKELLO_SCREENSHOTS as nomination-*-fi.png."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlmodel import Session

from engine.models import Case
from tests.support.builders import make_user
from tests.support.recurring import create_nomination, pair
from tests.web.browser import describe, set_language, signed_in, tab_to, unreachable_by_tab, violations
from tests.web.live import live_server
from workflows.nomination import appointments, service
from workflows.nomination.models import Appointment, Candidate
from workflows.nomination.schemas import DecisionIn, ProposalIn

pytestmark = pytest.mark.browser
SCREENSHOTS = os.environ.get("VUOSIKELLO_SCREENSHOTS")
A, B = "regional_council:06", "regional_council:02"


def in_thread(fn: Callable[[], object]) -> object:
    """Run a function in a thread of its own (asyncio.run away from Playwright's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


def choose(page: Page, select: str, text: str) -> None:
    """Pick the option of a select whose text contains `text`."""
    value = page.locator(f"{select} option", has_text=text).get_attribute("value")
    assert value, f"{select} has no option {text!r}"
    page.select_option(select, value)


def _children(ctx, nid: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with Session(ctx.db.engine) as session:
        return {c.data["organisation_key"]: c.id for c in session.execute(
            select(Case).where(Case.parent_id == nid)).scalars()}


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # the pages do not depend on the database
def test_every_nomination_page_in_every_language_passes_axe_and_the_keyboard(ctx, page: Page) -> None:
    open_id, coordinator = create_nomination(ctx, seats=2, asked={"organisations": [A, B]})
    done_id, _c = create_nomination(ctx, coordinator=coordinator, seats=1, asked={"organisations": [A, B]})
    director = make_user(ctx, org_key=A, name="Anna Aaltonen")
    other = make_user(ctx, org_key=B, name="Bertta Berg")
    kids, done_kids = _children(ctx, open_id), _children(ctx, done_id)
    ctx.engine.run(lambda uow: service.propose(uow, done_id, A, ProposalIn.model_validate(
        {"candidates": pair(1, org="a") + pair(1, "deputy", org="a")}), director.actor))
    ctx.engine.run(lambda uow: service.close_proposals(uow, done_id, coordinator.actor))
    closed_id, _c = create_nomination(ctx, coordinator=coordinator, seats=2, asked={"organisations": [A, B]})
    ctx.engine.run(lambda uow: service.propose(uow, closed_id, A, ProposalIn.model_validate(
        {"candidates": pair(1, org="a") + pair(1, "deputy", org="a") + pair(2, org="a") + pair(2, "deputy", org="a")}),
        director.actor))
    ctx.engine.run(lambda uow: service.close_proposals(uow, closed_id, coordinator.actor))
    with Session(ctx.db.engine) as session:
        ids = [c.id for c in session.execute(select(Candidate).where(Candidate.nomination_id == done_id)
                                             .order_by(Candidate.id)).scalars()]
    ctx.engine.run(lambda uow: appointments.decide(uow, done_id, DecisionIn(
        meeting_date="2026-03-02", section="§ 5", seats=[{"seat": 1, "member": ids[0], "deputy": ids[3]}],
        justification="Yksi paikka: jäsen ja varajäsen ovat eri sukupuolta."), coordinator.actor))
    people = [director.id, coordinator.id, other.id]
    found: dict[str, str] = {}
    with live_server(ctx) as base:
        def visit(who: int, path: str) -> None:
            signed_in(page.context, ctx, base, who)
            page.context.add_cookies([{"name": "vk_lang", "value": lang, "url": base}])
            page.goto(base + path)

        def submit(who: int, path: str, button: str) -> None:
            visit(who, path)
            page.locator(button).first.click()
            page.wait_for_load_state()

        proposal = f"/nominations/{open_id}/proposals/{kids[A]}"
        pages: dict[str, Callable[[], None]] = {
            "proposal": lambda: visit(director.id, proposal),
            "proposal-errors": lambda: submit(director.id, proposal, "button[value=submit]"),
            "request-organisation": lambda: visit(director.id, f"/nominations/{open_id}"),
            "request": lambda: visit(coordinator.id, f"/nominations/{open_id}"),
            "decided": lambda: visit(coordinator.id, f"/nominations/{done_id}"),
            "decision": lambda: visit(coordinator.id, f"/nominations/{closed_id}/decision"),
            "decision-errors": lambda: submit(coordinator.id, f"/nominations/{closed_id}/decision",
                                                     "form[action$='/decision'] button[type=submit]"),
            "letter": lambda: visit(coordinator.id, f"/nominations/{done_id}/letter"),
            "replacement": lambda: visit(coordinator.id, f"/nominations/{done_id}/replacements"),
            "replacement-errors": lambda: submit(coordinator.id, f"/nominations/{done_id}/replacements",
                                                 "form[action$='/replacements'] button[type=submit]"),
            "other-organisation": lambda: visit(other.id, f"/nominations/{done_id}/proposals/{done_kids[A]}"),
        }
        for lang in ("fi", "sv", "en"):
            set_language(ctx, page.context, base, lang, people)
            for name, open_page in pages.items():
                open_page()
                assert page.locator("html").get_attribute("lang") == lang, name
                if SCREENSHOTS and lang == "fi":
                    Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=f"{SCREENSHOTS}/nomination-{name}-fi.png", full_page=True)
                problems = violations(page)
                if problems:
                    found[f"{lang}/{name}"] = describe(problems)
                if lang == "fi":
                    missing = unreachable_by_tab(page)
                    if missing:
                        found[f"keyboard {name}"] = "; ".join(missing)
    assert not found, "\n".join(f"{k}: {v}" for k, v in found.items())


def test_an_organisation_proposes_from_the_request_mail_by_keyboard(smtp_ctx, smtp_server, page: Page) -> None:
    ctx = smtp_ctx
    make_user(ctx, org_key=A, name="Anna Aaltonen", email="anna@pirkanmaa.fi")
    nid, _coordinator = create_nomination(ctx, seats=1, asked={"organisations": [A]})
    pid = _children(ctx, nid)[A]
    in_thread(ctx.tick)  # deliver the request emails to the aiosmtpd server
    mail = next(m for m in smtp_server.messages if "anna@pirkanmaa.fi" in m.rcpt_tos)
    text = mail.message.get_body(preferencelist=("plain",)).get_content()
    opened = re.search(r"https?://[^/\s]+(/link/[A-Za-z0-9_-]+)", text).group(1)  # the mail's own sign-in link
    with live_server(ctx) as base:
        page.goto(base + opened)  # a page with one button: opening the link (or a scanner's GET) uses nothing
        tab_to(page, "form[action^='/link/'] button")
        page.keyboard.press("Enter")  # signed in, and on to the case the link names: the proposal form
        page.wait_for_url(re.compile(rf"/nominations/{nid}/proposals/{pid}$"))
        expect(page.locator("h1")).to_contain_text("Pirkanmaan liitto")
        for prefix, name, gender in (("s1-member-1", "Liisa Laine", "woman"), ("s1-member-2", "Matti Mäki", "man"),
                                     ("s1-deputy-1", "Sanna Salo", "woman")):
            tab_to(page, f"#{prefix}-name")
            page.keyboard.type(name)
            tab_to(page, f"#{prefix}-gender")
            page.select_option(f"#{prefix}-gender", gender)
        tab_to(page, "button[value=submit]")
        page.keyboard.press("Enter")
        summary = page.locator(".error-summary")
        expect(summary).to_contain_text("Paikka 1, varajäsen: ehdotuksesta puuttuu mies")
        summary.get_by_role("link").first.click()  # the summary leads to the seat's fieldset
        expect(page.locator("#s1-member-1-name")).to_have_value("Liisa Laine")  # what was typed is kept
        tab_to(page, "#s1-deputy-reason")
        page.keyboard.type("Ehdolle ei löytynyt miestä tähän tehtävään.")
        tab_to(page, "button[value=submit]")
        page.keyboard.press("Enter")
        expect(page.locator("[role=status]")).to_contain_text("Ehdotus on lähetetty")
        expect(page.locator("main")).to_contain_text("Poikkeus (Paikka 1, varajäsen)")
    with Session(ctx.db.engine) as session:
        assert sorted(session.execute(select(Candidate.name)).scalars()) == ["Liisa Laine", "Matti Mäki", "Sanna Salo"]


def test_the_coordinator_decides_sends_the_letter_and_replaces_a_member(smtp_ctx, smtp_server, page: Page) -> None:
    ctx = smtp_ctx
    director = make_user(ctx, org_key=A, name="Anna Aaltonen")
    nid, coordinator = create_nomination(ctx, seats=1, asked={"organisations": [A]})
    ctx.engine.run(lambda uow: service.propose(uow, nid, A, ProposalIn.model_validate(
        {"candidates": pair(1, org="a") + pair(1, "deputy", org="a")}), director.actor))
    with live_server(ctx) as base:
        signed_in(page.context, ctx, base, coordinator.id)
        page.goto(f"{base}/nominations/{nid}")
        page.get_by_role("button", name="Päätä ehdotusten vastaanotto").click()
        expect(page.locator("[role=status]")).to_contain_text("Ehdotusten vastaanotto on päätetty")
        page.get_by_role("link", name="Kirjaa päätös").click()
        page.get_by_label("Kokouksen päivämäärä").fill("2.3.2026")
        page.locator("#section").fill("§ 5")
        choose(page, "#seat-1-member", "Nainen a 1 member")
        choose(page, "#seat-1-deputy", "Mies a 1 deputy")
        page.get_by_role("button", name="Tallenna päätös").click()
        expect(page.locator(".error-summary")).to_contain_text("Jäsenistä naisia on 100 %")
        page.locator("#justification").fill("Yksi paikka: jäsen ja varajäsen ovat eri sukupuolta.")
        page.get_by_role("button", name="Tallenna päätös").click()
        expect(page.locator("[role=status]")).to_contain_text("Päätös on tallennettu")
        page.get_by_role("link", name="Esikatsele ja lähetä nimeämiskirje").click()
        expect(page.locator("article")).to_contain_text("Pirkanmaan liitto")
        expect(page.locator("article")).not_to_contain_text("regional_council:06")
        page.get_by_role("button", name="Lähetä nimeämiskirje").click()
        expect(page.locator("[role=status]")).to_contain_text("Nimeämiskirje on lähetetty")
        in_thread(ctx.tick)
        letter = next(m for m in smtp_server.messages if "kirjaamo@vm.example.fi" in m.rcpt_tos)
        body = letter.message.get_body(preferencelist=("plain",)).get_content()
        assert "Pirkanmaan liitto" in body and "regional_council" not in body and "pe 1.5.2026" in body
        ctx.clock.set(datetime(2026, 5, 4, 8, 0, tzinfo=UTC))
        signed_in(page.context, ctx, base, coordinator.id)
        page.goto(f"{base}/nominations/{nid}")
        page.get_by_role("link", name="Jäsenmuutos").click()
        page.select_option("#slot", value="1-member")
        choose(page, "#candidate", "Mies a 1 member")
        page.get_by_label("Alkaen").fill("1.6.2026")
        page.locator("#reason").fill("Siirtyi toiseen tehtävään")
        page.locator("#justification").fill("Yksi paikka.")
        page.get_by_role("button", name="Tallenna jäsenmuutos").click()
        expect(page.locator("[role=status]")).to_contain_text("Jäsenmuutos on tallennettu")
        changes = page.locator("section", has=page.locator("#changes-heading"))
        expect(changes).to_contain_text("Siirtyi toiseen tehtävään")
        expect(changes).to_contain_text("su 31.5.2026")
    with Session(ctx.db.engine) as session:
        assert [a.name for a in session.execute(select(Appointment).where(
            Appointment.ends_on.is_(None), Appointment.position == "member")).scalars()] == ["Mies a 1 member"]
