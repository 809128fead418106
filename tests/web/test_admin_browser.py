"""In Chromium: axe-core and the keyboard on every admin and form page, every language; a simulation; screenshots.

The pages are the administration, dashboard, overview and form pages; axe checks WCAG 2.1 A and AA.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from engine.versions import store_version
from tests.support.builders import make_user
from tests.web.browser import describe, set_language, signed_in, unreachable_by_tab, violations
from tests.web.live import live_server
from tests.web.scenario import build, proposal_v2

pytestmark = pytest.mark.browser
SCREENSHOTS = os.environ.get("VUOSIKELLO_SCREENSHOTS")  # a folder, e.g. docs/screenshots, to refresh them
LANGS = ("fi", "sv", "en")
SHOTS = {"admin", "admin-workflow", "admin-workflow-errors", "admin-simulate", "admin-migrate", "admin-templates",
         "admin-template", "admin-outbox", "dashboard", "clock", "clock-feed"}


def _store_v2(ctx, admin) -> None:  # type: ignore[no-untyped-def]
    ctx.engine.run(lambda uow: store_version(uow, ctx.registry, proposal_v2(ctx), "nomination_proposal",
                                             actor=admin.actor))


@pytest.mark.slow  # about 40 s: 20 pages x 3 languages
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # the pages do not depend on the database
def test_every_new_page_in_every_language_passes_axe_and_the_keyboard_reaches_everything(ctx, page: Page) -> None:
    s = build(ctx)
    director = make_user(ctx, org_key="regional_council:06", name="Mikko Maakuntajohtaja")
    signer = s.agreement.signatories[s.agreement.keys[0]][0]
    _store_v2(ctx, s.admin)
    ctx.clock.advance(timedelta(days=250))  # 7.11.2026: the survey is open, the agreement overdue
    people = [s.admin.id, s.coordinator.id, signer.id, director.id]
    found: dict[str, str] = {}
    with live_server(ctx) as base:
        def visit(who: int, path: str) -> None:
            signed_in(page.context, ctx, base, who)
            page.context.add_cookies([{"name": "vk_lang", "value": lang, "url": base}])
            page.goto(base + path)

        def then(who: int, path: str, act: Callable[[], None]) -> Callable[[], None]:
            return lambda: (visit(who, path), act())

        admin, coordinator = s.admin.id, s.coordinator.id
        pages: dict[str, Callable[[], None]] = {
            "admin": lambda: visit(admin, "/admin"),
            "admin-workflow": lambda: visit(admin, "/admin/workflows/agreement_party"),
            "admin-workflow-errors": then(admin, "/admin/workflows/agreement_party", lambda: (
                page.locator("#source").fill(page.locator("#source").input_value().replace(
                    "dest: approved", "dest: approvd", 1)), page.locator("button[value=check]").click())),
            "admin-simulate": then(admin, "/admin/workflows/agreement_party/simulate", lambda: (
                page.locator("#deadline").fill("24.12.2026"), page.locator("form button.button").last.click())),
            "admin-simulate-errors": then(admin, "/admin/workflows/agreement_party/simulate", lambda: (
                page.locator("#start").fill(""), page.locator("#offsets").fill("viikko"),
                page.locator("form button.button").last.click())),
            "admin-migrate": lambda: visit(admin, "/admin/workflows/nomination_proposal/migrate"
                                                  "?from_version=1&to_version=2"),
            "admin-templates": lambda: visit(admin, "/admin/templates"),
            "admin-template": lambda: visit(admin, "/admin/templates/party_reminder?lang=sv"),
            "admin-template-errors": then(admin, "/admin/templates/party_reminder?lang=fi", lambda: (
                page.locator("#txt").fill("{{ person.__class__ }}"), page.locator("button[value=preview]").click())),
            "admin-outbox": lambda: visit(admin, "/admin/outbox"),
            "dashboard": lambda: visit(coordinator, "/dashboard"),
            "clock": lambda: visit(signer.id, "/overview"),
            "clock-feed": then(signer.id, "/overview", lambda: page.locator("form[action='/overview/feed'] button")
                               .click()),
            "nomination-new": lambda: visit(coordinator, "/nominations/new"),
            "nomination-new-errors": then(coordinator, "/nominations/new",
                                          lambda: page.locator("main form button.button").last.click()),
            "nomination": lambda: visit(coordinator, f"/nominations/{s.nomination_id}"),
            "cycle-new": lambda: visit(coordinator, "/cycles/new"),
            "cycle": lambda: visit(coordinator, f"/cycles/{s.cycle_id}"),
            "survey": lambda: visit(director.id, f"/cycles/{s.cycle_id}/survey"),
            "survey-errors": then(director.id, f"/cycles/{s.cycle_id}/survey",
                                  lambda: page.locator("main form button.button").last.click()),
        }
        for lang in LANGS:
            set_language(ctx, page.context, base, lang, people)
            for name, open_page in pages.items():
                open_page()
                assert page.locator("html").get_attribute("lang") == lang, name
                assert page.title() and page.locator("h1").count() == 1, name
                if SCREENSHOTS and name in SHOTS and (lang == "fi" or name in ("admin-simulate", "clock")):
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


def test_an_administrator_simulates_a_configuration_and_sees_a_moved_date(ctx, page: Page) -> None:
    admin = make_user(ctx, roles="admin")
    with live_server(ctx) as base:
        signed_in(page.context, ctx, base, admin.id)
        page.goto(f"{base}/admin")
        page.get_by_role("link", name="Simuloi: Sopimusosapuolen hyväksyntä").click()
        expect(page.locator("h1")).to_have_text("Simuloi: Sopimusosapuolen hyväksyntä")
        page.get_by_label("Aloituspäivä").fill("2.3.2026")
        page.get_by_label("Asian määräaika").fill("24.12.2026")
        page.get_by_label("Muistutusviestien ajankohdat").fill("-P14D, -P1D")
        page.get_by_label("Asian määräaika").press("Enter")  # submits the form, as a keyboard user would
        expect(page.locator("[role=status]")).to_contain_text("2 siirtyi viikonlopun tai pyhäpäivän vuoksi")
        moved = page.locator("tr.moved-row")
        expect(moved).to_have_count(2)
        expect(moved.filter(has_text="Jouluaatto")).to_contain_text("Siirretty päivästä to 24.12.2026")
        expect(moved.filter(has_text="Jouluaatto")).to_contain_text("ma 28.12.2026")
        expect(moved.filter(has_text="viikonloppu")).to_contain_text(re.compile(r"ke 23\.12\.2026"))
