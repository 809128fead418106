"""In Chromium: from a framework agreement's page to a task-specific agreement in force, and axe-core on the new
pages (the form, the task agreement's page with its framework, the framework's list) in fi, sv and en."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import Session

from engine.models import Case
from tests.support.builders import create_agreement
from tests.support.task_agreements import approve_all, create_task_agreement
from tests.web.browser import describe, set_language, signed_in, violations
from tests.web.live import live_server
from workflows.agreement import service
from workflows.agreement.schemas import DecisionIn

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("database", ["sqlite"], indirect=True)]


def _state(ctx, case_id: int) -> str:  # type: ignore[no-untyped-def]
    with Session(ctx.db.engine) as session:
        case = session.get(Case, case_id)
        assert case is not None
        return case.state


def test_from_the_framework_page_to_a_task_specific_agreement_in_force(ctx, page: Page) -> None:
    fx = create_agreement(ctx, parties=3)
    approve_all(ctx, fx)
    first, second = fx.keys[:2]
    signer = fx.signatories[first][0]
    with live_server(ctx) as base:
        signed_in(page.context, ctx, base, fx.coordinator.id)
        page.goto(f"{base}/agreements/{fx.id}")
        page.get_by_role("link", name="Laadi tehtäväkohtainen yhteistyösopimus").click()
        expect(page.locator("h1")).to_have_text("Uusi tehtäväkohtainen yhteistyösopimus")
        page.get_by_label("Otsikko").fill("LAPE-sopimus")
        page.get_by_label("Aihe").fill("Lasten, nuorten ja perheiden palvelut (LAPE)")
        page.get_by_label("Hyväksymisen määräaika").fill("18.9.2026")
        page.get_by_label("Sopimusosapuolet").fill(f"{first}\n{second}")
        page.get_by_label("Sopimuksen teksti").fill("# LAPE-sopimus\n\nSovitaan lasten palveluista.")
        page.get_by_role("button", name="Luo luonnos").click()
        expect(page.locator("[role=status]")).to_contain_text("Tehtäväkohtainen yhteistyösopimus on luotu")
        task_id = int(page.url.split("/agreements/")[1].split("?")[0])
        framework = page.locator("section[aria-labelledby=framework-heading]")
        expect(framework.get_by_role("link", name="Pirkanmaan puitesopimus")).to_have_attribute(
            "href", f"/agreements/{fx.id}"
        )
        page.get_by_role("button", name="Lähetä hyväksyttäväksi").click()
        expect(page.locator(".facts").first).to_contain_text("Hyväksyttävänä")
        # the first party's signatory decides and signs on the page; the second through the service
        signed_in(page.context, ctx, base, signer.id)
        page.goto(f"{base}/agreements/{task_id}")
        page.locator("input[name=body]").fill("Kunnanhallitus")
        page.locator("input[name=decided_on]").fill("2.3.2026")
        page.locator("input[name=section]").fill("§ 58")
        page.get_by_role("button", name="Tallenna päätös").click()
        expect(page.locator("[role=status]")).to_contain_text("Päätös on tallennettu")
        page.locator("form[action$='/sign'] input[name=confirm]").check()
        page.locator("form[action$='/sign'] button").click()
        expect(page.locator("[role=status]")).to_contain_text("Allekirjoitus on tallennettu")
        other = fx.signatories[second][0]
        body = DecisionIn(outcome="approved", body="Kunnanhallitus", decided_on="2026-03-02", section="§ 12")  # type: ignore[arg-type]
        ctx.engine.run(lambda uow: service.decide(uow, task_id, second, body, other.actor))
        ctx.engine.run(lambda uow: service.sign(uow, task_id, second, other.actor))
        assert _state(ctx, task_id) == "in_force"
        signed_in(page.context, ctx, base, fx.coordinator.id)
        page.goto(f"{base}/agreements/{task_id}")
        expect(page.locator(".facts").first).to_contain_text("Voimassa")
        page.get_by_role("link", name="Pirkanmaan puitesopimus").click()
        row = page.get_by_role("row", name="LAPE-sopimus")
        expect(row).to_contain_text("Voimassa")
        expect(row).to_contain_text("Lasten, nuorten ja perheiden palvelut (LAPE)")


def test_the_new_pages_pass_axe_in_every_language(ctx, page: Page) -> None:
    fx = create_agreement(ctx, parties=3)
    approve_all(ctx, fx)
    task = create_task_agreement(ctx, fx, keys=fx.keys[:2])
    problems = []
    with live_server(ctx) as base:
        signed_in(page.context, ctx, base, fx.coordinator.id)
        for lang in ("fi", "sv", "en"):
            set_language(ctx, page.context, base, lang, [fx.coordinator.id])
            for url in (
                f"/agreements/{fx.id}",
                f"/agreements/{fx.id}/task-agreements/new",
                f"/agreements/{task.id}",
                f"/agreements/{fx.id}/review",
            ):
                page.goto(base + url)
                found = violations(page)
                if found:
                    problems.append(f"{lang} {url}: {describe(found)}")
    assert problems == [], "\n".join(problems)
