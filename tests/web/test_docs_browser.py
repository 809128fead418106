"""In Chromium with every request off this host refused: /docs (Swagger UI) and /redoc render the API."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from tests.web.live import live_server

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("database", ["sqlite"], indirect=True)]


def test_the_api_docs_render_without_internet(ctx, page: Page) -> None:
    refused: list[str] = []

    def offline(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", offline)
    with live_server(ctx) as base:
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{base}/docs")  # the first /openapi.json is built on demand: a few seconds on a busy machine
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("Vuosikello", timeout=60_000)
        expect(page.locator(".opblock-tag").first).to_be_visible()  # the operations, grouped by tag
        assert refused == [] and errors == [], (refused, errors)
        page.goto(f"{base}/redoc")
        try:
            expect(page.locator("h1").first).to_contain_text("Vuosikello", timeout=60_000)
        except AssertionError:
            raise AssertionError(f"ReDoc did not render: {errors} {page.content()[:2000]}") from None
    # ReDoc's bundle shows a "powered by" badge whose image it asks from its vendor: the page works without it
    assert set(refused) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}, refused
