"""In Chromium: the people pages pass axe-core in fi, sv and en; an administrator adds a person and a coordinator
adds a signatory of their own organisation, with the keyboard and labels only; screenshots of the pages (fi).

`VUOSIKELLO_SCREENSHOTS=docs/screenshots` refreshes docs/screenshots/people-*.png.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlmodel import Session

from engine.models import Person
from tests.support.builders import make_user, org
from tests.web.browser import describe, set_language, signed_in, unreachable_by_tab, violations
from tests.web.live import live_server

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("database", ["sqlite"], indirect=True)]
SCREENSHOTS = os.environ.get("VUOSIKELLO_SCREENSHOTS")


def _shoot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SCREENSHOTS}/{name}.png", full_page=True)


def _person(ctx, email: str) -> Person | None:  # type: ignore[no-untyped-def]
    with Session(ctx.db.engine) as session:
        return session.execute(select(Person).where(Person.email == email)).scalars().first()


def test_the_people_pages_pass_axe_in_every_language_and_the_keyboard_reaches_everything(ctx, page: Page) -> None:
    admin = make_user(ctx, roles="admin", name="Pää Käyttäjä")
    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator", name="Kaisa Koordinaattori")
    signer = make_user(ctx, org_key="municipality:837", name="Tiina Tampere", email="tiina@tampere.fi")
    make_user(ctx, org_key="regional_council:06", name="Pekka Puheenjohtaja", email="pekka@pirkanmaa.fi")
    found: dict[str, str] = {}
    with live_server(ctx) as base:
        def errors_shown() -> None:
            page.locator("#email").fill("ei-osoite")
            page.locator("#name").fill("")
            page.locator("main form button.button").click()

        pages = [("people", admin.id, "/people", None), ("person-new", admin.id, "/people/new", None),
                 ("person-errors", admin.id, "/people/new", errors_shown),
                 ("person-edit", admin.id, f"/people/{signer.id}", None),
                 ("coordinator-people", coordinator.id, "/people", None),
                 ("coordinator-new", coordinator.id, "/people/new", None)]
        for lang in ("fi", "sv", "en"):
            set_language(ctx, page.context, base, lang, [admin.id, coordinator.id])
            for name, who, path, act in pages:
                signed_in(page.context, ctx, base, who)
                page.context.add_cookies([{"name": "vk_lang", "value": lang, "url": base}])
                page.goto(base + path)
                if act:
                    act()
                    expect(page.locator(".error-summary")).to_be_visible()
                assert page.locator("html").get_attribute("lang") == lang, name
                assert page.locator("h1").count() == 1, name
                problems = violations(page)
                if problems:
                    found[f"{lang}/{name}"] = describe(problems)
                if lang == "fi":
                    missing = unreachable_by_tab(page)
                    if missing:
                        found[f"keyboard {name}"] = "; ".join(missing)
    assert not found, "\n".join(f"{k}: {v}" for k, v in found.items())


def test_an_administrator_adds_a_person_and_a_coordinator_adds_their_signatory(ctx, page: Page) -> None:
    admin = make_user(ctx, roles="admin", name="Pää Käyttäjä")
    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator", name="Kaisa Koordinaattori")
    make_user(ctx, org_key="municipality:837", name="Tiina Tampere", email="tiina@tampere.fi")
    with live_server(ctx) as base:
        signed_in(page.context, ctx, base, admin.id)
        page.goto(f"{base}/admin")
        page.get_by_role("link", name="Henkilöt", exact=True).first.click()
        expect(page.locator("h1")).to_have_text("Henkilöt")
        _shoot(page, "people-fi")
        page.get_by_role("link", name="Lisää henkilö").click()
        page.get_by_label("Nimi", exact=False).first.fill("Maija Meikäläinen")
        page.get_by_label("Sähköpostiosoite").fill("maija@orivesi")  # no domain: refused, kept
        page.get_by_role("combobox", name="Kieli").select_option("sv")
        page.get_by_label("Organisaatio").fill("Orivesi")
        page.get_by_label("Allekirjoittaja").check()
        page.get_by_role("button", name="Lisää henkilö").click()
        summary = page.locator(".error-summary")
        expect(summary).to_contain_text("Sähköpostiosoite: Kirjoita sähköpostiosoite muodossa nimi@esimerkki.fi.")
        expect(page.get_by_label("Sähköpostiosoite")).to_have_value("maija@orivesi")
        expect(page.get_by_label("Organisaatio")).to_have_value("Orivesi")
        _shoot(page, "people-errors-fi")
        summary.get_by_role("link").first.click()  # the summary takes the keyboard to the field
        expect(page.get_by_label("Sähköpostiosoite")).to_be_focused()
        page.keyboard.press("Control+A")
        page.keyboard.type("maija.meikalainen@orivesi.fi")
        expect(page.get_by_label("Allekirjoittaja")).to_be_checked()
        _shoot(page, "people-new-fi")
        page.get_by_role("button", name="Lisää henkilö").click()
        expect(page.locator("[role=status]")).to_have_text("Henkilö lisättiin.")
        expect(page.locator("tbody")).to_contain_text("Maija Meikäläinen")

        signed_in(page.context, ctx, base, coordinator.id)
        page.goto(f"{base}/tasks")
        page.locator("header nav").get_by_role("link", name="Henkilöt", exact=True).click()  # the menu leads there
        expect(page.locator("main")).to_contain_text("Pirkanmaan liitto")
        expect(page.locator("main")).not_to_contain_text("Tiina Tampere")  # another organisation's person
        page.get_by_role("link", name="Lisää allekirjoittaja").click()
        expect(page.get_by_label("Organisaatio")).to_have_count(0)  # their own organisation, not a choice
        page.get_by_label("Nimi", exact=False).first.fill("Pekka Puheenjohtaja")
        page.get_by_label("Sähköpostiosoite").fill("pekka@pirkanmaa.fi")
        page.get_by_label("Tehtävänimike").fill("Maakuntahallituksen puheenjohtaja")
        _shoot(page, "people-coordinator-fi")
        page.get_by_role("button", name="Lisää henkilö").click()
        expect(page.locator("[role=status]")).to_have_text("Henkilö lisättiin.")
        expect(page.locator("tbody")).to_contain_text("Pekka Puheenjohtaja")
    added = _person(ctx, "maija.meikalainen@orivesi.fi")
    assert added is not None and (added.language, added.roles) == ("sv", "signatory")
    assert added.organisation_id == org(ctx, "municipality:562").id
    signatory = _person(ctx, "pekka@pirkanmaa.fi")
    assert signatory is not None and signatory.roles == "signatory"
    assert signatory.organisation_id == org(ctx, "regional_council:06").id
