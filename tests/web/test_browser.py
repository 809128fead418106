"""In Chromium: axe-core (WCAG 2.1 A and AA) and the keyboard on every page in every language; the journeys.

The signatory's journey starts from the link in a real email received by the aiosmtpd test server and is done
with the keyboard only; the coordinator's goes from the new-agreement form to the agreement entering into force.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlmodel import Session

from api.web.auth import set_password
from engine.models import Person
from tests.support.builders import create_agreement, make_user
from tests.web.browser import describe, set_language, signed_in, tab_to, unreachable_by_tab, violations
from tests.web.live import live_server
from tests.web.support import new_link
from workflows.agreement import service
from workflows.agreement.models import Signature
from workflows.agreement.schemas import DecisionIn

pytestmark = pytest.mark.browser
SCREENSHOTS = os.environ.get("VUOSIKELLO_SCREENSHOTS")  # a folder, e.g. docs/screenshots, to refresh them
LANGS = ("fi", "sv", "en")
MAIN_PAGES = {"signin", "link", "link-used", "tasks", "agreement", "agreement-errors", "coordinator-tasks",
              "coordinator-agreement", "new-agreement", "revise", "substitutes"}


def in_thread(fn: Callable[[], object]) -> object:
    """Run a function in a thread of its own and return its result."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


def _approve_and_sign(ctx, fx, key: str) -> None:  # type: ignore[no-untyped-def]
    signer = fx.signatories[key][0]
    ctx.engine.run(lambda uow: service.decide(uow, fx.id, key, DecisionIn(
        outcome="approved", body="Kunnanhallitus", decided_on="2026-03-02", section="§ 58"), signer.actor))
    ctx.engine.run(lambda uow: service.sign(uow, fx.id, key, signer.actor))


def _rename(ctx, names: dict[int, str]) -> None:  # type: ignore[no-untyped-def]
    """Give the people of the screenshots real-looking names."""
    with Session(ctx.db.write_engine) as session:
        for person_id, name in names.items():
            person = session.get(Person, person_id)
            person.name = name
            session.add(person)
        session.commit()


@pytest.mark.slow  # about 35 s: 17 pages x 3 languages
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # the pages do not depend on the database
def test_every_page_in_every_language_passes_axe_and_the_keyboard_reaches_everything(ctx, page: Page) -> None:
    fx = create_agreement(ctx, parties=4)
    _approve_and_sign(ctx, fx, fx.keys[2])
    ctx.engine.run(lambda uow: service.decide(uow, fx.id, fx.keys[3], DecisionIn(
        outcome="approved", body="Kunnanhallitus", decided_on="2026-03-02", section="§ 7"),
        fx.signatories[fx.keys[3]][0].actor))
    signer = fx.signatories[fx.keys[0]][0]
    make_user(ctx, org_key=fx.keys[0], roles="", email="vara@example.fi", name="Varahenkilö Virtanen")
    coordinator = fx.coordinator.id
    _rename(ctx, {signer.id: "Marja Virtanen", coordinator: "Kaisa Koordinaattori",
                  fx.signatories[fx.keys[2]][0].id: "Jussi Mäkinen", fx.signatories[fx.keys[3]][0].id: "Liisa Laine"})
    ctx.clock.advance(timedelta(days=120))  # 30.6.2026, past the deadline (22.6.): overdue parties show
    people = [signer.id, coordinator]
    found: dict[str, str] = {}
    with live_server(ctx) as base:
        def visit(who: int | None, path: str) -> None:
            signed_in(page.context, ctx, base, who)
            page.context.add_cookies([{"name": "vk_lang", "value": lang, "url": base}])
            page.goto(base + path)

        def submit_empty(who: int, path: str, button: str) -> None:
            visit(who, path)
            page.locator(button).first.click()

        def used_link() -> None:
            token = new_link(ctx, signer.id, fx.id + 1)
            visit(None, f"/link/{token}")
            page.get_by_role("button").last.click()
            page.context.clear_cookies()
            page.context.add_cookies([{"name": "vk_lang", "value": lang, "url": base}])
            page.goto(f"{base}/link/{token}")

        pages: dict[str, Callable[[], None]] = {
            "signin": lambda: visit(None, "/signin"),
            "link": lambda: visit(None, f"/link/{new_link(ctx, signer.id, fx.id + 1)}"),
            "link-used": used_link,
            "link-sent": lambda: (used_link(), page.get_by_role("button").last.click()),
            "link-unknown": lambda: visit(None, "/link/not-a-real-token"),
            "tasks": lambda: visit(signer.id, "/tasks"),
            "agreement": lambda: visit(signer.id, f"/agreements/{fx.id}"),
            "agreement-errors": lambda: submit_empty(signer.id, f"/agreements/{fx.id}",
                                                     "form[action$='/decision'] button[type=submit]"),
            "substitutes": lambda: visit(signer.id, "/substitutes"),
            "substitutes-errors": lambda: submit_empty(signer.id, "/substitutes", "form[action='/substitutes'] button"),
            "coordinator-tasks": lambda: visit(coordinator, "/tasks"),
            "coordinator-agreement": lambda: visit(coordinator, f"/agreements/{fx.id}"),
            "new-agreement": lambda: visit(coordinator, "/agreements/new"),
            "new-agreement-errors": lambda: submit_empty(coordinator, "/agreements/new", "button[value=create]"),
            "revise": lambda: visit(coordinator, f"/agreements/{fx.id}/revise"),
            "not-permitted": lambda: visit(signer.id, "/agreements/new"),
            "not-found": lambda: visit(signer.id, "/agreements/999999"),
        }
        for lang in LANGS:
            set_language(ctx, page.context, base, lang, people)
            for name, open_page in pages.items():
                open_page()
                assert page.locator("html").get_attribute("lang") == lang, name
                assert page.title(), name
                if SCREENSHOTS and name in MAIN_PAGES and (lang == "fi" or name in ("agreement", "link")):
                    Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=f"{SCREENSHOTS}/{name}-{lang}.png", full_page=True)
                problems = violations(page)
                if problems:
                    found[f"{lang}/{name}"] = describe(problems)
                if lang == "fi":
                    missing = unreachable_by_tab(page)
                    if missing:
                        found[f"keyboard {name}"] = "; ".join(missing)
    assert not found, "\n".join(f"{k}: {v}" for k, v in found.items())


