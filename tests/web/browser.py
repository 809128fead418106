"""Helpers of the browser tests: signed-in browser contexts, axe-core, keyboard-only navigation."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, Page
from sqlmodel import Session

from api.context import AppContext
from api.web.config import WebConfig
from api.web.sessions import start_session
from engine.models import Person

WCAG_21_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
              "resultTypes": ["violations"]}
_axe = Axe()
FOCUSABLE = "a[href], button, input:not([type=hidden]), select, textarea"


def signed_in(context: BrowserContext, ctx: AppContext, base: str, person_id: int | None) -> None:
    """Give a browser context the session cookie of a person (or none)."""
    context.clear_cookies()
    if person_id is not None:
        cookie = ctx.engine.run(lambda uow: start_session(uow.session, WebConfig(cookie_secure=False), person_id,
                                                            "link", uow.now))
        context.add_cookies([{"name": "vk_session", "value": cookie, "url": base}])


def set_language(ctx: AppContext, context: BrowserContext, base: str, lang: str, people: list[int]) -> None:
    """Make a language everybody's: on the people and on the browser."""
    with Session(ctx.db.write_engine) as session:
        for person_id in people:
            person = session.get(Person, person_id)
            assert person is not None
            person.language = lang
            session.add(person)
        session.commit()
    context.add_cookies([{"name": "vk_lang", "value": lang, "url": base}])


def violations(page: Page) -> list[dict[str, Any]]:
    """Run axe-core on the page for WCAG 2.1 A and AA; return the violations."""
    result = _axe.run(page, options=WCAG_21_AA)
    return list(result.response["violations"])


def describe(found: list[dict[str, Any]]) -> str:
    """Say which rules failed and where."""
    return "; ".join(f"{v['id']} ({v['impact']}): " + ", ".join(str(n["target"]) for n in v["nodes"][:3])
                     for v in found)


def tab_to(page: Page, selector: str, limit: int = 150) -> None:
    """Press Tab until the element matching the selector has focus (fails if it never gets it)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} cannot be reached with the keyboard on {page.url}")


def unreachable_by_tab(page: Page) -> list[str]:
    """Tab through the whole page; return the interactive elements focus never reached."""
    total = page.evaluate("""s => {
        const radioGroupDone = new Set();
        const els = [...document.querySelectorAll(s)].filter(e => {
            if (e.disabled || e.offsetParent === null) return false;
            if (e.type !== 'radio') return true;  // Tab enters a radio group once; arrows move inside it
            if (radioGroupDone.has(e.name)) return false;
            radioGroupDone.add(e.name);
            return true; });
        els.forEach((e, i) => e.setAttribute('data-kbd', i));
        document.querySelectorAll('input[type=radio]').forEach(r => {
            const first = els.find(e => e.type === 'radio' && e.name === r.name);
            if (first && r.checked && r !== first) { r.setAttribute('data-kbd', first.getAttribute('data-kbd')); }
        });
        const start = document.createElement('span');  // start from the top of the document, as after loading
        start.tabIndex = -1;
        document.body.prepend(start);
        start.focus();
        return els.length; }""", FOCUSABLE)
    seen: set[str] = set()
    for _ in range(total * 2 + 10):
        page.keyboard.press("Tab")
        mark = page.evaluate("() => document.activeElement && document.activeElement.getAttribute('data-kbd')")
        if mark is not None:
            seen.add(mark)
        if len(seen) == total:
            break
    missing = [i for i in map(str, range(total)) if i not in seen]
    return [page.evaluate("i => document.querySelector(`[data-kbd='${i}']`).outerHTML.slice(0, 120)", i)
            for i in missing]
