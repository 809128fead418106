"""CSRF tokens rotate at sign-in: the token of the sign-in page (signed pre-session cookie) is worth nothing once
the person is signed in, and the cookie is dropped; the session's token works. A cookie-authenticated call to the
JSON API skips the `X-CSRF-Token` check only for a valid API token, not for any `Authorization` header."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import Session

from api.context import AppContext
from engine.models import Person
from tests.support.builders import make_user
from tests.web.support import csrf_of, new_link, web_client
from workflows.annual_clock.models import CalendarFeed


def _language(ctx: AppContext, person_id: int) -> str:
    with Session(ctx.db.engine) as session:
        person = session.get(Person, person_id)
        assert person is not None
        return person.language


def test_the_pre_sign_in_token_stops_working_at_sign_in(ctx: AppContext) -> None:
    aino = make_user(ctx, org_key="municipality:837", name="Aino")
    client = web_client(ctx)
    token = new_link(ctx, aino.id)
    page = client.get(f"/link/{token}")
    before = csrf_of(page.text)  # HMAC of the pre-session cookie
    signed_in = client.post(f"/link/{token}", data={"csrf_token": before})
    assert signed_in.status_code == 303
    assert 'vk_csrf=""' in signed_in.headers.get("set-cookie", "") or "vk_csrf=;" in \
        signed_in.headers.get("set-cookie", ""), signed_in.headers.get("set-cookie")

    # an attacker who knew (or planted) the pre-sign-in token, posting with the signed-in browser: refused
    client.cookies.set("vk_csrf", page.cookies.get("vk_csrf") or "")  # even were the cookie still there
    r = client.post("/language", data={"lang": "sv", "next": "/tasks", "csrf_token": before})
    assert r.status_code == 403, r.text[:300]
    assert _language(ctx, aino.id) == "fi"

    after = csrf_of(client.get("/tasks").text)
    assert after != before
    r = client.post("/language", data={"lang": "sv", "next": "/tasks", "csrf_token": after})
    assert r.status_code == 303
    assert _language(ctx, aino.id) == "sv"


def _feeds(ctx: AppContext) -> int:
    with Session(ctx.db.engine) as session:
        return int(session.execute(select(func.count()).select_from(CalendarFeed)).scalar_one())


def test_only_a_valid_api_token_lifts_the_api_csrf_check(ctx: AppContext) -> None:
    aino = make_user(ctx, org_key="municipality:837", name="Aino")
    client = web_client(ctx)
    token = new_link(ctx, aino.id)
    page = client.get(f"/link/{token}")
    assert client.post(f"/link/{token}", data={"csrf_token": csrf_of(page.text)}).status_code == 303

    for header in ("Basic YWlubzpzYWxhc2FuYQ==", "Bearer not-a-real-token", "Bearer", "x"):
        r = client.post("/api/v1/calendar/feeds", json={}, headers={"Authorization": header})
        assert r.status_code == 403 and "X-CSRF-Token" in r.text, (header, r.status_code, r.text[:300])
    assert _feeds(ctx) == 0

    session_token = csrf_of(client.get("/tasks").text)
    r = client.post("/api/v1/calendar/feeds", json={}, headers={"X-CSRF-Token": session_token})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/calendar/feeds", json={}, headers=aino.headers)  # a real API token, no CSRF header
    assert r.status_code == 201, r.text
    assert _feeds(ctx) == 2
