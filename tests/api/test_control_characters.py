"""Control characters and NUL in titles, names and subjects are a 422 naming the field, the same on SQLite (which
would store a NUL) and PostgreSQL (which refuses it); longer texts keep tabs and line breaks but not NUL. The web
forms refuse them the same way, the page in the person's language keeping what they typed."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session

from api.app import create_app
from api.context import AppContext
from engine.models import Case
from engine.text import control_character_problem
from tests.support.builders import User, make_user
from tests.web.support import csrf_of, sign_in, web_client


@pytest.fixture
def client(ctx: AppContext) -> TestClient:
    return TestClient(create_app(ctx=ctx), raise_server_exceptions=False)


@pytest.fixture
def coordinator(ctx: AppContext) -> User:
    return make_user(ctx, org_key="regional_council:06", roles="coordinator", name="Koordinaattori")


def _cases(ctx: AppContext) -> int:
    with Session(ctx.db.engine) as session:
        return int(session.execute(select(func.count()).select_from(Case)).scalar_one())


def _agreement(ctx: AppContext, **overrides: Any) -> dict[str, Any]:
    tampere = make_user(ctx, org_key="municipality:837", name="Tampereen allekirjoittaja")
    body: dict[str, Any] = {"title": "Pirkanmaan puitesopimus", "document": "# Sopimus\n\n\tSovitaan.\r\n",
                            "deadline": "2026-06-19",
                            "parties": [{"organisation": "municipality:837", "signatories": [tampere.id]}]}
    body.update(overrides)
    return body


@pytest.mark.parametrize("bad", ["Sopimus\x00", "Sopimus\nBcc: x@example.com", "Sopimus\x1b[31m", "Sopimus\x7f",
                                 "Sopimus\u2028toinen rivi", "Sopimus\x85"])
def test_a_title_with_a_control_character_is_422_naming_it(ctx: AppContext, client: TestClient,
                                                          coordinator: User, bad: str) -> None:
    before = _cases(ctx)
    r = client.post("/api/v1/agreements", json=_agreement(ctx, title=bad), headers=coordinator.headers)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "title" and "control characters" in r.json()["detail"]
    assert _cases(ctx) == before


def test_a_text_keeps_its_line_breaks_but_not_nul(ctx: AppContext, client: TestClient, coordinator: User) -> None:
    r = client.post("/api/v1/agreements", json=_agreement(ctx, document="# A\x00B"), headers=coordinator.headers)
    assert r.status_code == 422 and r.json()["field"] == "document", r.text
    r = client.post("/api/v1/agreements", json=_agreement(ctx), headers=coordinator.headers)
    assert r.status_code == 201, r.text


def test_names_are_checked_too(ctx: AppContext, client: TestClient) -> None:
    admin = make_user(ctx, roles="admin", name="Pääkäyttäjä")
    r = client.post("/api/v1/people", headers=admin.headers,
                    json={"name": "Aino\x00", "email": "aino@example.fi", "organisation": "municipality:837"})
    assert r.status_code == 422 and r.json()["field"] == "name", r.text


def test_the_web_form_refuses_it_in_the_persons_language(ctx: AppContext, coordinator: User) -> None:
    make_user(ctx, org_key="municipality:837")
    before = _cases(ctx)
    with web_client(ctx) as browser:
        sign_in(browser, ctx, coordinator.id)
        token = csrf_of(browser.get("/agreements/new").text)
        form = {"csrf_token": token, "title": "Tampereen\x1b sopimus", "deadline": "2026-05-29",
                "document": "# Sopimus\n\nSovitaan.", "required_signatures": "1", "parties": "municipality:837",
                "action": "create"}
        r = browser.post("/agreements/new", data=form)
        assert r.status_code == 422, r.text[:500]
        assert "ohjausmerkkejä" in r.text and 'href="#title"' in r.text
        assert "Sovitaan." in r.text  # what was typed is kept
        r = browser.post("/agreements/new", data={**form, "title": "Tampereen sopimus",
                                                 "document": "# Sopimus\x00"})
        assert r.status_code == 422 and "ohjausmerkkejä" in r.text
    assert _cases(ctx) == before


def test_the_rule() -> None:
    assert control_character_problem("Sopimus 2026 – ÅÄÖ") is None
    assert control_character_problem("a\tb") is not None
    assert control_character_problem("a\tb\nc\r\n", multiline=True) is None
    assert control_character_problem("a\x00", multiline=True) is not None
