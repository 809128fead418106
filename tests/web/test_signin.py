"""Signing in: the link page changes nothing, the button does; cookies, rotation, timeouts, passwords, limits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from api.web.auth import set_password
from api.web.models import WebSession
from engine.directory import hash_token
from engine.errors import InvalidInput
from engine.links import SignInLink
from engine.models import OutboxMessage
from tests.support.builders import create_agreement, make_user
from tests.web.support import csrf_of, new_link, sign_in, web_client


def _count(ctx, model, *where) -> int:
    with Session(ctx.db.engine) as session:
        return int(session.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def _link(ctx, token: str) -> SignInLink:
    with Session(ctx.db.engine) as session:
        return session.execute(select(SignInLink).where(SignInLink.token_hash == hash_token(token))).scalars().one()


def test_the_link_page_does_nothing_and_the_button_signs_in(ctx) -> None:
    fx = create_agreement(ctx, parties=2)
    user = fx.signatories[fx.keys[0]][0]
    party_case = fx.id + 1
    token = new_link(ctx, user.id, party_case)
    with web_client(ctx) as client:
        page = client.get(f"/link/{token}")
        assert page.status_code == 200
        assert user.person.name in page.text and 'method="post"' in page.text
        assert page.headers["referrer-policy"] == "no-referrer"
        assert _link(ctx, token).used_at is None and _count(ctx, WebSession) == 0
        assert client.post(f"/link/{token}", data={}).status_code == 403  # no CSRF token: nothing happens
        assert _link(ctx, token).used_at is None
        r = client.post(f"/link/{token}", data={"csrf_token": csrf_of(page.text)})
        assert r.status_code == 303 and r.headers["location"] == f"/cases/{party_case}"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert _link(ctx, token).used_at is not None and _count(ctx, WebSession) == 1
        opened = client.get(f"/cases/{party_case}")
        assert opened.status_code == 303 and opened.headers["location"] == f"/agreements/{fx.id}"
        assert client.get(f"/agreements/{fx.id}").status_code == 200
        # the link page's token was the pre-sign-in one: it ended at sign-in (test_csrf_rotation.py)
        assert client.post(f"/link/{token}", data={"csrf_token": csrf_of(page.text)}).status_code == 403
        again = client.post(f"/link/{token}", data={"csrf_token": csrf_of(client.get("/tasks").text)})
        assert again.status_code == 410  # used: the page offers a fresh link


def test_secure_cookie_with_host_prefix_when_configured(ctx) -> None:
    user = make_user(ctx, org_key="municipality:837")
    with web_client(ctx, secure=True) as client:
        token = new_link(ctx, user.id)
        page = client.get(f"/link/{token}")
        assert "__Host-vk_csrf=" in page.headers["set-cookie"] and "Secure" in page.headers["set-cookie"]
        r = client.post(f"/link/{token}", data={"csrf_token": csrf_of(page.text)})
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("__Host-vk_session=") and "Secure" in cookie and "HttpOnly" in cookie
        assert client.get("/tasks").status_code == 200


def test_signing_in_rotates_the_session_and_signing_out_ends_it(ctx) -> None:
    a = make_user(ctx, org_key="municipality:837")
    b = make_user(ctx, org_key="municipality:837")
    with web_client(ctx) as client:
        sign_in(client, ctx, a.id)
        first = client.cookies.get("vk_session")
        sign_in(client, ctx, b.id)
        second = client.cookies.get("vk_session")
        assert first and second and first != second
        assert _count(ctx, WebSession, WebSession.ended_at.is_(None)) == 1  # the first one was ended
        client.cookies.set("vk_session", first)
        assert client.get("/tasks").status_code == 303  # the old id signs nobody in
        client.cookies.set("vk_session", second)
        page = client.get("/tasks")
        assert page.status_code == 200 and b.person.name in page.text
        assert client.post("/signout", data={"csrf_token": csrf_of(page.text)}).status_code == 303
        client.cookies.set("vk_session", second)
        assert client.get("/tasks").headers["location"].startswith("/signin")


def test_idle_and_absolute_timeouts(ctx) -> None:
    user = make_user(ctx, org_key="municipality:837")
    with web_client(ctx) as client:
        sign_in(client, ctx, user.id)
        ctx.clock.advance(timedelta(minutes=29))
        assert client.get("/tasks").status_code == 200
        ctx.clock.advance(timedelta(minutes=31))
        assert client.get("/tasks").status_code == 303  # idle for 31 minutes
        sign_in(client, ctx, user.id)
        started, lasted = ctx.clock.now(), None
        for _ in range(13 * 3):  # active every 20 minutes
            ctx.clock.advance(timedelta(minutes=20))
            if client.get("/tasks").status_code != 200:
                lasted = ctx.clock.now() - started
                break
        assert lasted == timedelta(hours=12)  # the absolute limit ends even a busy session


def test_used_and_expired_links_offer_a_fresh_one_by_email(ctx) -> None:
    fx = create_agreement(ctx, parties=1)
    user = fx.signatories[fx.keys[0]][0]
    party_case = fx.id + 1
    token = new_link(ctx, user.id, party_case, valid_for=timedelta(days=1))
    with web_client(ctx) as client:
        sign_in_page = client.get(f"/link/{token}")
        client.post(f"/link/{token}", data={"csrf_token": csrf_of(sign_in_page.text)})
        client.cookies.clear()
        used = client.get(f"/link/{token}")
        assert used.status_code == 410 and f'action="/link/{token}/renew"' in used.text
        before = _count(ctx, OutboxMessage, OutboxMessage.template == "sign_in_link")
        sent = client.post(f"/link/{token}/renew", data={"csrf_token": csrf_of(used.text)})
        assert sent.status_code == 200
        with Session(ctx.db.engine) as session:
            mail = session.execute(select(OutboxMessage).where(
                OutboxMessage.template == "sign_in_link")).scalars().all()
        assert len(mail) == before + 1
        assert mail[-1].to_address == user.person.email and mail[-1].case_id == party_case
        fresh = mail[-1].text.split("/link/")[1].split()[0]
        assert _link(ctx, fresh).person_id == user.id and _link(ctx, fresh).case_id == party_case
        expiring = new_link(ctx, user.id, party_case, valid_for=timedelta(hours=1))
        ctx.clock.advance(timedelta(hours=2))
        expired = client.get(f"/link/{expiring}")
        assert expired.status_code == 410 and "/renew" in expired.text
        assert client.get(f"/link/{fresh}").status_code == 200  # the fresh one lasts to the deadline


def test_repeated_bad_tokens_are_rate_limited_per_address(ctx) -> None:
    user = make_user(ctx, org_key="municipality:837")
    good = new_link(ctx, user.id)
    with web_client(ctx) as client:
        for i in range(10):
            assert client.get(f"/link/guess-{i}").status_code == 404
        assert client.get(f"/link/{good}").status_code == 429  # even a good token waits now
        assert _link(ctx, good).used_at is None
        ctx.clock.advance(timedelta(minutes=16))
        assert client.get(f"/link/{good}").status_code == 200


def test_coordinators_sign_in_with_a_password(ctx) -> None:
    coordinator = make_user(ctx, org_key="regional_council:06", roles="coordinator",
                            email="koordinaattori@pirkanmaa.fi")
    signatory = make_user(ctx, org_key="municipality:837")
    with Session(ctx.db.write_engine) as session:
        set_password(session, coordinator.id, "oikein-hyva-salasana")
        session.commit()
    with web_client(ctx) as client:
        page = client.get("/signin")
        token = csrf_of(page.text)
        wrong = client.post("/signin/password", data={"csrf_token": token, "email": "koordinaattori@pirkanmaa.fi",
                                                      "password": "vaara-salasana"})
        assert wrong.status_code == 401 and 'id="password-error"' in wrong.text
        ok = client.post("/signin/password", data={"csrf_token": token, "email": "KOORDINAATTORI@pirkanmaa.fi",
                                                   "password": "oikein-hyva-salasana", "next": "//evil.example"})
        assert ok.status_code == 303 and ok.headers["location"] == "/tasks"  # never to another site
        tasks = client.get("/tasks")
        assert "Koordinoimani puitesopimukset" in tasks.text
    with Session(ctx.db.write_engine) as session, pytest.raises(InvalidInput) as refused:
        set_password(session, signatory.id, "oikein-hyva-salasana")
    assert refused.value.field == "person_id"


def test_asking_for_a_link_by_email_never_tells_whether_the_address_exists(ctx) -> None:
    user = make_user(ctx, org_key="municipality:837", email="kunnanjohtaja@orivesi.fi")
    with web_client(ctx) as client:
        token = csrf_of(client.get("/signin").text)
        known = client.post("/signin/email", data={"csrf_token": token, "email": "kunnanjohtaja@orivesi.fi"})
        unknown = client.post("/signin/email", data={"csrf_token": token, "email": "nobody@example.fi"})
        assert known.status_code == unknown.status_code == 200
        assert known.text.replace(csrf_of(known.text), "") == unknown.text.replace(csrf_of(unknown.text), "")
    with Session(ctx.db.engine) as session:
        mail = session.execute(select(OutboxMessage).where(OutboxMessage.template == "sign_in_link")).scalars().all()
    assert [m.to_address for m in mail] == ["kunnanjohtaja@orivesi.fi"]
    assert user.person.name in mail[0].text


def test_cookie_authenticated_api_calls_that_change_things_need_the_csrf_header(ctx) -> None:
    fx = create_agreement(ctx, parties=1, circulate=False)
    with web_client(ctx) as client:
        sign_in(client, ctx, fx.coordinator.id)
        assert client.get(f"/api/v1/agreements/{fx.id}").status_code == 200
        refused = client.post(f"/api/v1/agreements/{fx.id}/circulate")
        assert refused.status_code == 403 and refused.json()["error"] == "NotPermitted"
        page = client.get(f"/agreements/{fx.id}")
        ok = client.post(f"/api/v1/agreements/{fx.id}/circulate", headers={"X-CSRF-Token": csrf_of(page.text)})
        assert ok.status_code == 200 and ok.json()["state"] == "circulating"