def test_skip_link_is_the_first_stop_and_moves_focus_to_the_content(ctx, page: Page) -> None:
    with live_server(ctx) as base:
        page.goto(f"{base}/signin")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip-link"
        assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"  # focus visible
        page.keyboard.press("Enter")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.closest('main') !== null")


def test_signatory_from_the_emailed_link_to_a_signed_agreement_by_keyboard(smtp_ctx, smtp_server, page: Page) -> None:
    ctx = smtp_ctx
    fx = create_agreement(ctx, parties=2)
    key = fx.keys[1]
    signer = fx.signatories[key][0]
    in_thread(ctx.tick)  # deliver the circulation emails (asyncio.run, away from Playwright's loop)
    mail = next(m for m in smtp_server.messages if signer.person.email in m.rcpt_tos)
    text = mail.message.get_body(preferencelist=("plain",)).get_content()
    path = re.search(r"https?://[^/\s]+(/link/[A-Za-z0-9_-]+)", text).group(1)
    with live_server(ctx) as base:
        page.goto(base + path)
        expect(page.locator("h1")).to_have_text("Kirjaudu Vuosikelloon")
        tab_to(page, "form[action^='/link/'] button")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(rf"/agreements/{fx.id}$"))
        expect(page.locator("h1")).to_have_text("Pirkanmaan puitesopimus")
        tab_to(page, "input[name=body]")
        page.keyboard.type("Kunnanhallitus")
        tab_to(page, "input[name=decided_on]")
        page.keyboard.type("2.3.2026")
        tab_to(page, "input[name=section]")
        page.keyboard.type("§ 58")
        page.keyboard.press("Enter")
        expect(page.locator("[role=status]")).to_contain_text("Päätös on tallennettu")
        expect(page.locator("main")).to_contain_text("Kunnanhallitus 2.3.2026 § 58")
        tab_to(page, "form[action$='/sign'] input[name=confirm]")
        page.keyboard.press("Space")  # "I have read version 1 ...": the signature needs the confirmation
        tab_to(page, "form[action$='/sign'] button")
        page.keyboard.press("Enter")
        expect(page.locator("[role=status]")).to_contain_text("Allekirjoitus on tallennettu")
        expect(page.get_by_text("Olet allekirjoittanut tämän version.")).to_be_visible()
    with Session(ctx.db.engine) as session:
        assert session.execute(select(Signature.person_id)).scalars().all() == [signer.id]


def test_coordinator_from_a_new_agreement_to_it_entering_into_force(ctx, page: Page) -> None:
    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator", email="kaisa@pirkanmaa.fi")
    signers = {key: make_user(ctx, org_key=key) for key in ("municipality:837", "municipality:536")}
    with Session(ctx.db.write_engine) as session:
        set_password(session, coordinator.id, "koordinaattorin-salasana")
        session.commit()
    with live_server(ctx) as base:
        page.goto(f"{base}/signin")
        page.get_by_label("Sähköpostiosoite").last.fill("kaisa@pirkanmaa.fi")
        page.get_by_label("Salasana").fill("koordinaattorin-salasana")
        page.get_by_role("button", name="Kirjaudu", exact=True).click()
        page.get_by_role("link", name="Uusi puitesopimus").first.click()
        page.get_by_label("Otsikko").fill("Tampereen ja Nokian puitesopimus")
        page.get_by_label("Hyväksymisen määräaika").fill("29.5.2026")
        page.get_by_label("Sopimusosapuolet").fill("municipality:837\nNokia")
        page.get_by_label("Puitesopimuksen teksti").fill("# Puitesopimus\n\nSovitaan yhteistyöstä.")
        page.get_by_role("button", name="Luo luonnos").click()
        expect(page.locator("[role=status]")).to_contain_text("luotu luonnoksena")
        agreement_id = int(page.url.split("/agreements/")[1].split("?")[0])
        page.get_by_role("button", name="Lähetä hyväksyttäväksi").click()
        expect(page.locator(".facts")).to_contain_text("Hyväksyttävänä")
        for key, user in signers.items():
            ctx.engine.run(lambda uow, key=key, user=user: service.decide(uow, agreement_id, key, DecisionIn(
                outcome="approved", body="Kaupunginhallitus", decided_on="2026-03-02", section="§ 101"), user.actor))
            ctx.engine.run(lambda uow, key=key, user=user: service.sign(uow, agreement_id, key, user.actor))
        page.reload()
        expect(page.locator(".facts")).to_contain_text("Voimassa")
        expect(page.locator(".facts")).to_contain_text("2/2 allekirjoittanut")
        page.get_by_role("link", name="Omat tehtävät").click()
        expect(page.get_by_role("row", name=re.compile("Tampereen ja Nokian"))).to_contain_text("Voimassa")
    with Session(ctx.db.engine) as session:
        assert session.execute(select(Person.id).where(Person.id == coordinator.id)).scalar() == coordinator.id
