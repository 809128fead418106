"""In Chromium: a council-term review from the agreement page, and axe-core on every new page in fi, sv and en.

The journeys click through the real pages (start the review, confirm it unchanged; start one, terminate the
agreement with a reason and an end date). With VUOSIKELLO_SCREENSHOTS=docs/screenshots the Finnish pages are
saved as review-*.png and versions-*.png.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import Session

from engine.models import Case, Person
from tests.web.browser import describe, set_language, signed_in, unreachable_by_tab, violations
from tests.web.live import live_server
from tests.web.test_review_pages import in_force
from workflows.agreement import service
from workflows.agreement.read import read_agreement
from workflows.agreement.schemas import DecisionIn
from workflows.review import service as reviews
from workflows.review.schemas import ReviewStart, ReviseIn

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("database", ["sqlite"], indirect=True)]
SCREENSHOTS = os.environ.get("VUOSIKELLO_SCREENSHOTS")


def _state(ctx, case_id: int) -> str:  # type: ignore[no-untyped-def]
    with Session(ctx.db.engine) as session:
        case = session.get(Case, case_id)
        assert case is not None
        return case.state


def _shot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SCREENSHOTS}/{name}.png", full_page=True)


def _rename(ctx, person_id: int, name: str) -> None:  # type: ignore[no-untyped-def]
    with Session(ctx.db.write_engine) as session:
        person = session.get(Person, person_id)
        assert person is not None
        person.name = name
        session.add(person)
        session.commit()


def test_a_coordinator_starts_the_review_from_the_agreement_page_and_confirms_it(ctx, page: Page) -> None:
    fx = in_force(ctx)
    _rename(ctx, fx.coordinator.id, "Kaisa Koordinaattori")
    with live_server(ctx) as base:
        signed_in(page.context, ctx, base, fx.coordinator.id)
        page.goto(f"{base}/agreements/{fx.id}")
        panel = page.locator("section[aria-labelledby=coordinator-heading]")
        expect(panel).to_contain_text("tarkistetaan kerran valtuustokaudessa")
        panel.get_by_role("link", name="Avaa tarkistus").click()
        expect(page.locator("h1")).to_have_text("Valtuustokauden tarkistus: Pirkanmaan puitesopimus")
        _shot(page, "review-start-fi")
        page.get_by_label("Tarkistuksen määräaika").fill("28.11.2026")
        page.get_by_role("button", name="Aloita kauden 2025–2029 tarkistus").click()
        expect(page.locator("[role=status]")).to_contain_text("Tarkistus on aloitettu")
        expect(page.locator(".facts")).to_contain_text("ma 30.11.2026")
        expect(page.locator(".facts")).to_contain_text("pyydetty la 28.11.2026")
        _shot(page, "review-open-fi")
        assert _state(ctx, fx.id) == "under_review"
        page.get_by_role("link", name="Takaisin sopimuksen sivulle").click()
        expect(panel).to_contain_text("2025–2029 tarkistus on avoinna")
        panel.get_by_role("link", name="Vahvista sopimus ennallaan").click()
        page.locator("#confirm-note").fill("Neuvoteltu kuntakokouksessa 12.11.2026; sopimus jatkuu sellaisenaan.")
        page.locator("#confirm-minutes_url").fill("https://pirkanmaa.fi/poytakirjat/2026-11-12")
        page.get_by_role("button", name="Vahvista ennallaan").click()
        expect(page.locator("[role=status]")).to_contain_text("vahvistettu ennallaan")
        expect(page.locator("table")).to_contain_text("Vahvistettu ennallaan")
        _shot(page, "review-confirmed-fi")
    assert _state(ctx, fx.id) == "in_force"


def test_a_coordinator_terminates_the_agreement_with_a_reason_and_an_end_date(ctx, page: Page) -> None:
    fx = in_force(ctx)
    with live_server(ctx) as base:
        signed_in(page.context, ctx, base, fx.coordinator.id)
        page.goto(f"{base}/agreements/{fx.id}/review")
        page.get_by_role("button", name=re.compile("Aloita kauden")).click()
        expect(page.locator("[role=status]")).to_contain_text("Tarkistus on aloitettu")
        page.get_by_role("button", name="Irtisano sopimus").click()  # empty: both fields are named
        summary = page.locator(".error-summary")
        expect(summary).to_contain_text("Irtisanomisen syy")
        expect(summary).to_contain_text("Päättymispäivä")
        _shot(page, "review-terminate-errors-fi")
        summary.get_by_role("link", name=re.compile("Irtisanomisen syy")).click()
        page.keyboard.type("Yhteistyö jatkuu uudessa, koko maakunnan kattavassa sopimuksessa.")
        page.get_by_label(re.compile("^Päättymispäivä")).fill("31.12.2026")
        page.get_by_role("button", name="Irtisano sopimus").click()
        expect(page.locator("[role=status]")).to_contain_text("Puitesopimus on irtisanottu")
        expect(page.locator("table")).to_contain_text("Peruttu")
        page.get_by_role("link", name="Takaisin sopimuksen sivulle").click()
        expect(page.locator(".facts")).to_contain_text("Päättynyt")
        expect(page.locator(".history")).to_contain_text("syy: Yhteistyö jatkuu uudessa")
    assert _state(ctx, fx.id) == "terminated"


@pytest.mark.slow  # about 30 s: 11 pages x 3 languages
def test_every_new_page_in_every_language_passes_axe_and_the_keyboard_reaches_everything(ctx, page: Page) -> None:
    fx = in_force(ctx)  # in force, no review yet
    open_fx = in_force(ctx)  # under review
    ctx.engine.run(lambda uow: reviews.start_now(uow, open_fx.id, ReviewStart(), open_fx.coordinator.actor))
    revised = in_force(ctx)  # revised in its review: circulating again with two versions of the text
    with Session(ctx.db.engine) as session:
        text = read_agreement(session, revised.id).document
    review = ctx.engine.run(lambda uow: reviews.start_now(uow, revised.id, ReviewStart(),
                                                          revised.coordinator.actor))
    ctx.engine.run(lambda uow: reviews.revise(uow, review.id, ReviseIn(
        text=text.replace("\n\n", "\n\nKustannukset jaetaan palvelujen käytön mukaan.\n\n", 1),
        note="Kustannusjako tarkistettu"), revised.coordinator.actor))
    key = revised.keys[0]
    signer = revised.signatories[key][0]
    ctx.engine.run(lambda uow: service.decide(uow, revised.id, key, DecisionIn(
        outcome="approved", body="Kunnanhallitus", decided_on="2026-03-02", section="§ 58"), signer.actor))
    _rename(ctx, signer.id, "Marja Virtanen")
    _rename(ctx, revised.signatories[revised.keys[1]][0].id, "Jussi Mäkinen")
    coordinator = fx.coordinator.id
    people = [coordinator, signer.id, revised.signatories[revised.keys[1]][0].id, open_fx.coordinator.id,
              revised.coordinator.id]
    found: dict[str, str] = {}
    with live_server(ctx) as base:
        def visit(who: int, path: str) -> None:
            signed_in(page.context, ctx, base, who)
            page.context.add_cookies([{"name": "vk_lang", "value": lang, "url": base}])
            page.goto(base + path)

        def submit(who: int, path: str, button: str) -> None:
            visit(who, path)
            page.locator(button).first.click()

        def stale_decision() -> None:
            other = revised.keys[1]
            other_signer = revised.signatories[other][0]
            visit(other_signer.id, f"/agreements/{revised.id}")
            page.locator("form[action$='/decision'] input[name=body]").fill("Kunnanhallitus")
            page.locator("form[action$='/decision'] input[name=decided_on]").fill("2.3.2026")
            page.locator("form[action$='/decision'] input[name=section]").fill("§ 9")
            page.locator("form[action$='/decision'] input[name=sha256]").evaluate("e => e.value = '0'.repeat(64)")
            page.locator("form[action$='/decision'] button[type=submit]").click()

        pages: dict[str, Callable[[], None]] = {
            "review-start": lambda: visit(coordinator, f"/agreements/{fx.id}/review"),
            "review-start-errors": lambda: (visit(coordinator, f"/agreements/{fx.id}/review"),
                                            page.locator("#start-deadline").fill("1.1.2040"),
                                            page.locator("form[action$='/review/start'] button").click()),
            "review-open": lambda: visit(open_fx.coordinator.id, f"/agreements/{open_fx.id}/review"),
            "review-terminate-errors": lambda: submit(open_fx.coordinator.id, f"/agreements/{open_fx.id}/review",
                                                      "form[action$='/review/terminate'] button"),
            "agreement-under-review": lambda: visit(open_fx.coordinator.id, f"/agreements/{open_fx.id}"),
            "revise-closed": lambda: visit(coordinator, f"/agreements/{fx.id}/revise"),
            "dashboard": lambda: visit(coordinator, "/dashboard"),
            "versions": lambda: visit(signer.id, f"/agreements/{revised.id}/versions"),
            "versions-read": lambda: visit(signer.id, f"/agreements/{revised.id}/versions/1"),
            "versions-diff": lambda: visit(signer.id, f"/agreements/{revised.id}/versions/1/diff"),
            "sign-confirm-errors": lambda: submit(signer.id, f"/agreements/{revised.id}",
                                                  "form[action$='/sign'] button"),
            "error-typed": stale_decision,
        }
        for lang in ("fi", "sv", "en"):
            set_language(ctx, page.context, base, lang, people)
            for name, open_page in pages.items():
                open_page()
                assert page.locator("html").get_attribute("lang") == lang, name
                if lang == "fi" and name.startswith(("versions", "review")):
                    _shot(page, f"{name}-fi")
                problems = violations(page)
                if problems:
                    found[f"{lang}/{name}"] = describe(problems)
                if lang == "fi":
                    missing = unreachable_by_tab(page)
                    if missing:
                        found[f"keyboard {name}"] = "; ".join(missing)
        # the pages really showed what they are named for
        visit(signer.id, f"/agreements/{revised.id}/versions/1/diff")
        expect(page.locator("table.diff ins")).to_have_text("Kustannukset jaetaan palvelujen käytön mukaan.")
    assert not found, "\n".join(f"{k}: {v}" for k, v in found.items())
